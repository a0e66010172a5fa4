//! Per-log configuration, named after Kafka's topic-level keys.

/// How appended data reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Every append is fsynced before it is reported durable; fsyncs are
    /// group-committed. Kaskade's default (`flush.messages=1`).
    Durable,
    /// Kafka's lazy mode: fsync after `messages` unflushed records or when
    /// the oldest unflushed append is `ms` old, whichever comes first.
    Lazy { messages: Option<u64>, ms: Option<u64> },
}

impl FlushPolicy {
    /// Maps Kafka's `flush.messages` / `flush.ms` to a policy: one message
    /// (or less) means durable.
    pub fn from_kafka(flush_messages: Option<i64>, flush_ms: Option<i64>) -> FlushPolicy {
        let messages = flush_messages.filter(|m| *m > 1 && *m < i64::MAX).map(|m| m as u64);
        let ms = flush_ms.filter(|m| *m >= 0 && *m < i64::MAX).map(|m| m as u64);
        if flush_messages.is_some_and(|m| m <= 1) || flush_ms == Some(0) {
            return FlushPolicy::Durable;
        }
        if messages.is_none() && ms.is_none() && flush_messages.is_none() && flush_ms.is_none() {
            return FlushPolicy::Durable;
        }
        FlushPolicy::Lazy { messages, ms }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// `cleanup.policy`: what happens to old data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CleanupPolicy {
    /// `delete`: whole segments go by `retention.ms` / `retention.bytes`.
    #[default]
    Delete,
    /// `compact`: the cleaner keeps the latest record of every key; no
    /// time or size retention.
    Compact,
    /// `compact,delete`: both.
    CompactDelete,
}

impl CleanupPolicy {
    /// Parses Kafka's comma-separated list (`compact`, `delete`, both in
    /// any order); `None` for anything else.
    pub fn parse(value: &str) -> Option<CleanupPolicy> {
        let (mut compact, mut delete) = (false, false);
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "compact" => compact = true,
                "delete" => delete = true,
                _ => return None,
            }
        }
        match (compact, delete) {
            (true, true) => Some(CleanupPolicy::CompactDelete),
            (true, false) => Some(CleanupPolicy::Compact),
            (false, true) => Some(CleanupPolicy::Delete),
            (false, false) => None,
        }
    }

    /// Time and size retention apply.
    pub fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }

    /// The log cleaner compacts the log.
    pub fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`
    pub segment_bytes: u64,
    /// `segment.ms`
    pub segment_ms: i64,
    /// `segment.index.bytes`: bounds each segment's `.index` and `.timeindex`.
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`
    pub index_interval_bytes: u64,
    /// `max.message.bytes`: the largest batch accepted.
    pub max_message_bytes: usize,
    /// `retention.ms`; negative = unlimited.
    pub retention_ms: i64,
    /// `retention.bytes`; negative = unlimited.
    pub retention_bytes: i64,
    pub flush: FlushPolicy,
    /// `message.timestamp.type`
    pub timestamp_type: TimestampType,
    /// `cleanup.policy`
    pub cleanup_policy: CleanupPolicy,
    /// `min.cleanable.dirty.ratio`: the cleaner compacts a log once the
    /// dirty part is more than this share of it.
    pub min_cleanable_dirty_ratio: f64,
    /// `delete.retention.ms`: how long a tombstone stays after the cleaner
    /// first saw it.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are not compacted.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty record older than this makes the
    /// log eligible whatever its dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `compression.type` other than `producer`, with its level: the codec
    /// client batches are stored in (recompressed when they differ). Parsed
    /// once when the config changes, not per produce request.
    pub recompression: Option<crate::recompress::Target>,
    /// `min.insync.replicas`: the ISR size an acks=all write needs (Kafka
    /// keeps it in its `LogConfig` too); the partition layer checks it.
    pub min_insync_replicas: usize,
}

// The ratio is validated into [0, 1] (never NaN), so equality is total.
impl Eq for LogConfig {}

impl LogConfig {
    /// How old the active segment may get before a roll: `segment.ms`, or
    /// for a compacted log at most `max.compaction.lag.ms` (KIP-354), so
    /// that old records do not wait in the active segment, which is never
    /// cleaned.
    pub fn max_segment_ms(&self) -> i64 {
        if self.cleanup_policy.compacts() && self.max_compaction_lag_ms > 0 {
            self.segment_ms.min(self.max_compaction_lag_ms)
        } else {
            self.segment_ms
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            max_message_bytes: 1_048_588,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            flush: FlushPolicy::Durable,
            timestamp_type: TimestampType::CreateTime,
            cleanup_policy: CleanupPolicy::Delete,
            min_cleanable_dirty_ratio: 0.5,
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            recompression: None,
            min_insync_replicas: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_policy_parsing_and_roll_time() {
        assert_eq!(CleanupPolicy::parse("delete"), Some(CleanupPolicy::Delete));
        assert_eq!(CleanupPolicy::parse("compact"), Some(CleanupPolicy::Compact));
        assert_eq!(CleanupPolicy::parse("delete, compact"), Some(CleanupPolicy::CompactDelete));
        assert_eq!(CleanupPolicy::parse("compact,delete"), Some(CleanupPolicy::CompactDelete));
        assert_eq!(CleanupPolicy::parse("shred"), None);
        assert_eq!(CleanupPolicy::parse(""), None);
        assert!(!CleanupPolicy::Compact.deletes() && CleanupPolicy::Compact.compacts());
        let mut c = LogConfig { segment_ms: 1000, max_compaction_lag_ms: 10, ..LogConfig::default() };
        assert_eq!(c.max_segment_ms(), 1000, "max.compaction.lag.ms only bounds compacted logs");
        c.cleanup_policy = CleanupPolicy::CompactDelete;
        assert_eq!(c.max_segment_ms(), 10);
    }

    #[test]
    fn flush_policy_mapping() {
        assert_eq!(FlushPolicy::from_kafka(None, None), FlushPolicy::Durable);
        assert_eq!(FlushPolicy::from_kafka(Some(1), None), FlushPolicy::Durable);
        assert_eq!(
            FlushPolicy::from_kafka(Some(i64::MAX), Some(i64::MAX)),
            FlushPolicy::Lazy { messages: None, ms: None }
        );
        assert_eq!(
            FlushPolicy::from_kafka(Some(1000), Some(500)),
            FlushPolicy::Lazy { messages: Some(1000), ms: Some(500) }
        );
    }
}
