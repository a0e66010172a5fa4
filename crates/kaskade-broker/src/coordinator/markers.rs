//! Transaction markers as the transaction coordinator writes them: one
//! marker to each of a transaction's partitions (or `__consumer_offsets`),
//! wherever their leaders are, awaited until durable or refused.

use futures::future::BoxFuture;
use kafka_protocol::ResponseError;
use kaskade_log::txn::Marker;
use kaskade_types::{ProducerEpoch, ProducerId, TopicPartition};

/// One marker: ends `producer`'s transaction on a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnMarker {
    pub producer_id: ProducerId,
    pub producer_epoch: ProducerEpoch,
    pub coordinator_epoch: i32,
    pub marker: Marker,
}

/// Why a marker was not written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MarkerError {
    /// The partition does not exist (deleted since it joined the
    /// transaction).
    #[error("unknown partition")]
    UnknownPartition,
    /// The producer has a newer epoch there: a newer coordinator (or this
    /// one, later) bumped it, so this coordinator's view of the transaction
    /// is stale.
    #[error("invalid producer epoch: {0}")]
    InvalidProducerEpoch(String),
    /// The partition's leader saw markers of a newer coordinator
    /// (TRANSACTION_COORDINATOR_FENCED): another coordinator owns the
    /// transaction now.
    #[error("coordinator fenced: {0}")]
    CoordinatorFenced(String),
    /// The partition's leader refused or failed it (or could not be
    /// reached), with the error it reports.
    #[error("{1}")]
    Failed(ResponseError, String),
}

/// What the coordinator does about a marker's outcome, as Kafka's
/// `TransactionMarkerRequestCompletionHandler` decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkerDisposition {
    /// Nothing more to write on the partition: written, deleted, or one
    /// the producer could not have written transactional data to.
    Done,
    /// Write it again later, to the leader a newer image names (not the
    /// leader, no leader, not enough replicas, a timeout, a broken
    /// connection, a storage error).
    Retry,
    /// Stop writing this transaction's markers and do not complete it: the
    /// producer or coordinator epoch moved on (INVALID_PRODUCER_EPOCH,
    /// TRANSACTION_COORDINATOR_FENCED), so a newer coordinator owns it and
    /// finishes it after loading its `Prepare*` state.
    Stop,
}

impl MarkerError {
    pub fn disposition(&self) -> MarkerDisposition {
        match self {
            // Unknown on the image: deleted (Kafka skips a partition with
            // no leader endpoint). An UNKNOWN_TOPIC_OR_PARTITION answered by
            // a broker is retried, as Kafka's handler does.
            MarkerError::UnknownPartition => MarkerDisposition::Done,
            MarkerError::InvalidProducerEpoch(_) | MarkerError::CoordinatorFenced(_) => MarkerDisposition::Stop,
            // A producer could not have written transactional data there:
            // Kafka drops the partition from the transaction.
            MarkerError::Failed(ResponseError::UnsupportedForMessageFormat | ResponseError::UnsupportedVersion, _) => {
                MarkerDisposition::Done
            }
            // Kafka's retriable answers, and (unlike Kafka, which gives up
            // with an IllegalStateException) any unexpected one: a marker
            // left unwritten would leave the partition's LSO stuck.
            MarkerError::Failed(..) => MarkerDisposition::Retry,
        }
    }
}

/// One outcome per partition written, in the order asked.
pub type MarkersWritten = BoxFuture<'static, Vec<Result<(), MarkerError>>>;

/// Writes a transaction's markers to its partitions: this node's logs for
/// the partitions led here, WriteTxnMarkers to the leaders of the others.
pub trait MarkerWriter: Send + Sync + 'static {
    /// Writes `marker` to each of `partitions`. Appends to this node's logs
    /// happen before this returns; the future resolves with one outcome per
    /// partition, in order, once each marker is durable on its partition's
    /// leader (on `__consumer_offsets`, once the group coordinator there
    /// settled the transaction's offsets) or was refused.
    fn write(&self, partitions: &[TopicPartition], marker: TxnMarker) -> MarkersWritten;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_follow_kafkas_completion_handler() {
        use MarkerDisposition::*;
        let failed = |e| MarkerError::Failed(e, String::new());
        assert_eq!(MarkerError::UnknownPartition.disposition(), Done);
        assert_eq!(MarkerError::InvalidProducerEpoch(String::new()).disposition(), Stop);
        assert_eq!(MarkerError::CoordinatorFenced(String::new()).disposition(), Stop);
        assert_eq!(failed(ResponseError::UnsupportedForMessageFormat).disposition(), Done);
        assert_eq!(failed(ResponseError::UnsupportedVersion).disposition(), Done);
        for retriable in [
            ResponseError::UnknownTopicOrPartition,
            ResponseError::NotLeaderOrFollower,
            ResponseError::LeaderNotAvailable,
            ResponseError::NotEnoughReplicas,
            ResponseError::NotEnoughReplicasAfterAppend,
            ResponseError::RequestTimedOut,
            ResponseError::KafkaStorageError,
            ResponseError::NetworkException,
        ] {
            assert_eq!(failed(retriable).disposition(), Retry, "{retriable:?}");
        }
    }
}
