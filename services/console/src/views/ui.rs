//! The design system's components: status badges, form fields with their API errors,
//! pagination, empty states, money and dates, and a server-rendered SVG bar chart.

use maud::{Markup, html};

use crate::{api::Pagination, forms::FormErrors};

pub fn status_label(status: &str) -> &'static str {
    match status {
        "pending" => "Pending",
        "processing" => "Processing",
        "completed" => "Completed",
        "failed" => "Failed",
        "cancelled" => "Cancelled",
        _ => "Unknown",
    }
}

/// A payment's status; live updates find it by `data-payment-status`.
pub fn status_badge(payment_id: &str, status: &str) -> Markup {
    html! {
        span class={ "badge badge-" (status) } data-payment-status=(payment_id) data-status=(status) {
            (status_label(status))
        }
    }
}

pub fn money(amount: &str, currency: &str) -> Markup {
    html! { span.money { (amount) " " span.currency { (currency) } } }
}

/// `2026-03-01T10:00:00.000Z` → `1 Mar 2026, 10:00 UTC`, inside a `<time>`.
pub fn when(ts: &str) -> Markup {
    let shown = chrono::DateTime::parse_from_rfc3339(ts).map_or_else(
        |_| ts.to_owned(),
        |t| {
            t.with_timezone(&chrono::Utc)
                .format("%-d %b %Y, %H:%M UTC")
                .to_string()
        },
    );
    html! { time datetime=(ts) { (shown) } }
}

pub fn when_opt(ts: Option<&str>) -> Markup {
    ts.map_or_else(|| html! { span.muted { "—" } }, when)
}

/// A labelled input with its error below it, wired with `aria-invalid`/`aria-describedby`.
pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub value: &'a str,
    pub required: bool,
    pub hint: Option<&'a str>,
    pub autocomplete: Option<&'a str>,
}

impl<'a> Field<'a> {
    pub fn new(name: &'a str, label: &'a str) -> Self {
        Self {
            name,
            label,
            kind: "text",
            value: "",
            required: false,
            hint: None,
            autocomplete: None,
        }
    }

    #[must_use]
    pub fn kind(mut self, kind: &'a str) -> Self {
        self.kind = kind;
        self
    }

    #[must_use]
    pub fn value(mut self, value: &'a str) -> Self {
        self.value = value;
        self
    }

    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    #[must_use]
    pub fn hint(mut self, hint: &'a str) -> Self {
        self.hint = Some(hint);
        self
    }

    #[must_use]
    pub fn autocomplete(mut self, v: &'a str) -> Self {
        self.autocomplete = Some(v);
        self
    }

    pub fn render(&self, errors: &FormErrors) -> Markup {
        let control = html! {
            input #(format!("f-{}", self.name)) name=(self.name) type=(self.kind) value=(self.value)
                required[self.required] autocomplete=[self.autocomplete]
                aria-invalid=[errors.message(self.name).map(|_| "true")]
                aria-describedby=[described_by(self.name, self.hint, errors)];
        };
        field_wrap(self.name, self.label, self.hint, errors, &control)
    }
}

fn described_by(name: &str, hint: Option<&str>, errors: &FormErrors) -> Option<String> {
    let mut ids = Vec::new();
    if hint.is_some() {
        ids.push(format!("h-{name}"));
    }
    if errors.message(name).is_some() {
        ids.push(format!("e-{name}"));
    }
    (!ids.is_empty()).then(|| ids.join(" "))
}

/// Label, control, hint and the API's message for `name`.
pub fn field_wrap(
    name: &str,
    label: &str,
    hint: Option<&str>,
    errors: &FormErrors,
    control: &Markup,
) -> Markup {
    html! {
        div.field.has-error[errors.message(name).is_some()] {
            label for=(format!("f-{name}")) { (label) }
            (control)
            @if let Some(h) = hint { p.hint id=(format!("h-{name}")) { (h) } }
            @if let Some(m) = errors.message(name) {
                p.field-error id=(format!("e-{name}")) data-field-error=(name) { (m) }
            }
        }
    }
}

