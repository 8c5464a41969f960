//! Administration: the dashboard, user management (with the API's LAST_ADMIN and
//! SELF_MODIFICATION_FORBIDDEN answers shown as messages), the audit log, system health
//! (refreshing itself) and the configuration editor.

use std::collections::HashMap;

use axum::{
    Form,
    extract::{Path, Query},
    response::{IntoResponse, Response},
};
use http::{Method, StatusCode};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{failure, flash_from, render};
use crate::{
    api::{AuditPage, CallError, ConfigEntry, UserPage, decode},
    forms::{FormErrors, NewAccountForm, api_list_path, encode_component},
    session::Ctx,
    views::{
        layout::{Flash, Nav, role_label},
        ui::{self, Field},
    },
};

const STATUSES: [&str; 5] = ["pending", "processing", "completed", "failed", "cancelled"];

/// Admin pages for admins only; anyone else sees the forbidden page.
fn admin_only(ctx: &Ctx) -> Option<Response> {
    match ctx.session() {
        None => Some(ctx.to_signin("expired")),
        Some(s) if !s.user.is_admin() => Some(failure(
            ctx,
            &CallError::Rejected {
                status: 403,
                code: "FORBIDDEN".into(),
                message: String::new(),
                details: Value::Null,
            },
        )),
        Some(_) => None,
    }
}

fn flash(q: &HashMap<String, String>) -> Option<Flash> {
    if let Some(code) = q.get("err") {
        let err = CallError::Rejected {
            status: 409,
            code: code.clone(),
            message: "The change was refused.".into(),
            details: Value::Null,
        };
        return Some(Flash::Error(err.human()));
    }
    flash_from(q)
}

pub async fn dashboard(ctx: Ctx) -> Response {
    if let Some(r) = admin_only(&ctx) {
        return r;
    }
    let (d, recent) = tokio::join!(
        ctx.call(Method::GET, "/api/admin/dashboard", None, None),
        ctx.call(Method::GET, "/api/admin/audit-logs?limit=8", None, None),
    );
    let d = match d {
        Ok(d) => d,
        Err(err) => return failure(&ctx, &err),
    };
    let recent = recent
        .and_then(decode::<AuditPage>)
        .map(|p| p.data)
        .unwrap_or_default();
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let pay = &d["payments"];
    let rows: Vec<(&str, &str, f64)> = STATUSES
        .iter()
        .map(|s| {
            (
                *s,
                ui::status_label(s),
                pay["byStatus"][*s].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    let main = html! {
        div.page-head { h1 { "Dashboard" } }
        @for w in d["warnings"].as_array().into_iter().flatten() {
            div.flash.flash-error role="alert" { (w.as_str().unwrap_or("")) }
        }
        div.stats {
            div.stat { p.stat-label { "Users" } p.stat-value data-stat="users" { (n(&d["users"]["total"])) } p.muted.small { (n(&d["users"]["active"])) " active · " (n(&d["users"]["newLast24h"])) " new today" } }
            div.stat { p.stat-label { "Payments" } p.stat-value data-stat="payments" { (n(&pay["total"])) } p.muted.small { (n(&pay["last24h"]["created"])) " in the last 24 h" } }
            div.stat { p.stat-label { "Completed" } p.stat-value data-stat="completed" { (n(&pay["byStatus"]["completed"])) } p.muted.small { (n(&pay["last24h"]["completed"])) " in the last 24 h" } }
            div.stat { p.stat-label { "Audit entries today" } p.stat-value { (n(&d["audit"]["entriesLast24h"])) } }
        }
        div.grid-2 {
            section.card {
                (ui::bar_chart("Payments by status", &rows, ""))
            }
            section.card {
                h2 { "Completed volume" }
                @if let Some(map) = pay["volumeByCurrency"].as_object().filter(|m| !m.is_empty()) {
                    dl.details { @for (cur, v) in map { dt { (cur) } dd { (ui::money(v.as_str().unwrap_or("0.00"), cur)) } } }
                } @else {
                    p.muted { "No completed payments yet." }
                }
                h2 { "Users by role" }
                dl.details {
                    @for role in ["ADMIN", "VENDOR", "CUSTOMER"] { dt { (role_label(role)) } dd { (n(&d["users"]["byRole"][role])) } }
                }
            }
        }
        section.card {
            div.page-head { h2 { "Recent activity" } a href="/admin/audit" { "Full audit log" } }
            (audit_table(&recent))
        }
    };
    render(&ctx, "Dashboard", Nav::Dashboard, None, true, &main)
}

#[derive(Debug, Deserialize, Default)]
pub struct UserQuery {
    #[serde(default)]
    search: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    active: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    order: String,
    #[serde(default)]
    page: Option<u32>,
}

impl UserQuery {
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("search", self.search.as_str()),
            ("role", &self.role),
            ("active", &self.active),
            ("sort", &self.sort),
            ("order", &self.order),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }

    fn href(&self, page: u32) -> String {
        let mut q: Vec<String> = self
            .pairs()
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_component(v)))
            .collect();
        if page > 1 {
            q.push(format!("page={page}"));
        }
        format!("/admin/users?{}", q.join("&"))
    }

    fn api_path(&self) -> String {
        let filters = self
            .pairs()
            .into_iter()
            .map(|(k, v)| (if k == "active" { "isActive" } else { k }, v));
        api_list_path("/api/admin/users", self.page, 20, filters)
    }
}

