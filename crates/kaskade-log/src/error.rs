//! The storage layer's error type. Variants say what went wrong in storage
//! terms; the storage engine speaks no wire codes. The broker maps them to
//! Kafka's error codes once, at the protocol edge
//! (`kaskade_broker::partition::error::storage_error`).

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The batch's bytes do not hold a well-formed record batch (short,
    /// bad length, CRC mismatch, undecodable records).
    #[error("record batch is corrupt: {0}")]
    CorruptBatch(String),
    #[error("record batch magic {0} is not supported: only magic 2 (Kafka 0.11+) record batches are accepted")]
    UnsupportedMagic(i8),
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge { size: usize, max: usize },
    /// A well-formed batch the log refuses (bad record count, a control
    /// batch from a client, several batches where one is expected, ...).
    #[error("invalid record batch: {0}")]
    InvalidRecord(String),
    #[error("offset {offset} is out of range [{start}, {end}]")]
    OffsetOutOfRange { offset: i64, start: i64, end: i64 },
    /// An idempotent producer's batch does not follow its last one.
    #[error("{0}")]
    OutOfOrderSequence(String),
    /// An idempotent producer's batch carries an epoch older than the
    /// partition has seen (a fenced, zombie producer).
    #[error("{0}")]
    InvalidProducerEpoch(String),
    /// A producer with an open transaction sent a non-transactional batch.
    #[error("{0}")]
    InvalidTxnState(String),
    /// A transaction marker carries an older coordinator epoch than the
    /// producer's last marker here: it comes from a deposed transaction
    /// coordinator (Kafka's TRANSACTION_COORDINATOR_FENCED).
    #[error("{0}")]
    CoordinatorFenced(String),
    /// A replicated batch does not start at the log end (a gap or an
    /// overlap: the follower's fetch position and its log disagree).
    #[error("replicated batch starts at offset {found} but the log ends at {expected}")]
    NotContiguous { expected: i64, found: i64 },
    #[error("log is closed")]
    Closed,
    #[error("storage I/O error: {0}")]
    Io(#[from] io::Error),
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;
