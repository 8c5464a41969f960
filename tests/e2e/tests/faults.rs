//! Faults under load (issue: reliability): while clients stream payment creations through the
//! gateway, (1) Redis is restarted and comes back empty, (2) PostgreSQL is restarted, (3)
//! RabbitMQ is restarted. Afterwards every key that got a 2xx has exactly one payment, every
//! payment's created event reached admin's audit log once, and a revoked token was refused at
//! every moment; the outage clients saw is printed per fault. This binary holds one test, so
//! cargo runs it alone: restarting the machine's PostgreSQL and RabbitMQ disturbs no other test.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use http::Method;
use payplane_e2e::{Api, Platform, PlatformOptions, Session, servers};
use serde_json::json;
use tokio::sync::Mutex;

const NODE: &str = env!("CARGO_BIN_EXE_payplane-e2e-node");
const CLIENTS: usize = 4;
const FAULTS: [&str; 3] = ["redis", "postgres", "rabbitmq"];

/// What clients lived through during one fault.
#[derive(Default, Debug)]
struct Phase {
    statuses: BTreeMap<u16, usize>,
    /// First and last failed answer (non-2xx other than the spec's 409).
    outage: Option<(Instant, Instant)>,
}

#[derive(Default)]
struct Outcomes {
    created: BTreeMap<String, String>,
    abandoned: Vec<String>,
    transport_errors: usize,
    /// Index into `phases`: 0 = before any fault, then one per fault.
    phase: usize,
    phases: Vec<Phase>,
    /// Answers to the revoked token: anything but 401/503 is a hole.
    revoked_answers: BTreeMap<u16, usize>,
}

impl Outcomes {
    fn phase(&mut self) -> &mut Phase {
        let i = self.phase;
        while self.phases.len() <= i {
            self.phases.push(Phase::default());
        }
        &mut self.phases[i]
    }
}

