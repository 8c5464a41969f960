//! `/api/<service>…` before axum's router: the proxied API is almost every request the
//! gateway sees, and its route is known from the path's first two segments.
//!
//! Why: under callgrind, axum's routing of a proxied request (the route table lookup, the
//! `{service}`/`{*rest}` URL parameters, `MatchedPath`, cloning and boxing the matched route's
//! service) cost about 6,500 of its instructions. The same layer stack runs in both branches,
//! so what a request goes through is unchanged; only how its route is found differs. The
//! routes stay in the router too, for the paths this quick test leaves to it.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{extract::Request, response::Response};
use futures::{FutureExt, future::Either};

use crate::app::AppState;

/// The route templates the router has for the API, which the metrics keep as labels.
pub const API_SERVICE: &str = "/api/{service}";
pub const API_SERVICE_REST: &str = "/api/{service}/{*rest}";

/// Which API route a path takes, if it is plainly one: `/api/<service>` or
/// `/api/<service>/<rest>` with non-empty parts. Anything else (`/api`, `/api//x`, a trailing
/// slash left after trimming one) goes to the router, which decides as before.
pub fn api_route(path: &str) -> Option<&'static str> {
    let after = path.strip_prefix("/api/")?;
    match split_segment(after) {
        (service, None) if !service.is_empty() => Some(API_SERVICE),
        (service, Some(rest)) if !service.is_empty() && !rest.is_empty() => Some(API_SERVICE_REST),
        _ => None,
    }
}

/// A path's first segment and what follows its `/`, if any. A plain byte loop: the segments
/// are a few bytes long, where `str::split`'s character searcher (memchr set-up) cost ~110
/// instructions a call, four calls per proxied request.
pub fn split_segment(path: &str) -> (&str, Option<&str>) {
    match path.bytes().position(|b| b == b'/') {
        // `/` is ASCII, so both sides of it are on character boundaries.
        Some(slash) => (&path[..slash], Some(&path[slash + 1..])),
        None => (path, None),
    }
}

/// Sends API paths to `api` (the layer stack around [`Forward`]) and every other path to
/// `rest` (the router with the same stack).
#[derive(Clone)]
pub struct ApiFirst<A, R> {
    pub api: A,
    pub rest: R,
}

impl<A, R> tower::Service<Request> for ApiFirst<A, R>
where
    A: tower::Service<Request, Response = Response, Error = Infallible>,
    R: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<A::Future, R::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both are always ready (axum's router and a stack without backpressure); both are
        // asked anyway, since either may be called next.
        std::task::ready!(self.api.poll_ready(cx))?;
        self.rest.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The metrics layer labels these requests with the same `api_route` (see `app::router`).
        if api_route(req.uri().path()).is_some() {
            Either::Left(self.api.call(req))
        } else {
            Either::Right(self.rest.call(req))
        }
    }
}

/// The API route's handler as a plain service: [`crate::app::forward`] without an extractor.
#[derive(Clone)]
pub struct Forward(pub Arc<AppState>);

impl tower::Service<Request> for Forward {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        Box::pin(crate::app::forward_request(self.0.clone(), req).map(Ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_api_paths_skip_the_router() {
        for (path, route) in [
            ("/api/payments", Some(API_SERVICE)),
            ("/api/payments/abc", Some(API_SERVICE_REST)),
            ("/api/auth/me/x/y", Some(API_SERVICE_REST)),
            ("/api/unknown", Some(API_SERVICE)),
            ("/api", None),
            ("/api/", None),
            ("/api//x", None),
            ("/api/payments/", None),
            ("/api-docs/openapi.json", None),
            ("/graphql", None),
            ("/", None),
        ] {
            assert_eq!(api_route(path), route, "{path}");
        }
    }

    #[test]
    fn a_segment_splits_at_its_first_slash_only() {
        assert_eq!(
            split_segment("payments/ping/x"),
            ("payments", Some("ping/x"))
        );
        assert_eq!(split_segment("payments/"), ("payments", Some("")));
        assert_eq!(split_segment("/x"), ("", Some("x")));
        assert_eq!(split_segment("payments"), ("payments", None));
        assert_eq!(split_segment(""), ("", None));
        assert_eq!(split_segment("zahlungsä/ü"), ("zahlungsä", Some("ü")));
    }
}
