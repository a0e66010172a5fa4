//! The partition layer's errors and their Kafka codes: the one place where
//! a partition refusal (`PartitionError`) or a storage failure (`LogError`,
//! which carries no wire codes) becomes a wire code (`ResponseError`), so
//! handlers never invent codes and the storage crate speaks none.

use kafka_protocol::ResponseError;
use kaskade_log::LogError;
use kaskade_types::LeaderEpoch;

/// Why the partition layer refused a request, as Kafka's `Partition`
/// refuses it.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// The request names an older leader epoch than this partition's: the
    /// client's metadata is stale (FENCED_LEADER_EPOCH).
    #[error("leader epoch {requested} is older than the current {current}")]
    FencedLeaderEpoch { requested: LeaderEpoch, current: LeaderEpoch },
    /// The request names a newer leader epoch than this partition's: this
    /// node has not seen that leadership yet (UNKNOWN_LEADER_EPOCH).
    #[error("leader epoch {requested} is newer than the current {current}")]
    UnknownLeaderEpoch { requested: LeaderEpoch, current: LeaderEpoch },
    /// This node does not lead the partition (NOT_LEADER_OR_FOLLOWER).
    #[error("this node does not lead the partition")]
    NotLeader,
    /// The topic or partition is not hosted here (UNKNOWN_TOPIC_OR_PARTITION).
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    /// The request names something Kafka does not define (INVALID_REQUEST).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A bug in the broker (UNKNOWN_SERVER_ERROR).
    #[error("internal error: {0}")]
    Internal(String),
    /// acks=all with fewer in-sync replicas than `min.insync.replicas`,
    /// before the append (NOT_ENOUGH_REPLICAS).
    #[error("the in-sync replicas ({isr}) are fewer than min.insync.replicas ({min})")]
    NotEnoughReplicas { isr: usize, min: usize },
    /// The ISR shrank below `min.insync.replicas` while an acks=all write
    /// waited: it is written but not acknowledged as replicated
    /// (NOT_ENOUGH_REPLICAS_AFTER_APPEND).
    #[error("the in-sync replicas ({isr}) fell below min.insync.replicas ({min}) after the append")]
    NotEnoughReplicasAfterAppend { isr: usize, min: usize },
    /// An acks=all write of this node's own (a coordinator's records, a
    /// marker) was not replicated within its timeout (REQUEST_TIMED_OUT).
    #[error("not replicated to the in-sync replicas within {0:?}")]
    TimedOut(std::time::Duration),
    /// The storage engine refused or failed.
    #[error(transparent)]
    Storage(#[from] LogError),
}

impl PartitionError {
    /// The Kafka error a client sees.
    pub fn response_error(&self) -> ResponseError {
        match self {
            PartitionError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
            PartitionError::UnknownLeaderEpoch { .. } => ResponseError::UnknownLeaderEpoch,
            PartitionError::NotLeader => ResponseError::NotLeaderOrFollower,
            PartitionError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
            PartitionError::InvalidRequest(_) => ResponseError::InvalidRequest,
            PartitionError::Internal(_) => ResponseError::UnknownServerError,
            PartitionError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
            PartitionError::NotEnoughReplicasAfterAppend { .. } => ResponseError::NotEnoughReplicasAfterAppend,
            PartitionError::TimedOut(_) => ResponseError::RequestTimedOut,
            PartitionError::Storage(e) => storage_error(e),
        }
    }
}

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
        LogError::CoordinatorFenced(_) => ResponseError::TransactionCoordinatorFenced,
        // Only a follower's own append meets it (Kafka's
        // `UnexpectedAppendOffsetException`, which no client sees).
        LogError::NotContiguous { .. } => ResponseError::UnknownServerError,
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
            (LogError::CoordinatorFenced("x".into()), 52),
            (LogError::Closed, 56),
            (LogError::Io(std::io::Error::other("disk")), 56),
        ];
        for (e, code) in cases {
            assert_eq!(storage_error(&e).code(), code, "{e}");
        }
    }

    #[test]
    fn partition_errors_have_kafka_codes() {
        let (old, new) = (LeaderEpoch(1), LeaderEpoch(2));
        let cases: Vec<(PartitionError, i16)> = vec![
            (PartitionError::FencedLeaderEpoch { requested: old, current: new }, 74),
            (PartitionError::UnknownLeaderEpoch { requested: new, current: old }, 75),
            (PartitionError::NotLeader, 6),
            (PartitionError::UnknownTopicOrPartition, 3),
            (PartitionError::InvalidRequest("x".into()), 42),
            (PartitionError::Internal("x".into()), -1),
            (PartitionError::Storage(LogError::Closed), 56),
            (PartitionError::NotEnoughReplicas { isr: 1, min: 2 }, 19),
            (PartitionError::NotEnoughReplicasAfterAppend { isr: 1, min: 2 }, 20),
        ];
        for (e, code) in cases {
            assert_eq!(e.response_error().code(), code, "{e}");
        }
    }
}
