//! One measured phase of a load generator, shared by the benches: how many requests succeeded
//! and failed, how long the phase took and the latency of each success. The closed loop that
//! fills one spawns its workers on the current runtime; the rest is bookkeeping.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::task::JoinHandle;

use super::percentile;

/// What one worker counted: successes, failures and the successes' latencies in ms.
pub type Tally = (usize, usize, Vec<f64>);

pub struct Phase {
    pub ok: usize,
    pub failed: usize,
    pub elapsed: Duration,
    /// Sorted once the phase is collected.
    pub latencies_ms: Vec<f64>,
}

impl Phase {
    pub fn empty() -> Self {
        Self {
            ok: 0,
            failed: 0,
            elapsed: Duration::ZERO,
            latencies_ms: Vec::new(),
        }
    }

    /// Joins the workers and sums what they counted; `elapsed` runs from `started` to now.
    pub async fn collect(workers: Vec<JoinHandle<Tally>>, started: Instant) -> Self {
        let mut out = Self::empty();
        for w in workers {
            if let Ok((ok, failed, lat)) = w.await {
                out.ok += ok;
                out.failed += failed;
                out.latencies_ms.extend(lat);
            }
        }
        out.elapsed = started.elapsed();
        out.latencies_ms.sort_by(f64::total_cmp);
        out
    }

    /// Adds `other` (a later slice of the same load) to this phase; the caller sorts the
    /// latencies again once every slice is in.
    pub fn absorb(&mut self, other: Self) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.elapsed += other.elapsed;
        self.latencies_ms.extend(other.latencies_ms);
    }

    pub fn rate(&self) -> f64 {
        #[expect(clippy::cast_precision_loss, reason = "request counts are small")]
        let ok = self.ok as f64;
        ok / self.elapsed.as_secs_f64()
    }

    pub fn p(&self, q: f64) -> f64 {
        percentile(&self.latencies_ms, q)
    }

    /// `<name>: N ok, M failed in T s = R<per_second> p50 … ms p99 … ms`, the latencies with
    /// `digits` fraction digits.
    pub fn line(&self, name: &str, per_second: &str, digits: usize) -> String {
        format!(
            "{name}: {} ok, {} failed in {:.1} s = {:.1}{per_second} p50 {:.digits$} ms p99 {:.digits$} ms",
            self.ok,
            self.failed,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.p(0.50),
            self.p(0.99)
        )
    }
}

/// Closed loop: `concurrency` workers each send request `make(worker, i)` (i = 0, 1, … across
/// all workers) as soon as their last one answered, until `total` requests or `deadline`.
/// `make` answers whether the request succeeded.
pub async fn closed_loop<F, Fut>(
    concurrency: usize,
    total: Option<usize>,
    deadline: Option<Instant>,
    make: F,
) -> Phase
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (make, next) = (make.clone(), next.clone());
            tokio::spawn(async move {
                let (mut ok, mut failed, mut lat) = (0, 0, Vec::new());
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if total.is_some_and(|t| i >= t)
                        || deadline.is_some_and(|d| Instant::now() >= d)
                    {
                        break;
                    }
                    let t0 = Instant::now();
                    if make(w, i).await {
                        ok += 1;
                        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                    } else {
                        failed += 1;
                    }
                }
                (ok, failed, lat)
            })
        })
        .collect();
    Phase::collect(workers, started).await
}
