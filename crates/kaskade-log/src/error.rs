//! The storage layer's error type. Every variant maps to the Kafka error code
//! a client must see (`kafka_code`), so the broker never invents codes.

use std::io;

/// Kafka protocol error codes the storage layer can produce.
pub mod code {
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const RECORD_LIST_TOO_LARGE: i16 = 18;
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const INVALID_TXN_STATE: i16 = 48;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const INVALID_RECORD: i16 = 87;
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("record batch is corrupt: {0}")]
    Corrupt(String),
    #[error("record batch magic {0} is not supported: only magic 2 (Kafka 0.11+) record batches are accepted")]
    UnsupportedMagic(i8),
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge { size: usize, max: usize },
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
    #[error("log is closed")]
    Closed,
    #[error("storage I/O error: {0}")]
    Io(#[from] io::Error),
}

impl LogError {
    /// The Kafka error code a client sees for this failure.
    pub fn kafka_code(&self) -> i16 {
        match self {
            LogError::Corrupt(_) => code::CORRUPT_MESSAGE,
            LogError::UnsupportedMagic(_) => code::UNSUPPORTED_FOR_MESSAGE_FORMAT,
            LogError::TooLarge { .. } => code::MESSAGE_TOO_LARGE,
            LogError::InvalidRecord(_) => code::INVALID_RECORD,
            LogError::OffsetOutOfRange { .. } => code::OFFSET_OUT_OF_RANGE,
            LogError::OutOfOrderSequence(_) => code::OUT_OF_ORDER_SEQUENCE_NUMBER,
            LogError::InvalidProducerEpoch(_) => code::INVALID_PRODUCER_EPOCH,
            LogError::InvalidTxnState(_) => code::INVALID_TXN_STATE,
            LogError::Closed | LogError::Io(_) => code::KAFKA_STORAGE_ERROR,
        }
    }
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;
