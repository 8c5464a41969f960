//! Reconcile metrics (count, errors by reason, duration histogram) rendered in the
//! Prometheus text format. Pure, no I/O.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

const BUCKETS: [f64; 8] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
struct PerKind {
    reconciles: u64,
    errors: BTreeMap<String, u64>,
    buckets: [u64; BUCKETS.len()],
    sum: f64,
}

/// Counters per kind.
#[derive(Default)]
pub struct Metrics {
    kinds: Mutex<BTreeMap<&'static str, PerKind>>,
    api_errors: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl Metrics {
    /// Records one reconcile of `kind`.
    pub fn observe(&self, kind: &'static str, took: Duration, error: Option<&str>) {
        let mut kinds = self.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        let k = kinds.entry(kind).or_default();
        k.reconciles += 1;
        let secs = took.as_secs_f64();
        k.sum += secs;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                k.buckets[i] += 1;
            }
        }
        if let Some(reason) = error {
            *k.errors.entry(reason.to_owned()).or_default() += 1;
        }
    }

    /// Records one failed API call outside a reconcile: `source` is `watch` (a controller's
    /// list or watch) or `event` (publishing an Event).
    pub fn api_error(&self, source: &'static str, reason: &'static str) {
        *self
            .api_errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((source, reason))
            .or_default() += 1;
    }

    /// Failed reconciles and other API calls with `reason`, over every kind.
    pub fn errors_with_reason(&self, reason: &str) -> u64 {
        let reconciles: u64 = self
            .kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter_map(|k| k.errors.get(reason))
            .sum();
        let others: u64 = self
            .api_errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|((_, r), _)| *r == reason)
            .map(|(_, n)| n)
            .sum();
        reconciles + others
    }

    /// Reconciles of `kind` so far.
    pub fn reconciles(&self, kind: &str) -> u64 {
        self.kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(kind)
            .map_or(0, |k| k.reconciles)
    }

    /// Reconciles of every kind so far.
    pub fn total_reconciles(&self) -> u64 {
        self.kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|k| k.reconciles)
            .sum()
    }

    /// The Prometheus exposition text.
    pub fn render(&self) -> String {
        let kinds = self.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        let reconciles = "payplane_operator_reconciles_total";
        header(&mut out, reconciles, "counter", "Reconciles per kind.");
        for (kind, k) in kinds.iter() {
            let _ = writeln!(out, "{reconciles}{{kind=\"{kind}\"}} {}", k.reconciles);
        }
        let errors = "payplane_operator_reconcile_errors_total";
        let help = "Failed reconciles per kind and reason.";
        header(&mut out, errors, "counter", help);
        for (kind, k) in kinds.iter() {
            for (reason, n) in &k.errors {
                let _ = writeln!(out, "{errors}{{kind=\"{kind}\",reason=\"{reason}\"}} {n}");
            }
        }
        let api = "payplane_operator_api_errors_total";
        let help = "Failed lists, watches and Event writes by reason.";
        header(&mut out, api, "counter", help);
        let api_errors = self.api_errors.lock();
        for ((source, reason), n) in api_errors.unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = writeln!(out, "{api}{{source=\"{source}\",reason=\"{reason}\"}} {n}");
        }
        let duration = "payplane_operator_reconcile_duration_seconds";
        header(&mut out, duration, "histogram", "Reconcile duration.");
        for (kind, k) in kinds.iter() {
            let bounds = BUCKETS.iter().map(ToString::to_string);
            let counts = k.buckets.iter().copied();
            for (le, n) in bounds
                .zip(counts)
                .chain([("+Inf".to_owned(), k.reconciles)])
            {
                let _ = writeln!(out, "{duration}_bucket{{kind=\"{kind}\",le=\"{le}\"}} {n}");
            }
            let _ = writeln!(out, "{duration}_sum{{kind=\"{kind}\"}} {}", k.sum);
            let _ = writeln!(out, "{duration}_count{{kind=\"{kind}\"}} {}", k.reconciles);
        }
        out
    }
}

/// The `# HELP` and `# TYPE` lines of the metric `name`.
fn header(out: &mut String, name: &str, type_: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {type_}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_errors_and_histogram() {
        let m = Metrics::default();
        m.observe("Queue", Duration::from_millis(20), None);
        m.observe("Queue", Duration::from_millis(2), Some("RabbitMQ"));
        let text = m.render();
        assert!(text.contains("payplane_operator_reconciles_total{kind=\"Queue\"} 2"));
        assert!(text.contains(
            "payplane_operator_reconcile_errors_total{kind=\"Queue\",reason=\"RabbitMQ\"} 1"
        ));
        assert!(text.contains(
            "payplane_operator_reconcile_duration_seconds_bucket{kind=\"Queue\",le=\"0.005\"} 1"
        ));
        assert_eq!(m.reconciles("Queue"), 2);
    }
}
