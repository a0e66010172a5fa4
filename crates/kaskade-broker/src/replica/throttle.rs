//! Replication throttles (Kafka's ReplicationQuotaManager, KIP-73), what
//! `kafka-reassign-partitions --throttle` sets so a reassignment's copying
//! does not starve clients:
//! - the broker configs `leader.replication.throttled.rate` and
//!   `follower.replication.throttled.rate` (bytes per second, dynamic, per
//!   broker or cluster-wide; unset = no limit) cap what a leader sends to
//!   throttled followers and what a follower fetches for throttled
//!   partitions;
//! - the topic configs `leader.replication.throttled.replicas` and
//!   `follower.replication.throttled.replicas` name the throttled replicas,
//!   `partition:broker` pairs or `*`: a leader throttles partition `p` if
//!   `p:<its id>` is in the leader list, a follower if `p:<its id>` is in
//!   the follower list.
//!
//! As in Kafka only replicas outside the ISR are throttled (a caught-up
//! follower is never slowed down, so acks=all latency does not suffer),
//! and the check is "has the quota been exceeded": a fetch that finds it
//! exceeded gets (leader) or asks for (follower) no records of the
//! throttled partitions, a fetch that finds it not exceeded takes what it
//! reads, and its bytes are charged afterwards.
//!
//! The rate is measured as Kafka's quota sensors measure it (a `Rate` over
//! a `SampledStat`): `replication.quota.window.num` samples (11) of
//! `replication.quota.window.size.seconds` each (1 s); a sample starts at
//! the first charge after the previous one's span ended, and one older than
//! all the samples' span is forgotten. The rate is the bytes of the kept
//! samples over the time since the oldest one began, but never over less
//! than `num - 1` whole windows: so a quiet quota lets a burst of
//! `(num - 1) × size × rate` through (10 s worth by default) before it
//! holds the rate, exactly as Kafka's replication throttle does. The quota
//! is exceeded while that rate is above the configured one.

use std::collections::VecDeque;
use std::sync::Arc;

use kaskade_meta::Image;
use kaskade_types::{Clock, NodeId};
use parking_lot::Mutex;

pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
pub const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

/// `replication.quota.window.num` samples of
/// `replication.quota.window.size.seconds` each (Kafka's defaults: 11, 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaWindow {
    samples: usize,
    window_ms: i64,
}

impl QuotaWindow {
    /// From the two configs (each at least 1, as the config keys check; a
    /// smaller value is taken as 1).
    pub fn new(samples: i64, window_seconds: i64) -> QuotaWindow {
        let samples = usize::try_from(samples.max(1)).unwrap_or(usize::MAX).min(1 << 16);
        QuotaWindow { samples, window_ms: window_seconds.clamp(1, i64::MAX / 1_000_000) * 1000 }
    }
}

impl Default for QuotaWindow {
    fn default() -> Self {
        QuotaWindow::new(11, 1)
    }
}

/// Bytes charged within one sample, which began at `start_ms`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    start_ms: i64,
    bytes: f64,
}

/// A rate of bytes per second measured over a few samples (Kafka's `Rate`
/// on a `SampledStat`; see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct SampledRate {
    window: QuotaWindow,
    /// Oldest first; at most `window.samples`.
    samples: VecDeque<Sample>,
}

impl SampledRate {
    pub fn new(window: QuotaWindow) -> SampledRate {
        SampledRate { window, samples: VecDeque::new() }
    }

    /// Forgets the samples that began a whole span (every sample's window)
    /// ago or earlier.
    fn purge(&mut self, now_ms: i64) {
        let span = self.window.window_ms.saturating_mul(self.window.samples as i64);
        while self.samples.front().is_some_and(|s| s.start_ms.saturating_add(span) <= now_ms) {
            self.samples.pop_front();
        }
    }