fn users_view(
    ctx: &Ctx,
    q: &UserQuery,
    page: &UserPage,
    form: &NewAccountForm,
    errors: &FormErrors,
) -> Markup {
    let me = ctx.session().map(|s| s.user.id).unwrap_or_default();
    let roles = [
        ("CUSTOMER", "Customer"),
        ("VENDOR", "Vendor"),
        ("ADMIN", "Admin"),
    ];
    html! {
        div.page-head { h1 { "Users" } }
        form.filters method="get" action="/admin/users" role="search" aria-label="Filter users" {
            div.field.grow { label for="u-search" { "Search" } input #u-search type="search" name="search" value=(q.search) placeholder="Name or email"; }
            div.field { label for="u-role" { "Role" } select #u-role name="role" {
                option value="" { "Any role" }
                @for (v, t) in roles { option value=(v) selected[q.role == v] { (t) } }
            } }
            div.field { label for="u-active" { "Status" } select #u-active name="active" {
                option value="" { "Any" }
                option value="true" selected[q.active == "true"] { "Active" }
                option value="false" selected[q.active == "false"] { "Deactivated" }
            } }
            div.field { label for="u-sort" { "Sort by" } select #u-sort name="sort" {
                @for (v, t) in [("createdAt", "Created"), ("name", "Name"), ("email", "Email"), ("role", "Role")] {
                    option value=(v) selected[q.sort == v] { (t) }
                }
            } }
            div.field { label for="u-order" { "Order" } select #u-order name="order" {
                option value="desc" selected[q.order != "asc"] { "Descending" }
                option value="asc" selected[q.order == "asc"] { "Ascending" }
            } }
            div.filter-actions { button.btn.btn-secondary type="submit" { "Apply" } a.btn.btn-ghost href="/admin/users" { "Reset" } }
        }
        @if page.users.is_empty() {
            (ui::empty("No users match", "Try another search.", None))
        } @else {
            div.table-wrap { table.table #users-table {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Status" } th scope="col" { "Last sign-in" } th scope="col" { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for u in &page.users {
                        tr data-user-row=(u.email) {
                            td data-label="Name" { (u.name) @if u.id == me { " " span.muted.small { "(you)" } } }
                            td data-label="Email" { (u.email) }
                            td data-label="Role" {
                                form.inline method="post" action={ "/admin/users/" (u.id) "/role" } {
                                    input type="hidden" name="_csrf" value=(ctx.csrf);
                                    label.visually-hidden for={ "role-" (u.id) } { "Role of " (u.email) }
                                    select id={ "role-" (u.id) } name="role" {
                                        @for (v, t) in roles { option value=(v) selected[u.role == v] { (t) } }
                                    }
                                    button.btn.btn-ghost.btn-small type="submit" { "Change" }
                                }
                            }
                            td data-label="Status" {
                                @if u.is_active { span.badge.badge-completed { "Active" } } @else { span.badge.badge-failed { "Deactivated" } }
                            }
                            td data-label="Last sign-in" { (ui::when_opt(u.last_login_at.as_deref())) }
                            td.actions {
                                form.inline method="post" action={ "/admin/users/" (u.id) "/status" } {
                                    input type="hidden" name="_csrf" value=(ctx.csrf);
                                    input type="hidden" name="active" value=(if u.is_active { "false" } else { "true" });
                                    button.btn.btn-secondary.btn-small type="submit" data-action=(if u.is_active { "deactivate" } else { "activate" }) {
                                        (if u.is_active { "Deactivate" } else { "Activate" })
                                    }
                                }
                                form.inline method="post" action={ "/admin/users/" (u.id) "/delete" } {
                                    input type="hidden" name="_csrf" value=(ctx.csrf);
                                    button.btn.btn-danger.btn-small type="submit" data-confirm={ "Delete " (u.email) "? This cannot be undone." } { "Delete" }
                                }
                            }
                        }
                    }
                }
            } }
            (ui::pagination(page.pagination, |n| q.href(n)))
        }
        section.card aria-labelledby="h-new-user" {
            h2 #h-new-user { "Create a user" }
            (ui::form_errors(errors))
            form.form-grid method="post" action="/admin/users" novalidate {
                input type="hidden" name="_csrf" value=(ctx.csrf);
                (Field::new("name", "Full name").value(&form.name).required().render(errors))
                (Field::new("email", "Email").kind("email").value(&form.email).required().render(errors))
                (Field::new("password", "Initial password").kind("password").required().autocomplete("new-password").render(errors))
                (ui::select("role", "Role", &roles, if form.role.is_empty() { "CUSTOMER" } else { &form.role }, errors))
                div.form-actions.span-2 { button.btn.btn-primary type="submit" { "Create user" } }
            }
        }
    }
}

