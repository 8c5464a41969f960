//! Signing in, registering and signing out; the session-ended messages; the short-lived token
//! the page's script opens the WebSocket with; the navigation fragment refreshed after a role
//! change.

use std::collections::HashMap;

use axum::{
    Form, Json,
    extract::Query,
    response::{IntoResponse, Response},
};
use http::{Method, StatusCode};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    api::CallError,
    device,
    forms::{FormErrors, NewAccountForm, or_default},
    session::{Ctx, SessionData, Theme},
    views::{
        self,
        layout::{Flash, Nav, Shell, nav, page},
        ui::{self, Field},
    },
};

/// Only local paths are followed after sign-in (no open redirect).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => n,
        _ => "/payments",
    }
}

fn reason_flash(reason: Option<&str>) -> Option<Flash> {
    Some(match reason? {
        "expired" => Flash::Info("Your session has expired. Sign in again to continue.".into()),
        "revoked" => Flash::Info(
            "You were signed out because this session was ended, possibly from another device."
                .into(),
        ),
        "disabled" => Flash::Error(
            "Your account has been disabled. Contact an administrator if you think this is a mistake."
                .into(),
        ),
        "signed_out" => Flash::Success("You have signed out.".into()),
        "registered" => Flash::Success("Welcome to payplane.".into()),
        _ => return None,
    })
}

fn anonymous_page(
    ctx: &Ctx,
    title: &str,
    flash: Option<Flash>,
    signed_out: bool,
    main: &Markup,
) -> Response {
    let shell = Shell {
        title,
        user: None,
        theme: Theme::System,
        csrf: &ctx.csrf,
        here: &ctx.here,
        nav: Nav::None,
        flash,
        live: false,
        signed_out,
    };
    views::html(page(&shell, main))
}

#[derive(Debug, Deserialize, Default)]
pub struct SigninForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

fn signin_form(ctx: &Ctx, form: &SigninForm, errors: &FormErrors) -> Markup {
    html! {
        section.card.narrow.auth-card {
            h1 { "Sign in" }
            p.muted { "Pay and get paid with payplane." }
            (ui::form_errors(errors))
            form method="post" action="/signin" novalidate {
                input type="hidden" name="_csrf" value=(ctx.csrf);
                input type="hidden" name="next" value=(safe_next(form.next.as_deref()));
                (Field::new("email", "Email").kind("email").value(&form.email).required().autocomplete("username").render(errors))
                (Field::new("password", "Password").kind("password").required().autocomplete("current-password").render(errors))
                button.btn.btn-primary.btn-block type="submit" { "Sign in" }
            }
            p.muted.center { "New to payplane? " a href="/register" { "Create an account" } }
        }
    }
}

pub async fn signin_page(ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    let reason = q.get("reason").map(String::as_str);
    if ctx.session().is_some() && reason.is_none() {
        return ctx.redirect(safe_next(q.get("next").map(String::as_str)));
    }
    if reason.is_some() && ctx.session().is_some() {
        // Arriving here with a reason means this browser's session is over.
        ctx.cell.set(None);
    }
    let form = SigninForm {
        next: q.get("next").cloned(),
        ..SigninForm::default()
    };
    let main = signin_form(&ctx, &form, &FormErrors::default());
    anonymous_page(
        &ctx,
        "Sign in",
        reason_flash(reason),
        reason == Some("signed_out"),
        &main,
    )
}

/// Device fields of api.md §4.2: this browser's id and a readable name.
fn device_fields(ctx: &Ctx) -> (String, &'static str) {
    device::describe(ctx.caller.user_agent.as_deref())
}

/// Stores the new session, with the theme from the profile so the first page has it.
async fn start_session(ctx: &Ctx, auth: &Value) -> bool {
    let Some(mut data) = SessionData::from_auth(auth, Theme::System) else {
        return false;
    };
    ctx.cell.set(Some(data.clone()));
    if let Ok(prefs) = ctx
        .call(Method::GET, "/api/profile/preferences", None, None)
        .await
        && let Some(theme) = prefs
            .get("theme")
            .and_then(Value::as_str)
            .and_then(Theme::parse)
        && let Some(current) = ctx.session()
    {
        data = SessionData { theme, ..current };
        ctx.cell.set(Some(data));
    }
    true
}

pub async fn signin(ctx: Ctx, Form(form): Form<SigninForm>) -> Response {
    let (name, kind) = device_fields(&ctx);
    let body = json!({
        "email": form.email.trim(),
        "password": form.password,
        "deviceId": ctx.device_id,
        "deviceName": name,
        "deviceType": kind,
    });
    match ctx.public(Method::POST, "/api/auth/login", &body).await {
        Ok(data) if start_session(&ctx, &data).await => {
            ctx.redirect(safe_next(form.next.as_deref()))
        }
        Ok(_) => crate::views::pages::unavailable("The sign-in answer could not be read."),
        Err(err) => {
            let mut errors = FormErrors::from_call(&err);
            if err.code() == "ACCOUNT_LOCKED"
                && let CallError::Rejected { details, .. } = &err
                && let Some(wait) = details.get("waitSeconds").and_then(Value::as_u64)
            {
                errors.summary = Some(format!(
                    "Too many failed attempts. Try again in {wait} second{}.",
                    if wait == 1 { "" } else { "s" }
                ));
            }
            let main = signin_form(&ctx, &form, &errors);
            let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
            (status, anonymous_page(&ctx, "Sign in", None, false, &main)).into_response()
        }
    }
}

