//! Transaction markers as the transaction coordinator writes them: to a
//! data partition (or `__consumer_offsets`), awaited like an append.

use kafka_protocol::ResponseError;
use kaskade_log::txn::Marker;
use kaskade_types::{ProducerEpoch, ProducerId, TopicPartition};

use super::Appended;

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
    /// The producer has a newer epoch there: the transaction's data on it
    /// is already ended or fenced.
    #[error("invalid producer epoch: {0}")]
    InvalidProducerEpoch(String),
    /// The partition's leader refused or failed it, with the error it
    /// reports.
    #[error("{1}")]
    Failed(ResponseError, String),
}

/// Writes transaction markers to partitions (today: this node's logs;
/// later: WriteTxnMarkers to each partition's leader).
pub trait MarkerWriter: Send + Sync + 'static {
    /// Appends `marker` to `partition`; the handle resolves once it is
    /// durable and, on `__consumer_offsets`, once the group coordinator has
    /// settled the transaction's offsets there.
    fn write(&self, partition: &TopicPartition, marker: TxnMarker) -> Result<Appended, MarkerError>;
}
