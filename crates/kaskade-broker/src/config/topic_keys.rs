//! Topic-level keys (`retention.ms`, `cleanup.policy`, ...): their kinds,
//! the broker keys they inherit their default from (primary first, as
//! Kafka's synonyms), and their validation for CreateTopics and
//! AlterConfigs. The typed form the storage engine uses is built from the
//! effective values in `topic::config::to_log_config`.

use super::keys::{int_min, Kind, LONG};

/// A topic-level key, its type and validation, and its broker synonyms.
pub(super) struct TopicKeyDef {
    pub(super) name: &'static str,
    pub(super) kind: Kind,
    pub(super) broker_keys: &'static [&'static str],
    /// The default when no broker key backs it.
    pub(super) fixed_default: Option<&'static str>,
}

#[rustfmt::skip]
pub(super) static TOPIC_KEYS: &[TopicKeyDef] = &[
    TopicKeyDef { name: "cleanup.policy", kind: Kind::ChoiceList(&["compact", "delete"]), broker_keys: &["log.cleanup.policy"], fixed_default: None },
    TopicKeyDef { name: "compression.gzip.level", kind: Kind::Int { min: -1, max: 9 }, broker_keys: &["compression.gzip.level"], fixed_default: None },
    TopicKeyDef { name: "compression.lz4.level", kind: Kind::Int { min: 1, max: 17 }, broker_keys: &["compression.lz4.level"], fixed_default: None },
    TopicKeyDef { name: "compression.type", kind: Kind::Choice(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]), broker_keys: &["compression.type"], fixed_default: None },
    TopicKeyDef { name: "compression.zstd.level", kind: Kind::Int { min: -131072, max: 22 }, broker_keys: &["compression.zstd.level"], fixed_default: None },
    TopicKeyDef { name: "delete.retention.ms", kind: Kind::Long { min: 0 }, broker_keys: &["log.cleaner.delete.retention.ms"], fixed_default: None },
    TopicKeyDef { name: "file.delete.delay.ms", kind: Kind::Long { min: 0 }, broker_keys: &["log.segment.delete.delay.ms"], fixed_default: None },
    TopicKeyDef { name: "flush.messages", kind: Kind::Long { min: 1 }, broker_keys: &["log.flush.interval.messages"], fixed_default: None },
    TopicKeyDef { name: "flush.ms", kind: Kind::Long { min: 0 }, broker_keys: &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"], fixed_default: None },
    TopicKeyDef { name: "follower.replication.throttled.replicas", kind: Kind::List, broker_keys: &[], fixed_default: Some("") },
    TopicKeyDef { name: "index.interval.bytes", kind: int_min(0), broker_keys: &["log.index.interval.bytes"], fixed_default: None },
    TopicKeyDef { name: "leader.replication.throttled.replicas", kind: Kind::List, broker_keys: &[], fixed_default: Some("") },
    TopicKeyDef { name: "max.compaction.lag.ms", kind: Kind::Long { min: 1 }, broker_keys: &["log.cleaner.max.compaction.lag.ms"], fixed_default: None },
    TopicKeyDef { name: "max.message.bytes", kind: int_min(0), broker_keys: &["message.max.bytes"], fixed_default: None },
    TopicKeyDef { name: "message.timestamp.after.max.ms", kind: Kind::Long { min: 0 }, broker_keys: &["log.message.timestamp.after.max.ms"], fixed_default: None },
    TopicKeyDef { name: "message.timestamp.before.max.ms", kind: Kind::Long { min: 0 }, broker_keys: &["log.message.timestamp.before.max.ms"], fixed_default: None },
    TopicKeyDef { name: "message.timestamp.type", kind: Kind::Choice(&["CreateTime", "LogAppendTime"]), broker_keys: &["log.message.timestamp.type"], fixed_default: None },
    TopicKeyDef { name: "min.cleanable.dirty.ratio", kind: Kind::Double { min: 0.0, max: 1.0 }, broker_keys: &["log.cleaner.min.cleanable.ratio"], fixed_default: None },
    TopicKeyDef { name: "min.compaction.lag.ms", kind: Kind::Long { min: 0 }, broker_keys: &["log.cleaner.min.compaction.lag.ms"], fixed_default: None },
    TopicKeyDef { name: "min.insync.replicas", kind: int_min(1), broker_keys: &["min.insync.replicas"], fixed_default: None },
    TopicKeyDef { name: "preallocate", kind: Kind::Bool, broker_keys: &["log.preallocate"], fixed_default: None },
    TopicKeyDef { name: "remote.storage.enable", kind: Kind::Bool, broker_keys: &[], fixed_default: Some("false") },
    TopicKeyDef { name: "retention.bytes", kind: LONG, broker_keys: &["log.retention.bytes"], fixed_default: None },
    TopicKeyDef { name: "retention.ms", kind: Kind::Long { min: -1 }, broker_keys: &["log.retention.ms", "log.retention.minutes", "log.retention.hours"], fixed_default: None },
    TopicKeyDef { name: "segment.bytes", kind: int_min(1048576), broker_keys: &["log.segment.bytes"], fixed_default: None },
    TopicKeyDef { name: "segment.index.bytes", kind: int_min(4), broker_keys: &["log.index.size.max.bytes"], fixed_default: None },
    TopicKeyDef { name: "segment.jitter.ms", kind: Kind::Long { min: 0 }, broker_keys: &["log.roll.jitter.ms", "log.roll.jitter.hours"], fixed_default: None },
    TopicKeyDef { name: "segment.ms", kind: Kind::Long { min: 1 }, broker_keys: &["log.roll.ms", "log.roll.hours"], fixed_default: None },
    TopicKeyDef { name: "unclean.leader.election.enable", kind: Kind::Bool, broker_keys: &["unclean.leader.election.enable"], fixed_default: None },
];

