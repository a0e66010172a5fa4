//! The topic manager: the one place that changes topics. Each change is
//! decided against the current metadata image, made durable in the
//! metadata log, then carried out on the partition logs.
//!
//! Invariant: every partition in the image has a log; a log whose topic is
//! not in the image is deleted at start-up (a deletion the crash cut short).

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;

use kaskade_log::{Log, LogConfig, LogManager, TopicPartition};
use kaskade_meta::{Image, MetaError, MetadataRecord, MetadataStore, TopicImage, Uuid};

use super::config;

/// Kafka error codes for topic administration.
pub mod code {
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    pub const INVALID_CONFIG: i16 = 40;
    pub const TOPIC_DELETION_DISABLED: i16 = 73;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
    pub const INVALID_REQUEST: i16 = 42;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct TopicError {
    pub code: i16,
    pub message: String,
}

impl TopicError {
    pub fn new(code: i16, message: impl Into<String>) -> Self {
        TopicError { code, message: message.into() }
    }
}

impl From<MetaError> for TopicError {
    fn from(e: MetaError) -> Self {
        TopicError::new(code::KAFKA_STORAGE_ERROR, e.to_string())
    }
}

impl From<kaskade_log::LogError> for TopicError {
    fn from(e: kaskade_log::LogError) -> Self {
        TopicError::new(e.kafka_code(), e.to_string())
    }
}

/// Kafka's topic name rules: 1..=249 chars of `[a-zA-Z0-9._-]`, not `.`/`..`.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    let bad = |m: String| Err(TopicError::new(code::INVALID_TOPIC_EXCEPTION, m));
    if name.is_empty() {
        return bad("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return bad("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > 249 {
        return bad(format!("Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-') {
        return bad(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[derive(Debug)]
pub struct TopicManager {
    node_id: i32,
    meta: MetadataStore,
    logs: Arc<LogManager>,
    /// Topic-level key -> broker default value, from the static config.
    static_defaults: BTreeMap<String, String>,
    /// The static defaults with the dynamic broker configs laid over them:
    /// what topics without an override get.
    defaults: RwLock<Arc<BTreeMap<String, String>>>,
    default_partitions: i32,
    default_replication: i16,
    delete_enabled: bool,
}

/// Settings the topic manager takes from the broker config.
#[derive(Clone, Debug)]
pub struct TopicDefaults {
    pub node_id: i32,
    pub values: BTreeMap<String, String>,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub delete_enabled: bool,
}

impl TopicManager {
    /// Reconciles the logs with the image: creates missing logs, deletes
    /// logs of topics that no longer exist.
    pub fn new(meta: MetadataStore, logs: Arc<LogManager>, d: TopicDefaults) -> Result<TopicManager, TopicError> {
        let meta_image = meta.image();
        let tm = TopicManager {
            node_id: d.node_id,
            meta,
            logs,
            defaults: RwLock::new(Arc::new(TopicManager::effective_defaults(&d.values, &meta_image, d.node_id))),
            static_defaults: d.values,
            default_partitions: d.num_partitions,
            default_replication: d.replication_factor,
            delete_enabled: d.delete_enabled,
        };
        let image = tm.image();
        for tp in tm.logs.partitions() {
            let known = image.topic(&tp.topic).is_some_and(|t| (tp.partition as usize) < t.partitions.len());
            if !known {
                tracing::warn!(%tp, "deleting the log of a topic that no longer exists");
                tm.logs.delete(&tp)?;
            }
        }
        for t in image.topics() {
            let cfg = tm.log_config(&t.configs);
            for p in 0..t.partitions.len() {
                tm.logs.get_or_create(&TopicPartition::new(t.name.as_str(), p as i32), cfg.clone())?;
            }
        }
        Ok(tm)
    }

    /// The topic defaults of node `node_id`: the static ones with the
    /// dynamic broker configs of `image` (cluster-wide, then the node's own)
    /// laid over them.
    pub fn effective_defaults(
        static_defaults: &BTreeMap<String, String>,
        image: &Image,
        node_id: i32,
    ) -> BTreeMap<String, String> {
        let dynamic =
            crate::config::dynamic::effective(image.broker_configs(""), image.broker_configs(&node_id.to_string()));
        let mut defaults = static_defaults.clone();
        defaults.extend(crate::config::dynamic::topic_defaults(&dynamic));
        defaults
    }

    /// Recomputes the topic defaults after a dynamic broker config change and
    /// gives every log its new config.
    ///
    /// Under the metadata store's lock (an update without records), from the
    /// image as it is then: logs get their configs only under that lock
    /// (here, in `alter_configs`, and where topics and partitions are
    /// created), always derived from the newest image, so concurrent config
    /// changes cannot leave a log with a config of an older one.
    fn apply_dynamic_defaults(&self) -> Result<(), TopicError> {
        self.meta.update(|image: &Image| {
            let defaults = TopicManager::effective_defaults(&self.static_defaults, image, self.node_id);
            if **self.defaults.read() != defaults {
                *self.defaults.write() = Arc::new(defaults);
                for t in image.topics() {
                    self.set_log_configs(t);
                }
            }
            Ok::<_, TopicError>((Vec::new(), ()))
        })
    }

    /// Gives every log of `topic` the config its overrides and the current
    /// defaults make.
    fn set_log_configs(&self, topic: &TopicImage) {
        let cfg = self.log_config(&topic.configs);
        for p in 0..topic.partitions.len() {
            if let Some(log) = self.log(&topic.name, p as i32) {
                log.set_config(cfg.clone());
            }
        }
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
        let mut normalised = Vec::with_capacity(changes.len());
        for (k, v) in changes {
            let v = match v {
                Some(v) => Some(
                    crate::config::dynamic::validate(k, v).map_err(|m| TopicError::new(code::INVALID_REQUEST, m))?,
                ),
                None => None,
            };
            normalised.push((k.clone(), v));
        }
        if validate_only {
            return Ok(());
        }
        self.meta.update(|img: &Image| {
            let mut recs = Vec::new();
            if replace_all {
                for k in img.broker_configs(resource).into_iter().flat_map(|c| c.keys()) {
                    if !normalised.iter().any(|(c, _)| c == k) {
                        recs.push(MetadataRecord::BrokerConfig {
                            resource: resource.into(),
                            name: k.clone(),
                            value: None,
                        });
                    }
                }
            }
            for (k, v) in &normalised {
                recs.push(MetadataRecord::BrokerConfig {
                    resource: resource.into(),
                    name: k.clone(),
                    value: v.clone(),
                });
            }
            Ok::<_, TopicError>((recs, ()))
        })?;
        self.apply_dynamic_defaults()
    }

    /// The effective log config of a topic with these overrides.
    pub fn log_config(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        config::to_log_config(&config::effective(&self.defaults(), overrides))
    }

    /// The topic defaults now (static config and dynamic broker configs).
    pub fn defaults(&self) -> Arc<BTreeMap<String, String>> {
        self.defaults.read().clone()
    }

    pub fn image(&self) -> Arc<Image> {
        self.meta.image()
    }

    pub fn log(&self, topic: &str, partition: i32) -> Option<Arc<Log>> {
        self.logs.get(&TopicPartition::new(topic, partition))
    }

    pub fn logs(&self) -> &Arc<LogManager> {
        &self.logs
    }

    /// The metadata log (for records that are not about topics, such as
    /// producer id blocks).
    pub fn metadata(&self) -> &MetadataStore {
        &self.meta
    }

    pub fn default_partitions(&self) -> i32 {
        self.default_partitions
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
        validate_topic_name(name)?;
        let partitions = if !assignments.is_empty() {
            if partitions != -1 || replication != -1 {
                return Err(TopicError::new(
                    code::INVALID_REQUEST,
                    "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.",
                ));
            }
            for (i, (p, brokers)) in assignments.iter().enumerate() {
                if *p != i as i32 || brokers.is_empty() || brokers.iter().any(|b| *b != self.node_id) {
                    return Err(TopicError::new(
                        code::INVALID_REPLICA_ASSIGNMENT,
                        format!("Replica assignment for partition {p} names brokers {brokers:?}; this cluster has only broker {}", self.node_id),
                    ));
                }
            }
            assignments.len() as i32
        } else if partitions == -1 {
            self.default_partitions
        } else {
            partitions
        };
        if partitions <= 0 {
            return Err(TopicError::new(code::INVALID_PARTITIONS, "Number of partitions must be larger than 0."));
        }
        let replication = if replication == -1 { self.default_replication } else { replication };
        if replication <= 0 {
            return Err(TopicError::new(code::INVALID_REPLICATION_FACTOR, "Replication factor must be larger than 0."));
        }
        if replication > 1 {
            return Err(TopicError::new(
                code::INVALID_REPLICATION_FACTOR,
                format!("Unable to replicate the partition {replication} time(s): The target replication factor of {replication} cannot be reached because only 1 broker(s) are registered."),
            ));
        }
        for (k, v) in configs {
            config::validate(k, v).map_err(|m| TopicError::new(code::INVALID_CONFIG, m))?;
        }
        let id = Uuid::new_v4();
        let topic = self.meta.update(|img: &Image| {
            if img.topic(name).is_some() {
                return Err(TopicError::new(code::TOPIC_ALREADY_EXISTS, format!("Topic '{name}' already exists.")));
            }
            // Kafka refuses names that collide once '.' and '_' are equated
            // (metric names would clash).
            let norm = |s: &str| s.replace('.', "_");
            if let Some(other) = img.topics().find(|t| norm(&t.name) == norm(name)) {
                return Err(TopicError::new(
                    code::INVALID_TOPIC_EXCEPTION,
                    format!("Topic '{name}' collides with existing topic: {}", other.name),
                ));
            }
            let mut recs = vec![MetadataRecord::Topic { name: name.to_string(), id }];
            for p in 0..partitions {
                recs.push(self.partition_record(id, p));
            }
            for (k, v) in configs {
                recs.push(MetadataRecord::TopicConfig { topic_id: id, name: k.clone(), value: Some(v.clone()) });
            }
            let mut img2 = Image::default();
            for r in &recs {
                img2.apply(r);
            }
            let topic = img2.topic(name).cloned().ok_or_else(|| TopicError::new(-1, "topic vanished"))?;
            if validate_only {
                return Ok((Vec::new(), topic));
            }
            // Logs first, records second: if a log cannot be created the
            // metadata does not change (and a crash in between leaves logs
            // that start-up deletes as unknown).
            self.create_logs(name, 0..partitions, &self.log_config(configs))?;
            Ok((recs, topic))
        })?;
        if !validate_only {
            tracing::info!(topic = name, partitions, "created topic");
        }
        Ok(topic)
    }

    /// Creates the logs of `parts`, or none of them: on failure the ones
    /// already made are deleted again.
    fn create_logs(&self, name: &str, parts: std::ops::Range<i32>, cfg: &LogConfig) -> Result<(), TopicError> {
        let mut made = Vec::new();
        for p in parts {
            let tp = TopicPartition::new(name, p);
            match self.logs.get_or_create(&tp, cfg.clone()) {
                Ok(_) => made.push(tp),
                Err(e) => {
                    for tp in &made {
                        if let Err(e2) = self.logs.delete(tp) {
                            tracing::error!(%tp, error = %e2, "could not remove a partially created partition");
                        }
                    }
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    fn partition_record(&self, topic_id: Uuid, partition: i32) -> MetadataRecord {
        MetadataRecord::Partition {
            topic_id,
            partition,
            leader: self.node_id,
            replicas: vec![self.node_id],
            isr: vec![self.node_id],
            leader_epoch: 0,
        }
    }

    /// Deletes a topic by name or id. Returns (name, id).
    pub fn delete(&self, name: Option<&str>, id: Option<Uuid>) -> Result<(String, Uuid), TopicError> {
        if !self.delete_enabled {
            return Err(TopicError::new(code::TOPIC_DELETION_DISABLED, "Topic deletion is disabled."));
        }
        let topic = self.meta.update(|img: &Image| {
            let t = match (name, id) {
                (Some(n), _) => img.topic(n).ok_or_else(|| {
                    TopicError::new(code::UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition.")
                })?,
                (None, Some(id)) => img.topic_by_id(&id).ok_or_else(|| {
                    TopicError::new(code::UNKNOWN_TOPIC_ID, "This server does not host this topic ID.")
                })?,
                (None, None) => return Err(TopicError::new(code::INVALID_REQUEST, "neither topic name nor id given")),
            };
            Ok((vec![MetadataRecord::RemoveTopic { id: t.id }], t.clone()))
        })?;
        for p in 0..topic.partitions.len() {
            self.logs.delete(&TopicPartition::new(topic.name.as_str(), p as i32))?;
        }
        tracing::info!(topic = %topic.name, "deleted topic");
        Ok((topic.name, topic.id))
    }

    /// Grows a topic to `count` partitions (CreatePartitions).
    pub fn add_partitions(&self, name: &str, count: i32, validate_only: bool) -> Result<(), TopicError> {
        self.meta.update(|img: &Image| {
            let t = img.topic(name).ok_or_else(|| {
                TopicError::new(code::UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition.")
            })?;
            let old = t.partitions.len() as i32;
            if count < old {
                return Err(TopicError::new(
                    code::INVALID_PARTITIONS,
                    format!("Topic currently has {old} partitions, which is higher than the requested {count}."),
                ));
            }
            if count == old {
                return Err(TopicError::new(code::INVALID_PARTITIONS, format!("Topic already has {old} partitions.")));
            }
            let recs = (old..count).map(|p| self.partition_record(t.id, p)).collect();
            if validate_only {
                return Ok((Vec::new(), ()));
            }
            self.create_logs(name, old..count, &self.log_config(&t.configs))?;
            Ok((recs, ()))
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
        for (k, v) in changes {
            match v {
                Some(v) => {
                    config::validate(k, v).map_err(|m| TopicError::new(code::INVALID_CONFIG, m))?;
                }
                None if !config::is_known(k) => {
                    return Err(TopicError::new(code::INVALID_CONFIG, format!("Unknown topic config name: {k}")))
                }
                None => {}
            }
        }
        self.meta.update(|img: &Image| {
            let t = img.topic(name).ok_or_else(|| {
                TopicError::new(code::UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition.")
            })?;
            let mut recs = Vec::new();
            if replace_all {
                for k in t.configs.keys() {
                    if !changes.iter().any(|(c, _)| c == k) {
                        recs.push(MetadataRecord::TopicConfig { topic_id: t.id, name: k.clone(), value: None });
                    }
                }
            }
            for (k, v) in changes {
                recs.push(MetadataRecord::TopicConfig { topic_id: t.id, name: k.clone(), value: v.clone() });
            }
            Ok::<_, TopicError>((if validate_only { Vec::new() } else { recs }, ()))
        })?;
        if validate_only {
            return Ok(());
        }
        // Derived from the image as it is under the lock (see
        // `apply_dynamic_defaults`): a config change committed in between,
        // of this topic or of the broker defaults, is not overwritten with
        // an older one.
        self.meta.update(|img: &Image| {
            if let Some(t) = img.topic(name) {
                self.set_log_configs(t);
            }
            Ok::<_, TopicError>((Vec::new(), ()))
        })
    }
}

impl TopicManager {
    pub fn node_id(&self) -> i32 {
        self.node_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;

    #[test]
    fn a_failed_create_changes_neither_metadata_nor_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tm, _, _) = crate::server::open_storage(&BrokerConfig::default(), dir.path()).expect("storage");
        // Partition 2's directory cannot be made: a file stands in its way.
        std::fs::write(dir.path().join("t-2"), b"in the way").expect("write");
        let err = tm.create("t", 4, -1, &[], &BTreeMap::new(), false).expect_err("must fail");
        assert_eq!(err.code, code::KAFKA_STORAGE_ERROR, "{err}");
        assert!(tm.image().topic("t").is_none(), "metadata unchanged");
        assert!(!dir.path().join("t-0").exists() && !dir.path().join("t-1").exists(), "made logs removed");
        // Growing an existing topic fails the same way, atomically.
        tm.create("u", 1, -1, &[], &BTreeMap::new(), false).expect("create u");
        std::fs::write(dir.path().join("u-2"), b"in the way").expect("write");
        assert!(tm.add_partitions("u", 3, false).is_err());
        assert_eq!(tm.image().topic("u").map(|t| t.partitions.len()), Some(1));
        assert!(!dir.path().join("u-1").exists());
        std::fs::remove_file(dir.path().join("u-2")).expect("rm");
        tm.add_partitions("u", 3, false).expect("grows once the way is clear");
        assert_eq!(tm.image().topic("u").map(|t| t.partitions.len()), Some(3));
    }

    #[test]
    fn concurrent_config_changes_leave_every_log_with_the_newest_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tm, _, _) = crate::server::open_storage(&BrokerConfig::default(), dir.path()).expect("storage");
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
