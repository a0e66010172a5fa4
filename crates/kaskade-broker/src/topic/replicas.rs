//! The broker side of topic management: this node's partition logs, kept in
//! line with the metadata image.
//!
//! Kafka's brokers do this in `ReplicaManager.applyDelta`: when the image
//! changes they create the logs of partitions newly placed on them, delete
//! the logs of deleted topics and give logs their new configs. Here
//! [`LocalReplicas::apply`] does the same from an old and a new image; the
//! topic manager calls it after every change it commits, and a cluster's
//! brokers will call it from the metadata log's watch.
//!
//! Each log placed here gets its [`Partition`] (the partition layer's
//! replica: leadership, HW rule, epoch cache) once the image that places it
//! is applied, with the leadership of the image's partition record (leader,
//! leader epoch, ISR); later records reach it through `Partition::apply`.
//!
//! Invariant: after `apply(_, new)`, every partition of `new` placed on this
//! node has a log with the topic's effective config and a `Partition` with
//! the record's leadership, and no log or `Partition` belongs to a topic
//! `new` does not have.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use kaskade_log::{Log, LogConfig, LogManager, TopicPartition};
use kaskade_meta::{Image, MetadataLog, TopicImage};

use super::config;
use super::error::TopicError;
use crate::partition::{LeaderAndIsr, Partition, PartitionError};
use kaskade_types::NodeId;

/// Partition replicas by topic name, then index: looked up by `&str`
/// without building a key.
type PartitionMap = HashMap<Arc<str>, BTreeMap<i32, Arc<Partition>>>;

/// This node's partition logs and the topic defaults they are configured
/// with.
#[derive(Debug)]
pub struct LocalReplicas {
    node_id: NodeId,
    logs: Arc<LogManager>,
    /// Topic-level key -> broker default value, from the static config.
    static_defaults: BTreeMap<String, String>,
    /// The static defaults with the dynamic broker configs laid over them:
    /// what topics without an override get.
    defaults: RwLock<Arc<BTreeMap<String, String>>>,
    /// The image the logs reflect. Held while applying: images are applied
    /// one at a time, in log order, so a slow apply of an older image never
    /// overwrites a newer one (two config changes committed back to back).
    applied: Mutex<Arc<Image>>,
    /// The same image, published once its apply finished: what this node
    /// serves (Kafka's broker metadata cache). Readers never wait for an
    /// apply in progress, and never see a topic whose replicas do not exist
    /// yet.
    visible: RwLock<Arc<Image>>,
    /// This node's partition replicas, one per hosted log.
    partitions: RwLock<PartitionMap>,
}

impl From<PartitionError> for TopicError {
    fn from(e: PartitionError) -> Self {
        TopicError::new(e.response_error(), e.to_string())
    }
}

impl LocalReplicas {
    pub fn new(
        node_id: NodeId,
        logs: Arc<LogManager>,
        static_defaults: BTreeMap<String, String>,
        image: Arc<Image>,
    ) -> Self {
        let defaults = RwLock::new(Arc::new(effective_defaults(&static_defaults, &image, node_id)));
        LocalReplicas {
            node_id,
            logs,
            static_defaults,
            defaults,
            applied: Mutex::new(image.clone()),
            visible: RwLock::new(image),
            partitions: RwLock::new(HashMap::new()),
        }
    }

    /// Brings the logs to the metadata log's committed image, if they are
    /// behind it. What a broker runs for every committed change.
    pub fn catch_up(&self, meta: &dyn MetadataLog) -> Result<(), TopicError> {
        let mut applied = self.applied.lock();
        self.catch_up_locked(&mut applied, meta)
    }

    fn catch_up_locked(&self, applied: &mut Arc<Image>, meta: &dyn MetadataLog) -> Result<(), TopicError> {
        let latest = meta.committed().image;
        if latest.end_offset() <= applied.end_offset() {
            return Ok(());
        }
        self.apply(applied, &latest)?;
        *self.visible.write() = latest.clone();
        *applied = latest;
        Ok(())
    }