/// Validates a topic-level configuration value (CreateTopics, AlterConfigs)
/// and returns it normalised. `Err` carries a message naming the key and the
/// accepted values; an unknown key is an error too (Kafka answers
/// INVALID_CONFIG for both).
pub fn validate_topic_config(name: &str, value: &str) -> Result<String, String> {
    match TOPIC_KEYS.iter().find(|k| k.name == name) {
        Some(def) => def.kind.normalise(name, value),
        None => Err(format!("unknown topic configuration '{name}'")),
    }
}

/// Whether `name` is a topic-level configuration Kaskade knows.
pub fn is_topic_config(name: &str) -> bool {
    TOPIC_KEYS.iter().any(|k| k.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_config_validation() {
        assert_eq!(validate_topic_config("retention.ms", " 1000 ").unwrap(), "1000");
        assert_eq!(validate_topic_config("retention.ms", "-1").unwrap(), "-1");
        assert!(validate_topic_config("retention.ms", "-2").is_err());
        assert_eq!(validate_topic_config("cleanup.policy", "compact, delete").unwrap(), "compact,delete");
        let err = validate_topic_config("segment.bytes", "100").unwrap_err();
        assert!(err.contains("expected an integer >= 1048576"), "{err}");
        assert!(validate_topic_config("no.such.key", "1").is_err());
        assert!(is_topic_config("max.message.bytes"));
        assert!(!is_topic_config("log.retention.ms"));
    }

    #[test]
    fn topic_keys_inherit_from_known_broker_keys_and_their_defaults_are_valid() {
        for (i, def) in TOPIC_KEYS.iter().enumerate() {
            assert!(TOPIC_KEYS[i + 1..].iter().all(|d| d.name != def.name), "{} is defined twice", def.name);
            for k in def.broker_keys {
                assert!(super::super::keys::key_def(k).is_some(), "{}: broker key {k} is known", def.name);
            }
            assert!(def.broker_keys.is_empty() != def.fixed_default.is_none(), "{}: one source of default", def.name);
        }
        // What topics get from the default broker config is valid at topic
        // level (CreateTopics echoes it back; AlterConfigs may set it again).
        for d in crate::config::BrokerConfig::default().topic_defaults() {
            let value = d.value.unwrap_or_else(|| panic!("{} has a default", d.name));
            assert_eq!(validate_topic_config(d.name, &value).as_deref(), Ok(value.as_str()), "{}", d.name);
        }
    }
}