    /// Charges `bytes` taken at `now_ms`.
    pub fn record(&mut self, bytes: u64, now_ms: i64) {
        self.purge(now_ms);
        let window_ms = self.window.window_ms;
        let current_ended = self.samples.back().is_none_or(|s| now_ms >= s.start_ms.saturating_add(window_ms));
        if current_ended {
            if self.samples.len() == self.window.samples {
                self.samples.pop_front();
            }
            self.samples.push_back(Sample { start_ms: now_ms, bytes: 0.0 });
        }
        if let Some(current) = self.samples.back_mut() {
            current.bytes += bytes as f64;
        }
        debug_assert!(self.samples.len() <= self.window.samples, "at most window.num samples");
    }

    /// Bytes per second at `now_ms`.
    pub fn measure(&mut self, now_ms: i64) -> f64 {
        self.purge(now_ms);
        let total: f64 = self.samples.iter().map(|s| s.bytes).sum();
        let oldest = self.samples.front().map_or(now_ms, |s| s.start_ms);
        // A clock that moved back counts as no time.
        let mut elapsed = now_ms.saturating_sub(oldest).max(0);
        let window_ms = self.window.window_ms;
        let min_windows = self.window.samples as i64 - 1;
        let full = elapsed / window_ms;
        if full < min_windows {
            elapsed += (min_windows - full) * window_ms;
        }
        total * 1000.0 / elapsed.max(1) as f64
    }

    /// Whether the measured rate is above `rate` bytes per second.
    pub fn exceeded(&mut self, rate: u64, now_ms: i64) -> bool {
        self.measure(now_ms) > rate as f64
    }
}

/// One direction's quota on this broker: the bytes moved for throttled
/// replicas, measured always (as Kafka's sensor records whatever the
/// bound), checked against the rate while one is set.
#[derive(Debug)]
pub struct Quota {
    clock: Arc<dyn Clock>,
    moved: Mutex<SampledRate>,
}

impl Quota {
    pub fn new(clock: Arc<dyn Clock>, window: QuotaWindow) -> Quota {
        Quota { clock, moved: Mutex::new(SampledRate::new(window)) }
    }

    /// Whether the throttled replicas must wait (never without a rate).
    pub fn exceeded(&self, rate: Option<u64>) -> bool {
        rate.is_some_and(|rate| self.moved.lock().exceeded(rate, self.clock.now_ms()))
    }

    /// Charges bytes moved for throttled replicas.
    pub fn record(&self, _rate: Option<u64>, bytes: u64) {
        self.moved.lock().record(bytes, self.clock.now_ms());
    }
}

/// This broker's two replication quotas.
#[derive(Debug)]
pub struct ReplicationQuotas {
    /// What this node, as leader, sends to throttled followers.
    pub leader: Quota,
    /// What this node, as follower, fetches for throttled partitions.
    pub follower: Quota,
}

impl ReplicationQuotas {
    pub fn new(clock: Arc<dyn Clock>, window: QuotaWindow) -> ReplicationQuotas {
        ReplicationQuotas { leader: Quota::new(clock.clone(), window), follower: Quota::new(clock, window) }
    }
}

/// The rate `key` sets for `node` in `image` (its own dynamic value, else
/// the cluster-wide one), else the static config's; `None` when unset,
/// unparsable, or Kafka's default `Long.MAX_VALUE` (no limit).
pub fn rate(image: &Image, node: NodeId, key: &str, static_value: Option<String>) -> Option<u64> {
    let own = image.broker_configs(&node.get().to_string()).and_then(|c| c.get(key)).cloned();
    let cluster = image.broker_configs("").and_then(|c| c.get(key)).cloned();
    own.or(cluster)
        .or(static_value)
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|v| *v >= 0 && *v < i64::MAX)
        .map(|v| v as u64)
}

/// Whether a `*.replication.throttled.replicas` list names partition
/// `partition` on broker `node` (`*` names every replica).
pub fn lists(value: &str, partition: i32, node: NodeId) -> bool {
    value.split(',').map(str::trim).any(|entry| {
        if entry == "*" {
            return true;
        }
        let mut parts = entry.split(':').map(str::trim);
        let (Some(p), Some(b), None) = (parts.next(), parts.next(), parts.next()) else { return false };
        p.parse::<i32>().ok() == Some(partition) && b.parse::<i32>().ok() == Some(node.get())
    })
}

