//! Shared by the gateway's proxy tests: an upstream on a random port whose streaming routes
//! (a sink that counts an upload, a 50 MiB download) show whether the proxy streams.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use axum::{
    Json, Router,
    body::Body,
    routing::{get, post},
};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::json;

/// `count` chunks of `size` bytes, produced as they are read (never one buffer).
pub fn chunked(size: usize, count: usize) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    let chunk = Bytes::from(vec![7u8; size]);
    futures::stream::iter((0..count).map(move |_| Ok(chunk.clone())))
}

/// Streams `count` chunks of `size` bytes to the upload route at `url` (chunked: no
/// `Content-Length`, so nothing on the way can size the body in advance).
pub async fn upload_chunked(
    http: &reqwest::Client,
    url: String,
    size: usize,
    count: usize,
) -> reqwest::Response {
    http.post(url)
        .body(reqwest::Body::wrap_stream(chunked(size, count)))
        .send()
        .await
        .unwrap()
}

/// Serves `app` plus `POST /api/payments/upload` (the bytes it received go into the returned
/// counter) and `GET /api/payments/download` (50 MiB, with `server` and `x-powered-by`
/// headers the edge must drop) on a random port; returns the base URL and the counter.
pub async fn serve_with_streams(app: Router) -> (String, Arc<AtomicU64>) {
    let received = Arc::new(AtomicU64::new(0));
    let sink = received.clone();
    let app = app
        .route(
            "/api/payments/upload",
            post(move |body: Body| {
                let sink = sink.clone();
                async move {
                    let mut stream = body.into_data_stream();
                    let mut n = 0u64;
                    while let Some(chunk) = stream.next().await {
                        n += chunk.unwrap().len() as u64;
                    }
                    sink.store(n, Ordering::SeqCst);
                    Json(json!({ "success": true, "data": { "bytes": n } }))
                }
            }),
        )
        .route(
            "/api/payments/download",
            get(|| async {
                let headers = [
                    ("content-type", "application/octet-stream"),
                    ("server", "upstream/1.0"),
                    ("x-powered-by", "tests"),
                ];
                (headers, Body::from_stream(chunked(64 * 1024, 800)))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), received)
}