    /// Deletes the logs [`prepare`](Self::prepare) made for a creation that
    /// did not commit, except those the committed image places here:
    /// another node may have created the same topic first (two brokers
    /// creating `__consumer_offsets` at start-up), and logs are named by
    /// topic and index, so applying its image took over the prepared logs of
    /// the partitions it placed on this node. Checked and deleted under the
    /// apply lock, after catching up, so no apply takes a log over between
    /// the check and the delete.
    pub fn discard_prepared(&self, meta: &dyn MetadataLog, name: &str, parts: &[i32]) {
        let mut applied = self.applied.lock();
        if let Err(e) = self.catch_up_locked(&mut applied, meta) {
            // The image applied so far still says which logs are taken.
            tracing::error!(topic = name, error = %e, "applying the committed image before discarding prepared logs");
        }
        let topic = applied.topic(name);
        for &p in parts {
            if topic.is_some_and(|t| self.hosts(t, p as usize)) {
                debug_assert!(self.partition(name, p).is_some(), "an applied image's partition here is hosted");
                continue;
            }
            if let Err(e) = self.logs.delete(&TopicPartition::new(name, p)) {
                tracing::error!(topic = name, partition = p, error = %e, "could not remove a prepared partition");
            }
        }
    }

    /// The latest image whose changes this node's replicas reflect.
    pub fn visible(&self) -> Arc<Image> {
        self.visible.read().clone()
    }

    pub fn logs(&self) -> &Arc<LogManager> {
        &self.logs
    }

    pub fn log(&self, topic: &str, partition: i32) -> Option<Arc<Log>> {
        self.logs.get(&TopicPartition::new(topic, partition))
    }