/// Whether topic `topic`'s config `key` throttles `partition` on `node`.
pub fn throttled(image: &Image, topic: &str, partition: i32, node: NodeId, key: &str) -> bool {
    image.topic(topic).and_then(|t| t.configs.get(key)).is_some_and(|v| lists(v, partition, node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaskade_meta::MetadataRecord;
    use kaskade_types::ManualClock;

    const MIB: u64 = 1 << 20;

    /// Moves 64 KiB whenever the quota is not exceeded, checking every
    /// 10 ms of the injected clock from `from_ms` to `to_ms`: the bytes moved.
    fn drive(q: &Quota, clock: &ManualClock, rate: u64, from_ms: i64, to_ms: i64) -> u64 {
        let mut moved = 0;
        while clock.now_ms() < to_ms {
            if clock.now_ms() >= from_ms && !q.exceeded(Some(rate)) {
                q.record(Some(rate), 64 << 10);
                moved += 64 << 10;
            } else {
                clock.advance(10);
            }
        }
        moved
    }

    #[test]
    fn the_rate_is_the_kept_samples_over_at_least_num_minus_one_windows() {
        let mut r = SampledRate::new(QuotaWindow::new(11, 1));
        assert_eq!(r.measure(0), 0.0);
        r.record(1000, 0);
        assert_eq!(r.measure(0), 100.0, "1000 bytes over the 10 windows of the minimum");
        assert_eq!(r.measure(4_000), 100.0, "still 10 s: only 4 have passed");
        r.record(1000, 4_000);
        assert_eq!(r.measure(10_500), 2000.0 / 10.5, "10.5 s since the oldest sample began");
        // The first sample (from 0) is forgotten 11 s after its start (11
        // samples of 1 s); the second (from 4 s) at 15 s.
        assert_eq!(r.measure(12_000), 100.0, "only the sample from 4 s, over the 10 s minimum");
        r.record(0, 14_500);
        assert_eq!(r.measure(14_500), 1000.0 / 10.5, "only the sample from 4 s is left");
        assert_eq!(r.measure(15_000), 0.0, "every sample forgotten");
        // Charges within one window's span share its sample.
        let mut r = SampledRate::new(QuotaWindow::new(2, 1));
        r.record(100, 0);
        r.record(100, 999);
        r.record(100, 1_000);
        assert_eq!(r.measure(1_000), 300.0, "two samples over 1 s");
        assert_eq!(r.measure(2_000), 100.0, "the one from 0 is gone");
        // A clock that moved back counts as no time.
        assert_eq!(r.measure(500), 100.0);
        assert!(r.exceeded(99, 2_000) && !r.exceeded(100, 2_000), "exceeded only above the rate");
    }

    #[test]
    fn kafkas_defaults_let_ten_seconds_of_the_rate_through_then_hold_it() {
        let clock = Arc::new(ManualClock::new(0));
        let q = Quota::new(clock.clone(), QuotaWindow::default());
        // A quiet quota: 10 MiB (10 windows of 1 MiB/s) at once, one read more.
        let burst = drive(&q, &clock, MIB, 0, 10);
        assert_eq!(burst, 10 * MIB + (64 << 10));
        // The minimum of 10 windows grows by the first window's elapsed
        // part (Kafka's `Rate.windowSize`): up to 1 MiB more within it...
        let first_second = drive(&q, &clock, MIB, 10, 1_000);
        assert!(first_second <= MIB, "{first_second}");
        // ... and nothing more until the 10 MiB spread over 10 s.
        assert_eq!(drive(&q, &clock, MIB, 1_000, 9_900), 0);
        // Over two minutes the rate holds: about 1 MiB/s, never more than
        // the window's burst above it.
        let moved = burst + first_second + drive(&q, &clock, MIB, 9_900, 120_000);
        let per_second = moved as f64 / 120.0 / MIB as f64;
        assert!((0.85..=1.1).contains(&per_second), "{per_second} MiB/s");
    }

    #[test]
    fn a_smaller_window_makes_a_smaller_burst() {
        let clock = Arc::new(ManualClock::new(0));
        let q = Quota::new(clock.clone(), QuotaWindow::new(2, 1));
        assert_eq!(drive(&q, &clock, MIB, 0, 10), MIB + (64 << 10), "one window of burst");
        let moved = drive(&q, &clock, MIB, 10, 10_000) + MIB;
        let per_second = moved as f64 / 10.0 / MIB as f64;
        assert!((0.9..=1.2).contains(&per_second), "{per_second} MiB/s");
    }

    #[test]
    fn a_quota_is_exceeded_only_while_a_rate_is_set_and_keeps_measuring_without_one() {
        let clock = Arc::new(ManualClock::new(0));
        let q = Quota::new(clock.clone(), QuotaWindow::new(2, 1));
        q.record(None, 1 << 30);
        assert!(!q.exceeded(None), "no rate: never exceeded");
        assert!(q.exceeded(Some(MIB)), "what moved without a rate counts once one is set, as in Kafka");
        clock.advance(2_000);
        assert!(!q.exceeded(Some(MIB)), "forgotten after the samples' span");
        q.record(Some(100), 150);
        assert!(q.exceeded(Some(100)));
        assert!(!q.exceeded(Some(200)), "a new rate applies to what was measured");
    }

    #[test]
    fn quota_windows_come_from_the_config_with_kafkas_defaults() {
        assert_eq!(QuotaWindow::default(), QuotaWindow { samples: 11, window_ms: 1000 });
        let c = crate::config::BrokerConfig::default();
        assert_eq!(c.replication_quota_window, QuotaWindow::default());
        let c = crate::config::BrokerConfig::from_overrides([
            ("replication.quota.window.num", "3"),
            ("replication.quota.window.size.seconds", "2"),
        ])
        .expect("valid");
        assert_eq!(c.replication_quota_window, QuotaWindow { samples: 3, window_ms: 2000 });
        let zero = crate::config::BrokerConfig::from_overrides([("replication.quota.window.num", "0")]);
        assert!(zero.is_err(), "at least 1, as Kafka's validator");
    }

    #[test]
    fn throttled_replica_lists_name_partition_and_broker_or_all() {
        assert!(lists("0:1,1:2", 0, NodeId(1)));
        assert!(lists("0:1, 1:2", 1, NodeId(2)));
        assert!(!lists("0:1,1:2", 0, NodeId(2)));
        assert!(!lists("0:1,1:2", 2, NodeId(1)));
        assert!(lists("*", 7, NodeId(3)));
        assert!(!lists("", 0, NodeId(1)));
        assert!(!lists("0:1:2,x:1,0", 0, NodeId(1)), "malformed entries name nothing");
    }

    #[test]
    fn rates_come_from_the_broker_then_the_cluster_then_the_static_config() {
        let set = |resource: &str, value: &str| MetadataRecord::BrokerConfig {
            resource: resource.into(),
            name: LEADER_RATE.into(),
            value: Some(value.into()),
        };
        let mut img = Image::default();
        assert_eq!(rate(&img, NodeId(1), LEADER_RATE, None), None);
        assert_eq!(rate(&img, NodeId(1), LEADER_RATE, Some("9223372036854775807".into())), None, "Kafka's default");
        assert_eq!(rate(&img, NodeId(1), LEADER_RATE, Some("500".into())), Some(500));
        img.apply(&set("", "1000"));
        assert_eq!(rate(&img, NodeId(1), LEADER_RATE, Some("500".into())), Some(1000));
        img.apply(&set("1", "2000"));
        assert_eq!(rate(&img, NodeId(1), LEADER_RATE, None), Some(2000));
        assert_eq!(rate(&img, NodeId(2), LEADER_RATE, None), Some(1000));
        img.apply(&set("2", "x"));
        assert_eq!(rate(&img, NodeId(2), LEADER_RATE, None), None, "unparsable: no limit");
    }
}
