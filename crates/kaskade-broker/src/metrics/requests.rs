//! Request counts and latency histograms per Kafka API, as Kafka's
//! `kafka.network:type=RequestMetrics,name={RequestsPerSec,TotalTimeMs},request=*`.
//!
//! Process-wide, as Kafka's metrics registry is per JVM: the hot path adds to
//! atomics indexed by API key (no lock, no allocation); names and labels are
//! built only at scrape time. Latency is from the handler's start to its
//! response (or error), the part of Kafka's TotalTimeMs the broker controls.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;

use super::text::Exposition;

/// Upper bounds of the latency buckets, in microseconds (0.1 ms .. 10 s).
const BUCKETS_US: [u64; 14] = [
    100, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 10_000_000,
];

/// Room for every API key Kafka has defined so far; keys beyond are not
/// routed (the connection closes on them), so never recorded.
const MAX_API_KEYS: usize = 128;

struct ApiStats {
    /// `buckets[i]` counts requests of at most `BUCKETS_US[i]`; the last slot
    /// those above every bound. Cumulated at scrape time.
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
    errors: AtomicU64,
}

impl ApiStats {
    const fn new() -> Self {
        ApiStats {
            buckets: [const { AtomicU64::new(0) }; BUCKETS_US.len() + 1],
            sum_us: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }
}

static STATS: [ApiStats; MAX_API_KEYS] = [const { ApiStats::new() }; MAX_API_KEYS];

/// Counts one request of `api` that took `elapsed`; `failed` when its handler
/// returned an error or panicked (the connection then closes).
pub fn record(api: ApiKey, elapsed: Duration, failed: bool) {
    let Some(stats) = STATS.get(api as i16 as usize) else { return };
    let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let slot = BUCKETS_US.iter().position(|&b| us <= b).unwrap_or(BUCKETS_US.len());
    // Relaxed: independent counters; a scrape may see one a moment early.
    stats.buckets[slot].fetch_add(1, Ordering::Relaxed);
    stats.sum_us.fetch_add(us, Ordering::Relaxed);
    if failed {
        stats.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Appends the request families, one series set per routed API.
pub(super) fn render(x: &mut Exposition<'_>) {
    let apis: Vec<(ApiKey, String, &ApiStats)> = crate::router::routes()
        .iter()
        .filter_map(|r| STATS.get(r.key as i16 as usize).map(|s| (r.key, format!("{:?}", r.key), s)))
        .collect();
    x.family("kaskade_requests_total", "counter", "Requests handled, per API.");
    for (_, name, s) in &apis {
        let n: u64 = s.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum();
        x.sample("kaskade_requests_total", &[("api", name)], n as f64);
    }
    x.family(
        "kaskade_request_failures_total",
        "counter",
        "Requests whose handler failed (the connection was closed), per API.",
    );
    for (_, name, s) in &apis {
        x.sample("kaskade_request_failures_total", &[("api", name)], s.errors.load(Ordering::Relaxed) as f64);
    }
    x.family(
        "kaskade_request_duration_seconds",
        "histogram",
        "Time from a request's dispatch to its response, per API.",
    );
    for (_, name, s) in &apis {
        let mut cumulative = 0u64;
        for (i, bound) in BUCKETS_US.iter().enumerate() {
            cumulative += s.buckets[i].load(Ordering::Relaxed);
            let le = format!("{}", *bound as f64 / 1e6);
            x.sample("kaskade_request_duration_seconds_bucket", &[("api", name), ("le", &le)], cumulative as f64);
        }
        cumulative += s.buckets[BUCKETS_US.len()].load(Ordering::Relaxed);
        x.sample("kaskade_request_duration_seconds_bucket", &[("api", name), ("le", "+Inf")], cumulative as f64);
        x.sample(
            "kaskade_request_duration_seconds_sum",
            &[("api", name)],
            s.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        );
        x.sample("kaskade_request_duration_seconds_count", &[("api", name)], cumulative as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_lands_in_its_bucket_and_buckets_are_cumulative() {
        // DescribeQuorum: no other unit test sends it.
        record(ApiKey::DescribeQuorum, Duration::from_micros(3_000), false);
        record(ApiKey::DescribeQuorum, Duration::from_secs(60), true);
        let mut out = String::new();
        render(&mut Exposition::new(&mut out));
        for line in [
            "kaskade_requests_total{api=\"DescribeQuorum\"} 2",
            "kaskade_request_failures_total{api=\"DescribeQuorum\"} 1",
            "kaskade_request_duration_seconds_bucket{api=\"DescribeQuorum\",le=\"0.0025\"} 0",
            "kaskade_request_duration_seconds_bucket{api=\"DescribeQuorum\",le=\"0.005\"} 1",
            "kaskade_request_duration_seconds_bucket{api=\"DescribeQuorum\",le=\"10\"} 1",
            "kaskade_request_duration_seconds_bucket{api=\"DescribeQuorum\",le=\"+Inf\"} 2",
            "kaskade_request_duration_seconds_sum{api=\"DescribeQuorum\"} 60.003",
            "kaskade_request_duration_seconds_count{api=\"DescribeQuorum\"} 2",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line}");
        }
    }
}
