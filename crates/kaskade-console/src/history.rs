//! Throughput and lag over the last minutes, sampled by the server.
//!
//! A background task asks the broker, every `interval`, for the end offset
//! of every partition (ListOffsets), the size of every partition
//! (DescribeLogDirs) and the committed offsets of every group (ListGroups,
//! OffsetFetch), all through Kafka APIs, so the figures are the cluster's.
//! Rates are differences between consecutive samples: bytes and records in
//! (log growth), records out (offsets committed by consumer groups, the
//! consumption Kafka APIs can see). Each series is a ring buffer of
//! [`POINTS`] samples, so memory stays bounded whatever the uptime.
//!
//! Invariant: a rate is never negative (a log shrinking through retention or
//! deletion, or a group's offsets reset backwards, counts as zero).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

use crate::error::ConsoleError;
use crate::kafka::Kafka;
use crate::view;

/// Samples kept per series (at the default 5 s interval: 10 minutes).
pub const POINTS: usize = 120;
/// Groups whose lag history is kept; past this, new groups get none.
const MAX_GROUPS: usize = 1000;

/// One point of the cluster's throughput.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Throughput {
    /// Unix time of the sample, ms.
    pub time_ms: i64,
    pub bytes_in_per_sec: f64,
    pub records_in_per_sec: f64,
    pub records_out_per_sec: f64,
}

/// One point of a group's total lag.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct LagPoint {
    pub time_ms: i64,
    pub lag: i64,
}

/// What one sampling pass saw.
#[derive(Debug, Default, Clone)]
pub struct Sample {
    pub time_ms: i64,
    /// Sum of partition sizes, bytes.
    pub bytes: i64,
    /// End offset sum per topic.
    pub topic_end: HashMap<String, i64>,
    /// Sum of committed offsets per group, and its total lag.
    pub groups: HashMap<String, (i64, i64)>,
}

#[derive(Debug, Default)]
struct State {
    last: Option<Sample>,
    throughput: VecDeque<Throughput>,
    /// Records per second per topic, from the last two samples.
    topic_rate: HashMap<String, f64>,
    lag: HashMap<String, VecDeque<LagPoint>>,
}

/// The sampled history (shared by the sampler and the API handlers).
#[derive(Debug, Default)]
pub struct History {
    state: Mutex<State>,
}

fn push<T>(ring: &mut VecDeque<T>, item: T) {
    if ring.len() == POINTS {
        ring.pop_front();
    }
    ring.push_back(item);
    debug_assert!(ring.len() <= POINTS);
}

fn rate(now: i64, before: i64, secs: f64) -> f64 {
    (now - before).max(0) as f64 / secs
}

impl History {
    /// Adds a sample: rates against the previous one, lag points.
    pub fn record(&self, sample: Sample) {
        let mut st = self.state.lock();
        if let Some(prev) = st.last.take() {
            let secs = (sample.time_ms - prev.time_ms) as f64 / 1000.0;
            if secs > 0.0 {
                // Topics and groups that vanished would look like negative
                // progress; compare only what both samples have.
                let rec_in: i64 =
                    sample.topic_end.iter().filter_map(|(t, e)| prev.topic_end.get(t).map(|p| (e - p).max(0))).sum();
                let rec_out: i64 =
                    sample.groups.iter().filter_map(|(g, (c, _))| prev.groups.get(g).map(|p| (c - p.0).max(0))).sum();
                let point = Throughput {
                    time_ms: sample.time_ms,
                    bytes_in_per_sec: rate(sample.bytes, prev.bytes, secs),
                    records_in_per_sec: rec_in as f64 / secs,
                    records_out_per_sec: rec_out as f64 / secs,
                };
                push(&mut st.throughput, point);
                st.topic_rate = sample
                    .topic_end
                    .iter()
                    .map(|(t, e)| (t.clone(), rate(*e, prev.topic_end.get(t).copied().unwrap_or(*e), secs)))
                    .collect();
            }
        }
        st.lag.retain(|g, _| sample.groups.contains_key(g));
        for (group, (_, lag)) in &sample.groups {
            if !st.lag.contains_key(group) && st.lag.len() >= MAX_GROUPS {
                continue;
            }
            push(st.lag.entry(group.clone()).or_default(), LagPoint { time_ms: sample.time_ms, lag: *lag });
        }
        st.last = Some(sample);
    }

