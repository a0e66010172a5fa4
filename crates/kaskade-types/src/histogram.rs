//! A latency histogram cheap enough for hot paths: fixed buckets of
//! atomics, recorded without a lock or an allocation, read as Prometheus'
//! cumulative buckets at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds (0.1 ms .. 10 s).
pub const BUCKET_BOUNDS_US: [u64; 14] = [
    100, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 10_000_000,
];

/// Durations recorded into [`BUCKET_BOUNDS_US`] plus an overflow bucket.
pub struct LatencyHistogram {
    /// `buckets[i]` counts durations of at most `BUCKET_BOUNDS_US[i]` (and
    /// above the previous bound); the last one those above every bound.
    buckets: [AtomicU64; BUCKET_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

/// A histogram read at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    /// (upper bound in seconds, observations at most that), ascending.
    pub cumulative: Vec<(f64, u64)>,
    /// Every observation (the `+Inf` bucket).
    pub count: u64,
    /// Their sum in seconds.
    pub sum_seconds: f64,
}

impl LatencyHistogram {
    /// An empty histogram (usable in a `static`).
    pub const fn new() -> Self {
        LatencyHistogram {
            buckets: [const { AtomicU64::new(0) }; BUCKET_BOUNDS_US.len() + 1],
            sum_us: AtomicU64::new(0),
        }
    }

    /// Adds one observation.
    pub fn record(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let slot = BUCKET_BOUNDS_US.iter().position(|&b| us <= b).unwrap_or(BUCKET_BOUNDS_US.len());
        // Relaxed: independent counters; a reader may see one a moment early.
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The cumulative view Prometheus wants.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0u64;
        let cumulative = BUCKET_BOUNDS_US
            .iter()
            .enumerate()
            .map(|(i, bound)| {
                running += self.buckets[i].load(Ordering::Relaxed);
                (*bound as f64 / 1e6, running)
            })
            .collect();
        let count = running + self.buckets[BUCKET_BOUNDS_US.len()].load(Ordering::Relaxed);
        HistogramSnapshot { cumulative, count, sum_seconds: self.sum_us.load(Ordering::Relaxed) as f64 / 1e6 }
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_counts_are_cumulative() {
        let h = LatencyHistogram::new();
        h.record(Duration::from_micros(100));
        h.record(Duration::from_micros(3_000));
        h.record(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.cumulative[0], (0.0001, 1));
        assert_eq!(s.cumulative[3], (0.0025, 1));
        assert_eq!(s.cumulative[4], (0.005, 2));
        assert_eq!(s.cumulative.last(), Some(&(10.0, 2)));
        assert!((s.sum_seconds - 60.0031).abs() < 1e-9);
    }
}
