//! The kit's serving behaviour over real sockets: graceful shutdown lets in-flight requests
//! finish and stops accepting; the stack answers routing errors with the envelope.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::time::Duration;

use axum::{Router, routing::get};
use payplane_kit::{
    health::{Check, Health},
    http::{StackOptions, stack},
    server::serve,
};
use tokio::{net::TcpListener, sync::oneshot};

fn app() -> Router {
    let routes = Router::new()
        .route(
            "/api/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(600)).await;
                "done"
            }),
        )
        .route("/api/items", get(|| async { "items" }));
    let health = Health::new("test", "0", || {
        Box::pin(async {
            vec![Check {
                name: "database",
                up: false,
                required: true,
            }]
        })
    });
    stack(routes, health, &StackOptions::default())
}

async fn start() -> (
    String,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        app(),
        async {
            let _ = rx.await;
        },
        Duration::from_secs(5),
    ));
    (base, tx, task)
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_and_stops_accepting() {
    let (base, stop, task) = start().await;
    let http = reqwest::Client::new();
    let slow = tokio::spawn({
        let (http, url) = (http.clone(), format!("{base}/api/slow"));
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    stop.send(()).unwrap();
    assert_eq!(
        slow.await.unwrap(),
        "done",
        "the in-flight request completes"
    );
    task.await.unwrap().unwrap();
    assert!(
        reqwest::Client::new()
            .get(format!("{base}/api/items"))
            .send()
            .await
            .is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn routing_errors_use_the_envelope() {
    let (base, _stop, _task) = start().await;
    let http = reqwest::Client::new();
    let r = http.post(format!("{base}/api/items")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET,HEAD");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
    assert!(body["error"]["requestId"].is_string());
    let r = http.get(format!("{base}/api/items/")).send().await.unwrap();
    assert_eq!(
        r.text().await.unwrap(),
        "items",
        "a trailing slash is ignored"
    );
    let r = http.head(format!("{base}/api/items")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let r = http
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["details"]["checks"]["database"], "down");
    let r = http
        .get(format!("{base}/nowhere"))
        .header("x-request-id", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-correlation-id"], "abc");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["message"], "Route GET /nowhere not found");
    assert_eq!(body["error"]["requestId"], "abc");
}
