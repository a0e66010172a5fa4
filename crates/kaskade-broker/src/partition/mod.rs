//! The partition layer, between the API handlers and the storage engine
//! (Kafka's `ReplicaManager`/`Partition`). Handlers ask a [`Partition`] to
//! append, read, wait and look offsets up; it owns, in one place:
//!
//! - the leader-epoch checks of every API that carries an epoch
//!   (`leadership`: FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH,
//!   NOT_LEADER_OR_FOLLOWER), and the epoch stamped on appended batches;
//! - the high watermark: the log reports its positions to the partition's
//!   rule (HW = min over the ISR's positions, `Leadership`), synchronously
//!   on the thread that moved them, and takes the HW it decides;
//! - the leader-epoch cache: on becoming leader the partition records the
//!   epoch's start in the log's `leader-epoch-checkpoint`, so
//!   OffsetForLeaderEpoch answers from the cache;
//! - the delayed operations: acks=all waits and long-poll fetches park on
//!   the partition's HW notification (a `watch`), never poll.
//!
//! `error` is the layer's error type and the one mapping of partition and
//! storage errors to Kafka codes; `offsets` holds the ListOffsets lookups,
//! `read` the Fetch reads.
//!
//! Replication plugs in here: a follower fetch reports the follower's
//! position (`Leadership::update_position`), the ISR comes from the
//! metadata image's partition record (`apply`), and a follower replica
//! appends with the leader's epochs instead of `append_as_leader`.
//!
//! Invariants: the leadership lock is never held while calling into the
//! log (the log calls the HW rule, which takes that lock); the HW the log
//! holds is the one `Leadership` decided, clamped to the log end.

pub mod error;
pub mod leadership;
#[cfg(test)]
mod leadership_sim;
mod offsets;
mod read;
mod replication;

use crate::metrics::traffic::PartitionTraffic;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use kaskade_log::{AppendInfo, Log, LogConfig, LogError, Positions};
use kaskade_types::{LeaderEpoch, NodeId, Offset};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

pub use error::{storage_error, PartitionError};
pub use leadership::{FollowerView, Following, LeaderAndIsr, Leadership};
pub use offsets::{FoundOffset, OffsetSpec};
pub use read::{Isolation, PartitionRead};

/// One partition replica on this node: its log and its leadership.
#[derive(Debug)]
pub struct Partition {
    node: NodeId,
    log: Arc<Log>,
    /// Shared with the HW rule the log calls.
    leadership: Arc<Mutex<Leadership>>,
    /// Bytes and records in and out, for `/metrics`.
    traffic: Arc<PartitionTraffic>,
    /// As a follower: records behind the leader's HW at the last fetch
    /// (Kafka's `FetcherLagMetrics` `ConsumerLag`); -1 before the first.
    /// A relaxed atomic: the fetcher stores, a scrape loads.
    follower_lag: AtomicI64,
    /// Whether this node leads, as the last applied record says: acks=all
    /// waits end with NOT_LEADER_OR_FOLLOWER when it stops (Kafka completes
    /// a former leader's delayed produces so), instead of at their timeout.
    leading: watch::Sender<bool>,
    /// Held exclusively while a partition record is applied, shared by the
    /// actions that must happen within one leadership: a leader's check and
    /// append (so no batch is stamped with an epoch this node no longer
    /// leads), a lookup answered as leader, a follower's check and append,
    /// truncation or HW (so nothing fetched from a deposed leader lands
    /// after the step-down). Kafka's `leaderIsrUpdateLock`. Taken before
    /// the leadership lock, never while the log is called under that one.
    transition: RwLock<()>,
}

