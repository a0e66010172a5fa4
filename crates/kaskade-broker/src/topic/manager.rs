//! The topic manager: how a node changes topics. A change is decided by the
//! controller side ([`TopicController`], pure), committed to the metadata log
//! (through the [`MetadataLog`] seam: a local file today, a quorum next),
//! then carried out on this node's partition logs ([`LocalReplicas`]).
//!
//! On one node the three run in-process, in that order, so an admin request
//! is answered once the change is committed and its logs exist. Creating
//! partitions is the one place where the broker side runs first: their logs
//! are made before the records are committed, so a disk that cannot take
//! them leaves the metadata unchanged (a crash in between leaves logs that
//! start-up deletes as unknown). In a cluster the controller commits and
//! every broker applies the committed image from the log's watch.
//!
//! Invariant: every partition in the image placed on this node has a log;
//! a log whose topic is not in the image is deleted at start-up.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use kaskade_log::{Log, LogConfig, LogManager};
use kaskade_meta::{Committed, Image, MetaError, MetadataLog, MetadataRecord, TopicImage, Uuid};
use kaskade_types::NodeId;

pub use super::controller::validate_topic_name;
use super::controller::{NewTopic, TopicController};
pub use super::error::TopicError;
use super::placement::UsableBroker;
use super::replicas::LocalReplicas;
use crate::partition::{Partition, PartitionError};

thread_local! {
    /// Whether the change running on this (blocking-pool) thread is the
    /// active controller's own decision ([`super::as_active_controller`]).
    static AS_ACTIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `change` with commits made as the active controller (`as_active`)
/// or through any leader (the default), restoring the thread's mode after.
/// A panicking change restores it too: pool threads run other changes next.
pub(super) fn deciding_as_active<T>(as_active: bool, change: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            AS_ACTIVE.with(|a| a.set(self.0));
        }
    }
    let _restore = Restore(AS_ACTIVE.with(|a| a.replace(as_active)));
    change()
}

/// A metadata log whose appends are the active controller's own
/// (`append_as_active`), for `kaskade_meta::update` in that mode.
#[derive(Debug)]
struct AsActive<'a>(&'a dyn MetadataLog);

impl MetadataLog for AsActive<'_> {
    fn committed(&self) -> Committed {
        self.0.committed()
    }

    fn append(
        &self,
        based_on: kaskade_meta::MetadataVersion,
        records: Vec<MetadataRecord>,
    ) -> Result<Committed, MetaError> {
        self.0.append_as_active(based_on, records)
    }

    fn snapshot(&self) -> Result<kaskade_meta::MetadataVersion, MetaError> {
        self.0.snapshot()
    }

    fn subscribe(&self) -> tokio::sync::watch::Receiver<kaskade_meta::MetadataVersion> {
        self.0.subscribe()
    }
}

#[derive(Debug)]
pub struct TopicManager {
    node_id: NodeId,
    meta: Arc<dyn MetadataLog>,
    controller: TopicController,
    replicas: LocalReplicas,
    /// Held by a decision that makes logs before committing (creating a
    /// topic, adding partitions): two such decisions for one name would
    /// make the same directories, and the loser's clean-up would delete the
    /// winner's logs.
    making_logs: Mutex<()>,
}

/// Settings the topic manager takes from the broker config.
#[derive(Clone, Debug)]
pub struct TopicDefaults {
    pub node_id: NodeId,
    pub values: BTreeMap<String, String>,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub delete_enabled: bool,
}

impl TopicManager {
    /// Reconciles the logs with the image: creates missing logs, deletes
    /// logs of topics that no longer exist.
    pub fn new(
        meta: Arc<dyn MetadataLog>,
        logs: Arc<LogManager>,
        d: TopicDefaults,
    ) -> Result<TopicManager, TopicError> {
        let image = meta.committed().image;
        let replicas = LocalReplicas::new(d.node_id, logs, d.values, image.clone());
        replicas.reconcile(&image)?;
        let controller = TopicController {
            brokers: vec![UsableBroker::new(d.node_id.get(), None)],
            fenced: Vec::new(),
            default_partitions: d.num_partitions,
            default_replication: d.replication_factor,
            delete_enabled: d.delete_enabled,
        };
        Ok(TopicManager { node_id: d.node_id, meta, controller, replicas, making_logs: Mutex::new(()) })
    }