pub async fn users(
    ctx: Ctx,
    Query(q): Query<UserQuery>,
    Query(raw): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = admin_only(&ctx) {
        return r;
    }
    match ctx
        .call(Method::GET, &q.api_path(), None, None)
        .await
        .and_then(decode::<UserPage>)
    {
        Ok(page) => {
            let main = users_view(
                &ctx,
                &q,
                &page,
                &NewAccountForm::default(),
                &FormErrors::default(),
            );
            render(&ctx, "Users", Nav::Users, flash(&raw), false, &main)
        }
        Err(err) => failure(&ctx, &err),
    }
}

pub async fn create_user(ctx: Ctx, Form(form): Form<NewAccountForm>) -> Response {
    if let Some(r) = admin_only(&ctx) {
        return r;
    }
    let body = json!({ "name": form.name, "email": form.email.trim(), "password": form.password, "role": form.role });
    match ctx
        .call(Method::POST, "/api/admin/users", Some(&body), None)
        .await
    {
        Ok(_) => ctx.redirect("/admin/users?ok=user-created"),
        Err(err) if matches!(err.status(), 400 | 409) => {
            let q = UserQuery::default();
            match ctx
                .call(Method::GET, &q.api_path(), None, None)
                .await
                .and_then(decode::<UserPage>)
            {
                Ok(page) => {
                    let main = users_view(&ctx, &q, &page, &form, &FormErrors::from_call(&err));
                    let status =
                        StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
                    (
                        status,
                        render(&ctx, "Users", Nav::Users, None, false, &main),
                    )
                        .into_response()
                }
                Err(e) => failure(&ctx, &e),
            }
        }
        Err(err) => failure(&ctx, &err),
    }
}

/// After a user change: back to the list with the outcome as a message.
fn after_change(ctx: &Ctx, res: Result<Value, CallError>, ok: &str) -> Response {
    match res {
        Ok(_) => ctx.redirect(&format!("/admin/users?ok={ok}")),
        Err(err) if matches!(err.status(), 400 | 404 | 409) => ctx.redirect(&format!(
            "/admin/users?err={}",
            encode_component(err.code())
        )),
        Err(err) => failure(ctx, &err),
    }
}

#[derive(Debug, Deserialize)]
pub struct RoleForm {
    role: String,
}

pub async fn change_role(ctx: Ctx, Path(id): Path<String>, Form(f): Form<RoleForm>) -> Response {
    let path = format!("/api/admin/users/{}/role", encode_component(&id));
    let res = ctx
        .call(Method::PATCH, &path, Some(&json!({ "role": f.role })), None)
        .await;
    after_change(&ctx, res, "role")
}

#[derive(Debug, Deserialize)]
pub struct StatusForm {
    active: String,
}

pub async fn change_status(
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<StatusForm>,
) -> Response {
    let path = format!("/api/admin/users/{}/status", encode_component(&id));
    let res = ctx
        .call(
            Method::PATCH,
            &path,
            Some(&json!({ "isActive": f.active == "true" })),
            None,
        )
        .await;
    after_change(&ctx, res, "status")
}

pub async fn delete_user(ctx: Ctx, Path(id): Path<String>) -> Response {
    let path = format!("/api/admin/users/{}", encode_component(&id));
    let res = ctx.call(Method::DELETE, &path, None, None).await;
    after_change(&ctx, res, "deleted")
}