impl Partition {
    /// The replica of `log` on `node` with the leadership `state` gives it;
    /// installs the partition's HW rule on the log. Blocking: becoming
    /// leader may rewrite the log's `leader-epoch-checkpoint`.
    pub fn new(node: NodeId, log: Arc<Log>, state: &LeaderAndIsr) -> Result<Arc<Partition>, PartitionError> {
        let leadership = Arc::new(Mutex::new(Leadership::new(node, state, Offset(log.high_watermark()))));
        if leadership.lock().is_leader() {
            leadership.lock().began_leading_at(Offset(log.log_end_offset()));
            log.assign_leader_epoch(state.epoch)?;
        }
        let rule = leadership.clone();
        // The appending and flushing threads each report positions they read
        // before taking the rule's lock: a report read earlier but applied
        // later would set this node's position back and, with followers in
        // the ISR, hold the HW below what every member has (seen as acks=all
        // hanging on 3 nodes). So the positions are read again under the
        // lock: the last report applied is the newest. (A weak reference:
        // the log owns this listener.)
        let own_log = Arc::downgrade(&log);
        let installed = log.set_position_listener(Arc::new(move |reported: Positions| {
            let mut l = rule.lock();
            let p = own_log.upgrade().map_or(reported, |log| log.positions());
            let position = leadership::replica_position(p.log_end, p.durable_end, p.durable_mode);
            l.update_position(node, position)
        }));
        if !installed {
            // A log belongs to one partition replica; a second one would
            // leave its own HW rule unused.
            return Err(PartitionError::Internal(format!("{} already has a partition", log.topic_partition())));
        }
        let traffic = crate::metrics::traffic::register(&log);
        let leading = watch::Sender::new(leadership.lock().is_leader());
        Ok(Arc::new(Partition {
            node,
            log,
            leadership,
            traffic,
            follower_lag: AtomicI64::new(-1),
            leading,
            transition: RwLock::new(()),
        }))
    }

    /// Applies the metadata image's partition record: a new leader epoch
    /// (recorded in the epoch cache when this node becomes leader), a new
    /// ISR (which may move the HW). Blocking, as `new`.
    pub fn apply(&self, state: &LeaderAndIsr) -> Result<(), PartitionError> {
        // Until the epoch cache and HW follow, no action of the old or new
        // leadership runs (see `transition`).
        let _transition = self.transition.write();
        let (applied, own) = {
            let mut l = self.leadership.lock();
            let was = (l.leader(), l.epoch());
            let applied = l.apply(state);
            if (l.leader(), l.epoch()) != was {
                tracing::info!(partition = %self.log.topic_partition(), leader = ?l.leader().map(NodeId::get),
                    epoch = l.epoch().get(), leading = l.is_leader(), "partition leadership changed");
            }
            // This node's own position, now: a replica that joined the ISR
            // in this very record (a reassignment completed by admitting it
            // and electing it) had no slot to report into, and as a new
            // leader with nothing more appended its HW would wait for its
            // log to move. Read under the lock, as the position listener
            // reads it, so it is never older than a report applied before.
            let p = self.log.positions();
            if applied.became_leader.is_some() {
                l.began_leading_at(p.log_end);
            }
            let own =
                l.update_position(self.node, leadership::replica_position(p.log_end, p.durable_end, p.durable_mode));
            let now_leading = l.is_leader();
            self.leading.send_if_modified(|leading| std::mem::replace(leading, now_leading) != now_leading);
            (applied, own)
        };
        if let Some(epoch) = applied.became_leader {
            self.log.assign_leader_epoch(epoch)?;
        }
        if let Some(hw) = own.or(applied.high_watermark) {
            self.log.update_high_watermark(hw.get());
        }
        Ok(())
    }

    pub fn node(&self) -> NodeId {
        self.node
    }

    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    pub fn traffic(&self) -> &PartitionTraffic {
        &self.traffic
    }

    /// Records, after a fetch as follower, how far this replica is behind:
    /// the leader's HW from the answer minus this log's end, at least 0
    /// (Kafka's fetcher computes its lag from the HW the same way: a Fetch
    /// answer carries no leader log end).
    pub fn record_follower_lag(&self, leader_high_watermark: Offset) {
        let lag = (leader_high_watermark.get() - self.log.log_end_offset()).max(0);
        self.follower_lag.store(lag, Ordering::Relaxed);
    }

