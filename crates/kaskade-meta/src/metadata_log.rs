//! The seam between metadata and everything that uses it.
//!
//! [`MetadataLog`] is what a node needs of the metadata log: the committed
//! image with its position, an append that only lands on the image it was
//! decided against, snapshots, and a watch for changes. One node implements
//! it with a local file ([`crate::LocalMetadataLog`]); a controller quorum
//! (openraft) implements it by replicating the same records, where "committed"
//! means on a majority of the controllers.
//!
//! Decisions are optimistic: a controller reads the committed image, decides
//! the records, and appends them *based on* the offset it read. If another
//! change committed in between, the append is refused with
//! [`MetaError::Stale`] and [`update`] decides again on the newer image, so
//! two decisions never interleave (a topic cannot be created twice).

use std::sync::Arc;

use tokio::sync::watch;

use crate::image::Image;
use crate::record::MetadataRecord;
use crate::MetaError;

/// Where the metadata log stands: the offset the next record gets and the
/// epoch of the leader that wrote the last one (a local log is always at
/// epoch 0; a quorum's epoch grows with every election).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct MetadataVersion {
    pub end_offset: i64,
    pub epoch: i32,
}

/// The committed image and the version it reflects.
#[derive(Clone, Debug)]
pub struct Committed {
    pub image: Arc<Image>,
    pub version: MetadataVersion,
}

/// The metadata log as the rest of the node sees it.
pub trait MetadataLog: Send + Sync + std::fmt::Debug {
    /// The committed image (a cheap snapshot) and its version.
    fn committed(&self) -> Committed;

    /// Appends `records` if the log is still at `based_on` (the version the
    /// records were decided against), returning once they are committed
    /// (durable; on a quorum, on a majority) and visible in `committed()`.
    /// [`MetaError::Stale`] if the log moved since. On a quorum only the
    /// active controller appends: elsewhere [`MetaError::NotLeader`] naming
    /// it (nothing is forwarded; changes decided off the active controller
    /// reach it in Kafka's requests), and a broker-only node never appends.
    fn append(&self, based_on: MetadataVersion, records: Vec<MetadataRecord>) -> Result<Committed, MetaError>;

    /// [`MetadataLog::append`] for a decision the active controller made
    /// on its own image (a request it took on its controller listener or in
    /// an Envelope): committed only in the term it was decided in, so a
    /// deposed controller answers NOT_CONTROLLER ([`MetaError::NotLeader`]) and the
    /// broker that sent the request asks the next one, which decides again.
    /// A log of its own (one node) is always the active controller.
    fn append_as_active(
        &self,
        based_on: MetadataVersion,
        records: Vec<MetadataRecord>,
    ) -> Result<Committed, MetaError> {
        self.append(based_on, records)
    }

    /// Compacts the log: what is stored becomes one snapshot of the committed
    /// image (and whatever follows it), rebuilding the same image and version.
    fn snapshot(&self) -> Result<MetadataVersion, MetaError>;

    /// Notified with every new committed version.
    fn subscribe(&self) -> watch::Receiver<MetadataVersion>;
}

/// How many times [`update`] decides again after losing a race before it
/// gives up (a busy cluster changes metadata a few times per second, so this
/// is never reached in practice; the bound keeps a livelock visible).
const MAX_DECISIONS: usize = 64;

/// Decides and appends a change: `decide` sees the committed image and
/// returns the records to append and a result. Records are committed before
/// this returns; an empty decision appends nothing. If the log moved while
/// deciding, decides again on the newer image.
pub fn update<T, E: From<MetaError>>(
    log: &dyn MetadataLog,
    mut decide: impl FnMut(&Image) -> Result<(Vec<MetadataRecord>, T), E>,
) -> Result<T, E> {
    for _ in 0..MAX_DECISIONS {
        let current = log.committed();
        let (records, out) = decide(&current.image)?;
        if records.is_empty() {
            return Ok(out);
        }
        match log.append(current.version, records) {
            Ok(_) => return Ok(out),
            Err(MetaError::Stale { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(MetaError::Contended(MAX_DECISIONS).into())
}