    /// Commits `records` decided on `before`, then brings the local logs to
    /// the new image. `Ok(false)`: the log moved since `before`, nothing was
    /// committed, decide again.
    fn commit(&self, before: &Committed, records: Vec<MetadataRecord>) -> Result<bool, TopicError> {
        let appended = if AS_ACTIVE.with(std::cell::Cell::get) {
            self.meta.append_as_active(before.version, records)
        } else {
            self.meta.append(before.version, records)
        };
        match appended {
            Ok(_) => {}
            Err(MetaError::Stale { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        self.replicas.catch_up(&*self.meta)?;
        Ok(true)
    }

    /// Sets (`Some`) or removes (`None`) dynamic broker configs of
    /// `resource` (`""`: every broker; else this node's id), or with
    /// `replace_all` (legacy AlterConfigs) makes `changes` the resource's
    /// whole dynamic config. Topics without overrides follow at once.
    pub fn alter_broker_configs(
        &self,
        resource: &str,
        changes: &[(String, Option<String>)],
        replace_all: bool,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let normalised = TopicController::check_broker_config_changes(changes)?;
        if validate_only {
            return Ok(());
        }
        self.decide(|img| Ok((TopicController::alter_broker_configs(img, resource, &normalised, replace_all), ())))
    }

    /// Decides on the committed image and commits, deciding again if the
    /// metadata log moved meanwhile; an empty decision commits nothing.
    fn decide<T>(
        &self,
        mut decide: impl FnMut(&Image) -> Result<(Vec<MetadataRecord>, T), TopicError>,
    ) -> Result<T, TopicError> {
        for _ in 0..MAX_DECISIONS {
            let before = self.meta.committed();
            let (records, out) = self.settled(decide(&before.image), |d| !d.0.is_empty())?;
            if records.is_empty() {
                return Ok(out);
            }
            if self.commit(&before, records)? {
                return Ok(out);
            }
        }
        Err(MetaError::Contended(MAX_DECISIONS).into())
    }

    /// The controller deciding on `img`: in a cluster it places replicas on
    /// the registered, unfenced brokers (with their registered racks), and
    /// knows the fenced ones an explicit assignment may name; a node of its
    /// own (no registrations) places on itself.
    fn controller_for(&self, img: &Image) -> TopicController {
        let live: Vec<UsableBroker> = img
            .brokers()
            .values()
            .filter(|b| !b.fenced)
            .map(|b| UsableBroker { id: b.id, rack: b.rack.clone() })
            .collect();
        let fenced: Vec<NodeId> = img.brokers().values().filter(|b| b.fenced).map(|b| b.id).collect();
        if live.is_empty() {
            return TopicController { fenced, ..self.controller.clone() };
        }
        TopicController { brokers: live, fenced, ..self.controller.clone() }
    }

    /// The effective log config of a topic with these overrides.
    pub fn log_config(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        self.replicas.log_config(overrides)
    }

    /// The topic defaults now (static config and dynamic broker configs).
    pub fn defaults(&self) -> Arc<BTreeMap<String, String>> {
        self.replicas.defaults()
    }

    /// The image this node serves: the latest one its replicas were brought
    /// to. A topic appears here only once its partitions exist on this
    /// node, so a client told of a topic can produce to it at once.
    pub fn image(&self) -> Arc<Image> {
        self.replicas.visible()
    }

    /// Brings this node's replicas to the metadata log's committed image
    /// (what a cluster's broker runs from the log's watch; here also after
    /// records appended by other means than this manager's decisions).
    pub fn apply_committed(&self) -> Result<(), TopicError> {
        self.replicas.catch_up(&*self.meta)
    }

    /// The one lookup handlers use: this node's replica of `topic`-
    /// `partition`, or UNKNOWN_TOPIC_OR_PARTITION.
    pub fn partition(&self, topic: &str, partition: i32) -> Result<Arc<Partition>, PartitionError> {
        if let Some(p) = self.replicas.partition(topic, partition) {
            return Ok(p);
        }
        // A partition of the cluster placed on other brokers: as Kafka's
        // ReplicaManager, NOT_LEADER_OR_FOLLOWER, so clients refresh
        // their metadata and go to its leader.
        let exists =
            self.image().topic(topic).is_some_and(|t| partition >= 0 && (partition as usize) < t.partitions.len());
        Err(if exists { PartitionError::NotLeader } else { PartitionError::UnknownTopicOrPartition })
    }

    pub fn log(&self, topic: &str, partition: i32) -> Option<Arc<Log>> {
        self.replicas.log(topic, partition)
    }

    pub fn logs(&self) -> &Arc<LogManager> {
        self.replicas.logs()
    }

    /// The metadata log, to read. Changes go through [`TopicManager::update`],
    /// which keeps the image this node serves in step.
    pub fn metadata(&self) -> &dyn MetadataLog {
        &*self.meta
    }

    /// Decides and commits a change that is not about topics (producer id
    /// blocks, SCRAM credentials), as `kaskade_meta::update`, then brings
    /// the image this node serves ([`TopicManager::image`]) to it.
    /// Blocking (the metadata log fsyncs).
    pub fn update<T, E: From<MetaError>>(
        &self,
        decide: impl FnMut(&Image) -> Result<(Vec<MetadataRecord>, T), E>,
    ) -> Result<T, E> {
        let out = if AS_ACTIVE.with(std::cell::Cell::get) {
            kaskade_meta::update(&AsActive(&*self.meta), decide)?
        } else {
            kaskade_meta::update(&*self.meta, decide)?
        };
        if let Err(e) = self.replicas.catch_up(&*self.meta) {
            // The change is committed; only this node's view lags, and the
            // next change brings it along.
            tracing::error!(error = %e, "could not apply a committed metadata change");
        }
        Ok(out)
    }

    pub fn default_partitions(&self) -> i32 {
        self.controller.default_partitions
    }

    /// Creates a topic. `partitions`/`replication` of -1 take the broker
    /// defaults. Returns the new topic (or, with `validate_only`, what it
    /// would be).
    pub fn create(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
        assignments: &[(i32, Vec<i32>)],
        configs: &BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicImage, TopicError> {
        let request = NewTopic { name, partitions, replication, assignments, configs };
        let partitions = self.controller_for(&self.image()).check_new_topic(&request)?;
        let id = Uuid::new_v4();
        let topic = self.decide_with_new_logs(|img| {
            let controller = self.controller_for(img);
            // The live brokers may have changed since the first check.
            controller.check_new_topic(&request)?;
            let made = controller.create(img, &request, partitions, id)?;
            if validate_only {
                return Ok((Vec::new(), made.topic, None));
            }
            Ok((made.records, made.topic, Some((name, 0..partitions, configs.clone()))))
        })?;
        if !validate_only {
            tracing::info!(topic = name, partitions, "created topic");
        }
        Ok(topic)
    }

    /// A decision that commits nothing (nothing to change, or refused) is
    /// answered only once this node hosts what the image it was decided on
    /// holds: another request may have just committed what this one found
    /// (two clients auto-creating one topic), and a client told the topic
    /// exists must be able to produce to it at once.
    fn settled<D>(&self, decided: Result<D, TopicError>, commits: impl Fn(&D) -> bool) -> Result<D, TopicError> {
        if !matches!(&decided, Ok(d) if commits(d)) {
            self.replicas.catch_up(&*self.meta)?;
        }
        decided
    }

    /// Like `decide`, for decisions that create partitions: their logs are
    /// made before the records are committed, and removed again if the
    /// commit fails.
    fn decide_with_new_logs<'n, T>(
        &self,
        mut decide: impl FnMut(&Image) -> Result<NewLogsDecision<'n, T>, TopicError>,
    ) -> Result<T, TopicError> {
        let _one_at_a_time = self.making_logs.lock();
        for _ in 0..MAX_DECISIONS {
            let before = self.meta.committed();
            let (records, out, new_logs) = self.settled(decide(&before.image), |d| !d.0.is_empty())?;
            if records.is_empty() {
                return Ok(out);
            }
            // Only the partitions placed on this node get logs here; the
            // other replicas' brokers make theirs from the committed image.
            let placed = placed_on(&records, self.node_id);
            if let Some((name, parts, overrides)) = &new_logs {
                debug_assert!(placed.iter().all(|p| parts.contains(p)), "logs are prepared for the decided partitions");
                self.replicas.prepare(name, placed.iter().copied(), &self.log_config(overrides))?;
            }
            let committed = self.commit(&before, records);
            if matches!(committed, Ok(true)) {
                return Ok(out);
            }
            if let Some((name, _, _)) = &new_logs {
                self.replicas.discard_prepared(&*self.meta, name, &placed);
            }
            committed?;
        }
        Err(MetaError::Contended(MAX_DECISIONS).into())
    }

    /// Deletes a topic by name or id. Returns (name, id).
    pub fn delete(&self, name: Option<&str>, id: Option<Uuid>) -> Result<(String, Uuid), TopicError> {
        let topic = self.decide(|img| self.controller.delete(img, name, id))?;
        tracing::info!(topic = %topic.name, "deleted topic");
        Ok((topic.name, topic.id))
    }

    /// Grows a topic to `count` partitions (CreatePartitions), placed
    /// automatically or as `assignments` (one list per new partition) ask.
    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<&[Vec<i32>]>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        self.decide_with_new_logs(|img| {
            let (records, parts) = self.controller_for(img).add_partitions(img, name, count, assignments)?;
            if validate_only {
                return Ok((Vec::new(), (), None));
            }
            let overrides = img.topic(name).map(|t| t.configs.clone()).unwrap_or_default();
            Ok((records, (), Some((name, parts, overrides))))
        })
    }

    /// Changes topic overrides: `Some` sets, `None` removes. With
    /// `replace_all` (legacy AlterConfigs) every override not named is
    /// removed.
    pub fn alter_configs(
        &self,
        name: &str,
        changes: &[(String, Option<String>)],
        replace_all: bool,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        TopicController::check_config_changes(changes)?;
        self.decide(|img| {
            let (records, after) = TopicController::alter_configs(img, name, changes, replace_all)?;
            Ok((if validate_only { Vec::new() } else { records }, after))
        })?;
        Ok(())
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }
}

/// A decision that may create partitions: records, the result, and the
/// partitions (topic, indexes, overrides) whose logs must exist first.
/// The partitions `records` place on `node_id` (records name nodes by
/// their integer ids, as the metadata log stores them).
fn placed_on(records: &[MetadataRecord], node_id: NodeId) -> Vec<i32> {
    let node_id = node_id.get();
    records
        .iter()
        .filter_map(|r| match r {
            MetadataRecord::Partition { partition, replicas, .. } if replicas.contains(&node_id) => Some(*partition),
            _ => None,
        })
        .collect()
}

type NewLogsDecision<'a, T> =
    (Vec<MetadataRecord>, T, Option<(&'a str, std::ops::Range<i32>, BTreeMap<String, String>)>);

/// How many times a change is decided again after losing the race to append
/// (see `kaskade_meta::update`).
const MAX_DECISIONS: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use kaskade_types::NodeId;

    #[test]
    fn a_failed_create_changes_neither_metadata_nor_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tm = crate::server::open_storage(&BrokerConfig::default(), dir.path()).expect("storage").topics;
        // Partition 2's directory cannot be made: a file stands in its way.
        std::fs::write(dir.path().join("t-2"), b"in the way").expect("write");
        let err = tm.create("t", 4, -1, &[], &BTreeMap::new(), false).expect_err("must fail");
        assert_eq!(err.code, kafka_protocol::ResponseError::KafkaStorageError, "{err}");
        assert!(tm.image().topic("t").is_none(), "metadata unchanged");
        assert!(!dir.path().join("t-0").exists() && !dir.path().join("t-1").exists(), "made logs removed");
        // Growing an existing topic fails the same way, atomically.
        tm.create("u", 1, -1, &[], &BTreeMap::new(), false).expect("create u");
        std::fs::write(dir.path().join("u-2"), b"in the way").expect("write");
        assert!(tm.add_partitions("u", 3, None, false).is_err());
        assert_eq!(tm.image().topic("u").map(|t| t.partitions.len()), Some(1));
        assert!(!dir.path().join("u-1").exists());
        std::fs::remove_file(dir.path().join("u-2")).expect("rm");
        tm.add_partitions("u", 3, None, false).expect("grows once the way is clear");
        assert_eq!(tm.image().topic("u").map(|t| t.partitions.len()), Some(3));
    }

    #[test]
    fn a_creator_that_loses_the_race_answers_once_the_partitions_exist() {
        // Two clients auto-creating one topic: the loser's TOPIC_ALREADY_EXISTS
        // makes the Metadata handler name the topic, so its partitions must be
        // served here by then (rdkafka produced into UNKNOWN_TOPIC_OR_PARTITION).
        let dir = tempfile::tempdir().expect("tempdir");
        let tm = crate::server::open_storage(&BrokerConfig::default(), dir.path()).expect("storage").topics;
        for round in 0..20 {
            let name = format!("t{round}");
            std::thread::scope(|s| {
                for _ in 0..4 {
                    s.spawn(|| {
                        match tm.create(&name, 8, -1, &[], &BTreeMap::new(), false) {
                            Ok(_) => {}
                            Err(e) => assert_eq!(e.code, kafka_protocol::ResponseError::TopicAlreadyExists, "{e}"),
                        }
                        let seen = tm.image().topic(&name).map(|t| t.partitions.len());
                        assert_eq!(seen, Some(8), "the image this node serves names the topic");
                        for p in 0..8 {
                            assert!(tm.partition(&name, p).is_ok(), "{name}-{p} is served once the topic is named");
                        }
                    });
                }
            });
        }
    }

    #[test]
    fn a_partition_the_image_moves_off_this_node_loses_its_log_and_replica() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tm = crate::server::open_storage(&BrokerConfig::default(), dir.path()).expect("storage").topics;
        tm.create("t", 2, -1, &[], &BTreeMap::new(), false).expect("create t");
        assert!(dir.path().join("t-1").exists() && tm.partition("t", 1).is_ok());
        // A completed reassignment places partition 1 on broker 2 alone.
        tm.update(|img| -> Result<_, MetaError> {
            let t = img.topic("t").expect("t");
            let p = &t.partitions[1];
            let moved = kaskade_meta::PartitionImage {
                leader: Some(NodeId(2)),
                replicas: vec![NodeId(2)],
                isr: vec![NodeId(2)],
                ..p.clone()
            };
            Ok((vec![p.changed_to(moved).to_record(t.id, 1)], ()))
        })
        .expect("move");
        assert!(!dir.path().join("t-1").exists(), "the log is deleted");
        assert!(tm.partition("t", 1).is_err(), "and no longer served here");
        assert!(dir.path().join("t-0").exists() && tm.partition("t", 0).is_ok(), "the other partition stays");
    }

    #[test]
    fn concurrent_config_changes_leave_every_log_with_the_newest_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tm = crate::server::open_storage(&BrokerConfig::default(), dir.path()).expect("storage").topics;
        tm.create("t", 2, -1, &[], &BTreeMap::new(), false).expect("create t");
        const N: i64 = 30;
        let set = |key: &str, value: i64| vec![(key.to_string(), Some(value.to_string()))];
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 1..=N {
                    tm.alter_broker_configs("", &set("log.retention.ms", 1000 + i), false, false).expect("cluster");
                }
            });
            s.spawn(|| {
                for i in 1..=N {
                    tm.alter_broker_configs("1", &set("log.segment.bytes", (1 << 20) + i), false, false).expect("own");
                }
            });
            s.spawn(|| {
                for i in 1..=N {
                    tm.alter_configs("t", &set("segment.ms", 1000 + i), false, false).expect("topic");
                }
            });
        });
        let image = tm.image();
        let want = tm.log_config(&image.topic("t").expect("t").configs);
        assert_eq!(
            (want.retention_ms, want.segment_bytes, want.segment_ms),
            (1000 + N, (1 << 20) + N as u64, 1000 + N)
        );
        for p in 0..2 {
            assert_eq!(tm.log("t", p).expect("log").config(), want, "partition {p} has the newest config");
        }
    }
}