    /// The lag [`Partition::record_follower_lag`] recorded last, if any.
    pub fn follower_lag(&self) -> Option<i64> {
        Some(self.follower_lag.load(Ordering::Relaxed)).filter(|l| *l >= 0)
    }

    /// The topic's typed config (parsed when it last changed).
    pub fn config(&self) -> LogConfig {
        self.log.config()
    }

    pub fn leader_epoch(&self) -> LeaderEpoch {
        self.leadership.lock().epoch()
    }

    /// Checks a request's `current_leader_epoch` (`None`: not given) and
    /// that this node leads (see `Leadership::check_epoch`).
    pub fn check_epoch(&self, current_leader_epoch: Option<LeaderEpoch>) -> Result<(), PartitionError> {
        self.leadership.lock().check_epoch(current_leader_epoch)
    }

    /// Appends a client's batch as the leader, stamped with the current
    /// leader epoch (Produce; Kafka's `appendRecordsToLeader`). An acks=all
    /// write passes the topic's `min.insync.replicas` as `min_isr` (the
    /// caller holds the topic config already): it is refused with
    /// NOT_ENOUGH_REPLICAS when the ISR is smaller, as Kafka refuses it.
    pub fn append_as_leader(&self, records: Bytes, min_isr: Option<usize>) -> Result<AppendInfo, PartitionError> {
        self.append_as_leader_stamped(records, min_isr).map(|(info, _)| info)
    }

    /// [`Partition::append_as_leader`], also naming the leader epoch the
    /// batch was stamped with: the leadership an acks=all wait must still
    /// hold when the HW passes the batch (`wait_for_replicas`).
    pub fn append_as_leader_stamped(
        &self,
        records: Bytes,
        min_isr: Option<usize>,
    ) -> Result<(AppendInfo, LeaderEpoch), PartitionError> {
        // Check and append within one leadership (see `transition`).
        let _leadership = self.transition.read();
        let epoch = self.epoch_to_append(min_isr)?;
        Ok((self.log.append_client(records, epoch.get())?, epoch))
    }

    /// Appends what this node writes itself as the leader (a coordinator's
    /// records, a transaction marker): `append` gets the log and the current
    /// leader epoch to stamp. Always acks=all, as Kafka's coordinators and
    /// WriteTxnMarkers append (`requiredAcks = -1`): refused with
    /// NOT_ENOUGH_REPLICAS while the ISR is smaller than `min_isr`; the
    /// caller then awaits `wait_for_replicas`.
    pub fn append_own(
        &self,
        min_isr: usize,
        append: impl FnOnce(&Log, i32) -> Result<AppendInfo, LogError>,
    ) -> Result<AppendInfo, PartitionError> {
        // Check and append within one leadership (see `transition`).
        let _leadership = self.transition.read();
        let epoch = self.epoch_to_append(Some(min_isr))?;
        Ok(append(&self.log, epoch.get())?)
    }

    /// The epoch to stamp on a leader append, after checking this node
    /// leads and, for acks=all (`min_isr` given), that the ISR is large enough.
    fn epoch_to_append(&self, min_isr: Option<usize>) -> Result<LeaderEpoch, PartitionError> {
        let l = self.leadership.lock();
        l.check_epoch(None)?;
        if let Some(min) = min_isr {
            let isr = l.isr().count();
            if isr < min {
                return Err(PartitionError::NotEnoughReplicas { isr, min });
            }
        }
        Ok(l.epoch())
    }

