//! Topic-level configuration: validation on top of the key table in
//! `crate::config`, effective values, and the translation to the storage
//! engine's `LogConfig`.
//!
//! The `LogConfig` is the topic's typed configuration: it is built here
//! once whenever the topic's overrides or the broker defaults (static or
//! dynamic) change (`TopicManager::{create, alter_configs,
//! alter_broker_configs}`) and set on every partition log; request paths
//! read it from the log (`Log::config`) instead of parsing strings.

use std::collections::BTreeMap;

use kaskade_log::{CleanupPolicy, FlushPolicy, LogConfig, TimestampType};

/// Checks one topic config value (the key table lives in
/// `crate::config`); the error text is what INVALID_CONFIG carries.
pub fn validate(name: &str, value: &str) -> Result<String, String> {
    crate::config::validate_topic_config(name, value)
}

/// The recompression a topic asks for (`compression.type` other than
/// `producer`, with its KIP-390 level), from its effective values.
pub fn recompression(values: &BTreeMap<String, String>) -> Option<kaskade_log::recompress::Target> {
    let level = |key: &str, default: i32| text(values, key).and_then(|v| v.parse().ok()).unwrap_or(default);
    kaskade_log::recompress::Target::from_config(
        text(values, "compression.type").unwrap_or("producer"),
        level("compression.gzip.level", -1),
        level("compression.lz4.level", 9),
        level("compression.zstd.level", 3),
    )
}

pub fn is_known(name: &str) -> bool {
    crate::config::is_topic_config(name)
}

