//! The console's route table. Handlers are thin: read the form or query → call the API as
//! the signed-in user → render a page, or redirect after a successful post (303, so reload
//! never re-posts).

mod admin;
mod auth;
mod payments;
mod profile;
mod reports;

use axum::{
    Router,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use maud::Markup;

use crate::{
    api::CallError,
    app::AppState,
    assets,
    session::Ctx,
    views::{
        self,
        layout::{Flash, Nav, Shell, page},
        pages,
    },
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/signin", get(auth::signin_page).post(auth::signin))
        .route("/register", get(auth::register_page).post(auth::register))
        .route("/signout", post(auth::signout))
        .route("/session-ended", get(auth::session_ended))
        .route("/session/socket", post(auth::socket_token))
        .route("/session/nav", get(auth::nav_fragment))
        .route("/payments", get(payments::list).post(payments::create))
        .route("/payments/new", get(payments::new_page))
        .route("/payments/recipients", get(payments::recipients_handler))
        .route("/payments/{id}", get(payments::detail))
        .route(
            "/payments/{id}/edit",
            get(payments::edit_page).post(payments::edit),
        )
        .route("/payments/{id}/cancel", post(payments::cancel))
        .route("/reports", get(reports::show))
        .route("/profile", get(profile::show).post(profile::update))
        .route("/profile/preferences", post(profile::update_preferences))
        .route("/profile/theme", post(profile::theme))
        .route("/profile/devices/others", post(profile::sign_out_others))
        .route(
            "/profile/devices/{device}/signout",
            post(profile::sign_out_device),
        )
        .route("/admin", get(admin::dashboard))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/users/{id}/role", post(admin::change_role))
        .route("/admin/users/{id}/status", post(admin::change_status))
        .route("/admin/users/{id}/delete", post(admin::delete_user))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/health", get(admin::health))
        .route("/admin/config", get(admin::config).post(admin::save_config))
        .route("/offline", get(pages::offline))
        .route("/sw.js", get(assets::service_worker))
        .route("/assets/{file}", get(assets::serve))
        // Everything else is the console's own 404 page (not the API's JSON one).
        .route("/{*rest}", get(not_found))
}

async fn not_found() -> Response {
    pages::not_found()
}

async fn home(ctx: Ctx) -> Response {
    match ctx.session() {
        Some(_) => ctx.redirect("/payments"),
        None => ctx.redirect("/signin"),
    }
}

/// Renders a page in the signed-in shell.
pub fn render(
    ctx: &Ctx,
    title: &str,
    nav: Nav,
    flash: Option<Flash>,
    live: bool,
    main: &Markup,
) -> Response {
    let session = ctx.session();
    let shell = Shell {
        title,
        user: session.as_ref().map(|s| &s.user),
        theme: session.as_ref().map(|s| s.theme).unwrap_or_default(),
        csrf: &ctx.csrf,
        here: &ctx.here,
        nav,
        flash,
        // Every signed-in page holds the socket, so a session ended elsewhere (4001) sends
        // every open page to sign-in, not only the payment pages.
        live: live || session.is_some(),
        signed_out: false,
    };
    views::html(page(&shell, main))
}

/// A failed call as a response: back to sign-in when the session ended, the API's refusal
/// as a page otherwise.
pub fn failure(ctx: &Ctx, err: &CallError) -> Response {
    match err {
        CallError::SignedOut { reason } => ctx.to_signin(reason),
        CallError::Rejected { status: 404, .. } => pages::not_found(),
        CallError::Rejected { status: 403, .. } => {
            let main = maud::html! {
                section.card.narrow {
                    h1 { "Not available to you" }
                    p { "Your role does not give access to this page." }
                    a.btn.btn-primary href="/payments" { "Go to your payments" }
                }
            };
            (
                http::StatusCode::FORBIDDEN,
                render(ctx, "Forbidden", Nav::None, None, false, &main),
            )
                .into_response()
        }
        other => {
            tracing::warn!(error = %other, "API call failed");
            pages::unavailable(&other.human())
        }
    }
}

/// Flash messages travel in the query string of the redirect after a post (`?ok=…`), as a
/// short code looked up here, so nothing a user typed is ever echoed from a URL.
pub fn flash_from<S: std::hash::BuildHasher>(
    query: &std::collections::HashMap<String, String, S>,
) -> Option<Flash> {
    let text = |code: &str| -> Option<&'static str> {
        Some(match code {
            "created" => "Payment created. It will be processed in a moment.",
            "updated" => "Payment updated.",
            "cancelled" => "Payment cancelled.",
            "saved" => "Saved.",
            "theme" => "Theme saved.",
            "device" => "That device has been signed out.",
            "others" => "Every other device has been signed out.",
            "user-created" => "User created.",
            "role" => "Role changed.",
            "status" => "Status changed.",
            "deleted" => "User deleted.",
            "config" => "Configuration saved.",
            _ => return None,
        })
    };
    query
        .get("ok")
        .and_then(|c| text(c))
        .map(|t| Flash::Success(t.to_owned()))
}
