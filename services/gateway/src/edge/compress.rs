//! Response compression only for requests that ask for it (`Accept-Encoding`).
//!
//! Why not `CompressionLayer` alone: its body type is an enum holding every encoder's state
//! (5.8 KiB), so every answer, compressed or not, is built in that enum and moved through each
//! layer's future — about 2,000 instructions of a proxied request under callgrind. Without an
//! `Accept-Encoding` header tower-http would send the answer as it is anyway, so those requests
//! skip it: same answers, and the compressing path is boxed once into axum's `Body`.

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use axum::{body::Body, extract::Request, response::Response};
use futures::{
    TryFutureExt,
    future::{Either, MapOk},
};
use tower_http::compression::{Compression, CompressionBody, CompressionLayer, Predicate};

/// Layer: [`CompressionLayer`] for requests with an `Accept-Encoding` header, nothing for the
/// others.
#[derive(Clone)]
pub struct CompressIfAskedLayer<P> {
    compression: CompressionLayer<P>,
}

impl<P> CompressIfAskedLayer<P> {
    pub fn new(compression: CompressionLayer<P>) -> Self {
        Self { compression }
    }
}

impl<S: Clone, P: Predicate> tower::Layer<S> for CompressIfAskedLayer<P> {
    type Service = CompressIfAsked<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        CompressIfAsked {
            compressing: self.compression.layer(inner.clone()),
            plain: inner,
        }
    }
}

/// The service of [`CompressIfAskedLayer`].
#[derive(Clone)]
pub struct CompressIfAsked<S, P> {
    compressing: Compression<S, P>,
    plain: S,
}

type Boxed = fn(http::Response<CompressionBody<Body>>) -> Response;

impl<S, P> tower::Service<Request> for CompressIfAsked<S, P>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    P: Predicate,
{
    type Response = Response;
    type Error = Infallible;
    type Future =
        Either<MapOk<<Compression<S, P> as tower::Service<Request>>::Future, Boxed>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Either may be called next; both wrap the same always-ready inner service.
        std::task::ready!(self.compressing.poll_ready(cx))?;
        self.plain.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if req.headers().contains_key(http::header::ACCEPT_ENCODING) {
            let boxed: Boxed = |res| res.map(Body::new);
            Either::Left(self.compressing.call(req).map_ok(boxed))
        } else {
            Either::Right(self.plain.call(req))
        }
    }
}
