//! Percentiles of latency samples.

use serde::{Deserialize, Serialize};

/// The nearest-rank percentile `p` (0..=100) of `sorted` (ascending), or
/// `None` when there are no samples.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    // Nearest rank: the smallest value with at least p% of samples at or below it.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A latency distribution in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    /// Summarises `samples` (any order; NaNs are dropped), `None` when empty.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let count = sorted.len();
        if count == 0 {
            return None;
        }
        Some(Summary {
            count,
            p50: percentile(&sorted, 50.0)?,
            p95: percentile(&sorted, 95.0)?,
            p99: percentile(&sorted, 99.0)?,
            max: sorted[count - 1],
            mean: sorted.iter().sum::<f64>() / count as f64,
        })
    }

    /// `p50 / p95 / p99 ms` for the table.
    pub fn short(&self) -> String {
        format!("{} / {} / {} ms", ms(self.p50), ms(self.p95), ms(self.p99))
    }
}

/// A millisecond figure with sensible precision.
pub fn ms(v: f64) -> String {
    if v.abs() < 10.0 {
        format!("{v:.2}")
    } else if v.abs() < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
    }

    #[test]
    fn summary_sorts_and_drops_nans() {
        let s = Summary::of(&[3.0, f64::NAN, 1.0, 2.0, 4.0]).unwrap();
        assert_eq!(s.count, 4);
        assert_eq!(s.p50, 2.0);
        assert_eq!(s.p99, 4.0);
        assert_eq!(s.max, 4.0);
        assert_eq!(s.mean, 2.5);
        assert!(Summary::of(&[]).is_none());
        assert_eq!(s.short(), "2.00 / 4.00 / 4.00 ms");
        assert_eq!(ms(123.4), "123");
        assert_eq!(ms(12.34), "12.3");
    }
}
