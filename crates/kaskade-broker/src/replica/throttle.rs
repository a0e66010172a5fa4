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
//! reads, and its bytes are charged afterwards. The quota is a token bucket
//! on the injected clock holding at most one second of the rate (Kafka's
//! one-second quota window): tokens refill at the rate, bytes taken may
//! drive it below zero, and it is exceeded while below zero, so over any
//! long run the bytes moved approach `rate × time`.

use std::sync::Arc;

use kaskade_meta::Image;
use kaskade_types::{Clock, NodeId};
use parking_lot::Mutex;

pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
pub const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

/// A token bucket of bytes refilled at `rate` per second, holding at most
/// one second's worth.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    last_ms: i64,
}

impl TokenBucket {
    /// A full bucket at `now_ms`.
    pub fn new(rate: u64, now_ms: i64) -> TokenBucket {
        TokenBucket { rate: rate as f64, tokens: rate as f64, last_ms: now_ms }
    }

    fn refill(&mut self, now_ms: i64) {
        // A clock that moved back adds nothing.
        let elapsed = (now_ms - self.last_ms).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// Whether more bytes than the rate allows were taken (the bucket is in
    /// debt).
    pub fn exceeded(&mut self, now_ms: i64) -> bool {
        self.refill(now_ms);
        self.tokens < 0.0
    }

    /// Charges `bytes` taken at `now_ms`.
    pub fn record(&mut self, bytes: u64, now_ms: i64) {
        self.refill(now_ms);
        self.tokens -= bytes as f64;
    }

    /// A new rate; the tokens held stay (capped at the new second's worth).
    pub fn set_rate(&mut self, rate: u64, now_ms: i64) {
        self.refill(now_ms);
        self.rate = rate as f64;
        self.tokens = self.tokens.min(self.rate);
    }

    pub fn rate(&self) -> u64 {
        self.rate as u64
    }
}

/// One direction's quota on this broker: a bucket while a rate is set.
#[derive(Debug)]
pub struct Quota {
    clock: Arc<dyn Clock>,
    bucket: Mutex<Option<TokenBucket>>,
}

impl Quota {
    pub fn new(clock: Arc<dyn Clock>) -> Quota {
        Quota { clock, bucket: Mutex::new(None) }
    }

    /// Brings the bucket to `rate` (`None`: no limit, the bucket goes).
    fn with_rate<T>(&self, rate: Option<u64>, f: impl FnOnce(&mut TokenBucket, i64) -> T) -> Option<T> {
        let now = self.clock.now_ms();
        let mut bucket = self.bucket.lock();
        let Some(rate) = rate else {
            *bucket = None;
            return None;
        };
        let b = bucket.get_or_insert_with(|| TokenBucket::new(rate, now));
        if b.rate() != rate {
            b.set_rate(rate, now);
        }
        Some(f(b, now))
    }

    /// Whether the throttled replicas must wait (never without a rate).
    pub fn exceeded(&self, rate: Option<u64>) -> bool {
        self.with_rate(rate, |b, now| b.exceeded(now)).unwrap_or(false)
    }

    /// Charges bytes moved for throttled replicas.
    pub fn record(&self, rate: Option<u64>, bytes: u64) {
        self.with_rate(rate, |b, now| b.record(bytes, now));
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
    pub fn new(clock: Arc<dyn Clock>) -> ReplicationQuotas {
        ReplicationQuotas { leader: Quota::new(clock.clone()), follower: Quota::new(clock) }
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

    #[test]
    fn a_bucket_lets_a_second_of_the_rate_through_then_the_rate() {
        let mut b = TokenBucket::new(1000, 0);
        assert!(!b.exceeded(0));
        b.record(600, 0);
        assert!(!b.exceeded(0), "400 left");
        b.record(600, 0);
        assert!(b.exceeded(0), "200 in debt");
        assert!(b.exceeded(199), "refilled 199: still in debt");
        assert!(!b.exceeded(200), "even at 200 ms");
        // A long pause refills at most one second's worth.
        b.record(0, 10_000);
        b.record(1000, 10_000);
        assert!(!b.exceeded(10_000));
        b.record(1, 10_000);
        assert!(b.exceeded(10_000));
        // The clock moving back adds nothing.
        assert!(b.exceeded(5_000));
    }

    #[test]
    fn moving_bytes_through_a_bucket_takes_size_over_rate() {
        // 10 MiB at 1 MiB/s in 64 KiB reads, taken whenever not exceeded:
        // the first second is the burst, so about 9 s.
        let rate = 1 << 20;
        let mut b = TokenBucket::new(rate, 0);
        let (mut moved, mut now) = (0u64, 0i64);
        while moved < 10 << 20 {
            if b.exceeded(now) {
                now += 1;
                continue;
            }
            b.record(64 << 10, now);
            moved += 64 << 10;
        }
        assert!((8_900..=9_100).contains(&now), "{now} ms");
    }

    #[test]
    fn a_quota_follows_its_rate_and_none_means_unlimited() {
        let clock = Arc::new(ManualClock::new(0));
        let q = Quota::new(clock.clone());
        q.record(None, 1 << 30);
        assert!(!q.exceeded(None), "no rate: never exceeded");
        q.record(Some(100), 150);
        assert!(q.exceeded(Some(100)));
        clock.advance(500);
        assert!(!q.exceeded(Some(100)), "50 refilled");
        // A lower rate caps the tokens held; dropping the rate forgets the debt.
        q.record(Some(10), 60);
        assert!(q.exceeded(Some(10)));
        assert!(!q.exceeded(None));
        assert!(!q.exceeded(Some(10)), "a new bucket starts full");
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
