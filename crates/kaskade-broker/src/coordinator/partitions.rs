//! The internal topic as a coordinator sees it: the partitions this node
//! leads, appends that can be awaited, and the committed records of a
//! partition for loading.

use std::collections::BTreeMap;
use std::future::{Future, IntoFuture};
use std::pin::Pin;

use bytes::Bytes;
use kafka_protocol::records::Record;
use kaskade_types::ProducerIdAndEpoch;

use super::CoordinatorError;

/// A pending append: resolves once the records are durable (today) or
/// replicated to the in-sync replicas (later). Dropping it does not undo
/// the append.
#[must_use = "an append is safe to answer only once its handle resolves"]
pub struct Appended(Pin<Box<dyn Future<Output = Result<(), CoordinatorError>> + Send>>);

impl Appended {
    /// A handle resolving when `wait` does.
    pub fn new(wait: impl Future<Output = Result<(), CoordinatorError>> + Send + 'static) -> Self {
        Appended(Box::pin(wait))
    }

    /// A handle that is already resolved (nothing to wait for).
    pub fn done() -> Self {
        Appended::new(std::future::ready(Ok(())))
    }

    /// A handle that already failed with `e` (the append was refused).
    pub fn failed(e: CoordinatorError) -> Self {
        Appended::new(std::future::ready(Err(e)))
    }

    /// Waits for every handle, in order; the first failure.
    pub async fn all(appended: Vec<Appended>) -> Result<(), CoordinatorError> {
        for a in appended {
            a.await?;
        }
        Ok(())
    }
}

impl IntoFuture for Appended {
    type Output = Result<(), CoordinatorError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<(), CoordinatorError>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        self.0
    }
}

impl std::fmt::Debug for Appended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Appended")
    }
}

/// One record to append: key and value (`None`: a tombstone).
pub type InternalRecord = (Bytes, Option<Bytes>);

/// An internal topic (`__consumer_offsets`, `__transaction_state`) as its
/// coordinator uses it. Blocking methods say so: call them from the
/// blocking pool, except `append`, which only hands records to the log.
pub trait InternalPartitions: Send + Sync + 'static {
    /// The topic's name.
    fn topic(&self) -> &str;

    /// The topic's partition count, if it exists (its own count wins over
    /// the configured one once created, as in Kafka).
    fn partition_count(&self) -> Option<i32>;

    /// Creates the topic with Kafka's configs for it if it does not exist;
    /// its partition count. Blocking.
    fn ensure_topic(&self) -> Result<i32, CoordinatorError>;

    /// The partitions this node leads, each with its leader epoch, as the
    /// metadata image says (every one of an existing topic on a node of its
    /// own). A coordinator loads each under that epoch.
    fn leaders(&self) -> BTreeMap<i32, i32>;

    /// The partitions this node leads, as the metadata image says.
    fn led_partitions(&self) -> Vec<i32> {
        self.leaders().into_keys().collect()
    }

    /// The leader epoch of `partition` if this node leads it: the
    /// transaction coordinator's epoch on markers (Kafka's
    /// `coordinatorEpoch`), which partitions use to refuse a deposed one.
    fn leader_epoch(&self, partition: i32) -> Option<i32>;

    /// Appends `records` as one batch to `partition`, transactional records
    /// of `producer` if given, stamped `timestamp`. With `leader_epoch` (the
    /// epoch the coordinator loaded the partition under), refused with
    /// NOT_COORDINATOR unless this node leads it in exactly that epoch, and
    /// the handle fails so if the epoch changed before the records were
    /// replicated (Kafka's coordinator epoch check: a coordinator that
    /// lost the partition, even if it got it back, must not write from the
    /// state it loaded before).
    fn append(
        &self,
        partition: i32,
        leader_epoch: Option<i32>,
        records: &[InternalRecord],
        producer: Option<ProducerIdAndEpoch>,
        timestamp: i64,
    ) -> Result<Appended, CoordinatorError>;

    /// Every committed record of `partition`, in offset order, into `visit`;
    /// how many. Blocking.
    fn read_committed(&self, partition: i32, visit: &mut dyn FnMut(&Record)) -> Result<usize, CoordinatorError>;
}