    pub fn throughput(&self) -> Vec<Throughput> {
        self.state.lock().throughput.iter().copied().collect()
    }

    /// Records per second into `topic` over the last sampling interval.
    pub fn topic_rate(&self, topic: &str) -> Option<f64> {
        self.state.lock().topic_rate.get(topic).copied()
    }

    pub fn lag(&self, group: &str) -> Vec<LagPoint> {
        self.state.lock().lag.get(group).map(|r| r.iter().copied().collect()).unwrap_or_default()
    }
}

/// Unix time now, ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// One sampling pass over Kafka APIs.
pub async fn take_sample(kafka: &Kafka) -> Result<Sample, ConsoleError> {
    let time_ms = now_ms();
    let topics = view::topics(kafka).await?;
    let ends = view::end_offsets(kafka, &topics).await?;
    let mut topic_end: HashMap<String, i64> = HashMap::new();
    for ((topic, _), end) in &ends {
        *topic_end.entry(topic.clone()).or_default() += *end;
    }
    // One copy of each partition (its leader's): replicas are not traffic in.
    let bytes = view::leader_sizes(&topics, &view::log_dirs(kafka).await?).values().sum();
    let mut groups = HashMap::new();
    for g in view::group_ids(kafka).await? {
        let committed = view::committed_offsets(kafka, &g).await?;
        let sum = committed.values().sum();
        let lag = committed.iter().map(|(tp, c)| ends.get(tp).map_or(0, |e| (e - c).max(0))).sum();
        groups.insert(g, (sum, lag));
    }
    Ok(Sample { time_ms, bytes, topic_end, groups })
}

/// Samples every `interval` until the broker stops.
pub async fn run(kafka: Kafka, history: std::sync::Arc<History>, interval: Duration) {
    let broker = kafka.broker().clone();
    loop {
        match take_sample(&kafka).await {
            Ok(s) => history.record(s),
            Err(e) => tracing::debug!(error = %e, "console sample failed"),
        }
        tokio::select! {
            _ = broker.stopping() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: i64, bytes: i64, end: i64, committed: i64, lag: i64) -> Sample {
        Sample {
            time_ms: t,
            bytes,
            topic_end: HashMap::from([("a".to_string(), end)]),
            groups: HashMap::from([("g".to_string(), (committed, lag))]),
        }
    }

    #[test]
    fn rates_are_differences_over_the_interval() {
        let h = History::default();
        h.record(sample(0, 1000, 10, 0, 10));
        assert!(h.throughput().is_empty(), "one sample gives no rate");
        h.record(sample(2000, 3000, 30, 20, 10));
        let t = h.throughput();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].bytes_in_per_sec, 1000.0);
        assert_eq!(t[0].records_in_per_sec, 10.0);
        assert_eq!(t[0].records_out_per_sec, 10.0);
        assert_eq!(h.topic_rate("a"), Some(10.0));
        assert_eq!(h.lag("g").iter().map(|p| p.lag).collect::<Vec<_>>(), vec![10, 10]);
    }

    #[test]
    fn shrinking_logs_and_resets_count_as_zero() {
        let h = History::default();
        h.record(sample(0, 5000, 50, 50, 0));
        h.record(sample(1000, 100, 40, 10, 30));
        let t = h.throughput()[0];
        assert_eq!((t.bytes_in_per_sec, t.records_in_per_sec, t.records_out_per_sec), (0.0, 0.0, 0.0));
    }

    #[test]
    fn rings_are_bounded_and_vanished_groups_dropped() {
        let h = History::default();
        for i in 0..(POINTS as i64 + 10) {
            h.record(sample(i * 1000, i, i, i, i));
        }
        assert_eq!(h.throughput().len(), POINTS);
        assert_eq!(h.lag("g").len(), POINTS);
        assert_eq!(h.lag("g").last().map(|p| p.lag), Some(POINTS as i64 + 9));
        h.record(Sample { time_ms: 1_000_000, ..Default::default() });
        assert!(h.lag("g").is_empty());
    }
}