    /// Waits until the HW reaches `end` (acks=all): every ISR member holds
    /// the batches below it (in durable mode, on disk). Parks on the HW
    /// notification; a failed fsync of the local log ends the wait with
    /// KAFKA_STORAGE_ERROR. Once the HW passed, an ISR that shrank below
    /// `min_isr` (the topic's `min.insync.replicas`) meanwhile answers
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND (Kafka's `DelayedProduce`).
    ///
    /// `stamped` is the leader epoch the append was stamped with, and this
    /// node must still lead in it once the HW passed `end`: the HW alone
    /// does not say the batch is still there. A leader that lost the
    /// partition truncates to the new leader's log as a follower and may
    /// lead again before this wait looks (the `leading` flag then reads
    /// true throughout); the new epoch's HW passes the same offsets with
    /// other records. Epochs only grow, so the same epoch means no election
    /// since the append (Kafka fails such waits when the leadership goes,
    /// in `makeFollowers`).
    pub async fn wait_for_replicas(
        &self,
        end: Offset,
        min_isr: usize,
        stamped: LeaderEpoch,
    ) -> Result<(), PartitionError> {
        let mut leading = self.leading.subscribe();
        tokio::select! {
            reached = self.wait_for_high_watermark(end) => reached?,
            // No longer the leader (a new one elected, or moved off this
            // node): the new leader decides; the producer retries there.
            _ = leading.wait_for(|l| !*l) => return Err(PartitionError::NotLeader),
        }
        if self.leadership.lock().check_epoch(Some(stamped)).is_err() {
            return Err(PartitionError::NotLeader);
        }
        let isr = self.leadership.lock().isr().count();
        if isr < min_isr {
            return Err(PartitionError::NotEnoughReplicasAfterAppend { isr, min: min_isr });
        }
        Ok(())
    }

    async fn wait_for_high_watermark(&self, end: Offset) -> Result<(), PartitionError> {
        let mut hw = self.log.subscribe_high_watermark();
        let failed = async {
            match self.log.wait_durable(end.get()).await {
                Err(e) => e,
                // Durable here; the HW (the ISR) decides.
                Ok(()) => std::future::pending().await,
            }
        };
        tokio::select! {
            reached = hw.wait_for(|h| *h >= end.get()) => reached.map(|_| ()).map_err(|_| LogError::Closed.into()),
            e = failed => Err(e.into()),
        }
    }

    pub fn high_watermark(&self) -> Offset {
        Offset(self.log.high_watermark())
    }

    /// Notified whenever the HW moves (and so the last stable offset may):
    /// what long-poll fetches park on.
    pub fn subscribe_high_watermark(&self) -> watch::Receiver<i64> {
        self.log.subscribe_high_watermark()
    }

    /// OffsetForLeaderEpoch: after the epoch checks, the largest epoch <=
    /// `requested` in the epoch cache and where it ended (Kafka's
    /// `lastOffsetForLeaderEpoch`); `None` when the cache knows no such
    /// epoch (the answer is then undefined, -1 / -1).
    pub fn end_offset_for_epoch(
        &self,
        current_leader_epoch: Option<LeaderEpoch>,
        requested: LeaderEpoch,
    ) -> Result<Option<(LeaderEpoch, Offset)>, PartitionError> {
        let _leadership = self.transition.read();
        self.check_epoch(current_leader_epoch)?;
        Ok(self.log.end_offset_for_epoch(requested))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaskade_log::{LogManager, ManagerOptions, TopicPartition};

    fn one_node() -> LeaderAndIsr {
        LeaderAndIsr {
            leader: Some(NodeId(1)),
            epoch: LeaderEpoch(0),
            isr: vec![NodeId(1)],
            replicas: vec![NodeId(1), NodeId(2)],
        }
    }

    fn open(dir: &std::path::Path, cfg: LogConfig) -> (Arc<LogManager>, Arc<Log>) {
        let (mgr, _) = LogManager::open(dir, ManagerOptions::default(), move |_| cfg.clone()).expect("open");
        let log = mgr.get_or_create(&TopicPartition::new("t", 0), LogConfig::default()).expect("log");
        (mgr, log)
    }

    fn batch(n: usize) -> Bytes {
        Bytes::from(kaskade_log::batch::build::filled(n, 10, 0, 1))
    }

    #[tokio::test]
    async fn acks_all_waits_for_the_hw_which_follows_the_durable_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mgr, log) = open(dir.path(), LogConfig::default());
        let p = Partition::new(NodeId(1), log.clone(), &one_node()).expect("partition");
        let info = p.append_as_leader(batch(3), Some(1)).expect("append");
        assert_eq!(info.header.partition_leader_epoch, 0, "stamped with the leader epoch");
        let end = Offset(info.last_offset + 1);
        p.wait_for_replicas(end, 1, LeaderEpoch(0)).await.expect("durable");
        assert!(log.durable_end() >= end.get(), "acknowledged only after an fsync covered it");
        assert_eq!(p.high_watermark(), end);
        mgr.shutdown().expect("shutdown");
    }