    /// The partition replica of `topic`-`partition` hosted here.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.partitions.read().get(topic)?.get(&partition).cloned()
    }

    /// Gives `log` (partition `p` of `t`) its `Partition` with the image's
    /// leadership, or brings the existing one to it.
    fn host(&self, t: &TopicImage, p: usize, log: Arc<Log>) -> Result<(), TopicError> {
        let Some(record) = t.partitions.get(p) else { return Ok(()) };
        let state = LeaderAndIsr::from_image(record);
        let existing = self.partition(&t.name, p as i32).filter(|existing| Arc::ptr_eq(existing.log(), &log));
        match existing {
            Some(partition) => partition.apply(&state)?,
            None => {
                let partition = Partition::new(self.node_id, log, &state)?;
                self.partitions.write().entry(Arc::from(t.name.as_str())).or_default().insert(p as i32, partition);
            }
        }
        Ok(())
    }

    /// Forgets the partition replicas of a topic about to lose its logs.
    fn unhost(&self, name: &str) {
        self.partitions.write().remove(name);
    }

    /// Forgets one partition replica about to lose its log (a reassignment
    /// moved it off this node).
    fn unhost_partition(&self, name: &str, partition: i32) {
        let mut partitions = self.partitions.write();
        if let Some(by_index) = partitions.get_mut(name) {
            by_index.remove(&partition);
            if by_index.is_empty() {
                partitions.remove(name);
            }
        }
    }

    /// The topic defaults now (static config and dynamic broker configs).
    pub fn defaults(&self) -> Arc<BTreeMap<String, String>> {
        self.defaults.read().clone()
    }

    /// The effective log config of a topic with these overrides.
    pub fn log_config(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        config::to_log_config(&config::effective(&self.defaults(), overrides))
    }

    fn hosts(&self, t: &TopicImage, partition: usize) -> bool {
        t.partitions.get(partition).is_some_and(|p| p.replicas.contains(&self.node_id))
    }

    /// Start-up reconciliation: deletes logs of topics the image does not
    /// have (a deletion a crash cut short) and creates missing ones.
    pub fn reconcile(&self, image: &Image) -> Result<(), TopicError> {
        for tp in self.logs.partitions() {
            let known = image.topic(&tp.topic).is_some_and(|t| self.hosts(t, tp.partition as usize));
            if !known {
                tracing::warn!(%tp, "deleting the log of a topic that no longer exists");
                self.logs.delete(&tp)?;
            }
        }
        self.host_all(image, |_| false)
    }

    /// Creates the logs of `parts` of a topic about to exist, or none of
    /// them: on failure the ones already made are deleted again. The topic
    /// manager calls this before committing a creation, so a disk that
    /// cannot take the topic leaves the metadata unchanged.
    pub fn prepare(&self, name: &str, parts: impl IntoIterator<Item = i32>, cfg: &LogConfig) -> Result<(), TopicError> {
        let wanted: Vec<(TopicPartition, LogConfig)> =
            parts.into_iter().map(|p| (TopicPartition::new(name, p), cfg.clone())).collect();
        if let Err(e) = self.logs.create_many(&wanted) {
            for (tp, _) in &wanted {
                if let Err(e2) = self.logs.delete(tp) {
                    tracing::error!(%tp, error = %e2, "could not remove a partially created partition");
                }
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Brings the logs from `old` to `new`: deleted topics' logs go, so do
    /// those of partitions a completed reassignment moved off this node
    /// (KRaft's StopReplica with deletion: the image no longer names this
    /// node a replica), new partitions placed here get logs, changed
    /// configs reach their logs, and a change of the dynamic broker
    /// defaults reaches every log.
    fn apply(&self, old: &Image, new: &Image) -> Result<(), TopicError> {
        for t in old.topics() {
            match new.topic_by_id(&t.id) {
                None => {
                    self.unhost(&t.name);
                    for p in (0..t.partitions.len()).filter(|p| self.hosts(t, *p)) {
                        self.logs.delete(&TopicPartition::new(t.name.as_str(), p as i32))?;
                    }
                }
                Some(now) => {
                    for p in (0..t.partitions.len()).filter(|p| self.hosts(t, *p) && !self.hosts(now, *p)) {
                        tracing::info!(topic = %t.name, partition = p, "no longer a replica: deleting the log");
                        // Steps down first, so acks=all waits on it end now
                        // (NOT_LEADER_OR_FOLLOWER) and the producer retries
                        // at the new leader.
                        let replica = self.partition(&t.name, p as i32);
                        if let (Some(replica), Some(record)) = (replica, now.partitions.get(p)) {
                            replica.apply(&LeaderAndIsr::from_image(record))?;
                        }
                        self.unhost_partition(&t.name, p as i32);
                        self.logs.delete(&TopicPartition::new(t.name.as_str(), p as i32))?;
                    }
                }
            }
        }
        let defaults_changed = self.refresh_defaults(new);
        self.host_all(new, |t| defaults_changed || old.topic_by_id(&t.id).is_none_or(|b| b.configs != t.configs))
    }

    /// Gives every partition of `image` placed on this node its log (the
    /// missing ones created together, `LogManager::create_many`) and its
    /// `Partition` with the image's leadership; a topic for which
    /// `configs_changed` holds has its logs reconfigured. The partitions
    /// are independent and becoming leader rewrites a log's
    /// `leader-epoch-checkpoint` (two fsyncs), so they are hosted several
    /// at once (`kaskade_log::parallel`): a 1,000-partition topic then
    /// waits out tens of journal commits, not thousands.
    fn host_all(&self, image: &Image, configs_changed: impl Fn(&TopicImage) -> bool) -> Result<(), TopicError> {
        let mut placed = Vec::new();
        let mut missing = Vec::new();
        for t in image.topics() {
            let cfg = self.log_config(&t.configs);
            let reconfigure = configs_changed(t);
            for p in (0..t.partitions.len()).filter(|p| self.hosts(t, *p)) {
                let tp = TopicPartition::new(t.name.as_str(), p as i32);
                match self.logs.get(&tp) {
                    Some(log) if reconfigure => log.set_config(cfg.clone()),
                    Some(_) => {}
                    None => missing.push((tp, cfg.clone())),
                }
                placed.push((t, p));
            }
        }
        self.logs.create_many(&missing)?;
        kaskade_log::parallel::try_for_each(&placed, kaskade_log::parallel::IO_PARALLELISM, |(t, p)| {
            let tp = TopicPartition::new(t.name.as_str(), *p as i32);
            let Some(log) = self.logs.get(&tp) else {
                return Err(TopicError::new(
                    kafka_protocol::ResponseError::KafkaStorageError,
                    format!("{tp}: the log was removed while it was being hosted"),
                ));
            };
            self.host(t, *p, log)
        })
    }

    /// Recomputes the topic defaults from `image`'s dynamic broker configs;
    /// whether they changed.
    fn refresh_defaults(&self, image: &Image) -> bool {
        let defaults = effective_defaults(&self.static_defaults, image, self.node_id);
        if **self.defaults.read() == defaults {
            return false;
        }
        *self.defaults.write() = Arc::new(defaults);
        true
    }
}

/// The topic defaults of node `node_id`: the static ones with the dynamic
/// broker configs of `image` (cluster-wide, then the node's own) laid over
/// them.
pub fn effective_defaults(
    static_defaults: &BTreeMap<String, String>,
    image: &Image,
    node_id: NodeId,
) -> BTreeMap<String, String> {
    let dynamic =
        crate::config::dynamic::effective(image.broker_configs(""), image.broker_configs(&node_id.to_string()));
    let mut defaults = static_defaults.clone();
    defaults.extend(crate::config::dynamic::topic_defaults(&dynamic));
    defaults
}

#[cfg(test)]
#[path = "replicas_tests.rs"]
mod tests;
