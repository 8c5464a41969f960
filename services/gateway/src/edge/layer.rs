//! Steps 5–11 of the gateway stack as one tower layer: client IP and TLS flag, security
//! headers, the `/metrics` allow-list, GraphQL-shaped edge rejections, CORS, rate limits and
//! declared body sizes. They were seven `middleware::from_fn` layers; each of those boxes the
//! rest of the stack and its own future on every request, which callgrind counted at about
//! 2,000 instructions a layer on a proxied `GET`. Here each step is a function called in
//! order, so the stack still reads top to bottom. Steps that await (rate limits, `/graphql`'s
//! rejections) run as `async` code in a box; the other requests get [`EdgeFuture::Inner`]: the
//! rest of the stack's own future and the headers its answer gets.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use axum::{
    body::{Body, HttpBody},
    extract::Request,
    response::Response,
};
use futures::{FutureExt, future::BoxFuture};
use ipnet::IpNet;
use tower::{Layer, Service};

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
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        // The clone is the one the next request polls for readiness; the ready one serves
        // this request (tower's usual swap).
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let edge = &self.edge;
        // 5. Client IP and TLS flag once, for CORS/HSTS/rate limits/X-Forwarded-*.
        let tls = settle_client(&edge.cfg, &mut req);
        // 6. Security headers on every response, rejections included (applied last).
        let security = SecurityHeaders::for_request(req.uri().path(), tls);
        // `/graphql`'s rejections are rewritten in the GraphQL format (7b), which reads the
        // answer's body: that and rate limits (a Redis call) need awaits, so those requests
        // take the steps as `async` code in a box. The others (every request when limits are
        // off) are decided here, and the rest of the stack's own future is returned without a
        // box or a state machine holding the request (~1 200 instructions a proxied request).
        if req.uri().path() == "/graphql" {
            let edge = edge.clone();
            let inner = move |req| ready.call(req).map(unwrap_response);
            return EdgeFuture::boxed(
                async move { graphql::edge_rejection(edge.admitted(req, inner).await).await },
                security,
            );
        }
        let cors = match edge.before_admission(&req) {
            Steps::Answered(res) => return EdgeFuture::ready(res, security),
            Steps::Continue(cors) => cors,
        };
        match ratelimit::counting(edge.limiter.as_ref(), &req) {
            Some((_, counted, ip)) => {
                let edge = edge.clone();
                let inner = move |req| ready.call(req).map(unwrap_response);
                EdgeFuture::boxed(
                    async move {
                        // `counting` found a limiter; it is the edge's own.
                        let admission = match edge.limiter.as_ref() {
                            Some(limiter) => ratelimit::admit(limiter, counted, ip).await,
                            None => Admission::Uncounted,
                        };
                        edge.after_admission(req, admission, cors, inner).await
                    },
                    security,
                )
            }
            None => match declared_too_large(&edge.cfg, &req) {
                Some(mut too_large) => {
                    cors.decorate(too_large.headers_mut());
                    EdgeFuture::ready(too_large, security)
                }
                None => EdgeFuture::Inner {
                    fut: ready.call(req),
                    cors: Some(cors),
                    security,
                },
            },
        }
    }
}

fn unwrap_response<B>(res: Result<http::Response<B>, Infallible>) -> Response
where
    B: HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    match res {
        Ok(res) => res.map(Body::new),
        Err(never) => match never {},
    }
}

pin_project_lite::pin_project! {
    /// The edge's answer: the rest of the stack's future with the headers its answer gets, an
    /// answer made at the edge, or (rate limits, `/graphql`) the steps with awaits, boxed.
    #[project = EdgeFutureProj]
    pub enum EdgeFuture<F> {
        Inner {
            #[pin]
            fut: F,
            cors: Option<Cors>,
            security: SecurityHeaders,
        },
        Boxed {
            fut: BoxFuture<'static, Response>,
            security: SecurityHeaders,
        },
        Ready {
            res: Option<Response>,
            security: SecurityHeaders,
        },
    }
}