fn audit_table(entries: &[crate::api::AuditEntry]) -> Markup {
    html! {
        @if entries.is_empty() {
            (ui::empty("No entries", "Nothing has been recorded for these filters.", None))
        } @else {
            div.table-wrap { table.table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Action" } th scope="col" { "By" } th scope="col" { "Resource" } th scope="col" { "Details" } } }
                tbody {
                    @for e in entries {
                        tr {
                            td data-label="When" { (ui::when(&e.timestamp)) }
                            td data-label="Action" { code { (e.action) } }
                            td data-label="By" { (e.user_email.as_deref().unwrap_or("system")) }
                            td data-label="Resource" { (e.resource_type) @if !e.resource_id.is_empty() { " " span.muted.small { (e.resource_id) } } }
                            td data-label="Details" { @if let Some(d) = &e.details { code.small { (d.to_string()) } } }
                        }
                    }
                }
            } }
        }
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default, rename = "resourceType")]
    resource_type: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    page: Option<u32>,
}

pub async fn audit(ctx: Ctx, Query(q): Query<AuditQuery>) -> Response {
    if let Some(r) = admin_only(&ctx) {
        return r;
    }
    // Each filter set: its name in the API, its name in this page's URL, its value.
    let filters: Vec<(&str, &str, &str)> = [
        ("action", "action", q.action.as_str()),
        ("resourceType", "resourceType", &q.resource_type),
        ("startDate", "from", &q.from),
        ("endDate", "to", &q.to),
    ]
    .into_iter()
    .filter(|(_, _, v)| !v.is_empty())
    .collect();
    let api_filters = filters.iter().map(|&(api, _, v)| (api, v));
    let audit_path = api_list_path("/api/admin/audit-logs", q.page, 25, api_filters);
    let (page, actions) = tokio::join!(
        ctx.call(Method::GET, &audit_path, None, None),
        ctx.call(Method::GET, "/api/admin/audit-logs/actions", None, None),
    );
    let page = match page.and_then(decode::<AuditPage>) {
        Ok(p) => p,
        Err(err) => return failure(&ctx, &err),
    };
    let actions: Vec<String> = actions.and_then(decode).unwrap_or_default();
    let href = |n: u32| {
        let mut q: Vec<String> = filters
            .iter()
            .map(|(_, k, v)| format!("{k}={}", encode_component(v)))
            .collect();
        q.push(format!("page={n}"));
        format!("/admin/audit?{}", q.join("&"))
    };
    let main = html! {
        div.page-head { h1 { "Audit log" } }
        form.filters method="get" action="/admin/audit" aria-label="Filter the audit log" {
            div.field { label for="a-action" { "Action" } select #a-action name="action" {
                option value="" { "Any action" }
                @for a in &actions { option value=(a) selected[&q.action == a] { (a) } }
            } }
            div.field { label for="a-type" { "Resource" } select #a-type name="resourceType" {
                option value="" { "Any" }
                @for t in ["user", "payment", "system_config", "session", "profile"] { option value=(t) selected[q.resource_type == t] { (t) } }
            } }
            div.field { label for="a-from" { "From" } input #a-from type="date" name="from" value=(q.from); }
            div.field { label for="a-to" { "To" } input #a-to type="date" name="to" value=(q.to); }
            div.filter-actions { button.btn.btn-secondary type="submit" { "Apply" } a.btn.btn-ghost href="/admin/audit" { "Reset" } }
        }
        (audit_table(&page.data))
        (ui::pagination(page.pagination, href))
    };
    render(&ctx, "Audit log", Nav::Audit, None, false, &main)
}

pub async fn health(ctx: Ctx) -> Response {
    if let Some(r) = admin_only(&ctx) {
        return r;
    }
    let h = match ctx.call(Method::GET, "/api/admin/health", None, None).await {
        Ok(h) => h,
        Err(err) => return failure(&ctx, &err),
    };
    let overall = h["status"].as_str().unwrap_or("unknown");
    let badge = |s: &str| match s {
        "healthy" => "badge badge-completed",
        "degraded" => "badge badge-pending",
        _ => "badge badge-failed",
    };
    let main = html! {
        // Refreshes itself every 5 s: htmx swaps in the same block from a fresh copy of the page.
        div #health hx-get="/admin/health" hx-trigger="every 5s" hx-select="#health" hx-swap="outerHTML" {
            div.page-head {
                h1 { "System health" }
                span class=(badge(overall)) data-health=(overall) { (overall) }
            }
            p.muted { "Checked " (ui::when(h["timestamp"].as_str().unwrap_or(""))) " · refreshes every 5 seconds" }
            div.table-wrap { table.table {
                thead { tr { th scope="col" { "Component" } th scope="col" { "Status" } th.num scope="col" { "Response time" } th scope="col" { "Error" } } }
                tbody {
                    @for (name, c) in h["checks"].as_object().into_iter().flatten() {
                        tr {
                            td { (name) }
                            td { span class=(badge(c["status"].as_str().unwrap_or(""))) { (c["status"].as_str().unwrap_or("unknown")) } }
                            td.num { (c["responseTimeMs"].as_u64().unwrap_or(0)) " ms" }
                            td { (c["error"].as_str().unwrap_or("")) }
                        }
                    }
                }
            } }
        }
    };
    render(&ctx, "System health", Nav::Health, None, false, &main)
}

