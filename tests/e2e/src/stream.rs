//! The payment stream the failure tests run while they break things: clients that create
//! payments one after another through the gateway (retrying each with its `Idempotency-Key`
//! until a 2xx, as a careful client would), what they lived through per phase of the test, and
//! the checks afterwards — one payment per key that got a 2xx, each audited once.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use serde_json::json;
use tokio::{sync::Mutex, task::JoinHandle};

use crate::{Api, Platform, Session};

/// What clients saw during one phase of a test (before any fault, then one per fault).
#[derive(Debug, Default, Clone)]
pub struct Phase {
    pub statuses: BTreeMap<u16, usize>,
    /// First and last failed answer (a 5xx): the outage as clients lived it.
    pub outage: Option<(Instant, Instant)>,
}

impl Phase {
    /// Answers that were neither a success nor the spec's 409 for a key still in flight.
    pub fn failed(&self) -> usize {
        self.statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s) && **s != 409)
            .map(|(_, n)| n)
            .sum()
    }
}

#[derive(Debug, Default)]
pub struct Outcomes {
    /// Idempotency key → payment id, for every key that finally got a 2xx.
    pub created: BTreeMap<String, String>,
    /// Keys left behind on 409 `IDEMPOTENCY_IN_PROGRESS`: the request in flight when a fault
    /// hit holds its key for 60 s (api.md §5.8); it never committed, so it has no payment.
    pub abandoned: Vec<String>,
    /// Requests that failed below HTTP (the gateway itself never goes away).
    pub transport_errors: usize,
    /// Index into `phases` the clients record into now.
    pub phase: usize,
    pub phases: Vec<Phase>,
}

impl Outcomes {
    fn current(&mut self) -> &mut Phase {
        let i = self.phase;
        if self.phases.len() <= i {
            self.phases.resize(i + 1, Phase::default());
        }
        &mut self.phases[i]
    }

    /// Every status seen in any phase.
    pub fn statuses(&self) -> BTreeMap<u16, usize> {
        let mut all = BTreeMap::new();
        for p in &self.phases {
            for (s, n) in &p.statuses {
                *all.entry(*s).or_default() += n;
            }
        }
        all
    }
}

/// Clients streaming payment creations from `sender` to `recipient` until stopped.
pub struct PaymentStream {
    pub out: Arc<Mutex<Outcomes>>,
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<()>>,
}