/// The effective value of every topic key: the topic's override, else the
/// broker default.
pub fn effective(
    defaults: &BTreeMap<String, String>,
    overrides: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = defaults.clone();
    for (k, v) in overrides {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// A value as Kafka's `ConfigDef` parses it: trimmed. Topic overrides are
/// stored as the client sent them (validation only checks them), so
/// `" LogAppendTime"` must mean `LogAppendTime` here too.
fn text<'a>(m: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    m.get(key).map(|v| v.trim())
}

fn num(m: &BTreeMap<String, String>, key: &str, fallback: i64) -> i64 {
    text(m, key).and_then(|v| v.parse().ok()).unwrap_or(fallback)
}

/// Builds the storage engine's config from effective topic values.
pub fn to_log_config(values: &BTreeMap<String, String>) -> LogConfig {
    let d = LogConfig::default();
    let flush_messages = text(values, "flush.messages").and_then(|v| v.parse::<i64>().ok());
    let flush_ms = text(values, "flush.ms").and_then(|v| v.parse::<i64>().ok());
    LogConfig {
        segment_bytes: num(values, "segment.bytes", d.segment_bytes as i64).max(14) as u64,
        segment_ms: num(values, "segment.ms", d.segment_ms),
        segment_index_bytes: num(values, "segment.index.bytes", d.segment_index_bytes as i64).max(4) as u64,
        index_interval_bytes: num(values, "index.interval.bytes", d.index_interval_bytes as i64).max(0) as u64,
        max_message_bytes: num(values, "max.message.bytes", d.max_message_bytes as i64).max(0) as usize,
        retention_ms: num(values, "retention.ms", d.retention_ms),
        retention_bytes: num(values, "retention.bytes", d.retention_bytes),
        flush: FlushPolicy::from_kafka(flush_messages, flush_ms),
        timestamp_type: match text(values, "message.timestamp.type") {
            Some("LogAppendTime") => TimestampType::LogAppendTime,
            _ => TimestampType::CreateTime,
        },
        cleanup_policy: text(values, "cleanup.policy").and_then(CleanupPolicy::parse).unwrap_or(d.cleanup_policy),
        min_cleanable_dirty_ratio: text(values, "min.cleanable.dirty.ratio")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|r| (0.0..=1.0).contains(r))
            .unwrap_or(d.min_cleanable_dirty_ratio),
        delete_retention_ms: num(values, "delete.retention.ms", d.delete_retention_ms).max(0),
        min_compaction_lag_ms: num(values, "min.compaction.lag.ms", d.min_compaction_lag_ms).max(0),
        max_compaction_lag_ms: num(values, "max.compaction.lag.ms", d.max_compaction_lag_ms).max(1),
        recompression: recompression(values),
        min_insync_replicas: num(values, "min.insync.replicas", d.min_insync_replicas as i64).max(1) as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_key_and_accepts_every_codec() {
        assert!(validate("retention.ms", "1000").is_ok());
        assert!(validate("retention.ms", "abc").unwrap_err().contains("retention.ms"));
        assert!(validate("no.such.key", "1").is_err());
        for codec in ["gzip", "snappy", "lz4", "zstd", "uncompressed", "producer"] {
            assert!(validate("compression.type", codec).is_ok(), "{codec}");
        }
        assert!(validate("compression.type", "brotli").is_err());
        let values: BTreeMap<String, String> =
            [("compression.type".to_string(), "lz4".to_string())].into_iter().collect();
        assert!(recompression(&values).is_some_and(|t| t.needs(0) && !t.needs(3)));
        assert!(recompression(&BTreeMap::new()).is_none());
    }

    #[test]
    fn log_config_from_values() {
        let mut v = BTreeMap::new();
        v.insert("retention.ms".to_string(), "5000".to_string());
        v.insert("flush.messages".to_string(), "100".to_string());
        v.insert("message.timestamp.type".to_string(), "LogAppendTime".to_string());
        let c = to_log_config(&v);
        assert_eq!(c.retention_ms, 5000);
        assert_eq!(c.flush, FlushPolicy::Lazy { messages: Some(100), ms: None });
        assert_eq!(c.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(c.cleanup_policy, CleanupPolicy::Delete);
    }

    #[test]
    fn overrides_are_parsed_trimmed_as_kafka_parses_them() {
        // Topic overrides are stored as the client sent them; validation
        // accepts them trimmed, so the typed config must read them so too.
        let v: BTreeMap<String, String> = [
            ("message.timestamp.type", " LogAppendTime "),
            ("compression.type", " gzip"),
            ("compression.gzip.level", " 5 "),
            ("flush.messages", " 100"),
            ("cleanup.policy", " compact , delete "),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, raw) in &v {
            assert!(validate(k, raw).is_ok(), "{k}={raw:?} is accepted");
        }
        let c = to_log_config(&v);
        assert_eq!(c.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(c.recompression, kaskade_log::recompress::Target::from_config("gzip", 5, 9, 3));
        assert!(c.recompression.is_some());
        assert_eq!(c.flush, FlushPolicy::Lazy { messages: Some(100), ms: None });
        assert_eq!(c.cleanup_policy, CleanupPolicy::CompactDelete);
    }

    #[test]
    fn compaction_keys_map_to_the_log_config() {
        let v: BTreeMap<String, String> = [
            ("cleanup.policy", "compact,delete"),
            ("min.cleanable.dirty.ratio", "0.25"),
            ("delete.retention.ms", "1000"),
            ("min.compaction.lag.ms", "2000"),
            ("max.compaction.lag.ms", "3000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let c = to_log_config(&v);
        assert_eq!(c.cleanup_policy, CleanupPolicy::CompactDelete);
        assert_eq!(c.min_cleanable_dirty_ratio, 0.25);
        assert_eq!((c.delete_retention_ms, c.min_compaction_lag_ms, c.max_compaction_lag_ms), (1000, 2000, 3000));
        // The broker's defaults, as DescribeConfigs renders them, give Kafka's.
        let defaults: BTreeMap<String, String> = crate::config::BrokerConfig::default()
            .topic_defaults()
            .into_iter()
            .filter_map(|d| d.value.map(|v| (d.name.to_string(), v)))
            .collect();
        let c = to_log_config(&defaults);
        assert_eq!(c.cleanup_policy, CleanupPolicy::Delete);
        assert_eq!(c.min_cleanable_dirty_ratio, 0.5);
        assert_eq!(c.delete_retention_ms, 86_400_000);
        assert_eq!(c.min_compaction_lag_ms, 0);
        assert_eq!(c.max_compaction_lag_ms, i64::MAX);
        let compact = to_log_config(&effective(&defaults, &[("cleanup.policy".into(), "compact".into())].into()));
        assert_eq!(compact.cleanup_policy, CleanupPolicy::Compact);
    }
}