    #[test]
    fn becoming_leader_records_the_epoch_in_the_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mgr, log) = open(dir.path(), LogConfig::default());
        let follower = LeaderAndIsr {
            leader: Some(NodeId(2)),
            epoch: LeaderEpoch(3),
            isr: vec![NodeId(2)],
            replicas: vec![NodeId(1), NodeId(2)],
        };
        let p = Partition::new(NodeId(1), log.clone(), &follower).expect("partition");
        assert_eq!(log.latest_epoch(), None, "a follower records no epoch of its own");
        assert!(matches!(p.append_as_leader(batch(1), Some(1)), Err(PartitionError::NotLeader)));
        p.apply(&LeaderAndIsr {
            leader: Some(NodeId(1)),
            epoch: LeaderEpoch(4),
            isr: vec![NodeId(1)],
            replicas: vec![NodeId(1), NodeId(2)],
        })
        .expect("become leader");
        assert_eq!(p.end_offset_for_epoch(None, LeaderEpoch(4)).expect("leader"), Some((LeaderEpoch(4), Offset(0))));
        assert!(matches!(
            p.end_offset_for_epoch(Some(LeaderEpoch(3)), LeaderEpoch(4)),
            Err(PartitionError::FencedLeaderEpoch { .. })
        ));
        assert!(Partition::new(NodeId(1), log, &one_node()).is_err(), "a log takes one partition's HW rule");
        mgr.shutdown().expect("shutdown");
    }

    #[tokio::test]
    async fn acks_all_needs_min_insync_replicas_before_and_after_the_append() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mgr, log) = open(dir.path(), LogConfig::default());
        let two = LeaderAndIsr {
            leader: Some(NodeId(1)),
            epoch: LeaderEpoch(0),
            isr: vec![NodeId(1), NodeId(2)],
            replicas: vec![NodeId(1), NodeId(2)],
        };
        let p = Partition::new(NodeId(1), log.clone(), &two).expect("partition");
        let info = p.append_as_leader(batch(2), Some(2)).expect("ISR 2 >= 2");
        let end = Offset(info.last_offset + 1);
        // The follower has it: the HW passes, the ISR is still 2.
        assert!(p.record_follower_fetch(NodeId(2), end));
        p.wait_for_replicas(end, 2, LeaderEpoch(0)).await.expect("replicated");
        // The ISR shrinks to the leader alone: acks=all is refused before
        // the append, acks=1 is not.
        let alone = LeaderAndIsr { isr: vec![NodeId(1)], ..two.clone() };
        p.apply(&alone).expect("shrink");
        assert!(matches!(
            p.append_as_leader(batch(1), Some(2)),
            Err(PartitionError::NotEnoughReplicas { isr: 1, min: 2 })
        ));
        let info = p.append_as_leader(batch(1), None).expect("acks=1 goes on");
        // A write that passed the check but whose ISR shrank meanwhile.
        p.apply(&two).expect("expand");
        let waiting = p.append_as_leader(batch(1), Some(2)).expect("ISR 2 again");
        p.apply(&alone).expect("shrink while waiting");
        let end = Offset(waiting.last_offset + 1);
        assert!(end > Offset(info.last_offset + 1));
        assert!(matches!(
            p.wait_for_replicas(end, 2, LeaderEpoch(0)).await,
            Err(PartitionError::NotEnoughReplicasAfterAppend { isr: 1, min: 2 })
        ));
        mgr.shutdown().expect("shutdown");
    }

    #[tokio::test]
    async fn an_acks_all_wait_fails_when_leadership_was_lost_and_regained_before_it_looked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mgr, log) = open(dir.path(), LogConfig::default());
        let two = LeaderAndIsr {
            leader: Some(NodeId(1)),
            epoch: LeaderEpoch(0),
            isr: vec![NodeId(1), NodeId(2)],
            replicas: vec![NodeId(1), NodeId(2)],
        };
        let p = Partition::new(NodeId(1), log.clone(), &two).expect("partition");
        let (info, stamped) = p.append_as_leader_stamped(batch(2), Some(1)).expect("append");
        assert_eq!(stamped, LeaderEpoch(0));
        let end = Offset(info.last_offset + 1);
        // Spawned, but not polled until the leadership went to node 2 and
        // came back in epoch 2 with an ISR of this node alone, whose HW then
        // passes `end`: the `leading` flag never reads false to the waiter.
        let waiting = {
            let p = p.clone();
            tokio::spawn(async move { p.wait_for_replicas(end, 1, stamped).await })
        };
        p.apply(&LeaderAndIsr { leader: Some(NodeId(2)), epoch: LeaderEpoch(1), ..two.clone() }).expect("away");
        let back = LeaderAndIsr { leader: Some(NodeId(1)), epoch: LeaderEpoch(2), isr: vec![NodeId(1)], ..two };
        p.apply(&back).expect("back");
        let answer = tokio::time::timeout(std::time::Duration::from_secs(10), waiting).await;
        assert!(matches!(answer, Ok(Ok(Err(PartitionError::NotLeader)))), "{answer:?}");
        // A batch appended in the new epoch is acknowledged once the HW passes it.
        let (info, stamped) = p.append_as_leader_stamped(batch(1), Some(1)).expect("append");
        assert_eq!(stamped, LeaderEpoch(2));
        p.wait_for_replicas(Offset(info.last_offset + 1), 1, stamped).await.expect("acknowledged");
        mgr.shutdown().expect("shutdown");
    }

    #[tokio::test]
    async fn an_acks_all_wait_ends_with_not_leader_when_leadership_moves_away() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mgr, log) = open(dir.path(), LogConfig::default());
        let two = LeaderAndIsr {
            leader: Some(NodeId(1)),
            epoch: LeaderEpoch(0),
            isr: vec![NodeId(1), NodeId(2)],
            replicas: vec![NodeId(1), NodeId(2)],
        };
        let p = Partition::new(NodeId(1), log.clone(), &two).expect("partition");
        let info = p.append_as_leader(batch(2), Some(1)).expect("append");
        let end = Offset(info.last_offset + 1);
        // Follower 2 never fetches it; a reassignment completes and moves
        // leadership to 2 (this node no longer a replica).
        let waiting = {
            let p = p.clone();
            tokio::spawn(async move { p.wait_for_replicas(end, 1, LeaderEpoch(0)).await })
        };
        tokio::task::yield_now().await;
        let moved = LeaderAndIsr {
            leader: Some(NodeId(2)),
            epoch: LeaderEpoch(1),
            isr: vec![NodeId(2)],
            replicas: vec![NodeId(2)],
        };
        p.apply(&moved).expect("step down");
        let answer = tokio::time::timeout(std::time::Duration::from_secs(10), waiting).await;
        assert!(matches!(answer, Ok(Ok(Err(PartitionError::NotLeader)))), "{answer:?}");
        assert!(p.high_watermark() < end, "never acknowledged here");
        // A wait that starts after the step-down ends at once too.
        assert!(matches!(p.wait_for_replicas(end, 1, LeaderEpoch(0)).await, Err(PartitionError::NotLeader)));
        mgr.shutdown().expect("shutdown");
    }
}