async fn client(
    api: Api,
    sender: Session,
    recipient: String,
    prefix: String,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Outcomes>>,
) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("{prefix}-{n}");
        let body = json!({"type": "instant", "amount": "1.00", "description": format!("fault {key}"),
                          "recipientId": recipient});
        loop {
            let reply = api
                .send(
                    Method::POST,
                    "/api/payments",
                    Some(&sender.access_token),
                    Some(&body),
                    &[("Idempotency-Key", &key)],
                )
                .await;
            let mut out = out.lock().await;
            match reply {
                Ok(reply) => {
                    let status = reply.status.as_u16();
                    let phase = out.phase();
                    *phase.statuses.entry(status).or_default() += 1;
                    if reply.status.is_success() {
                        let id = reply.data()["id"].as_str().unwrap_or_default().to_owned();
                        out.created.insert(key.clone(), id);
                        break;
                    }
                    if reply.code() == "IDEMPOTENCY_IN_PROGRESS" {
                        out.abandoned.push(key.clone());
                        break;
                    }
                    let now = Instant::now();
                    phase.outage = Some(phase.outage.map_or((now, now), |(f, _)| (f, now)));
                }
                Err(_) => out.transport_errors += 1,
            }
            drop(out);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Presents a logged-out session's token over and over: it must never be accepted.
async fn revoked_watch(api: Api, token: String, stop: Arc<AtomicBool>, out: Arc<Mutex<Outcomes>>) {
    while !stop.load(Ordering::Relaxed) {
        if let Ok(reply) = api.get("/api/payments?limit=1", &token).await {
            *out.lock()
                .await
                .revoked_answers
                .entry(reply.status.as_u16())
                .or_default() += 1;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_postgres_and_rabbitmq_restarts_under_load_lose_nothing_and_admit_no_revoked_token() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut redis = servers::PrivateRedis::start().unwrap();
    let options = PlatformOptions {
        extra_env: vec![("REDIS_URL".into(), redis.url())],
        ..PlatformOptions::default()
    };
    let platform = Platform::start(Path::new(NODE), options).await.unwrap();
    let api = Api::new(&platform.gateway_url);
    let run = platform.run_id.clone();
    let sender = api
        .register(
            &format!("ks-{run}@example.com"),
            "Fault Sender",
            "CUSTOMER",
            "d1",
        )
        .await
        .unwrap();
    let recipient = api
        .register(
            &format!("kr-{run}@example.com"),
            "Fault Recipient",
            "VENDOR",
            "d2",
        )
        .await
        .unwrap();
    let admin = api.login(&platform.admin_email, "a1").await.unwrap();
    let revoked = api
        .login(&format!("ks-{run}@example.com"), "d9")
        .await
        .unwrap();
    api.post("/api/auth/logout", Some(&revoked.access_token), &json!({}))
        .await
        .unwrap()
        .expect_status(200)
        .unwrap();
    api.get("/api/payments", &revoked.access_token)
        .await
        .unwrap()
        .expect_status(401)
        .unwrap();

    let out = Arc::new(Mutex::new(Outcomes::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tokio::spawn(client(
                api.clone(),
                sender.clone(),
                recipient.user_id.clone(),
                format!("{run}-c{i}"),
                stop.clone(),
                out.clone(),
            ))
        })
        .collect();
    tasks.push(tokio::spawn(revoked_watch(
        api.clone(),
        revoked.access_token.clone(),
        stop.clone(),
        out.clone(),
    )));

    let mut report = Vec::new();
    for (i, fault) in FAULTS.iter().enumerate() {
        tokio::time::sleep(Duration::from_secs(2)).await;
        out.lock().await.phase = i + 1;
        let started = Instant::now();
        match *fault {
            "redis" => redis.restart().unwrap(),
            "postgres" => tokio::task::spawn_blocking(servers::restart_postgres)
                .await
                .unwrap()
                .unwrap(),
            _ => tokio::task::spawn_blocking(servers::restart_rabbitmq)
                .await
                .unwrap()
                .unwrap(),
        }
        let restarted = started.elapsed();
        // Recovered: new payments are created again after the server is back.
        let before = out.lock().await.created.len();
        let deadline = Instant::now() + Duration::from_secs(60);
        while out.lock().await.created.len() < before + CLIENTS {
            assert!(
                Instant::now() < deadline,
                "no progress after the {fault} restart"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        report.push((*fault, started, restarted));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .unwrap()
            .unwrap();
    }
    let out = out.lock().await;
    for (i, (fault, started, restarted)) in report.iter().enumerate() {
        let none = Phase::default();
        let phase = out.phases.get(i + 1).unwrap_or(&none);
        let failed: usize = phase
            .statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s) && **s != 409)
            .map(|(_, n)| n)
            .sum();
        match phase.outage {
            Some((first, last)) => println!(
                "fault {fault}: server restarted in {restarted:?}; clients saw failures for {:?} \
                 (from {:?} after the restart began), {failed} failed answers {:?}",
                last - first,
                first.saturating_duration_since(*started),
                phase.statuses
            ),
            None => println!(
                "fault {fault}: server restarted in {restarted:?}; clients saw no failure {:?}",
                phase.statuses
            ),
        }
        for status in phase.statuses.keys() {
            assert!(
                matches!(status, 200 | 201 | 409 | 503),
                "{fault}: unexpected status {status}: {:?}",
                phase.statuses
            );
        }
    }
    println!("revoked token answers: {:?}", out.revoked_answers);
    assert!(
        out.revoked_answers.keys().all(|s| matches!(s, 401 | 503)),
        "a revoked token was accepted: {:?}",
        out.revoked_answers
    );
    assert!(out.revoked_answers.get(&401).copied().unwrap_or(0) > 10);
    assert_eq!(out.transport_errors, 0);
    assert!(out.abandoned.len() <= CLIENTS * FAULTS.len());

    // Every key its own payment; no payment without a 2xx.
    let ids: BTreeSet<&String> = out.created.values().collect();
    assert_eq!(ids.len(), out.created.len(), "two keys share a payment");
    let pool = payplane_db::connect(&platform.database("payments").unwrap(), 2)
        .await
        .unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM payments WHERE sender_id = $1")
        .bind(uuid::Uuid::parse_str(&sender.user_id).unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        usize::try_from(stored).unwrap(),
        out.created.len(),
        "payments without a 2xx, or lost ones"
    );

    // Every payment's created event in admin's audit log exactly once.
    let wanted: BTreeSet<&str> = out.created.values().map(String::as_str).collect();
    let started = Instant::now();
    let counts = loop {
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut page = 1;
        loop {
            let Ok(reply) = api
                .get(
                    &format!("/api/admin/audit-logs?action=PAYMENT_CREATED&limit=100&page={page}"),
                    &admin.access_token,
                )
                .await
            else {
                break;
            };
            let entries = reply.data()["data"].as_array().cloned().unwrap_or_default();
            for e in &entries {
                if let Some(id) = e["resourceId"].as_str() {
                    *counts.entry(id.to_owned()).or_default() += 1;
                }
            }
            if entries.len() < 100 {
                break;
            }
            page += 1;
        }
        if wanted.iter().all(|id| counts.contains_key(*id))
            || started.elapsed() > Duration::from_secs(60)
        {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for id in &wanted {
        assert_eq!(
            counts.get(*id).copied().unwrap_or(0),
            1,
            "audit entries for payment {id}"
        );
    }
    println!(
        "{} payments across the three faults, each once and audited once ({:?} after the stream)",
        wanted.len(),
        started.elapsed()
    );
}
