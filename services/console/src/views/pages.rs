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

pub fn forbidden_form() -> Response {
    let main = html! {
        section.card.narrow {
            h1 { "This form has expired" }
            p { "For your safety the form could not be sent. Go back, reload the page and try again." }
            a.btn.btn-primary href="/" { "Back to payplane" }
        }
    };
    (StatusCode::FORBIDDEN, respond(bare("Form expired", &main))).into_response()
}

pub fn not_found() -> Response {
    let main = html! {
        section.card.narrow {
            h1 { "Page not found" }
            p { "There is nothing at this address. It may have moved, or the link may be mistyped." }
            a.btn.btn-primary href="/" { "Go to your payments" }
        }
    };
    (StatusCode::NOT_FOUND, respond(bare("Not found", &main))).into_response()
}

pub fn unavailable(message: &str) -> Response {
    let main = html! {
        section.card.narrow {
            h1 { "Something went wrong" }
            p { (message) }
            a.btn.btn-primary href="" { "Try again" }
        }
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        respond(bare("Unavailable", &main)),
    )
        .into_response()
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