#[derive(Debug, Deserialize, Default)]
pub struct ConfigForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    description: String,
}

fn config_view(
    ctx: &Ctx,
    entries: &[ConfigEntry],
    form: &ConfigForm,
    errors: &FormErrors,
) -> Markup {
    html! {
        div.page-head { h1 { "Configuration" } }
        @if entries.is_empty() {
            (ui::empty("No entries", "Add the first configuration entry below.", None))
        } @else {
            div.table-wrap { table.table {
                thead { tr { th scope="col" { "Key" } th scope="col" { "Value" } th scope="col" { "Description" } th scope="col" { "Updated" } } }
                tbody { @for e in entries { tr {
                    td { code { (e.key) } } td { code { (e.value.to_string()) } }
                    td { (e.description.as_deref().unwrap_or("")) } td { (ui::when(&e.updated_at)) }
                } } }
            } }
        }
        section.card aria-labelledby="h-config" {
            h2 #h-config { "Set an entry" }
            p.muted { "Creates the key or replaces its value. The value is JSON: a number, \"text\", true, or an object." }
            (ui::form_errors(errors))
            form.form-grid method="post" action="/admin/config" novalidate {
                input type="hidden" name="_csrf" value=(ctx.csrf);
                (Field::new("key", "Key").value(&form.key).required().hint("For example payment.max_amount").render(errors))
                (Field::new("value", "Value (JSON)").value(&form.value).required().render(errors))
                div.span-2 { (Field::new("description", "Description").value(&form.description).render(errors)) }
                div.form-actions.span-2 { button.btn.btn-primary type="submit" { "Save entry" } }
            }
        }
    }
}

pub async fn config(ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = admin_only(&ctx) {
        return r;
    }
    match ctx
        .call(Method::GET, "/api/admin/config", None, None)
        .await
        .and_then(decode::<Vec<ConfigEntry>>)
    {
        Ok(entries) => {
            let main = config_view(
                &ctx,
                &entries,
                &ConfigForm::default(),
                &FormErrors::default(),
            );
            render(
                &ctx,
                "Configuration",
                Nav::Config,
                flash_from(&q),
                false,
                &main,
            )
        }
        Err(err) => failure(&ctx, &err),
    }
}

pub async fn save_config(ctx: Ctx, Form(form): Form<ConfigForm>) -> Response {
    if let Some(r) = admin_only(&ctx) {
        return r;
    }
    let result = match serde_json::from_str::<Value>(&form.value) {
        Ok(value) => {
            let mut body = json!({ "value": value });
            if !form.description.trim().is_empty() {
                body["description"] = json!(form.description);
            }
            let path = format!("/api/admin/config/{}", encode_component(form.key.trim()));
            ctx.call(Method::PUT, &path, Some(&body), None)
                .await
                .map(|_| ())
        }
        Err(_) => Err(CallError::Rejected {
            status: 400,
            code: "VALIDATION_ERROR".into(),
            message: String::new(),
            details: json!([{ "field": "value", "message": "must be valid JSON (text needs quotes)" }]),
        }),
    };
    match result {
        Ok(()) => ctx.redirect("/admin/config?ok=config"),
        Err(err) if matches!(err.status(), 400 | 404 | 409) => {
            let mut errors = FormErrors::from_call(&err);
            if err.code() == "CONFIG_NOT_FOUND" {
                errors.fields.insert(
                    "key".into(),
                    "use lower-case letters and digits separated by . _ or -".into(),
                );
            }
            let entries = ctx
                .call(Method::GET, "/api/admin/config", None, None)
                .await
                .and_then(decode::<Vec<ConfigEntry>>)
                .unwrap_or_default();
            let main = config_view(&ctx, &entries, &form, &errors);
            (
                StatusCode::BAD_REQUEST,
                render(&ctx, "Configuration", Nav::Config, None, false, &main),
            )
                .into_response()
        }
        Err(err) => failure(&ctx, &err),
    }
}
