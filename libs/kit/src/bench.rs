//! Figures the benches report (feature `bench`, so never in a service binary). Pure, no I/O.

/// The `p` quantile (0 to 1) of an ascending sample, by nearest rank; `None` when empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "index of a percentile in a sample far below 2^52"
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i.min(sorted.len().checked_sub(1)?)).copied()
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_and_the_empty_sample() {
        let sample = [1.0, 2.0, 3.0, 4.0, 5.0];
        for (p, want) in [(0.0, 1.0), (0.5, 3.0), (0.9, 5.0), (0.99, 5.0), (1.0, 5.0)] {
            assert_eq!(percentile(&sample, p), Some(want), "p{p}");
        }
        assert_eq!(percentile(&[], 0.5), None);
    }
}
