//! The request span layer: every request runs inside the span its `make_span` builds, and the
//! answer is logged at DEBUG with its latency when DEBUG is on.
//!
//! In place of tower-http's `TraceLayer`, which reads the clock three to five times per request
//! and wraps every response body to time its end, all for its DEBUG lines, whether or not
//! anything records them. The count showed it (see the README's gateway table); kit's services,
//! which write an INFO access line per request, keep `TraceLayer`.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Instant,
};

use http::{Request, Response};
use tower::{Layer, Service};
use tracing::{Level, Span};

/// Layer: `make_span(&request)` names the span the rest of the stack runs in.
#[derive(Clone, Copy)]
pub struct SpanLayer<M> {
    make_span: M,
}

impl<M> SpanLayer<M> {
    pub fn new(make_span: M) -> Self {
        SpanLayer { make_span }
    }
}

impl<S, M: Clone> Layer<S> for SpanLayer<M> {
    type Service = SpanService<S, M>;

    fn layer(&self, inner: S) -> Self::Service {
        SpanService {
            inner,
            make_span: self.make_span.clone(),
        }
    }
}

#[derive(Clone, Copy)]
pub struct SpanService<S, M> {
    inner: S,
    make_span: M,
}

impl<S, M, B, R> Service<Request<B>> for SpanService<S, M>
where
    S: Service<Request<B>, Response = Response<R>>,
    M: Fn(&Request<B>) -> Span,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = SpanFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let span = (self.make_span)(&req);
        // The clock is read only when the DEBUG line will be written.
        let started = tracing::enabled!(Level::DEBUG).then(Instant::now);
        let inner = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        SpanFuture {
            inner,
            span,
            started,
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner future, polled inside the request span.
    pub struct SpanFuture<F> {
        #[pin]
        inner: F,
        span: Span,
        started: Option<Instant>,
    }
}

impl<F, R, E> Future for SpanFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let out = ready!(this.inner.poll(cx));
        if let (Some(started), Ok(res)) = (this.started, &out) {
            tracing::debug!(
                status = res.status().as_u16(),
                latency_ms = started.elapsed().as_secs_f64() * 1000.0,
                "response"
            );
        }
        Poll::Ready(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{
        convert::Infallible,
        sync::{Arc, Mutex},
    };
    use tower::{ServiceExt, service_fn};

    /// The inner service sees the span `make_span` built for its request as the current one.
    #[tokio::test]
    async fn the_inner_service_runs_inside_the_request_span() {
        let subscriber = tracing_subscriber::fmt().with_test_writer().finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let inner = {
            let seen = Arc::clone(&seen);
            service_fn(move |req: Request<()>| {
                let seen = Arc::clone(&seen);
                async move {
                    let name = Span::current().metadata().map(tracing::Metadata::name);
                    seen.lock()
                        .unwrap()
                        .push((req.uri().path().to_owned(), name));
                    Ok::<_, Infallible>(Response::new(()))
                }
            })
        };
        let svc = SpanLayer::new(|_: &Request<()>| tracing::info_span!("request")).layer(inner);
        let req = Request::builder().uri("/api/x").body(()).unwrap();
        let res = svc.oneshot(req).await.unwrap();
        assert_eq!(res.status(), http::StatusCode::OK);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![("/api/x".to_owned(), Some("request"))]
        );
    }
}
