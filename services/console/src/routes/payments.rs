//! Payments: the list (filters, sort and page in the URL, so a view can be bookmarked), the
//! create form with its recipient picker, the detail with the transaction timeline, edit and
//! cancel while the API allows them. Rows and details carry the hooks the page script uses to
//! follow status changes live.

use std::collections::HashMap;

use axum::{
    Form,
    extract::{Path, Query},
    response::{IntoResponse, Response},
};
use http::{Method, StatusCode};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{failure, flash_from, render};
use crate::{
    api::{CallError, Party, Payment, PaymentPage, decode},
    forms::{FormErrors, api_list_path, encode_component, or_default},
    session::{Ctx, random_token},
    views::{
        layout::{Flash, Nav},
        ui::{self, Field},
    },
};

/// The currency whitelist of api.md §1.6.
pub const CURRENCIES: [&str; 40] = [
    "USD", "EUR", "GBP", "JPY", "AUD", "CAD", "CHF", "CNY", "INR", "MXN", "BRL", "KRW", "SGD",
    "HKD", "NOK", "SEK", "DKK", "NZD", "ZAR", "RUB", "AED", "SAR", "THB", "MYR", "IDR", "PHP",
    "VND", "PLN", "CZK", "HUF", "ILS", "TRY", "TWD", "CLP", "COP", "PEN", "ARS", "EGP", "NGN",
    "KES",
];

const STATUSES: [&str; 5] = ["pending", "processing", "completed", "failed", "cancelled"];

/// The list's state, exactly as it appears in the URL.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    min: String,
    #[serde(default)]
    max: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    order: String,
    #[serde(default)]
    page: Option<u32>,
    #[serde(default)]
    ok: String,
}

impl ListQuery {
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("status", self.status.as_str()),
            ("type", self.kind.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
            ("min", self.min.as_str()),
            ("max", self.max.as_str()),
            ("sort", self.sort.as_str()),
            ("order", self.order.as_str()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }

    /// This view's console URL with a different page, sort or order.
    fn href(&self, page: u32, sort: Option<(&str, &str)>) -> String {
        let mut pairs: Vec<(String, String)> = self
            .pairs()
            .into_iter()
            .filter(|(k, _)| sort.is_none() || !matches!(*k, "sort" | "order"))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        if let Some((s, o)) = sort {
            pairs.push(("sort".into(), s.into()));
            pairs.push(("order".into(), o.into()));
        }
        if page > 1 {
            pairs.push(("page".into(), page.to_string()));
        }
        let q: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_component(v)))
            .collect();
        if q.is_empty() {
            "/payments".into()
        } else {
            format!("/payments?{}", q.join("&"))
        }
    }

    /// The API query (api.md §5.4).
    fn api_path(&self) -> String {
        let filters = self.pairs().into_iter().map(|(k, v)| {
            let api_key = match k {
                "from" => "startDate",
                "to" => "endDate",
                "min" => "minAmount",
                "max" => "maxAmount",
                other => other,
            };
            (api_key, v)
        });
        api_list_path("/api/payments", self.page, 20, filters)
    }
}

fn counterparty(p: &Payment, me: &str) -> Markup {
    let (dir, who): (&str, &Party) = if p.sender_id == me {
        ("To", &p.recipient)
    } else {
        ("From", &p.sender)
    };
    html! {
        span.muted.small { (dir) " " }
        span title=(who.email) { (if who.name.is_empty() { &who.email } else { &who.name }) }
    }
}

fn sort_header(q: &ListQuery, key: &str, label: &str) -> Markup {
    let current = or_default(&q.sort, "createdAt");
    let order = or_default(&q.order, "desc");
    let active = current == key;
    let next = if active && order == "desc" {
        "asc"
    } else {
        "desc"
    };
    let aria = active.then_some(if order == "asc" {
        "ascending"
    } else {
        "descending"
    });
    html! {
        th scope="col" aria-sort=[aria] {
            a.sort href=(q.href(1, Some((key, next)))) {
                (label)
                @if active { span aria-hidden="true" { (if order == "asc" { " ↑" } else { " ↓" }) } }
            }
        }
    }
}

