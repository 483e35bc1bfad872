//! Percentiles of a set of timings.

use serde::Serialize;

/// The distribution of a set of values (seconds).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// How many values.
    pub count: usize,
    /// The smallest.
    pub min: f64,
    /// The median (nearest rank).
    pub p50: f64,
    /// The 95th percentile (nearest rank).
    pub p95: f64,
    /// The largest.
    pub max: f64,
    /// The mean.
    pub mean: f64,
}

/// Summarizes `values`; None when there are none.
pub fn summarize(values: &[f64]) -> Option<Summary> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        // Nearest rank: the smallest value with at least p of the values at or below it.
        let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[index]
    };
    Some(Summary {
        count: sorted.len(),
        min: sorted[0],
        p50: rank(0.50),
        p95: rank(0.95),
        max: sorted[sorted.len() - 1],
        mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        let s = summarize(&values).expect("summary");
        assert_eq!(s.p50, 10.0);
        assert_eq!(s.p95, 19.0);
        assert_eq!(s.max, 20.0);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.count, 20);
    }

    #[test]
    fn one_value_is_every_percentile() {
        let s = summarize(&[0.5]).expect("summary");
        assert_eq!((s.p50, s.p95), (0.5, 0.5));
        assert!(summarize(&[]).is_none());
    }
}