fn register_form(ctx: &Ctx, form: &NewAccountForm, errors: &FormErrors) -> Markup {
    let role = or_default(&form.role, "CUSTOMER");
    html! {
        section.card.narrow.auth-card {
            h1 { "Create your account" }
            (ui::form_errors(errors))
            form method="post" action="/register" novalidate {
                input type="hidden" name="_csrf" value=(ctx.csrf);
                (Field::new("name", "Full name").value(&form.name).required().autocomplete("name").render(errors))
                (Field::new("email", "Email").kind("email").value(&form.email).required().autocomplete("email").render(errors))
                (Field::new("password", "Password").kind("password").required().autocomplete("new-password")
                    .hint("At least 12 characters with an upper-case and a lower-case letter, a digit and a symbol.")
                    .render(errors))
                fieldset.field.choice.has-error[errors.message("role").is_some()] {
                    legend { "I want to" }
                    (ui::radio("role", "CUSTOMER", role, "Pay", " — a customer account"))
                    (ui::radio("role", "VENDOR", role, "Get paid", " — a vendor account with reports"))
                    @if let Some(m) = errors.message("role") { p.field-error data-field-error="role" { (m) } }
                }
                button.btn.btn-primary.btn-block type="submit" { "Create account" }
            }
            p.muted.center { "Already have an account? " a href="/signin" { "Sign in" } }
        }
    }
}

pub async fn register_page(ctx: Ctx) -> Response {
    if ctx.session().is_some() {
        return ctx.redirect("/payments");
    }
    let main = register_form(&ctx, &NewAccountForm::default(), &FormErrors::default());
    anonymous_page(&ctx, "Create account", None, false, &main)
}

pub async fn register(ctx: Ctx, Form(form): Form<NewAccountForm>) -> Response {
    let (name, kind) = device_fields(&ctx);
    let body = json!({
        "name": form.name,
        "email": form.email.trim(),
        "password": form.password,
        "role": if form.role.is_empty() { "CUSTOMER" } else { form.role.as_str() },
        "deviceId": ctx.device_id,
        "deviceName": name,
        "deviceType": kind,
    });
    match ctx.public(Method::POST, "/api/auth/register", &body).await {
        Ok(data) if start_session(&ctx, &data).await => ctx.redirect("/payments?welcome=1"),
        Ok(_) => crate::views::pages::unavailable("The registration answer could not be read."),
        Err(err) => {
            let errors = FormErrors::from_call(&err);
            let main = register_form(&ctx, &form, &errors);
            let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
            (
                status,
                anonymous_page(&ctx, "Create account", None, false, &main),
            )
                .into_response()
        }
    }
}

/// Ends the API session (not just the cookie), then lands on sign-in, which tells the other
/// tabs.
pub async fn signout(ctx: Ctx) -> Response {
    if let Some(session) = ctx.session() {
        // Logout accepts an expired access token or the refresh token (api.md §4.7).
        let body = json!({ "refreshToken": session.refresh });
        if let Err(err) = ctx
            .state
            .gateway
            .send(
                &ctx.caller,
                Some(&session.access),
                Method::POST,
                "/api/auth/logout",
                Some(&body),
                None,
            )
            .await
        {
            tracing::warn!(error = %err, "logout call failed; the cookie is cleared anyway");
        }
    }
    ctx.cell.set(None);
    ctx.redirect("/signin?reason=signed_out")
}

/// `GET /session-ended?reason=…`: where the page's script sends a tab whose session ended
/// elsewhere (WebSocket 4001); clears the cookie and shows why.
pub async fn session_ended(ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    let reason = match q.get("reason").map(String::as_str) {
        Some("user_deactivated" | "disabled") => "disabled",
        Some("signed_out") => "signed_out",
        _ => "revoked",
    };
    ctx.cell.set(None);
    ctx.redirect(&format!("/signin?reason={reason}"))
}

#[derive(Debug, Deserialize)]
pub struct SocketQuery {
    #[serde(default)]
    fresh: Option<String>,
}

/// `POST /session/socket`: a current access token for `/ws?token=…` (short-lived; the refresh
/// token never leaves the server). `?fresh=1` refreshes first (after close 4002).
pub async fn socket_token(ctx: Ctx, Query(q): Query<SocketQuery>) -> Response {
    let signed_out =
        || (StatusCode::UNAUTHORIZED, Json(json!({ "signedOut": true }))).into_response();
    let Some(session) = ctx.session() else {
        return signed_out();
    };
    let session = if q.fresh.is_some() || session.exp - 60 <= chrono::Utc::now().timestamp() {
        match ctx.refresh(&session).await {
            Ok(s) => s,
            Err(CallError::SignedOut { reason }) => {
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({ "signedOut": true, "reason": reason })),
                )
                    .into_response();
            }
            Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        }
    } else {
        session
    };
    Json(json!({ "token": session.access, "userId": session.user.id })).into_response()
}

/// `GET /session/nav`: the navigation for the current role (swapped in after close 4002).
pub async fn nav_fragment(ctx: Ctx) -> Response {
    let Some(session) = ctx.session() else {
        return ctx.to_signin("expired");
    };
    let session = ctx.refresh(&session).await.unwrap_or(session);
    views::html(nav(&session.user, Nav::None))
}
