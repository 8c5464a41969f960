#![expect(clippy::unwrap_used, reason = "tests")]
//! The proxy's upstream connections (`proxy/pool.rs`): kept alive and reused, replaced when the
//! upstream closes them while idle, and requests sent in origin-form with the caller's `Host`.
//! The upstream is a bare hyper server that numbers its connections and records, for each
//! request, the connection it came on (the gateway's own start-up calls, such as fetching the
//! upstream's OpenAPI document, come over other clients and are left out by path).

use std::{
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use payplane_gateway::{Config, testing::TestGateway};

/// What the upstream saw: connections accepted, and each request's connection, target and
/// `Host`.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    requests: Mutex<Vec<(usize, String, String)>>,
}

impl Seen {
    /// The proxied pings: (connection, target, host).
    fn pings(&self) -> Vec<(usize, String, String)> {
        let requests = self.requests.lock().unwrap();
        requests
            .iter()
            .filter(|(_, target, _)| target.starts_with("/api/payments/ping"))
            .cloned()
            .collect()
    }

    fn ping_connections(&self) -> usize {
        let mut connections: Vec<usize> = self.pings().iter().map(|(c, _, _)| *c).collect();
        connections.sort_unstable();
        connections.dedup();
        connections.len()
    }
}

/// An upstream that answers `ok` and drops each connection `idle_close` after accepting it
/// (the way a server's idle timeout closes a kept-alive connection).
async fn upstream(idle_close: Duration) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let connection_id = counter.connections.fetch_add(1, Ordering::SeqCst);
            let seen = counter.clone();
            let service = service_fn(move |req: Request<Incoming>| {
                let host = req
                    .headers()
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                seen.requests
                    .lock()
                    .unwrap()
                    .push((connection_id, req.uri().to_string(), host));
                async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok")))) }
            });
            tokio::spawn(async move {
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                // Dropping the connection future closes the socket without a `Connection:
                // close` header, as an idle timeout does.
                let _ = tokio::time::timeout(idle_close, connection).await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

/// `GET url`, expecting 200 and the upstream's `ok`; returns the body.
async fn get_ok(http: &reqwest::Client, url: &str) -> String {
    let res = http.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

/// The upstream (closing connections after `idle_close`) behind a gateway, and a client.
async fn gateway_to_upstream(idle_close: Duration) -> (TestGateway, reqwest::Client, Arc<Seen>) {
    let (url, seen) = upstream(idle_close).await;
    let config = Config::for_tests().with_upstream("payments", &url);
    let gw = TestGateway::spawn(config).await.unwrap();
    (gw, reqwest::Client::new(), seen)
}

#[tokio::test]
async fn sequential_requests_reuse_one_upstream_connection_in_origin_form() {
    let (gw, http, seen) = gateway_to_upstream(Duration::from_secs(60)).await;
    for i in 0..20 {
        let body = get_ok(&http, &gw.url(&format!("/api/payments/ping?n={i}"))).await;
        assert_eq!(body, "ok");
    }
    assert_eq!(
        seen.ping_connections(),
        1,
        "one thread, one request at a time: one kept-alive connection"
    );
    let pings = seen.pings();
    assert_eq!(pings.len(), 20);
    let gateway_host = format!("{}", gw.addr);
    for (i, (_, target, host)) in pings.iter().enumerate() {
        assert_eq!(target, &format!("/api/payments/ping?n={i}"), "origin-form");
        assert_eq!(host, &gateway_host, "the caller's Host is passed on");
    }
    // The API skips axum's router (`api_first`) but is still counted under the route template.
    let metrics = get_ok(&http, &gw.url("/metrics")).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("http_requests_total{")
                && l.contains(r#"route="/api/{service}/{*rest}""#)
                && l.contains(r#"status="200""#)),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_is_replaced() {
    let (gw, http, seen) = gateway_to_upstream(Duration::from_millis(150)).await;
    assert_eq!(get_ok(&http, &gw.url("/api/payments/ping")).await, "ok");
    // Well past the upstream's idle close.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(get_ok(&http, &gw.url("/api/payments/ping")).await, "ok");
    let pings = seen.pings();
    assert_eq!(pings.len(), 2);
    assert_ne!(
        pings[0].0, pings[1].0,
        "the second ping came on a new connection"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_host_header_the_connection_header_names_is_replaced_by_the_upstreams() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (gw, _http, seen) = gateway_to_upstream(Duration::from_secs(60)).await;
    // `Connection: host` makes `Host` hop-by-hop: it is stripped, and the upstream still needs
    // one (HTTP/1.1 requires it).
    let mut socket = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    socket
        .write_all(
            b"GET /api/payments/ping HTTP/1.1\r\nHost: caller.example\r\nConnection: host, close\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let pings = seen.pings();
    assert_eq!(pings.len(), 1);
    let upstream_host = pings[0].2.clone();
    assert!(
        !upstream_host.is_empty() && upstream_host != "caller.example",
        "the upstream's own authority, not an empty or stripped Host: {upstream_host:?}"
    );
    gw.stop().await;
}