impl PaymentStream {
    pub fn start(api: &Api, sender: &Session, recipient: &str, prefix: &str, n: usize) -> Self {
        let out = Arc::new(Mutex::new(Outcomes::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..n)
            .map(|i| {
                tokio::spawn(client(
                    api.clone(),
                    sender.clone(),
                    recipient.to_owned(),
                    format!("{prefix}-c{i}"),
                    stop.clone(),
                    out.clone(),
                ))
            })
            .collect();
        Self { out, stop, clients }
    }

    /// Clients record into phase `i` from now on.
    pub async fn enter_phase(&self, i: usize) {
        self.out.lock().await.phase = i;
    }

    /// Waits until `more` further payments were created, or fails after `within`.
    pub async fn progress(&self, more: usize, within: Duration) -> anyhow::Result<()> {
        let target = self.out.lock().await.created.len() + more;
        let deadline = Instant::now() + within;
        while self.out.lock().await.created.len() < target {
            ensure!(Instant::now() < deadline, "no progress within {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Stops the clients (each finishes the payment it is on) and returns what they saw.
    pub async fn stop(self) -> anyhow::Result<Outcomes> {
        self.stop.store(true, Ordering::Relaxed);
        for c in self.clients {
            tokio::time::timeout(Duration::from_secs(60), c)
                .await
                .context("a client did not stop")??;
        }
        Ok(std::mem::take(&mut *self.out.lock().await))
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
        let body = json!({"type": "instant", "amount": "1.00", "description": format!("stream {key}"),
                          "recipientId": recipient});
        loop {
            let reply = api.create_payment(&sender.access_token, &body, &key).await;
            let mut out = out.lock().await;
            match reply {
                Ok(reply) => {
                    let phase = out.current();
                    *phase.statuses.entry(reply.status.as_u16()).or_default() += 1;
                    if reply.status.is_server_error() {
                        let now = Instant::now();
                        phase.outage = Some(phase.outage.map_or((now, now), |(f, _)| (f, now)));
                    }
                    if reply.status.is_success() {
                        let id = reply.data()["id"].as_str().unwrap_or_default().to_owned();
                        out.created.insert(key.clone(), id);
                        break;
                    }
                    if reply.code() == "IDEMPOTENCY_IN_PROGRESS" {
                        out.abandoned.push(key.clone());
                        break;
                    }
                }
                Err(_) => out.transport_errors += 1,
            }
            drop(out);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The people of a stream test: the CUSTOMER who sends the payments, the VENDOR who receives
/// them, and the platform's admin, whose audit log is checked afterwards.
pub struct Parties {
    pub sender: Session,
    pub recipient: Session,
    pub admin: Session,
}

impl Parties {
    /// Registers `<tag>s-<run>@example.com` ("<label> Sender", device `d1`) and
    /// `<tag>r-<run>@example.com` ("<label> Recipient", device `d2`), and signs the admin in.
    pub async fn register(
        api: &Api,
        platform: &Platform,
        tag: &str,
        label: &str,
    ) -> anyhow::Result<Self> {
        let run = &platform.run_id;
        let sender_email = format!("{tag}s-{run}@example.com");
        let recipient_email = format!("{tag}r-{run}@example.com");
        let sender_name = format!("{label} Sender");
        let recipient_name = format!("{label} Recipient");
        Ok(Self {
            sender: api
                .register(&sender_email, &sender_name, "CUSTOMER", "d1")
                .await?,
            recipient: api
                .register(&recipient_email, &recipient_name, "VENDOR", "d2")
                .await?,
            admin: api.login(&platform.admin_email, "a1").await?,
        })
    }

    /// After the stream: clients met no transport error, and it lost and duplicated nothing
    /// ([`one_payment_per_key`], then [`audited_once`] waiting up to `within`).
    pub async fn nothing_lost(
        &self,
        platform: &Platform,
        api: &Api,
        out: &Outcomes,
        within: Duration,
    ) -> anyhow::Result<()> {
        ensure!(
            out.transport_errors == 0,
            "{} transport errors",
            out.transport_errors
        );
        one_payment_per_key(platform, &self.sender, out).await?;
        let waited = audited_once(api, &self.admin, out, within).await?;
        println!(
            "all {} payments stored once and audited once ({waited:?} after the stream)",
            out.created.len()
        );
        Ok(())
    }
}

/// Every key that got a 2xx has its own payment, and `sender` has no payment that no key
/// produced.
pub async fn one_payment_per_key(
    platform: &Platform,
    sender: &Session,
    out: &Outcomes,
) -> anyhow::Result<()> {
    let ids: BTreeSet<&String> = out.created.values().collect();
    ensure!(ids.len() == out.created.len(), "two keys share a payment");
    let url = platform
        .database("payments")
        .context("no payments database")?;
    let pool = payplane_db::connect(&url, 2).await?;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM payments WHERE sender_id = $1")
        .bind(uuid::Uuid::parse_str(&sender.user_id)?)
        .fetch_one(&pool)
        .await?;
    ensure!(
        usize::try_from(stored)? == out.created.len(),
        "{stored} payments stored for {} keys with a 2xx: payments without a 2xx, or lost ones",
        out.created.len()
    );
    Ok(())
}

/// Waits (up to `within`) until every created payment's `payments.payment.created` is in
/// admin's audit log, then checks each is there exactly once. Returns how long it waited.
pub async fn audited_once(
    api: &Api,
    admin: &Session,
    out: &Outcomes,
    within: Duration,
) -> anyhow::Result<Duration> {
    let wanted: BTreeSet<&str> = out.created.values().map(String::as_str).collect();
    let started = Instant::now();
    let counts = loop {
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut page = 1;
        loop {
            let path =
                format!("/api/admin/audit-logs?action=PAYMENT_CREATED&limit=100&page={page}");
            let Ok(reply) = api.get(&path, &admin.access_token).await else {
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
        if wanted.iter().all(|id| counts.contains_key(*id)) || started.elapsed() > within {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // How many are off tells a late consumer (many missing) from a lost event (one or two).
    let missing = wanted
        .iter()
        .filter(|id| !counts.contains_key(**id))
        .count();
    for id in &wanted {
        let n = counts.get(*id).copied().unwrap_or(0);
        if n != 1 {
            bail!(
                "payment {id} has {n} audit entries ({missing} of {} payments without one {:?} \
                 after the stream)",
                wanted.len(),
                started.elapsed()
            );
        }
    }
    Ok(started.elapsed())
}
