//! The profile: contact details, preferences (the theme among them, also kept in the session
//! so every page renders in it from the first byte), and the devices signed in to the account.

use std::collections::HashMap;

use axum::{
    Form,
    extract::{Path, Query},
    response::{IntoResponse, Response},
};
use http::{Method, StatusCode};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::{failure, flash_from, render};
use crate::{
    api::{CallError, Device, Profile, decode},
    forms::{FormErrors, encode_component},
    session::{Ctx, SessionData, Theme},
    views::{
        layout::Nav,
        ui::{self, Field},
    },
};

#[derive(Debug, Deserialize, Default)]
pub struct DetailsForm {
    #[serde(default)]
    phone: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    bio: String,
}

#[derive(Debug, Deserialize, Default)]
pub struct PreferencesForm {
    #[serde(default)]
    theme: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    push: Option<String>,
    #[serde(default)]
    sms: Option<String>,
}

fn view(
    ctx: &Ctx,
    profile: &Profile,
    devices: &[Device],
    details: &DetailsForm,
    errors: &FormErrors,
    pref_errors: &FormErrors,
) -> Markup {
    let session = ctx.session();
    let prefs = &profile.preferences;
    let themes = [
        ("system", "Same as my system"),
        ("light", "Light"),
        ("dark", "Dark"),
    ];
    let currencies: Vec<(&str, &str)> = super::payments::CURRENCIES
        .iter()
        .map(|c| (*c, *c))
        .collect();
    html! {
        div.page-head { h1 { "Profile" } }
        div.grid-2 {
            section.card aria-labelledby="h-details" {
                h2 #h-details { "Details" }
                @if let Some(s) = &session {
                    dl.details {
                        dt { "Name" } dd { (s.user.name) }
                        dt { "Email" } dd { (s.user.email) }
                        dt { "Role" } dd { (crate::views::layout::role_label(&s.user.role)) }
                    }
                }
                (ui::form_errors(errors))
                form method="post" action="/profile" novalidate {
                    input type="hidden" name="_csrf" value=(ctx.csrf);
                    (Field::new("phone", "Phone").kind("tel").value(&details.phone).autocomplete("tel").render(errors))
                    (Field::new("address", "Address").value(&details.address).autocomplete("street-address").render(errors))
                    (Field::new("bio", "About you").value(&details.bio).render(errors))
                    button.btn.btn-primary type="submit" { "Save details" }
                }
            }
            section.card aria-labelledby="h-prefs" {
                h2 #h-prefs { "Preferences" }
                (ui::form_errors(pref_errors))
                form method="post" action="/profile/preferences" novalidate {
                    input type="hidden" name="_csrf" value=(ctx.csrf);
                    (ui::select("theme", "Theme", &themes, &prefs.theme, pref_errors))
                    (Field::new("language", "Language").value(&prefs.language).hint("For example en or en-GB").render(pref_errors))
                    (ui::select("currency", "Currency", &currencies, &prefs.currency, pref_errors))
                    (Field::new("timezone", "Time zone").value(&prefs.timezone).hint("An IANA name such as Europe/Berlin").render(pref_errors))
                    fieldset.field.choice {
                        legend { "Notifications" }
                        label.check { input type="checkbox" name="email" value="on" checked[prefs.notifications.email]; " Email" }
                        label.check { input type="checkbox" name="push" value="on" checked[prefs.notifications.push]; " Push" }
                        label.check { input type="checkbox" name="sms" value="on" checked[prefs.notifications.sms]; " SMS" }
                    }
                    button.btn.btn-primary type="submit" { "Save preferences" }
                }
            }
        }
        section.card aria-labelledby="h-devices" {
            div.page-head {
                h2 #h-devices { "Signed-in devices" }
                @if devices.iter().any(|d| !d.current) {
                    form method="post" action="/profile/devices/others" {
                        input type="hidden" name="_csrf" value=(ctx.csrf);
                        button.btn.btn-secondary type="submit" { "Sign out all other devices" }
                    }
                }
            }
            ul.devices {
                @for d in devices {
                    li.device {
                        div {
                            p.device-name {
                                (d.device_name.as_deref().unwrap_or("Unnamed device"))
                                @if d.current { " " span.badge.badge-completed { "This device" } }
                            }
                            p.muted.small {
                                (d.device_type.as_deref().unwrap_or("other"))
                                @if let Some(ip) = &d.ip_address { " · " (ip) }
                                " · last active " (ui::when_opt(d.last_active_at.as_deref()))
                            }
                        }
                        @if !d.current {
                            form method="post" action={ "/profile/devices/" (encode_component(&d.device_id)) "/signout" } {
                                input type="hidden" name="_csrf" value=(ctx.csrf);
                                button.btn.btn-ghost type="submit" aria-label={ "Sign out " (d.device_name.as_deref().unwrap_or("device")) } { "Sign out" }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn load(ctx: &Ctx) -> Result<(Profile, Vec<Device>), CallError> {
    let profile = decode::<Profile>(ctx.call(Method::GET, "/api/profile", None, None).await?)?;
    let devices = decode::<Vec<Device>>(
        ctx.call(Method::GET, "/api/auth/devices", None, None)
            .await?,
    )?;
    Ok((profile, devices))
}

fn details_of(p: &Profile) -> DetailsForm {
    DetailsForm {
        phone: p.phone.clone().unwrap_or_default(),
        address: p.address.clone().unwrap_or_default(),
        bio: p.bio.clone().unwrap_or_default(),
    }
}

pub async fn show(ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    if ctx.session().is_none() {
        return ctx.to_signin("expired");
    }
    match load(&ctx).await {
        Ok((profile, devices)) => {
            let main = view(
                &ctx,
                &profile,
                &devices,
                &details_of(&profile),
                &FormErrors::default(),
                &FormErrors::default(),
            );
            render(&ctx, "Profile", Nav::Profile, flash_from(&q), false, &main)
        }
        Err(err) => failure(&ctx, &err),
    }
}

/// The profile page again, answered 400, with the API's field errors on the form that was
/// sent: the details form (kept as typed) when `sent_details` is given, else the preferences.
async fn refused(ctx: &Ctx, err: &CallError, sent_details: Option<&DetailsForm>) -> Response {
    match load(ctx).await {
        Ok((profile, devices)) => {
            let (errors, none) = (FormErrors::from_call(err), FormErrors::default());
            let saved = details_of(&profile);
            let (details, detail_errors, pref_errors) = match sent_details {
                Some(form) => (form, &errors, &none),
                None => (&saved, &none, &errors),
            };
            let main = view(ctx, &profile, &devices, details, detail_errors, pref_errors);
            (
                StatusCode::BAD_REQUEST,
                render(ctx, "Profile", Nav::Profile, None, false, &main),
            )
                .into_response()
        }
        Err(e) => failure(ctx, &e),
    }
}

pub async fn update(ctx: Ctx, Form(form): Form<DetailsForm>) -> Response {
    let body = json!({ "phone": form.phone, "address": form.address, "bio": form.bio });
    match ctx
        .call(Method::PUT, "/api/profile", Some(&body), None)
        .await
    {
        Ok(_) => ctx.redirect("/profile?ok=saved"),
        Err(err) if err.status() == 400 => refused(&ctx, &err, Some(&form)).await,
        Err(err) => failure(&ctx, &err),
    }
}

/// Keeps the session's copy of the theme in step with the profile.
fn remember_theme(ctx: &Ctx, theme: &str) {
    if let (Some(t), Some(s)) = (Theme::parse(theme), ctx.session()) {
        ctx.cell.set(Some(SessionData { theme: t, ..s }));
    }
}

pub async fn update_preferences(ctx: Ctx, Form(form): Form<PreferencesForm>) -> Response {
    let body = json!({
        "theme": form.theme,
        "language": form.language,
        "currency": form.currency,
        "timezone": form.timezone,
        "notifications": {
            "email": form.email.is_some(),
            "push": form.push.is_some(),
            "sms": form.sms.is_some(),
        },
    });
    match ctx
        .call(Method::PUT, "/api/profile/preferences", Some(&body), None)
        .await
    {
        Ok(_) => {
            remember_theme(&ctx, &form.theme);
            ctx.redirect("/profile?ok=saved")
        }
        Err(err) if err.status() == 400 => refused(&ctx, &err, None).await,
        Err(err) => failure(&ctx, &err),
    }
}

#[derive(Debug, Deserialize)]
pub struct ThemeForm {
    theme: String,
    #[serde(default)]
    next: String,
}

/// The header's toggle: saves `preferences.theme` and comes back to the same page.
pub async fn theme(ctx: Ctx, Form(form): Form<ThemeForm>) -> Response {
    let Some(theme) = Theme::parse(&form.theme) else {
        return (StatusCode::BAD_REQUEST, "Unknown theme").into_response();
    };
    match ctx
        .call(
            Method::PUT,
            "/api/profile/preferences",
            Some(&json!({ "theme": theme.as_str() })),
            None,
        )
        .await
    {
        Ok(_) => {
            remember_theme(&ctx, theme.as_str());
            let next = if form.next.starts_with('/') && !form.next.starts_with("//") {
                form.next.as_str()
            } else {
                "/payments"
            };
            ctx.redirect(next)
        }
        Err(err) => failure(&ctx, &err),
    }
}

pub async fn sign_out_device(ctx: Ctx, Path(device): Path<String>) -> Response {
    let path = format!("/api/auth/devices/{}", encode_component(&device));
    match ctx.call(Method::DELETE, &path, None, None).await {
        Ok(_) => ctx.redirect("/profile?ok=device"),
        Err(err) => failure(&ctx, &err),
    }
}

pub async fn sign_out_others(ctx: Ctx) -> Response {
    let body = json!({ "currentDeviceId": ctx.device_id });
    match ctx
        .call(
            Method::POST,
            "/api/auth/devices/logout-others",
            Some(&body),
            None,
        )
        .await
    {
        Ok(_) => ctx.redirect("/profile?ok=others"),
        Err(err) => failure(&ctx, &err),
    }
}
