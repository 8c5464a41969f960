//! Reports for vendors and admins: totals by status, type and currency for a period, with a
//! server-rendered chart.

use axum::{extract::Query, response::Response};
use http::Method;
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use super::{failure, render};
use crate::{
    forms::encode_component,
    session::Ctx,
    views::{layout::Nav, ui},
};

#[derive(Debug, Deserialize, Default)]
pub struct Period {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

const STATUSES: [&str; 5] = ["pending", "processing", "completed", "failed", "cancelled"];

pub async fn show(ctx: Ctx, Query(q): Query<Period>) -> Response {
    let Some(session) = ctx.session() else {
        return ctx.to_signin("expired");
    };
    if !session.user.sees_reports() {
        return failure(
            &ctx,
            &crate::api::CallError::Rejected {
                status: 403,
                code: "FORBIDDEN".into(),
                message: String::new(),
                details: Value::Null,
            },
        );
    }
    let mut query = Vec::new();
    if !q.from.is_empty() {
        query.push(format!("startDate={}", encode_component(&q.from)));
    }
    if !q.to.is_empty() {
        query.push(format!("endDate={}", encode_component(&q.to)));
    }
    let path = format!("/api/payments/reports?{}", query.join("&"));
    let report = match ctx.call(Method::GET, &path, None, None).await {
        Ok(r) => r,
        Err(err) if err.code() == "VALIDATION_ERROR" => Value::Null,
        Err(err) => return failure(&ctx, &err),
    };
    let count = |section: &str, key: &str| report[section][key].as_f64().unwrap_or(0.0);
    let rows: Vec<(&str, &str, f64)> = STATUSES
        .iter()
        .map(|s| (*s, ui::status_label(s), count("byStatus", s)))
        .collect();
    let by_type: Vec<(&str, &str, f64)> = [
        ("instant", "Instant"),
        ("scheduled", "Scheduled"),
        ("recurring", "Recurring"),
    ]
    .iter()
    .map(|(k, l)| (*k, *l, count("byType", k)))
    .collect();
    let main = html! {
        div.page-head { h1 { "Reports" } }
        form.filters method="get" action="/reports" aria-label="Report period" {
            div.field { label for="r-from" { "From" } input #r-from type="date" name="from" value=(q.from); }
            div.field { label for="r-to" { "To" } input #r-to type="date" name="to" value=(q.to); }
            div.filter-actions { button.btn.btn-secondary type="submit" { "Show" } }
        }
        @if report.is_null() {
            div.flash.flash-error role="alert" { "That period is not valid: the start must be before the end." }
        } @else {
            p.muted {
                "From " (ui::when(report["period"]["start"].as_str().unwrap_or(""))) " to " (ui::when(report["period"]["end"].as_str().unwrap_or("")))
            }
            div.stats {
                div.stat { p.stat-label { "Payments" } p.stat-value data-stat="totalPayments" { (report["totalPayments"].as_u64().unwrap_or(0)) } }
                div.stat { p.stat-label { "Completed" } p.stat-value data-stat="completed" { (count("byStatus", "completed")) } }
                div.stat { p.stat-label { "Failed" } p.stat-value { (count("byStatus", "failed")) } }
            }
            div.grid-2 {
                section.card { (ui::bar_chart("Payments by status", &rows, "")) }
                section.card { (ui::bar_chart("Payments by type", &by_type, "")) }
            }
            section.card {
                h2 { "By currency" }
                @if let Some(map) = report["byCurrency"].as_object().filter(|m| !m.is_empty()) {
                    table.table {
                        thead { tr { th scope="col" { "Currency" } th scope="col" { "Payments" } th.num scope="col" { "Amount" } } }
                        tbody {
                            @for (cur, v) in map {
                                tr { td { (cur) } td { (v["count"].as_u64().unwrap_or(0)) } td.num { (ui::money(v["amount"].as_str().unwrap_or("0.00"), cur)) } }
                            }
                        }
                    }
                } @else {
                    (ui::empty("Nothing in this period", "No payments were created between these dates.", None))
                }
            }
        }
    };
    render(&ctx, "Reports", Nav::Reports, None, false, &main)
}