fn filters(q: &ListQuery) -> Markup {
    html! {
        form.filters method="get" action="/payments" role="search" aria-label="Filter payments"
            hx-get="/payments" hx-target="#payments-results" hx-select="#payments-results"
            hx-swap="outerHTML" hx-push-url="true" hx-trigger="change, submit" {
            div.field {
                label for="f-status" { "Status" }
                select #f-status name="status" {
                    option value="" { "Any status" }
                    @for s in STATUSES { option value=(s) selected[q.status == s] { (ui::status_label(s)) } }
                }
            }
            div.field {
                label for="f-type" { "Type" }
                select #f-type name="type" {
                    option value="" { "Any type" }
                    @for (v, t) in [("instant", "Instant"), ("scheduled", "Scheduled"), ("recurring", "Recurring")] {
                        option value=(v) selected[q.kind == v] { (t) }
                    }
                }
            }
            div.field { label for="f-from" { "From" } input #f-from type="date" name="from" value=(q.from); }
            div.field { label for="f-to" { "To" } input #f-to type="date" name="to" value=(q.to); }
            div.field { label for="f-min" { "Min amount" } input #f-min type="text" inputmode="decimal" name="min" value=(q.min) size="8"; }
            div.field { label for="f-max" { "Max amount" } input #f-max type="text" inputmode="decimal" name="max" value=(q.max) size="8"; }
            @if !q.sort.is_empty() { input type="hidden" name="sort" value=(q.sort); }
            @if !q.order.is_empty() { input type="hidden" name="order" value=(q.order); }
            div.filter-actions {
                button.btn.btn-secondary type="submit" { "Apply" }
                a.btn.btn-ghost href="/payments" { "Reset" }
            }
        }
    }
}

fn table(q: &ListQuery, page: &PaymentPage, me: &str) -> Markup {
    html! {
        div #payments-results {
            @if page.payments.is_empty() {
                @if q.pairs().is_empty() {
                    (ui::empty("No payments yet", "Payments you send or receive will appear here.", Some(("/payments/new", "Make a payment"))))
                } @else {
                    (ui::empty("No payments match", "Try widening the filters.", Some(("/payments", "Clear filters"))))
                }
            } @else {
                div.table-wrap {
                    table.table #payments-table {
                        caption.visually-hidden { "Your payments" }
                        thead { tr {
                            (sort_header(q, "createdAt", "Date"))
                            th scope="col" { "Description" }
                            th scope="col" { "Counterparty" }
                            (sort_header(q, "amount", "Amount"))
                            th scope="col" { "Type" }
                            (sort_header(q, "status", "Status"))
                        } }
                        tbody {
                            @for p in &page.payments {
                                tr data-payment-row=(p.id) {
                                    td data-label="Date" { (ui::when(&p.created_at)) }
                                    td data-label="Description" { a href={ "/payments/" (p.id) } { (p.description) } }
                                    td data-label="Counterparty" { (counterparty(p, me)) }
                                    td.num data-label="Amount" { (ui::money(&p.amount, &p.currency)) }
                                    td data-label="Type" { (capitalise(&p.kind)) }
                                    td data-label="Status" { (ui::status_badge(&p.id, &p.status)) }
                                }
                            }
                        }
                    }
                }
                (ui::pagination(page.pagination, |n| q.href(n, None)))
            }
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

pub async fn list(ctx: Ctx, Query(q): Query<ListQuery>) -> Response {
    let Some(session) = ctx.session() else {
        return ctx.to_signin("expired");
    };
    let result = ctx
        .call(Method::GET, &q.api_path(), None, None)
        .await
        .and_then(decode::<PaymentPage>);
    let mut flash = flash_from(&HashMap::from([("ok".to_owned(), q.ok.clone())]));
    let page = match result {
        Ok(page) => page,
        Err(err) if err.code() == "VALIDATION_ERROR" => {
            flash = Some(Flash::Error(format!(
                "Some filters are not valid: {}",
                err.fields()
                    .iter()
                    .map(|f| format!("{} {}", f.field, f.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
            PaymentPage {
                payments: Vec::new(),
                pagination: crate::api::Pagination::default(),
            }
        }
        Err(err) => return failure(&ctx, &err),
    };
    let main = html! {
        div.page-head {
            h1 { "Payments" }
            a.btn.btn-primary href="/payments/new" { "New payment" }
        }
        (filters(&q))
        (table(&q, &page, &session.user.id))
    };
    render(&ctx, "Payments", Nav::Payments, flash, true, &main)
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct PaymentForm {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    recipient_id: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    scheduled_for: String,
    #[serde(default)]
    idempotency_key: String,
}

async fn recipients(ctx: &Ctx, search: Option<&str>) -> Vec<Party> {
    let path = match search.filter(|s| !s.trim().is_empty()) {
        Some(s) => format!(
            "/api/payments/recipients?limit=100&search={}",
            encode_component(s.trim())
        ),
        None => "/api/payments/recipients?limit=100".to_owned(),
    };
    ctx.call(Method::GET, &path, None, None)
        .await
        .and_then(decode::<Vec<Party>>)
        .unwrap_or_default()
}

fn recipient_options(list: &[Party], selected: &str) -> Markup {
    html! {
        option value="" { "Choose who to pay" }
        @for r in list {
            option value=(r.id) selected[r.id == selected] { (r.name) " — " (r.email) }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RecipientQuery {
    #[serde(default)]
    search: Option<String>,
}

/// `GET /payments/recipients?search=…`: the picker's options (htmx swaps them in).
pub async fn recipients_handler(ctx: Ctx, Query(q): Query<RecipientQuery>) -> Response {
    if ctx.session().is_none() {
        return ctx.to_signin("expired");
    }
    let list = recipients(&ctx, q.search.as_deref()).await;
    crate::views::html(recipient_options(&list, ""))
}

fn payment_form(ctx: &Ctx, form: &PaymentForm, list: &[Party], errors: &FormErrors) -> Markup {
    let kind = or_default(&form.kind, "instant");
    let currency = or_default(&form.currency, "USD");
    let currencies: Vec<(&str, &str)> = CURRENCIES.iter().map(|c| (*c, *c)).collect();
    let recipient_error = errors
        .message("recipientId")
        .or_else(|| errors.message("recipientEmail"));
    html! {
        (ui::form_errors(errors))
        form.card.form-grid method="post" action="/payments" novalidate data-payment-form {
            input type="hidden" name="_csrf" value=(ctx.csrf);
            input type="hidden" name="idempotencyKey" value=(form.idempotency_key);
            fieldset.field.choice.span-2 {
                legend { "When" }
                (ui::radio("type", "instant", kind, "Now", " — an instant payment"))
                (ui::radio("type", "scheduled", kind, "Later", " — scheduled for a date and time (UTC)"))
                @if let Some(m) = errors.message("type") { p.field-error data-field-error="type" { (m) } }
            }
            div.field.span-2.has-error[recipient_error.is_some()] {
                label for="f-recipientId" { "Recipient" }
                div.picker {
                    input #f-recipient-search type="search" name="search" placeholder="Search by name or email"
                        aria-label="Search recipients" aria-controls="f-recipientId"
                        hx-get="/payments/recipients" hx-trigger="input changed delay:250ms, search"
                        hx-target="#f-recipientId" hx-swap="innerHTML";
                    select #f-recipientId name="recipientId" required
                        aria-invalid=[recipient_error.map(|_| "true")]
                        aria-describedby=[recipient_error.map(|_| "e-recipientId")] {
                        (recipient_options(list, &form.recipient_id))
                    }
                }
                @if let Some(m) = recipient_error { p.field-error #e-recipientId data-field-error="recipientId" { (m) } }
            }
            (Field::new("amount", "Amount").value(&form.amount).required().hint("For example 25.00").render(errors))
            (ui::select("currency", "Currency", &currencies, currency, errors))
            div.span-2 {
                (Field::new("description", "Description").value(&form.description).required().render(errors))
            }
            div.span-2 data-when="scheduled" {
                (Field::new("scheduledFor", "Scheduled for (UTC)").kind("datetime-local").value(&form.scheduled_for)
                    .hint("Only for scheduled payments: up to a year ahead.").render(errors))
            }
            div.form-actions.span-2 {
                button.btn.btn-primary type="submit" { "Pay" }
                a.btn.btn-ghost href="/payments" { "Cancel" }
            }
        }
    }
}

pub async fn new_page(ctx: Ctx) -> Response {
    if ctx.session().is_none() {
        return ctx.to_signin("expired");
    }
    let list = recipients(&ctx, None).await;
    let form = PaymentForm {
        idempotency_key: random_token(),
        ..PaymentForm::default()
    };
    let main = html! {
        div.page-head { h1 { "New payment" } }
        (payment_form(&ctx, &form, &list, &FormErrors::default()))
    };
    render(&ctx, "New payment", Nav::NewPayment, None, false, &main)
}

/// `2026-12-24T09:30` (datetime-local, read as UTC) → RFC 3339.
fn scheduled_rfc3339(v: &str) -> String {
    let v = v.trim();
    if v.len() == 16 {
        format!("{v}:00Z")
    } else {
        v.to_owned()
    }
}

pub async fn create(ctx: Ctx, Form(form): Form<PaymentForm>) -> Response {
    if ctx.session().is_none() {
        return ctx.to_signin("expired");
    }
    let kind = or_default(&form.kind, "instant");
    let mut body = Map::new();
    body.insert("type".into(), json!(kind));
    body.insert("amount".into(), json!(form.amount.trim()));
    body.insert("currency".into(), json!(or_default(&form.currency, "USD")));
    body.insert("description".into(), json!(form.description));
    if !form.recipient_id.is_empty() {
        body.insert("recipientId".into(), json!(form.recipient_id));
    }
    if kind != "instant" && !form.scheduled_for.trim().is_empty() {
        body.insert(
            "scheduledFor".into(),
            json!(scheduled_rfc3339(&form.scheduled_for)),
        );
    }
    let key = (!form.idempotency_key.is_empty()).then_some(form.idempotency_key.as_str());
    match ctx
        .call(
            Method::POST,
            "/api/payments",
            Some(&Value::Object(body)),
            key,
        )
        .await
    {
        Ok(data) => {
            let id = data.get("id").and_then(Value::as_str).unwrap_or_default();
            ctx.redirect(&format!("/payments/{id}?ok=created"))
        }
        Err(err @ crate::api::CallError::SignedOut { .. }) => failure(&ctx, &err),
        Err(err) if err.status() >= 500 => failure(&ctx, &err),
        Err(err) => {
            let errors = FormErrors::from_call(&err);
            let list = recipients(&ctx, None).await;
            // A refused request was not stored under its key (api.md §5.8): a fresh key lets the
            // corrected form go through as a new request.
            let form = PaymentForm {
                idempotency_key: random_token(),
                ..form
            };
            let main = html! {
                div.page-head { h1 { "New payment" } }
                (payment_form(&ctx, &form, &list, &errors))
            };
            let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
            (
                status,
                render(&ctx, "New payment", Nav::NewPayment, None, false, &main),
            )
                .into_response()
        }
    }
}

fn timeline(p: &Payment) -> Markup {
    html! {
        ol.timeline aria-label="Transaction history" {
            @for t in &p.transactions {
                li.timeline-item data-status=(t.status) {
                    span class={ "dot dot-" (t.status) } aria-hidden="true" {}
                    div {
                        p.timeline-title {
                            (ui::status_label(&t.status))
                            @if let Some(prev) = &t.previous_status { span.muted.small { " from " (ui::status_label(prev)) } }
                        }
                        p.muted.small {
                            @if let Some(m) = &t.status_message { (m) " · " }
                            @if let Some(a) = &t.actor_type { "by " (a) " · " }
                            (ui::when(&t.created_at))
                        }
                    }
                }
            }
        }
    }
}

pub async fn detail(
    ctx: Ctx,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(session) = ctx.session() else {
        return ctx.to_signin("expired");
    };
    let p = match fetch(&ctx, &id).await {
        Ok(p) => p,
        Err(err) => return failure(&ctx, &err),
    };
    let me = &session.user;
    let may_change = p.status == "pending" && (p.sender_id == me.id || me.is_admin());
    let main = html! {
        nav.breadcrumb aria-label="Breadcrumb" { a href="/payments" { "Payments" } " / " span { "Payment" } }
        div #payment-live data-payment-detail=(p.id) {
            div.page-head {
                h1 { (p.description) }
                (ui::status_badge(&p.id, &p.status))
            }
            div.grid-2 {
                section.card {
                    h2 { "Details" }
                    dl.details {
                        dt { "Amount" } dd { (ui::money(&p.amount, &p.currency)) }
                        dt { "From" } dd { (p.sender.name) " " span.muted { "<" (p.sender.email) ">" } }
                        dt { "To" } dd { (p.recipient.name) " " span.muted { "<" (p.recipient.email) ">" } }
                        dt { "Type" } dd { (capitalise(&p.kind)) }
                        @if let Some(s) = &p.scheduled_for { dt { "Scheduled for" } dd { (ui::when(s)) } }
                        dt { "Created" } dd { (ui::when(&p.created_at)) }
                        dt { "Completed" } dd { (ui::when_opt(p.completed_at.as_deref())) }
                        @if let Some(r) = &p.failure_reason { dt { "Reason" } dd { (r) } }
                        @if let Some(r) = &p.psp_transaction_id { dt { "Processor reference" } dd { code { (r) } } }
                    }
                    @if may_change {
                        div.form-actions {
                            a.btn.btn-secondary href={ "/payments/" (p.id) "/edit" } { "Edit" }
                            form method="post" action={ "/payments/" (p.id) "/cancel" } {
                                input type="hidden" name="_csrf" value=(ctx.csrf);
                                button.btn.btn-danger type="submit" data-confirm="Cancel this payment?" { "Cancel payment" }
                            }
                        }
                    }
                }
                section.card {
                    h2 { "Timeline" }
                    (timeline(&p))
                }
            }
        }
    };
    render(&ctx, "Payment", Nav::Payments, flash_from(&q), true, &main)
}

/// One payment as the API shows it to this user.
async fn fetch(ctx: &Ctx, id: &str) -> Result<Payment, CallError> {
    let path = format!("/api/payments/{}", encode_component(id));
    ctx.call(Method::GET, &path, None, None)
        .await
        .and_then(decode::<Payment>)
}

pub async fn edit_page(ctx: Ctx, Path(id): Path<String>) -> Response {
    if ctx.session().is_none() {
        return ctx.to_signin("expired");
    }
    match fetch(&ctx, &id).await {
        Ok(p) => {
            let form = PaymentForm {
                amount: p.amount.clone(),
                currency: p.currency.clone(),
                description: p.description.clone(),
                ..PaymentForm::default()
            };
            edit_view(&ctx, &p, &form, &FormErrors::default(), StatusCode::OK)
        }
        Err(err) => failure(&ctx, &err),
    }
}

fn edit_view(
    ctx: &Ctx,
    p: &Payment,
    form: &PaymentForm,
    errors: &FormErrors,
    status: StatusCode,
) -> Response {
    let currencies: Vec<(&str, &str)> = CURRENCIES.iter().map(|c| (*c, *c)).collect();
    let main = html! {
        nav.breadcrumb aria-label="Breadcrumb" { a href="/payments" { "Payments" } " / " a href={ "/payments/" (p.id) } { "Payment" } " / " span { "Edit" } }
        div.page-head { h1 { "Edit payment" } }
        (ui::form_errors(errors))
        form.card.form-grid method="post" action={ "/payments/" (p.id) "/edit" } novalidate {
            input type="hidden" name="_csrf" value=(ctx.csrf);
            (Field::new("amount", "Amount").value(&form.amount).required().render(errors))
            (ui::select("currency", "Currency", &currencies, &form.currency, errors))
            div.span-2 { (Field::new("description", "Description").value(&form.description).required().render(errors)) }
            div.form-actions.span-2 {
                button.btn.btn-primary type="submit" { "Save changes" }
                a.btn.btn-ghost href={ "/payments/" (p.id) } { "Back" }
            }
        }
    };
    (
        status,
        render(ctx, "Edit payment", Nav::Payments, None, false, &main),
    )
        .into_response()
}

pub async fn edit(ctx: Ctx, Path(id): Path<String>, Form(form): Form<PaymentForm>) -> Response {
    let path = format!("/api/payments/{}", encode_component(&id));
    let body = json!({ "amount": form.amount.trim(), "currency": form.currency, "description": form.description });
    match ctx.call(Method::PUT, &path, Some(&body), None).await {
        Ok(_) => ctx.redirect(&format!("/payments/{id}?ok=updated")),
        Err(err) if err.status() == 400 || err.status() == 409 => match fetch(&ctx, &id).await {
            Ok(p) => {
                let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
                edit_view(&ctx, &p, &form, &FormErrors::from_call(&err), status)
            }
            Err(e) => failure(&ctx, &e),
        },
        Err(err) => failure(&ctx, &err),
    }
}

pub async fn cancel(ctx: Ctx, Path(id): Path<String>) -> Response {
    let path = format!("/api/payments/{}/status", encode_component(&id));
    match ctx
        .call(
            Method::PATCH,
            &path,
            Some(&json!({ "status": "cancelled" })),
            None,
        )
        .await
    {
        Ok(_) => ctx.redirect(&format!("/payments/{id}?ok=cancelled")),
        Err(err) if err.status() == 409 || err.status() == 403 => {
            let main = html! {
                section.card.narrow {
                    h1 { "Could not cancel" }
                    p { (err.human()) }
                    a.btn.btn-primary href={ "/payments/" (id) } { "Back to the payment" }
                }
            };
            (
                StatusCode::CONFLICT,
                render(&ctx, "Could not cancel", Nav::Payments, None, false, &main),
            )
                .into_response()
        }
        Err(err) => failure(&ctx, &err),
    }
}
