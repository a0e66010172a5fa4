//! How long the flush threads' group commits take (Kafka's
//! `kafka.log:type=LogFlushStats,name=LogFlushRateAndTimeMs`): one
//! process-wide histogram that `flush` records into after each successful
//! sync, for the broker's metrics to read.

use kaskade_types::LatencyHistogram;

/// Durations of successful group commits (every file's `fdatasync`, sealed
/// segments' `fsync` and the directory's, together).
pub static FSYNC_LATENCY: LatencyHistogram = LatencyHistogram::new();
