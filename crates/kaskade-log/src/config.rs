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

#[derive(Clone, Debug, PartialEq, Eq)]
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
