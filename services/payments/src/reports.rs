//! Totals over the per (status, type, currency) aggregates of the store: the report of
//! api.md §5.6 and the statistics of §8.2. Pure.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::{
    domain::{STATUSES, TYPES},
    store::payments::Aggregate,
};

/// Counts per status and type (every status and type present, zero when absent), counts and
/// sums per currency, and the overall count and sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub count: i64,
    pub amount: Decimal,
    pub by_status: BTreeMap<&'static str, i64>,
    pub by_type: BTreeMap<&'static str, i64>,
    pub by_currency: BTreeMap<String, (i64, Decimal)>,
}

pub fn totals(rows: &[Aggregate]) -> Totals {
    let mut t = Totals {
        count: 0,
        amount: Decimal::ZERO,
        by_status: STATUSES.iter().map(|s| (*s, 0)).collect(),
        by_type: TYPES.iter().map(|t| (*t, 0)).collect(),
        by_currency: BTreeMap::new(),
    };
    for r in rows {
        t.count += r.count;
        t.amount += r.amount;
        if let Some(c) = t.by_status.get_mut(r.status.as_str()) {
            *c += r.count;
        }
        if let Some(c) = t.by_type.get_mut(r.payment_type.as_str()) {
            *c += r.count;
        }
        let e = t.by_currency.entry(r.currency.clone()).or_default();
        e.0 += r.count;
        e.1 += r.amount;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str, ty: &str, currency: &str, count: i64, cents: i64) -> Aggregate {
        Aggregate {
            status: status.into(),
            payment_type: ty.into(),
            currency: currency.into(),
            count,
            amount: Decimal::new(cents, 2),
        }
    }

    #[test]
    fn empty_has_every_status_and_type_at_zero() {
        let t = totals(&[]);
        assert_eq!(t.count, 0);
        assert_eq!(t.by_status.len(), 5);
        assert!(t.by_status.values().all(|n| *n == 0));
        assert_eq!(t.by_type.len(), 3);
        assert!(t.by_currency.is_empty());
    }

    #[test]
    fn sums_per_dimension() {
        let t = totals(&[
            row("pending", "instant", "USD", 2, 1000),
            row("completed", "instant", "EUR", 1, 250),
            row("completed", "scheduled", "USD", 3, 5),
        ]);
        assert_eq!(t.count, 6);
        assert_eq!(t.amount, Decimal::new(1255, 2));
        assert_eq!(t.by_status["pending"], 2);
        assert_eq!(t.by_status["completed"], 4);
        assert_eq!(t.by_type["instant"], 3);
        assert_eq!(t.by_type["scheduled"], 3);
        assert_eq!(t.by_currency["USD"], (5, Decimal::new(1005, 2)));
        assert_eq!(t.by_currency["EUR"], (1, Decimal::new(250, 2)));
    }
}
