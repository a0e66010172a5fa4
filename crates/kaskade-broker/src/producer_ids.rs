//! Producer id allocation, as Kafka's `ProducerIdManager`: ids are handed
//! out from blocks of [`BLOCK_SIZE`], and a block is recorded in the
//! metadata log (`MetadataRecord::ProducerIds`, fsynced) before any id of
//! it is used. Ids are therefore unique across restarts: a restarted node
//! starts a new block, and the unused rest of the old one is skipped, as
//! in Kafka.

use std::sync::Arc;

use kaskade_meta::{MetaError, MetadataRecord};
use kaskade_types::ProducerId;

use crate::topic::TopicManager;

/// Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`.
pub const BLOCK_SIZE: i64 = 1000;

/// Hands out producer ids.
#[derive(Debug, Default)]
pub struct ProducerIdManager {
    /// `[next, end)` of the current block; empty at start.
    block: tokio::sync::Mutex<(i64, i64)>,
}

impl ProducerIdManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// A producer id never handed out before. Allocating a new block
    /// appends to the metadata log; that runs on the blocking pool.
    pub async fn generate(&self, topics: &Arc<TopicManager>) -> Result<ProducerId, MetaError> {
        // An async mutex: callers queue behind a block allocation instead of
        // allocating blocks of their own.
        let mut block = self.block.lock().await;
        if block.0 >= block.1 {
            let topics = topics.clone();
            let start =
                tokio::task::spawn_blocking(move || allocate_block(&topics, BLOCK_SIZE)).await.map_err(|e| {
                    MetaError::Io(std::io::Error::other(format!("producer id allocation task failed: {e}")))
                })??;
            *block = (start, start + BLOCK_SIZE);
            tracing::info!(start, end = start + BLOCK_SIZE, "allocated a block of producer ids");
        }
        let id = ProducerId(block.0);
        block.0 += 1;
        Ok(id)
    }
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
