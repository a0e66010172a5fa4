//! Kaskade's storage engine: the partition log, in Apache Kafka's on-disk
//! layout.
//!
//! A log directory holds one directory per partition (`<topic>-<partition>`);
//! each is a run of segments (`<20-digit base offset>.log` with `.index` and
//! `.timeindex`). Record batches (magic v2) are stored byte for byte as
//! producers sent them, except the base offset and partition leader epoch,
//! which are patched in the header (the CRC does not cover them).
//!
//! - [`batch`]: header parsing, validation, patching.
//! - [`segment`], [`index`]: one segment and its sparse indexes.
//! - [`file_range`]: whole batches as a range of an open segment file, for
//!   reads sent with `sendfile(2)`.
//! - [`log`]: a partition log: append, read, time lookup, roll, truncate,
//!   retention, recovery (one submodule per concern).
//! - [`flush`]: group-committed fsync on dedicated threads.
//! - [`producer_state`]: idempotent producers' state per partition
//!   (duplicates, sequence and epoch checks) and its snapshots.
//! - [`cleaner`]: log compaction (`cleanup.policy=compact`), crash-safe
//!   segment swaps.
//! - [`manager`]: all logs of a directory, checkpoints, clean shutdown.
//! - [`parallel`]: blocking I/O-bound items (log creation) a few at once.
//! - [`resident`]: reads from the page cache only (`RWF_NOWAIT`), for async
//!   workers, with the blocking read as their fallback.

pub mod batch;
pub mod checkpoint;
pub mod cleaner;
pub mod config;
pub mod dir_failure;
pub mod error;
pub mod file_range;
pub mod flush;
pub mod flush_stats;
pub mod handles;
pub(crate) mod index;
pub mod leader_epoch;
pub mod log;
pub mod manager;
pub mod parallel;
pub mod producer_snapshots;
pub mod producer_state;
pub mod recompress;
pub mod resident;
pub mod segment;
pub mod txn;
pub mod types;
pub mod varint;

pub use cleaner::{CleanStats, CleanerOptions};
pub use config::{CleanupPolicy, FlushPolicy, LogConfig, TimestampType};
pub use dir_failure::LogDirFailure;
pub use error::{LogError, Result};
pub use file_range::FileRange;
pub use kaskade_types::clock;
pub use kaskade_types::{Clock, ManualClock, SystemClock};
pub use log::{
    AppendInfo, Log, LogEnv, MaxTimestamp, OpenHint, PositionListener, Positions, RangeRead, ReadResult, TimestampHit,
};
pub use manager::{LogManager, ManagerOptions, OpenReport};
pub use types::TopicPartition;
