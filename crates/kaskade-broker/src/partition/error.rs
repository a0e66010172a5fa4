//! Storage errors as Kafka error codes: the one place where the storage
//! engine's `LogError` becomes a wire code (`ResponseError`), so handlers
//! never invent codes and the storage crate speaks none.

use kafka_protocol::ResponseError;
use kaskade_log::LogError;

/// The Kafka error a client sees for a storage failure, as Kafka's
/// `LogValidator`, `ProducerStateManager` and `ReplicaManager` answer it.
pub fn storage_error(e: &LogError) -> ResponseError {
    match e {
        LogError::CorruptBatch(_) => ResponseError::CorruptMessage,
        LogError::UnsupportedMagic(_) => ResponseError::UnsupportedForMessageFormat,
        LogError::TooLarge { .. } => ResponseError::MessageTooLarge,
        LogError::InvalidRecord(_) => ResponseError::InvalidRecord,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::OutOfOrderSequence(_) => ResponseError::OutOfOrderSequenceNumber,
        LogError::InvalidProducerEpoch(_) => ResponseError::InvalidProducerEpoch,
        LogError::InvalidTxnState(_) => ResponseError::InvalidTxnState,
        // A closed or failed log: Kafka takes the log directory offline and
        // answers KAFKA_STORAGE_ERROR, which clients retry elsewhere.
        LogError::Closed | LogError::Io(_) => ResponseError::KafkaStorageError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes clients saw before the mapping moved out of the storage
    /// crate: numbers from Kafka's `Errors` table.
    #[test]
    fn storage_errors_keep_their_kafka_codes() {
        let cases: Vec<(LogError, i16)> = vec![
            (LogError::CorruptBatch("x".into()), 2),
            (LogError::UnsupportedMagic(1), 43),
            (LogError::TooLarge { size: 2, max: 1 }, 10),
            (LogError::InvalidRecord("x".into()), 87),
            (LogError::OffsetOutOfRange { offset: 9, start: 0, end: 1 }, 1),
            (LogError::OutOfOrderSequence("x".into()), 45),
            (LogError::InvalidProducerEpoch("x".into()), 47),
            (LogError::InvalidTxnState("x".into()), 48),
            (LogError::Closed, 56),
            (LogError::Io(std::io::Error::other("disk")), 56),
        ];
        for (e, code) in cases {
            assert_eq!(storage_error(&e).code(), code, "{e}");
        }
    }
}