impl<F> EdgeFuture<F> {
    fn ready(res: Response, security: SecurityHeaders) -> Self {
        Self::Ready {
            res: Some(res),
            security,
        }
    }

    fn boxed(
        fut: impl Future<Output = Response> + Send + 'static,
        security: SecurityHeaders,
    ) -> Self {
        Self::Boxed {
            fut: Box::pin(fut),
            security,
        }
    }
}

impl<F, B> Future for EdgeFuture<F>
where
    F: Future<Output = Result<http::Response<B>, Infallible>>,
    B: HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (mut res, security) = match self.project() {
            EdgeFutureProj::Inner {
                fut,
                cors,
                security,
            } => {
                let mut res = unwrap_response(ready!(fut.poll(cx)));
                // Uncounted: no `RateLimit-*` headers to add (see `Edge::after_admission`).
                if let Some(cors) = cors.take() {
                    cors.decorate(res.headers_mut());
                }
                (res, *security)
            }
            EdgeFutureProj::Boxed { fut, security } => (ready!(fut.as_mut().poll(cx)), *security),
            EdgeFutureProj::Ready { res, security } => match res.take() {
                Some(res) => (res, *security),
                // Polled again after it completed: a caller's bug, as with any future.
                None => return Poll::Pending,
            },
        };
        security.apply(res.headers_mut());
        Poll::Ready(Ok(res))
    }
}

/// What the synchronous steps 7 and 8 decided.
enum Steps {
    /// Answered at the edge: `/metrics` outside the allow-list, a CORS refusal or preflight.
    Answered(Response),
    /// On to rate limits and the body-size check; the answer gets these CORS headers.
    Continue(Cors),
}

impl Edge {
    /// Step 7, the `/metrics` allow-list, before anything is counted against a bucket; step 8,
    /// CORS before rate limiting (api.md §3.4): preflights end here.
    fn before_admission(&self, req: &Request) -> Steps {
        if let Some(denied) = metrics_denied(&self.metrics_allowed, req) {
            return Steps::Answered(denied);
        }
        match Cors::check(&self.cfg, req) {
            Cors::Answered(res) => Steps::Answered(res),
            cors => Steps::Continue(cors),
        }
    }

    /// Steps 7–11 with their awaits, for `/graphql` (whose answers step 7b rewrites).
    // Plain functions returning `async move` blocks, not `async fn`s: an `async fn` moves its
    // arguments into locals first, and the moved-from arguments keep their space, so each
    // step held the request (~240 bytes) twice in a future that is then moved whole (memcpy)
    // into its box.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would store the request twice (see above)"
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
            let cors = match self.before_admission(&req) {
                Steps::Answered(res) => return res,
                Steps::Continue(cors) => cors,
            };
            // 9. Rate limits on the real client IP; 429 never reaches an upstream.
            let admission = match ratelimit::counting(self.limiter.as_ref(), &req) {
                Some((limiter, counted, ip)) => ratelimit::admit(limiter, counted, ip).await,
                None => Admission::Uncounted,
            };
            self.after_admission(req, admission, cors, inner).await
        }
    }

    /// After step 9: a refusal, or 11. a declared oversized body refused before any byte is
    /// read or forwarded, or the rest of the stack (10. gzip/br for JSON answers wraps it, see
    /// `app::router`); the answer gets the `RateLimit-*` and CORS headers.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would store the request twice (see `admitted`)"
    )]
    fn after_admission<F>(
        &self,
        req: Request,
        admission: Admission,
        cors: Cors,
        inner: impl FnOnce(Request) -> F + Send,
    ) -> impl Future<Output = Response> + Send
    where
        F: Future<Output = Response> + Send,
    {
        async move {
            let mut res = match admission {
                Admission::Refused(res) => res,
                admitted => {
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
