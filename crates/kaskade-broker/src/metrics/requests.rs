//! Request counts and latency histograms per Kafka API, as Kafka's
//! `kafka.network:type=RequestMetrics,name={RequestsPerSec,TotalTimeMs},request=*`.
//!
//! Process-wide, as Kafka's metrics registry is per JVM: the hot path adds to
//! atomics indexed by API key (no lock, no allocation); names and labels are
//! built only at scrape time. Latency is from the handler's start to its
//! response (or error), the part of Kafka's TotalTimeMs the broker controls.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, ResponseKind};
use kaskade_types::LatencyHistogram;

use super::text::Exposition;

/// Room for every API key Kafka has defined so far; keys beyond are not
/// routed (the connection closes on them), so never recorded.
const MAX_API_KEYS: usize = 128;

struct ApiStats {
    latency: LatencyHistogram,
    failures: AtomicU64,
}

static STATS: [ApiStats; MAX_API_KEYS] =
    [const { ApiStats { latency: LatencyHistogram::new(), failures: AtomicU64::new(0) } }; MAX_API_KEYS];

/// A response whose error codes are counted: any API's, or a Fetch sent
/// with its records as file ranges.
#[derive(Clone, Copy)]
pub enum Answer<'a> {
    Body(&'a ResponseKind),
    Fetch(&'a kafka_protocol::messages::FetchResponse),
}

/// Counts one request of `api` that took `elapsed`; `failed` when its handler
/// returned an error or panicked (the connection then closes); the error
/// codes of its `response`, when there is one (see `errors`).
pub fn record(api: ApiKey, elapsed: Duration, failed: bool, response: Option<Answer<'_>>) {
    let Some(stats) = STATS.get(api as i16 as usize) else { return };
    stats.latency.record(elapsed);
    if failed {
        stats.failures.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(response) = response {
        super::errors::record(api, response);
    }
}

/// Appends the request families, one series set per routed API.
pub(super) fn render(x: &mut Exposition<'_>) {
    let apis: Vec<(String, &ApiStats)> = crate::router::routes()
        .iter()
        .filter_map(|r| STATS.get(r.key as i16 as usize).map(|s| (format!("{:?}", r.key), s)))
        .collect();
    let snapshots: Vec<_> = apis.iter().map(|(_, s)| s.latency.snapshot()).collect();
    x.family("kaskade_requests_total", "counter", "Requests handled, per API.");
    for ((name, _), h) in apis.iter().zip(&snapshots) {
        x.sample("kaskade_requests_total", &[("api", name)], h.count as f64);
    }
    x.family(
        "kaskade_request_failures_total",
        "counter",
        "Requests whose handler failed (the connection was closed), per API.",
    );
    for (name, s) in &apis {
        x.sample("kaskade_request_failures_total", &[("api", name)], s.failures.load(Ordering::Relaxed) as f64);
    }
    x.family(
        "kaskade_request_duration_seconds",
        "histogram",
        "Time from a request's dispatch to its response, per API.",
    );
    for ((name, _), h) in apis.iter().zip(&snapshots) {
        x.histogram("kaskade_request_duration_seconds", &[("api", name)], h);
    }
}

/// The flush threads' group-commit latency (kaskade-log records it).
pub(super) fn render_fsync(x: &mut Exposition<'_>) {
    x.family(
        "kaskade_log_flush_duration_seconds",
        "histogram",
        "Duration of one group commit of the flush threads: fdatasync of every written log, fsync of sealed segments and the directory.",
    );
    x.histogram("kaskade_log_flush_duration_seconds", &[], &kaskade_log::flush_stats::FSYNC_LATENCY.snapshot());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_lands_in_its_bucket_and_buckets_are_cumulative() {
        // DescribeQuorum: no other unit test sends it.
        record(ApiKey::DescribeQuorum, Duration::from_micros(3_000), false, None);
        record(ApiKey::DescribeQuorum, Duration::from_secs(60), true, None);
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
