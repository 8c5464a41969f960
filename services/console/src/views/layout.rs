//! The page shell: head (hashed assets, htmx config without eval), the top bar with the theme
//! toggle and sign-out, the role's navigation, flash messages and the live-update hooks.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::{
    assets,
    session::{SessionUser, Theme},
};

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    None,
    Payments,
    NewPayment,
    Reports,
    Profile,
    Dashboard,
    Users,
    Audit,
    Health,
    Config,
}

#[derive(Debug, Clone)]
pub enum Flash {
    Success(String),
    Error(String),
    Info(String),
}

/// What the shell needs to know about the request.
pub struct Shell<'a> {
    pub title: &'a str,
    pub user: Option<&'a SessionUser>,
    pub theme: Theme,
    pub csrf: &'a str,
    pub here: &'a str,
    pub nav: Nav,
    pub flash: Option<Flash>,
    /// Set on pages that update from the WebSocket.
    pub live: bool,
    /// Set on the page shown right after signing out: other tabs are told to follow.
    pub signed_out: bool,
}

const HTMX_CONFIG: &str = r#"{"allowEval":false,"allowScriptTags":false,"includeIndicatorStyles":false,"historyCacheSize":0,"refreshOnHistoryMiss":true,"selfRequestsOnly":true}"#;

pub fn page(shell: &Shell<'_>, main: &Markup) -> Markup {
    let hx_headers = format!(r#"{{"X-CSRF-Token":"{}"}}"#, shell.csrf);
    html! {
        (DOCTYPE)
        html lang="en" data-theme=(shell.theme.as_str()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (shell.title) " · payplane" }
                meta name="htmx-config" content=(HTMX_CONFIG);
                meta name="csrf-token" content=(shell.csrf);
                link rel="icon" href=(assets::url("icon.svg")) type="image/svg+xml";
                link rel="stylesheet" href=(assets::url("app.css"));
                script src=(assets::url("htmx.min.js")) defer {}
                script src=(assets::url("app.js")) defer {}
            }
            body hx-headers=(hx_headers)
                data-live=[shell.live.then_some("1")]
                data-signed-in=[shell.user.map(|_| "1")]
                data-signed-out=[shell.signed_out.then_some("1")] {
                a.skip href="#main" { "Skip to content" }
                header.topbar {
                    a.brand href="/" aria-label="payplane home" {
                        (logo())
                        span { "payplane" }
                    }
                    @if let Some(user) = shell.user {
                        button.nav-toggle type="button" aria-controls="nav" aria-expanded="false" {
                            span.visually-hidden { "Menu" }
                            (PreEscaped(r#"<svg width="22" height="22" viewBox="0 0 24 24" aria-hidden="true"><path d="M3 6h18M3 12h18M3 18h18" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>"#))
                        }
                        div.topbar-actions {
                            (theme_toggle(shell))
                            span.who title=(user.email) {
                                span.who-name { (user.name) }
                                span.role { (role_label(&user.role)) }
                            }
                            form method="post" action="/signout" data-signout {
                                input type="hidden" name="_csrf" value=(shell.csrf);
                                button.btn.btn-ghost type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                div.shell {
                    @if let Some(user) = shell.user {
                        (nav(user, shell.nav))
                    }
                    main #main tabindex="-1" {
                        @if let Some(flash) = &shell.flash {
                            (flash_box(flash))
                        }
                        (main)
                    }
                }
                div #toasts .toasts role="status" aria-live="polite" {}
            }
        }
    }
}

pub fn role_label(role: &str) -> &'static str {
    match role {
        "ADMIN" => "Admin",
        "VENDOR" => "Vendor",
        _ => "Customer",
    }
}

fn logo() -> Markup {
    PreEscaped(r#"<svg width="28" height="28" viewBox="0 0 32 32" aria-hidden="true"><rect class="logo-bg" width="32" height="32" rx="8"/><path d="M9 23V9h8a5 5 0 0 1 0 10h-8" class="logo-fg" fill="none" stroke-width="3" stroke-linecap="round" stroke-linejoin="round"/></svg>"#.into())
}

fn theme_toggle(shell: &Shell<'_>) -> Markup {
    let (next, label) = match shell.theme {
        Theme::Dark => (Theme::Light, "Light theme"),
        Theme::Light | Theme::System => (Theme::Dark, "Dark theme"),
    };
    html! {
        form.theme-toggle method="post" action="/profile/theme" {
            input type="hidden" name="_csrf" value=(shell.csrf);
            input type="hidden" name="theme" value=(next.as_str());
            input type="hidden" name="next" value=(shell.here);
            button.btn.btn-ghost #theme-toggle type="submit" data-theme-next=(next.as_str()) {
                (label)
            }
        }
    }
}

pub fn nav(user: &SessionUser, current: Nav) -> Markup {
    let item = |href: &str, label: &str, this: Nav| {
        html! {
            li { a href=(href) aria-current=[(current == this).then_some("page")] { (label) } }
        }
    };
    html! {
        nav #nav .nav aria-label="Main" data-role=(user.role) {
            ul {
                (item("/payments", "Payments", Nav::Payments))
                (item("/payments/new", "New payment", Nav::NewPayment))
                @if user.sees_reports() {
                    (item("/reports", "Reports", Nav::Reports))
                }
                (item("/profile", "Profile", Nav::Profile))
            }
            @if user.is_admin() {
                p.nav-heading { "Administration" }
                ul {
                    (item("/admin", "Dashboard", Nav::Dashboard))
                    (item("/admin/users", "Users", Nav::Users))
                    (item("/admin/audit", "Audit log", Nav::Audit))
                    (item("/admin/health", "System health", Nav::Health))
                    (item("/admin/config", "Configuration", Nav::Config))
                }
            }
        }
    }
}

pub fn flash_box(flash: &Flash) -> Markup {
    let (class, text, role) = match flash {
        Flash::Success(t) => ("flash flash-success", t, "status"),
        Flash::Error(t) => ("flash flash-error", t, "alert"),
        Flash::Info(t) => ("flash flash-info", t, "status"),
    };
    html! { div class=(class) role=(role) { (text) } }
}
