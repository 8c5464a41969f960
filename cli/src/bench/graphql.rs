//! `payplane bench graphql`: the same read — a customer's 100 payments with both parties, every
//! field of the REST list item —
//! through the gateway as REST (`GET /api/payments?limit=100`, streamed through) and as
//! GraphQL (`payments(limit: 100) { … sender { … } recipient { … } }`, resolved by the gateway
//! from that same REST call), in one run on one machine: auth and payments in-process on
//! throwaway databases, the gateway in front. Closed loop with concurrent clients, the two
//! sides alternating in one-second slices; the last line compares them.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};

use super::phase::{Phase, closed_loop};

const PASSWORD: &str = "BenchPassword123!";
/// Every field REST's list item has, so both sides carry the same content.
const QUERY: &str = "{ payments(limit: 100) { payments { id senderId recipientId amount currency status type description metadata pspTransactionId pspStatus failureReason scheduledFor completedAt createdAt updatedAt sender { id email name } recipient { id email name } } pagination { page limit total totalPages } } }";

#[derive(Args, Clone, Copy)]
pub struct GraphqlBenchArgs {
    /// Payments in the listed page (1..=100).
    #[arg(long, default_value_t = 100)]
    payments: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Measured seconds of each side, taken as alternating one-second slices (after a
    /// one-second warm-up of each).
    #[arg(long, default_value_t = 6)]
    seconds: u64,
}

/// One request of a phase: sends it and checks the answer holds the whole page.
#[derive(Clone)]
enum Read {
    Rest,
    Graphql,
}

async fn read_once(http: &reqwest::Client, base: &str, token: &str, kind: &Read, n: usize) -> bool {
    let req = match kind {
        Read::Rest => http.get(format!("{base}/api/payments?limit=100")),
        Read::Graphql => http
            .post(format!("{base}/graphql"))
            .json(&json!({ "query": QUERY })),
    };
    let Ok(res) = req.bearer_auth(token).send().await else {
        return false;
    };
    if !res.status().is_success() {
        return false;
    }
    let Ok(body) = res.json::<Value>().await else {
        return false;
    };
    let list = match kind {
        Read::Rest => body.pointer("/data/payments"),
        Read::Graphql => body.pointer("/data/payments/payments"),
    };
    list.and_then(Value::as_array)
        .is_some_and(|l| l.len() == n && l.iter().all(|p| p.pointer("/recipient/name").is_some()))
}

async fn phase(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    kind: Read,
    n: usize,
    concurrency: usize,
    length: Duration,
) -> Phase {
    // Shared, so that a request costs the load generator no copy of the strings.
    let shared = Arc::new((http.clone(), base.to_owned(), token.to_owned(), kind));
    let deadline = Instant::now() + length;
    closed_loop(concurrency, None, Some(deadline), move |_, _| {
        let shared = Arc::clone(&shared);
        async move {
            let (http, base, token, kind) = &*shared;
            read_once(http, base, token, kind, n).await
        }
    })
    .await
}

async fn register(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    role: &str,
) -> anyhow::Result<(String, String)> {
    let res: Value = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": email, "password": PASSWORD, "name": format!("Bench {role}"), "role": role}))
        .send()
        .await?
        .json()
        .await?;
    let token = res
        .pointer("/data/accessToken")
        .and_then(Value::as_str)
        .with_context(|| format!("registering {email}: {res}"))?;
    let id = res
        .pointer("/data/user/id")
        .and_then(Value::as_str)
        .context("user id")?;
    Ok((token.to_owned(), id.to_owned()))
}

pub async fn run(args: GraphqlBenchArgs) -> anyhow::Result<()> {
    let n = args.payments.clamp(1, 100);
    let services = payplane_payments::testing::TestApp::spawn().await?;
    let config = payplane_gateway::Config::for_tests()
        .with_upstream("auth", &services.auth.base_url)
        .with_upstream("payments", &services.base_url);
    let gateway = payplane_gateway::testing::TestGateway::spawn(config).await?;
    let base = gateway.base_url.clone();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let (customer_email, vendor_email) = (
        format!("bench-gql-c-{}@example.com", &run_id[..8]),
        format!("bench-gql-v-{}@example.com", &run_id[..8]),
    );
    let (token, _) = register(&http, &base, &customer_email, "CUSTOMER").await?;
    let (_, vendor) = register(&http, &base, &vendor_email, "VENDOR").await?;
    for i in 0..n {
        let status = http
            .post(format!("{base}/api/payments"))
            .bearer_auth(&token)
            .json(
                &json!({"type": "instant", "amount": format!("{}.50", i + 1),
                          "description": format!("Bench payment {i}"), "recipientId": vendor}),
            )
            .send()
            .await?
            .status();
        if status.as_u16() != 201 {
            bail!("creating payment {i}: {status}");
        }
    }
    for kind in [Read::Rest, Read::Graphql] {
        if !read_once(&http, &base, &token, &kind, n).await {
            bail!("the list read does not return {n} payments with parties");
        }
    }
    // Warm-up, then alternating one-second slices of each, so load from anything else on
    // the machine weighs on both sides alike.
    let slice = Duration::from_secs(1);
    let c = args.concurrency;
    for kind in [Read::Rest, Read::Graphql] {
        let _ = phase(&http, &base, &token, kind, n, c, slice).await;
    }
    let (mut rest, mut gql) = (Phase::empty(), Phase::empty());
    for _ in 0..args.seconds.max(1) {
        rest.absorb(phase(&http, &base, &token, Read::Rest, n, c, slice).await);
        gql.absorb(phase(&http, &base, &token, Read::Graphql, n, c, slice).await);
    }
    rest.latencies_ms.sort_by(f64::total_cmp);
    gql.latencies_ms.sort_by(f64::total_cmp);
    println!("{}", rest.line("rest", " req/s", 2));
    println!("{}", gql.line("graphql", " req/s", 2));
    println!(
        "{n} payments with sender and recipient per read; {} concurrent clients; auth, payments, gateway and load generator share this machine's {} cores",
        args.concurrency,
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    let ratio = if rest.rate() > 0.0 {
        gql.rate() / rest.rate()
    } else {
        0.0
    };
    println!(
        "graphql: {:.1} req/s p99 {:.2} ms ratio {ratio:.2} of rest",
        gql.rate(),
        gql.p(0.99)
    );
    gateway.stop().await;
    services.stop().await;
    Ok(())
}