/// One option of a radio choice: a bold name and what it means, checked when `value` is
/// the `current` one.
pub fn radio(name: &str, value: &str, current: &str, title: &str, meaning: &str) -> Markup {
    html! {
        label.radio {
            input type="radio" name=(name) value=(value) checked[current == value];
            span { strong { (title) } (meaning) }
        }
    }
}

/// A `<select>` field with its error.
pub fn select(
    name: &str,
    label: &str,
    options: &[(&str, &str)],
    selected: &str,
    errors: &FormErrors,
) -> Markup {
    let control = html! {
        select #(format!("f-{name}")) name=(name)
            aria-invalid=[errors.message(name).map(|_| "true")]
            aria-describedby=[described_by(name, None, errors)] {
            @for (value, text) in options {
                option value=(value) selected[*value == selected] { (text) }
            }
        }
    };
    field_wrap(name, label, None, errors, &control)
}

/// The summary above a form that failed.
pub fn form_errors(errors: &FormErrors) -> Markup {
    html! {
        @if let Some(summary) = &errors.summary {
            div.flash.flash-error role="alert" data-form-error {
                (summary)
                @let unplaced: Vec<_> = errors.fields.iter().filter(|(k, _)| k.as_str() == "body").collect();
                @for (_, m) in unplaced { " " (m) }
            }
        }
    }
}

/// Previous/next links and "page x of y"; `href(page)` builds each link's URL.
pub fn pagination(p: Pagination, href: impl Fn(u32) -> String) -> Markup {
    html! {
        @if p.total_pages > 1 {
            nav.pagination aria-label="Pagination" {
                @if p.page > 1 {
                    a.btn.btn-ghost href=(href(p.page - 1)) rel="prev" { "← Previous" }
                } @else {
                    span.btn.btn-ghost.disabled aria-disabled="true" { "← Previous" }
                }
                span.page-of { "Page " (p.page) " of " (p.total_pages) " · " (p.total) " total" }
                @if p.page < p.total_pages {
                    a.btn.btn-ghost href=(href(p.page + 1)) rel="next" { "Next →" }
                } @else {
                    span.btn.btn-ghost.disabled aria-disabled="true" { "Next →" }
                }
            }
        }
    }
}

pub fn empty(title: &str, text: &str, action: Option<(&str, &str)>) -> Markup {
    html! {
        div.empty {
            p.empty-title { (title) }
            p.muted { (text) }
            @if let Some((href, label)) = action {
                a.btn.btn-primary href=(href) { (label) }
            }
        }
    }
}

/// A horizontal bar chart as inline SVG with a text alternative; bars are coloured by class
/// (`bar-<key>`), so both themes style them.
pub fn bar_chart(title: &str, rows: &[(&str, &str, f64)], unit: &str) -> Markup {
    let max = rows.iter().map(|r| r.2).fold(0.0_f64, f64::max).max(1.0);
    let row_h = 30.0;
    let label_w = 110.0;
    let width = 520.0;
    let bar_max = width - label_w - 80.0;
    // Charts have a handful of rows; the count always fits f64 exactly.
    let rows_f = f64::from(u32::try_from(rows.len()).unwrap_or(u32::MAX));
    let height = row_h * rows_f + 10.0;
    let summary: Vec<String> = rows
        .iter()
        .map(|(_, l, v)| format!("{l}: {v}{unit}"))
        .collect();
    html! {
        figure.chart {
            figcaption { (title) }
            svg viewBox=(format!("0 0 {width} {height}")) role="img"
                aria-label=(format!("{title}. {}", summary.join(", "))) preserveAspectRatio="xMinYMin meet" {
                @for (i, (key, label, value)) in (0_u32..).zip(rows.iter()) {
                    @let y = 5.0 + row_h * f64::from(i);
                    @let w = if *value > 0.0 { (value / max * bar_max).max(2.0) } else { 0.0 };
                    text.chart-label x=(label_w - 8.0) y=(y + 19.0) text-anchor="end" { (label) }
                    rect class={ "bar bar-" (key) } x=(label_w) y=(y + 4.0) width=(format!("{w:.1}")) height="20" rx="4" {}
                    text.chart-value x=(label_w + w + 6.0) y=(y + 19.0) { (fmt_num(*value)) (unit) }
                }
            }
        }
    }
}

fn fmt_num(v: f64) -> String {
    if (v - v.round()).abs() < f64::EPSILON {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
