//! Producer id allocation, as Kafka's `ProducerIdManager`: ids are handed
//! out from blocks of [`BLOCK_SIZE`], and a block is recorded in the
//! metadata log (`MetadataRecord::ProducerIds`, fsynced) before any id of
//! it is used. Ids are therefore unique across brokers and restarts: a
//! restarted node starts a new block, and the unused rest of the old one is
//! skipped, as in Kafka.
//!
//! A broker of a multi-node cluster asks the active controller for each
//! block with AllocateProducerIds (67), with its id and broker epoch, as
//! Kafka's `RPCProducerIdManager` does (`api::allocate_producer_ids`
//! decides); an answer that is an error or not a valid block leaves this
//! broker without ids until the next call asks again (callers answer a
//! retriable error meanwhile). A lone node records its blocks itself.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kafka_protocol::messages::{AllocateProducerIdsRequest, AllocateProducerIdsResponse, BrokerId};
use kaskade_meta::{MetaError, MetadataRecord};
use kaskade_types::{NodeId, ProducerId};

use crate::api::broker_registration::broker_epoch;
use crate::cluster::controller_channel::ControllerChannel;
use crate::topic::TopicManager;

/// Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`.
pub const BLOCK_SIZE: i64 = 1000;

/// How long one AllocateProducerIds may take.
const ALLOCATE_TIMEOUT: Duration = Duration::from_secs(10);

/// Hands out producer ids.
#[derive(Default)]
pub struct ProducerIdManager {
    /// `[next, end)` of the current block; empty at start.
    block: tokio::sync::Mutex<(i64, i64)>,
    /// This broker's id and its channel to the active controller, on a
    /// node of a multi-node cluster.
    controller: OnceLock<(NodeId, Arc<ControllerChannel>)>,
}

impl std::fmt::Debug for ProducerIdManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerIdManager").field("from_controller", &self.controller.get().is_some()).finish()
    }
}

impl ProducerIdManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes broker `me` ask the active controller for its blocks over
    /// `channel` (set once, when the node joins a multi-node cluster).
    pub fn ask_controller(&self, me: NodeId, channel: Arc<ControllerChannel>) {
        let _ = self.controller.set((me, channel));
    }

    /// A producer id never handed out before. Allocating a new block asks
    /// the active controller, or (a lone node) appends to the metadata log
    /// on the blocking pool.
    pub async fn generate(&self, topics: &Arc<TopicManager>) -> Result<ProducerId, MetaError> {
        // An async mutex: callers queue behind a block allocation instead of
        // allocating blocks of their own.
        let mut block = self.block.lock().await;
        if block.0 >= block.1 {
            let start = match self.controller.get() {
                Some((me, channel)) => from_controller(*me, channel, topics).await?,
                None => {
                    let topics = topics.clone();
                    tokio::task::spawn_blocking(move || allocate_block(&topics, BLOCK_SIZE)).await.map_err(|e| {
                        MetaError::Io(std::io::Error::other(format!("producer id allocation task failed: {e}")))
                    })??
                }
            };
            *block = (start, start + BLOCK_SIZE);
            tracing::info!(start, end = start + BLOCK_SIZE, "allocated a block of producer ids");
        }
        debug_assert!(block.0 < block.1);
        let id = ProducerId(block.0);
        block.0 += 1;
        Ok(id)
    }
}

/// A block of [`BLOCK_SIZE`] ids from the active controller: its first id.
async fn from_controller(me: NodeId, channel: &ControllerChannel, topics: &TopicManager) -> Result<i64, MetaError> {
    // The epoch of this broker's registration as its image holds it: until
    // the image has it, the controller answers STALE_BROKER_EPOCH.
    let epoch = topics.image().brokers().get(&me).map_or(-1, |b| broker_epoch(b.incarnation_id));
    let req = AllocateProducerIdsRequest::default().with_broker_id(BrokerId(me.get())).with_broker_epoch(epoch);
    let answer = channel
        .request(&req, ALLOCATE_TIMEOUT, |r: &AllocateProducerIdsResponse| r.error_code)
        .await
        .map_err(|e| MetaError::Quorum(format!("AllocateProducerIds: {e}")))?;
    valid_block(&answer).map_err(MetaError::Quorum)
}

/// The first id of the block `answer` names, if it is one this broker can
/// use (Kafka's `RPCProducerIdManager` checks the same): no error, a start
/// not negative, the length [`BLOCK_SIZE`] and no overflow.
fn valid_block(answer: &AllocateProducerIdsResponse) -> Result<i64, String> {
    let start = answer.producer_id_start.0;
    if answer.error_code != 0 {
        return Err(format!("AllocateProducerIds answered error code {}", answer.error_code));
    }
    if start < 0 || i64::from(answer.producer_id_len) != BLOCK_SIZE || start.checked_add(BLOCK_SIZE).is_none() {
        return Err(format!("AllocateProducerIds answered an invalid block: {start} + {}", answer.producer_id_len));
    }
    Ok(start)
}

/// Records the next block of `size` producer ids in the metadata log and
/// returns its first id. Blocking (fsync).
pub fn allocate_block(topics: &TopicManager, size: i64) -> Result<i64, MetaError> {
    topics.update(|img| {
        let start = img.next_producer_id();
        let end = start
            .checked_add(size)
            .ok_or_else(|| MetaError::Io(std::io::Error::other("the producer id space is exhausted")))?;
        Ok((vec![MetadataRecord::ProducerIds { next_block_start: end }], start))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;

    #[test]
    fn only_a_whole_valid_block_is_taken() {
        let block = |code: i16, start: i64, len: i32| {
            AllocateProducerIdsResponse::default()
                .with_error_code(code)
                .with_producer_id_start(kafka_protocol::messages::ProducerId(start))
                .with_producer_id_len(len)
        };
        assert_eq!(valid_block(&block(0, 3000, 1000)), Ok(3000));
        for bad in [block(45, 0, 0), block(0, -1, 1000), block(0, 0, 10), block(0, i64::MAX - 5, 1000)] {
            assert!(valid_block(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_are_unique_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        let topics = crate::server::open_storage(&BrokerConfig::default(), dir.path()).expect("storage").topics;
        let ids = ProducerIdManager::new();
        let first: Vec<ProducerId> = (0..1500).map(|_| rt.block_on(ids.generate(&topics)).expect("id")).collect();
        assert_eq!(first, (0..1500).map(ProducerId).collect::<Vec<_>>(), "two blocks, handed out in order");
        assert_eq!(topics.image().next_producer_id(), 2 * BLOCK_SIZE, "each block recorded before use");
        topics.logs().shutdown().expect("shutdown");
        drop(topics);
        // A restart: the metadata log is replayed, the rest of block 2 is skipped.
        let topics = crate::server::open_storage(&BrokerConfig::default(), dir.path()).expect("reopen").topics;
        let ids = ProducerIdManager::new();
        assert_eq!(rt.block_on(ids.generate(&topics)).expect("id"), ProducerId(2 * BLOCK_SIZE));
        assert_eq!(rt.block_on(ids.generate(&topics)).expect("id"), ProducerId(2 * BLOCK_SIZE + 1));
        assert_eq!(topics.image().next_producer_id(), 3 * BLOCK_SIZE);
        topics.logs().shutdown().expect("shutdown");
    }
}
