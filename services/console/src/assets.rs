//! Static assets compiled into the binary and served under content-hashed names
//! (`/assets/app.3f2a9c1d.css`) with a year-long immutable cache: a new build changes the name,
//! so browsers never see a stale file and never revalidate a current one. The service worker
//! is generated with those names, and served without caching.

use std::sync::LazyLock;

use axum::{
    extract::Path,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};

/// The htmx release vendored from the npm package `htmx.org` (see README).
pub const HTMX_VERSION: &str = "2.0.11";

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    /// `/assets/<stem>.<hash>.<ext>`
    pub url: String,
}

fn asset(name: &'static str, content_type: &'static str, bytes: &'static [u8]) -> Asset {
    let hash = Sha256::digest(bytes);
    let short = hash[..6].iter().fold(String::new(), |mut s, b| {
        use std::fmt::Write;
        let _ = write!(s, "{b:02x}");
        s
    });
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    Asset {
        name,
        content_type,
        bytes,
        url: format!("/assets/{stem}.{short}.{ext}"),
    }
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    vec![
        asset(
            "app.css",
            "text/css; charset=utf-8",
            include_bytes!("../assets/app.css"),
        ),
        asset(
            "app.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../assets/app.js"),
        ),
        asset(
            "htmx.min.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../assets/vendor/htmx-2.0.11.min.js"),
        ),
        asset(
            "icon.svg",
            "image/svg+xml",
            include_bytes!("../assets/icon.svg"),
        ),
    ]
});

/// The hashed URL of an asset by its plain name (`app.css`).
pub fn url(name: &str) -> &'static str {
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .map_or("/assets/missing", |a| a.url.as_str())
}

/// `GET /assets/{file}`: only the current hashed names exist.
pub async fn serve(Path(file): Path<String>) -> Response {
    let wanted = format!("/assets/{file}");
    let Some(asset) = ASSETS.iter().find(|a| a.url == wanted) else {
        return (StatusCode::NOT_FOUND, "Not found").into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.bytes,
    )
        .into_response()
}

/// `GET /sw.js`: the service worker, with this build's asset names to precache.
pub async fn service_worker() -> Response {
    static BODY: LazyLock<String> = LazyLock::new(|| {
        let list: Vec<String> = ASSETS.iter().map(|a| format!("{:?}", a.url)).collect();
        let template = include_str!("../assets/sw.js");
        template.replace("/*PRECACHE*/", &list.join(", "))
    });
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        BODY.as_str(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_content_hash() {
        let css = url("app.css");
        assert!(
            css.starts_with("/assets/app.") && css.rsplit_once('.').map(|p| p.1) == Some("css"),
            "{css}"
        );
        assert_eq!(css.len(), "/assets/app.".len() + 12 + ".css".len());
        assert_eq!(url("nope"), "/assets/missing");
    }
}
