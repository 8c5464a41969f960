//! Steps 5–11 of the gateway stack as one tower layer: client IP and TLS flag, security
//! headers, the `/metrics` allow-list, GraphQL-shaped edge rejections, CORS, rate limits and
//! declared body sizes. They were seven `middleware::from_fn` layers; each of those boxes the
//! rest of the stack and its own future on every request, which callgrind counted at about
//! 2,000 instructions a layer on a proxied `GET`. Here each step is a function called in
//! order, so the stack still reads top to bottom.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    body::{Body, HttpBody},
    extract::Request,
    response::Response,
};
use futures::{FutureExt, future::BoxFuture};
use ipnet::IpNet;
use tower::{Layer, Service, ServiceExt};

use super::{Cors, EdgeConfig, SecurityHeaders, declared_too_large, metrics_denied, settle_client};
use crate::{
    graphql,
    ratelimit::{self, Admission, RateLimiter},
};

/// What the edge steps need, shared by every request.
#[derive(Clone)]
pub struct EdgeLayer(Arc<Edge>);

struct Edge {
    cfg: Arc<EdgeConfig>,
    limiter: Option<RateLimiter>,
    metrics_allowed: Vec<IpNet>,
}

impl EdgeLayer {
    pub fn new(
        cfg: Arc<EdgeConfig>,
        limiter: Option<RateLimiter>,
        metrics_allowed: Vec<IpNet>,
    ) -> Self {
        Self(Arc::new(Edge {
            cfg,
            limiter,
            metrics_allowed,
        }))
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = EdgeService<S>;

    fn layer(&self, inner: S) -> EdgeService<S> {
        EdgeService {
            edge: self.0.clone(),
            inner,
        }
    }
}

/// The service [`EdgeLayer`] wraps around the rest of the stack.
#[derive(Clone)]
pub struct EdgeService<S> {
    edge: Arc<Edge>,
    inner: S,
}

impl<S, B> Service<Request> for EdgeService<S>
where
    S: Service<Request, Response = http::Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The clone is the one the next request polls for readiness; the ready one serves
        // this request (tower's usual swap).
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let edge = self.edge.clone();
        // The rest of the stack as the steps call it: one request in, one response out.
        // (A combinator, not an `async move` block, which would hold the request once more.)
        let inner = |req| {
            ready.oneshot(req).map(|res| match res {
                Ok(res) => res.map(Body::new),
                Err(never) => match never {},
            })
        };
        Box::pin(edge.handle(req, inner).map(Ok))
    }
}

impl Edge {
    // The steps are plain functions returning `async move` blocks, not `async fn`s: an `async
    // fn` moves its arguments into locals first, and the moved-from arguments keep their
    // space, so each step held the request (~240 bytes) twice in a future that is then moved
    // whole (memcpy) into its box and between layers.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would store the request twice (see above)"
    )]
    fn handle<F>(
        self: Arc<Self>,
        mut req: Request,
        inner: impl FnOnce(Request) -> F + Send,
    ) -> impl Future<Output = Response> + Send
    where
        F: Future<Output = Response> + Send,
    {
        async move {
            // 5. Client IP and TLS flag once, for CORS/HSTS/rate limits/X-Forwarded-*.
            let tls = settle_client(&self.cfg, &mut req);
            // 6. Security headers on every response, rejections included (applied last).
            let security = SecurityHeaders::for_request(req.uri().path(), tls);
            let mut res = self.guarded(req, inner).await;
            security.apply(res.headers_mut());
            res
        }
    }

    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would store the request twice (see `handle`)"
    )]
    fn guarded<F>(
        &self,
        req: Request,
        inner: impl FnOnce(Request) -> F + Send,
    ) -> impl Future<Output = Response> + Send
    where
        F: Future<Output = Response> + Send,
    {
        async move {
            // 7. `/metrics` allow-list, before anything is counted against a bucket.
            if let Some(denied) = metrics_denied(&self.metrics_allowed, &req) {
                return denied;
            }
            // 7b. Edge rejections of `/graphql` below in the GraphQL error format (api.md §9.2).
            if req.uri().path() == "/graphql" {
                return graphql::edge_rejection(self.admitted(req, inner).await).await;
            }
            self.admitted(req, inner).await
        }
    }

    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would store the request twice (see `handle`)"
    )]
    fn admitted<F>(
        &self,
        req: Request,
        inner: impl FnOnce(Request) -> F + Send,
    ) -> impl Future<Output = Response> + Send
    where
        F: Future<Output = Response> + Send,
    {
        async move {
            // 8. CORS before rate limiting (api.md §3.4); preflights end here.
            let cors = match Cors::check(&self.cfg, &req) {
                Cors::Answered(res) => return res,
                cors => cors,
            };
            // 9. Rate limits on the real client IP; 429 never reaches an upstream.
            let admission = match ratelimit::counting(self.limiter.as_ref(), &req) {
                Some((limiter, counted, ip)) => ratelimit::admit(limiter, counted, ip).await,
                None => Admission::Uncounted,
            };
            let mut res = match admission {
                Admission::Refused(res) => res,
                admitted => {
                    // 10. gzip/br for JSON answers wraps `inner` (see `app::router`).
                    // 11. A declared oversized body is refused before any byte is read or forwarded.
                    let mut res = match declared_too_large(&self.cfg, &req) {
                        Some(too_large) => too_large,
                        None => inner(req).await,
                    };
                    admitted.decorate(res.headers_mut());
                    res
                }
            };
            cors.decorate(res.headers_mut());
            res
        }
    }
}
