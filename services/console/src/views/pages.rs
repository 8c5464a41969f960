//! Pages that stand on their own: not found, a refused form, the offline page, an API outage.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use maud::{Markup, html};

use super::{
    html as respond,
    layout::{Nav, Shell, page},
};
use crate::session::Theme;

/// A page without a signed-in shell.
pub fn bare(title: &str, main: &Markup) -> Markup {
    let shell = Shell {
        title,
        user: None,
        theme: Theme::System,
        csrf: "",
        here: "/",
        nav: Nav::None,
        flash: None,
        live: false,
        signed_out: false,
    };
    page(&shell, main)
}

/// A card with a heading, one paragraph and one way onwards, answered with `status`: the
/// shape of every page here that explains why the user landed somewhere else.
fn notice(
    status: StatusCode,
    title: &str,
    heading: &str,
    text: &str,
    (href, link): (&str, &str),
) -> Response {
    let main = html! {
        section.card.narrow {
            h1 { (heading) }
            p { (text) }
            a.btn.btn-primary href=(href) { (link) }
        }
    };
    (status, respond(bare(title, &main))).into_response()
}

pub fn forbidden_form() -> Response {
    notice(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form has expired",
        "For your safety the form could not be sent. Go back, reload the page and try again.",
        ("/", "Back to payplane"),
    )
}

pub fn not_found() -> Response {
    notice(
        StatusCode::NOT_FOUND,
        "Not found",
        "Page not found",
        "There is nothing at this address. It may have moved, or the link may be mistyped.",
        ("/", "Go to your payments"),
    )
}

pub fn unavailable(message: &str) -> Response {
    notice(
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        "Something went wrong",
        message,
        ("", "Try again"),
    )
}

/// `GET /offline`: what the service worker shows when the network is gone.
pub async fn offline() -> Response {
    let main = html! {
        section.card.narrow.offline {
            h1 { "You are offline" }
            p { "payplane cannot reach the network. Your payments are safe; nothing was sent from this page." }
            a.btn.btn-primary href="" data-retry { "Retry" }
        }
    };
    respond(bare("Offline", &main))
}
