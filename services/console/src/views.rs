//! HTML, rendered on the server with maud (escaped by default): the page layout, the small
//! design system's components, and the pages that do not belong to a resource.

pub mod layout;
pub mod pages;
pub mod ui;

use axum::response::{Html, IntoResponse, Response};
use maud::Markup;

/// A rendered page as a response.
pub fn html(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}
