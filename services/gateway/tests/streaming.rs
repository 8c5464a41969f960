#![expect(clippy::unwrap_used, reason = "tests")]
//! 50 MiB up and 50 MiB down through the proxy while this process's resident memory is
//! sampled. Alone in its own test binary so no other test's allocations blur the figure.

#[path = "support/upstream.rs"]
mod upstream;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{Json, Router, routing::get};
use futures::StreamExt;
use http::StatusCode;
use payplane_gateway::{Config, testing::TestGateway};
use serde_json::json;
use upstream::{serve_with_streams, upload_chunked};

const MIB: usize = 1024 * 1024;

async fn upstream() -> (String, Arc<AtomicU64>) {
    let app = Router::new().route(
        "/api/payments/ping",
        get(|| async { Json(json!({ "success": true })) }),
    );
    serve_with_streams(app).await
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Samples this process's RSS every 20 ms until stopped; returns the peak.
fn sample_rss() -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut peak = 0;
        while !flag.load(Ordering::SeqCst) {
            peak = peak.max(rss_kib());
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });
    (stop, handle)
}

#[tokio::test]
async fn fifty_mib_up_and_down_stream_through_with_flat_memory() {
    let (url, received) = upstream().await;
    let mut config = Config::for_tests().with_upstream("payments", &url);
    config.body_limit = 64 * MIB;
    let gw = TestGateway::spawn(config).await.unwrap();
    let http = reqwest::Client::new();
    // Warm up pools and allocator.
    http.get(gw.url("/api/payments/ping")).send().await.unwrap();
    let before = rss_kib();
    let (stop, sampler) = sample_rss();

    let res = upload_chunked(&http, gw.url("/api/payments/upload"), 64 * 1024, 800).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(received.load(Ordering::SeqCst), 50 * MIB as u64);

    let res = http
        .get(gw.url("/api/payments/download"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("server").is_none());
    assert!(res.headers().get("x-powered-by").is_none());
    let mut stream = res.bytes_stream();
    let mut n = 0;
    while let Some(c) = stream.next().await {
        n += c.unwrap().len();
    }
    assert_eq!(n, 50 * MIB);

    stop.store(true, Ordering::SeqCst);
    let peak = sampler.join().unwrap();
    let growth_mib = peak.saturating_sub(before) / 1024;
    eprintln!("RSS before {before} KiB, peak {peak} KiB, growth {growth_mib} MiB");
    // 50 MiB went each way; a buffering proxy (or client/upstream) would hold it whole.
    assert!(
        growth_mib < 25,
        "RSS grew by {growth_mib} MiB (before {before} KiB, peak {peak} KiB)"
    );
}
