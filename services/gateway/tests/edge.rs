#![expect(clippy::unwrap_used, reason = "tests")]
//! The proxy and the edge over real sockets: streaming, upstream failures, rate limits (real
//! Redis), CORS, security headers, TLS with certificate replacement.

#[path = "support/upstream.rs"]
mod upstream;

use std::{
    sync::{Arc, atomic::AtomicU64},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::Request,
    routing::{any, get, post},
};
use http::StatusCode;
use payplane_gateway::{Config, testing::TestGateway, tls};
use serde_json::{Value, json};
use upstream::{serve_with_streams, upload_chunked};

const MIB: usize = 1024 * 1024;

/// A small upstream: echo of what it received, a slow route, a 50 MiB sink and source.
async fn upstream() -> (String, Arc<AtomicU64>) {
    let app = Router::new()
        .route(
            "/api/payments/echo",
            any(|req: Request| async move {
                let headers: serde_json::Map<String, Value> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), Value::from(v.to_str().unwrap_or(""))))
                    .collect();
                Json(json!({ "success": true, "data": { "path": req.uri().to_string(), "headers": headers } }))
            }),
        )
        .route(
            "/api/payments/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
    serve_with_streams(app).await
}

async fn gateway(tweak: impl FnOnce(&mut Config)) -> (TestGateway, Arc<AtomicU64>) {
    let (url, received) = upstream().await;
    let mut config = Config::for_tests().with_upstream("payments", &url);
    tweak(&mut config);
    (TestGateway::spawn(config).await.unwrap(), received)
}

/// `GET /api/payments/echo` through the gateway from a page of `origin`.
async fn get_echo_from(
    http: &reqwest::Client,
    gw: &TestGateway,
    origin: &str,
) -> reqwest::Response {
    http.get(gw.url("/api/payments/echo"))
        .header("origin", origin)
        .send()
        .await
        .unwrap()
}

/// The `Retry-After` seconds of a refusal.
fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_direct_clients_forwarding_headers_are_not_believed() {
    // No trusted proxies: the peer is the client, whatever it claims.
    let (gw, _) = gateway(|_| {}).await;
    let res = reqwest::Client::new()
        .get(gw.url("/api/payments/echo"))
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("strict-transport-security").is_none());
    let body: Value = res.json().await.unwrap();
    let h = &body["data"]["headers"];
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
}

#[tokio::test]
async fn forwarding_headers_are_set_and_internal_paths_never_forwarded() {
    let (gw, _) = gateway(|c| c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    let http = reqwest::Client::new();
    let res = http
        .get(gw.url("/api/payments/echo?x=1"))
        .header("x-forwarded-for", "203.0.113.9, 10.1.1.1")
        .header("x-service-token", "stolen")
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-request-id"], "req-42");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    let h = &body["data"]["headers"];
    assert_eq!(body["data"]["path"], "/api/payments/echo?x=1");
    // 10.1.1.1 is not trusted, so it is the client.
    assert_eq!(h["x-forwarded-for"], "10.1.1.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-request-id"], "req-42");
    assert!(h["traceparent"].as_str().unwrap().starts_with("00-"));
    assert!(h.get("x-service-token").is_none());

    for path in [
        "/api/payments/internal/payments/x/parties",
        "/internal/users",
        "/api/unknown/x",
    ] {
        let res = http.get(gw.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "NOT_FOUND");
    }
}

