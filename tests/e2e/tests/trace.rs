//! One create-payment request through the gateway yields one trace that contains the gateway,
//! payments, the outbox relay and the admin consumer spans, exported over OTLP to an
//! in-process receiver.

#![allow(
    clippy::too_many_lines,
    reason = "each test reads top to bottom as one scenario"
)]

use std::{collections::HashMap, path::Path, time::Duration};

use http::Method;
use payplane_e2e::{
    Api, Platform, PlatformOptions,
    otlp::{CollectedSpan, Collector},
};
use serde_json::json;

const NODE: &str = env!("CARGO_BIN_EXE_payplane-e2e-node");
const SERVER: i32 = 2;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

fn find<'a>(
    spans: &'a [CollectedSpan],
    service: &str,
    kind: i32,
    name_part: &str,
) -> Option<&'a CollectedSpan> {
    spans
        .iter()
        .find(|s| s.service == service && s.kind == kind && s.name.contains(name_part))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_payment_is_one_trace_through_gateway_payments_relay_and_admin() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let collector = Collector::start().await.unwrap();
    let options = PlatformOptions {
        extra_env: vec![
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                collector.endpoint.clone(),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
        ],
        ..PlatformOptions::default()
    };
    let platform = Platform::start(Path::new(NODE), options).await.unwrap();
    let api = Api::new(&platform.gateway_url);
    let run = &platform.run_id;
    let customer = api
        .register(
            &format!("tc-{run}@example.com"),
            "Trace Customer",
            "CUSTOMER",
            "d1",
        )
        .await
        .unwrap();
    let vendor = api
        .register(
            &format!("tv-{run}@example.com"),
            "Trace Vendor",
            "VENDOR",
            "d2",
        )
        .await
        .unwrap();

    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let client_span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    let traceparent = format!("00-{trace_id}-{client_span}-01");
    api.send(
        Method::POST,
        "/api/payments",
        Some(&customer.access_token),
        Some(
            &json!({"type": "instant", "amount": "10.00", "description": "traced",
                     "recipientId": vendor.user_id}),
        ),
        &[("traceparent", &traceparent)],
    )
    .await
    .unwrap()
    .expect_status(201)
    .unwrap();

    let spans = api
        .eventually(
            Duration::from_secs(20),
            "the four spans of the trace",
            || async {
                let spans = collector.trace(&trace_id);
                let complete = find(&spans, "gateway", SERVER, "POST /api/payments").is_some()
                    && find(&spans, "payments", SERVER, "/api/payments").is_some()
                    && find(&spans, "payments", PRODUCER, "payments.payment.created").is_some()
                    && find(&spans, "admin", CONSUMER, "payments.payment.created").is_some();
                Ok(complete.then_some(spans))
            },
        )
        .await
        .unwrap_or_else(|e| {
            let all = collector.all();
            let mine: Vec<_> = all.iter().filter(|s| s.trace_id == trace_id).collect();
            let services: std::collections::BTreeSet<_> = all
                .iter()
                .map(|s| (s.service.as_str(), s.kind, s.name.as_str()))
                .collect();
            panic!(
                "{e}\nthis trace: {mine:#?}\nall spans seen ({}): {services:#?}",
                all.len()
            )
        });

    // One tree: every one of those spans leads back, parent by parent, to the client's span.
    let by_id: HashMap<&str, &CollectedSpan> =
        spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    for span in [
        find(&spans, "gateway", SERVER, "POST /api/payments").unwrap(),
        find(&spans, "payments", SERVER, "/api/payments").unwrap(),
        find(&spans, "payments", PRODUCER, "payments.payment.created").unwrap(),
        find(&spans, "admin", CONSUMER, "payments.payment.created").unwrap(),
    ] {
        let mut current = span;
        let mut hops = 0;
        while current.parent_span_id != client_span {
            current = by_id
                .get(current.parent_span_id.as_str())
                .unwrap_or_else(|| {
                    panic!("{} has a parent outside the trace: {spans:#?}", span.name)
                });
            hops += 1;
            assert!(hops < 20, "parent loop");
        }
    }
    let consumer = find(&spans, "admin", CONSUMER, "payments.payment.created").unwrap();
    let producer = find(&spans, "payments", PRODUCER, "payments.payment.created").unwrap();
    assert_eq!(
        consumer.parent_span_id, producer.span_id,
        "the consumer continues the relay's publish"
    );
    println!(
        "trace {trace_id}: {} spans from {:?}",
        spans.len(),
        spans
            .iter()
            .map(|s| s.service.as_str())
            .collect::<std::collections::BTreeSet<_>>()
    );
}