#[tokio::test]
async fn upstream_down_is_502_slow_is_504_and_a_failing_one_is_503_fast() {
    let (gw, _) = gateway(|c| {
        c.upstream.response_timeout = Duration::from_millis(300);
        c.upstream.failure_threshold = 3;
        // Nothing listens on port 9 (discard) on loopback: connection refused.
        c.upstreams.retain(|(n, _)| *n != "admin");
        c.upstreams.push(("admin", "http://127.0.0.1:9".into()));
    })
    .await;
    let http = reqwest::Client::new();

    let res = http.get(gw.url("/api/payments/slow")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "GATEWAY_TIMEOUT");
    assert!(
        body["error"]["requestId"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );

    for _ in 0..3 {
        let res = http.get(gw.url("/api/admin/users")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "BAD_GATEWAY");
    }
    let started = Instant::now();
    let res = http.get(gw.url("/api/admin/users")).send().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(100));
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry = retry_after(&res);
    assert!((1..=30).contains(&retry));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(
        body["error"]["details"],
        json!({ "service": "admin", "reason": "circuit_open" })
    );
    // The other upstream is unaffected.
    let res = http.get(gw.url("/api/payments/echo")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn rate_limit_is_per_real_client_ip_with_headers() {
    let (gw, _) = gateway(|c| {
        c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        c.rate_limits.enabled = true;
        c.rate_limits.api.burst = 3;
        c.rate_limits.api.per_minute = 6;
    })
    .await;
    let http = reqwest::Client::new();
    let call = |ip: &'static str| {
        http.get(gw.url("/api/payments/echo"))
            .header("x-forwarded-for", ip)
            .send()
    };
    for left in (0..3).rev() {
        let res = call("203.0.113.1").await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()["ratelimit-remaining"],
            left.to_string().as_str()
        );
        assert_eq!(res.headers()["ratelimit-limit"], "6");
        assert_eq!(res.headers()["ratelimit-policy"], "6;w=60;burst=3");
    }
    let res = call("203.0.113.1").await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry = retry_after(&res);
    assert!((1..=10).contains(&retry), "retry-after {retry}");
    assert_eq!(res.headers()["ratelimit-remaining"], "0");
    let reset: u64 = res.headers()["ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset >= 20, "reset {reset}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMIT_EXCEEDED");
    // Another client behind the same proxy has its own bucket.
    let res = call("203.0.113.2").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["ratelimit-remaining"], "2");
    // Health is exempt.
    let res = http
        .get(gw.url("/health/live"))
        .header("x-forwarded-for", "203.0.113.1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn cors_preflight_allowed_and_refused() {
    let (gw, _) = gateway(|c| {
        c.rate_limits.enabled = true;
        c.rate_limits.api.burst = 1;
    })
    .await;
    let http = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        http.request(http::Method::OPTIONS, gw.url("/api/payments/echo"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .send()
    };
    // Preflights are not counted: several pass with a burst of 1.
    for _ in 0..3 {
        let res = preflight("http://localhost:4200").await.unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let h = res.headers();
        assert_eq!(h["access-control-allow-origin"], "http://localhost:4200");
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert_eq!(h["access-control-max-age"], "3600");
        assert!(
            h["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains("PATCH")
        );
        assert!(
            h["access-control-allow-headers"]
                .to_str()
                .unwrap()
                .contains("Idempotency-Key")
        );
    }
    let res = preflight("https://evil.example").await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ORIGIN_NOT_ALLOWED");
    // An actual request from a disallowed origin is refused too; an allowed one gets the headers.
    let res = get_echo_from(&http, &gw, "https://evil.example").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = get_echo_from(&http, &gw, "http://localhost:3000").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    assert!(
        res.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("RateLimit-Remaining")
    );
}

/// With rate limits off the edge decides without an await (`edge::layer::EdgeFuture`): the
/// upstream's answer, a 413 and a preflight still get the CORS and security headers.
#[tokio::test]
async fn without_rate_limits_answers_still_get_cors_and_security_headers() {
    let (gw, _) = gateway(|c| c.rate_limits.enabled = false).await;
    let http = reqwest::Client::new();
    let origin = "http://localhost:3000";
    let check = |res: &reqwest::Response, status: StatusCode| {
        assert_eq!(res.status(), status);
        let h = res.headers();
        assert_eq!(h["access-control-allow-origin"], origin, "{status}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{status}");
        assert_eq!(h["x-frame-options"], "DENY", "{status}");
        assert_eq!(h["cache-control"], "no-store", "{status}");
        assert!(h.get("ratelimit-remaining").is_none(), "{status}");
    };
    let res = get_echo_from(&http, &gw, origin).await;
    check(&res, StatusCode::OK);
    let res = http
        .post(gw.url("/api/payments/upload"))
        .header("origin", origin)
        .body(vec![0u8; MIB + 1])
        .send()
        .await
        .unwrap();
    check(&res, StatusCode::PAYLOAD_TOO_LARGE);
    let res = http
        .request(http::Method::OPTIONS, gw.url("/api/payments/echo"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    check(&res, StatusCode::NO_CONTENT);
    // A disallowed origin is refused at the edge, with the security headers too.
    let res = get_echo_from(&http, &gw, "https://evil.example").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn declared_oversized_body_is_413_and_json_is_compressed() {
    let (gw, _) = gateway(|_| {}).await;
    let http = reqwest::Client::new();
    let res = http
        .post(gw.url("/api/payments/upload"))
        .body(vec![0u8; MIB + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Chunked (no Content-Length) is cut off while streaming.
    let res = upload_chunked(&http, gw.url("/api/payments/upload"), 256 * 1024, 8).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let res = http
        .get(gw.url("/api/payments/echo"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-encoding"], "gzip");
    // Without `Accept-Encoding` the same answer comes as it is (the uncompressed path).
    let res = http.get(gw.url("/api/payments/echo")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("content-encoding").is_none());
}

fn tls_client(cert_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap()])
        .build()
        .unwrap()
}

#[tokio::test]
async fn tls_and_a_replaced_certificate_is_served_without_restart() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("gw-tls-{}", uuid::Uuid::new_v4().simple()));
    let (cert, key) = tls::generate_self_signed(&dir).unwrap();
    let first = std::fs::read_to_string(&cert).unwrap();
    let (gw, _) = gateway(|c| c.tls = Some((cert.clone(), key.clone()))).await;
    let url = format!("https://localhost:{}/api/payments/echo", gw.addr.port());

    let res = tls_client(&first).get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.version(), http::Version::HTTP_2);
    assert!(
        res.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );

    // Replace the pair on disk (key first, so a poll never sees a new cert with the old key for long).
    let (new_cert, new_key) = tls::self_signed_pem(&["localhost"]).unwrap();
    std::fs::write(&key, &new_key).unwrap();
    std::fs::write(&cert, &new_cert).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tls_client(&new_cert).get(&url).send().await {
            Ok(res) => {
                assert_eq!(res.status(), StatusCode::OK);
                break;
            }
            Err(e) => assert!(
                Instant::now() < deadline,
                "new certificate never served: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The old certificate is no longer what the server presents.
    assert!(tls_client(&first).get(&url).send().await.is_err());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn health_docs_and_unknown_routes() {
    let (gw, _) = gateway(|_| {}).await;
    let http = reqwest::Client::new();
    let res = http.get(gw.url("/health")).send().await.unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["service"], "gateway");
    let res = http
        .get(gw.url("/api-docs/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(
        doc["x-unavailable-services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "auth")
    );
    let res = http.get(gw.url("/api-docs/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    // Under /api an unknown route is the gateway's 404; every other path belongs to the
    // console (not running here, so the proxy answers 502).
    let res = http.get(gw.url("/api/nope")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = http.get(gw.url("/nope")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    let res = http.get(gw.url("/ws")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UPGRADE_REQUIRED);
}

#[tokio::test]
async fn several_reuseport_workers_proxy_and_stop_gracefully() {
    let (gw, _) = gateway(|c| c.workers = 3).await;
    // No connection reuse: each request is a new connection, so the kernel spreads them over
    // the three listeners and every worker runtime (with its own upstream pool) answers.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let requests = (0..30).map(|i| {
        let (http, url) = (http.clone(), gw.url(&format!("/api/payments/echo?i={i}")));
        async move {
            let res = http.get(url).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["data"]["path"], format!("/api/payments/echo?i={i}"));
            assert!(
                body["data"]["headers"]["traceparent"]
                    .as_str()
                    .unwrap()
                    .starts_with("00-")
            );
        }
    });
    futures::future::join_all(requests).await;
    let addr = gw.addr;
    tokio::time::timeout(Duration::from_secs(10), gw.stop())
        .await
        .expect("every worker runtime stops");
    // Every listener is closed once stopped.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// An upstream that answers before reading the request body (a 401 for a missing token, as
/// every service does) must reach the client as that answer, not as a 502 from a broken pipe.
/// The upstream runs on the kit's server like every payplane service.
#[tokio::test]
async fn an_early_upstream_answer_is_forwarded_not_a_502() {
    let app = Router::new().route(
        "/api/payments",
        post(|| async {
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"success": false, "error": {"code": "UNAUTHORIZED"}})),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(payplane_kit::server::serve(
        listener,
        app,
        std::future::pending(),
        Duration::from_secs(1),
    ));
    let config = Config::for_tests().with_upstream("payments", &url);
    let gw = TestGateway::spawn(config).await.unwrap();
    let http = reqwest::Client::new();
    for size in [900 * 1024, 100 * 1024] {
        for _ in 0..10 {
            let r = http
                .post(gw.url("/api/payments"))
                .header("content-type", "application/json")
                .body(vec![b' '; size])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{size} bytes");
        }
    }
}
