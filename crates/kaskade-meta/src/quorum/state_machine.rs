//! The quorum's state machine: committed proposals applied to the metadata
//! [`Image`] with the image's own `apply` (the code the local log replays
//! with), and snapshots of that image.
//!
//! A snapshot is JSON (`SnapshotData`: the version and the records that
//! rebuild the image, `Image::to_records`), stored with openraft's snapshot
//! meta in `<raft dir>/snapshot.json`, written to a temporary file, fsynced
//! and renamed (on the blocking pool). The image itself lives in memory: at
//! start it is rebuilt from the snapshot and openraft re-applies the
//! committed entries after it.
//!
//! Invariants: the staleness check of a proposal happens here, at apply
//! time, on every replica alike, so replicas agree on which of two racing
//! proposals landed; the image and version are published together (one
//! lock, then the watch), and only after a whole batch is applied.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, StorageIOError};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::files;
use super::metadata_fetch::SnapshotId;
use super::types::{epoch_of, ApplyOutcome, Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::image::Image;
use crate::metadata_log::{Committed, MetadataVersion};
use crate::record::MetadataRecord;
use crate::MetaError;

/// What a snapshot carries: the image as records, and its version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotData {
    pub version: MetadataVersion,
    pub records: Vec<MetadataRecord>,
}

impl SnapshotData {
    /// Rebuilds the image: a `Snapshot` marker then the records, through
    /// `Image::apply`, so the offsets come out as the log had them.
    pub(crate) fn to_image(&self) -> Image {
        let mut image = Image::default();
        image.apply(&MetadataRecord::Snapshot {
            end_offset: self.version.end_offset,
            records: self.records.len() as i64,
        });
        for r in &self.records {
            image.apply(r);
        }
        debug_assert_eq!(image.end_offset(), self.version.end_offset, "a snapshot rebuilds its own offset");
        image
    }
}

/// The snapshot file: openraft's meta and the data. Also what an
/// observer's FetchSnapshot transfers (`metadata_serve`), so it learns the
/// membership (the controllers and their addresses) with the image.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StoredSnapshot {
    pub meta: SnapshotMeta,
    pub data: SnapshotData,
}

impl StoredSnapshot {
    /// Its id as Kafka names a snapshot: the offset after its last entry
    /// and that entry's epoch; `None` for a snapshot of nothing.
    pub fn kafka_id(&self) -> Option<SnapshotId> {
        self.meta.last_log_id.map(|l| SnapshotId {
            end_offset: i64::try_from(l.index).unwrap_or(i64::MAX).saturating_add(1),
            epoch: epoch_of(l.leader_id.term),
        })
    }
}

/// The applied state, read by [`super::QuorumMetadataLog`].
#[derive(Clone, Debug)]
pub(crate) struct AppliedState {
    pub image: Arc<Image>,
    pub version: MetadataVersion,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
}

impl AppliedState {
    /// Nothing applied yet.
    pub fn empty() -> AppliedState {
        AppliedState {
            image: Arc::new(Image::default()),
            version: MetadataVersion::default(),
            last_applied: None,
            membership: StoredMembership::default(),
        }
    }

    /// The state a snapshot holds.
    pub fn of_snapshot(s: &StoredSnapshot) -> AppliedState {
        AppliedState {
            image: Arc::new(s.data.to_image()),
            version: s.data.version,
            last_applied: s.meta.last_log_id,
            membership: s.meta.last_membership.clone(),
        }
    }
}

/// What the state machine shares with the metadata log facade.
#[derive(Debug)]
pub(crate) struct Shared {
    state: RwLock<AppliedState>,
    version: watch::Sender<MetadataVersion>,
    snapshot: Mutex<Option<StoredSnapshot>>,
    /// The current snapshot as FetchSnapshot sends it, serialized once.
    snapshot_bytes: Mutex<Option<(SnapshotId, Arc<Vec<u8>>)>>,
    /// Test fault hook: the next apply panics, as a bug in the core would.
    #[cfg(test)]
    pub(super) panic_on_apply: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub fn committed(&self) -> Committed {
        let st = self.state.read();
        Committed { image: st.image.clone(), version: st.version }
    }

    pub fn subscribe(&self) -> watch::Receiver<MetadataVersion> {
        self.version.subscribe()
    }

    /// The last applied entry's log id (everything up to it is committed).
    pub fn last_applied(&self) -> Option<LogId> {
        self.state.read().last_applied
    }

    /// The current snapshot's Kafka id, if there is one.
    pub fn snapshot_id(&self) -> Option<SnapshotId> {
        self.snapshot.lock().as_ref().and_then(StoredSnapshot::kafka_id)
    }

    /// The current snapshot (meta and data) as JSON bytes, with its id;
    /// serialized once per snapshot, so chunks of one snapshot are cut
    /// from the same bytes.
    pub fn snapshot_bytes(&self) -> Option<(SnapshotId, Arc<Vec<u8>>)> {
        let stored = self.snapshot.lock().clone()?;
        let id = stored.kafka_id()?;
        let mut cache = self.snapshot_bytes.lock();
        if let Some((cached, bytes)) = cache.as_ref() {
            if *cached == id {
                return Some((id, bytes.clone()));
            }
        }
        let bytes = Arc::new(serde_json::to_vec(&stored).ok()?);
        *cache = Some((id, bytes.clone()));
        Some((id, bytes))
    }

    fn publish(&self, next: AppliedState) {
        let version = next.version;
        *self.state.write() = next;
        self.version.send_replace(version);
    }
}

/// The state machine of one controller (openraft drives it).
#[derive(Debug)]
pub struct StateMachine {
    shared: Arc<Shared>,
    dir: PathBuf,
}

/// Builds snapshots of the applied image.
#[derive(Debug)]
pub struct SnapshotBuilder {
    shared: Arc<Shared>,
    dir: PathBuf,
}

fn snapshot_path(dir: &Path) -> PathBuf {
    dir.join("snapshot.json")
}

fn to_snapshot(stored: &StoredSnapshot) -> Result<Snapshot<TypeConfig>, serde_json::Error> {
    let bytes = serde_json::to_vec(&stored.data)?;
    Ok(Snapshot { meta: stored.meta.clone(), snapshot: Box::new(Cursor::new(bytes)) })
}

fn read_error(stored: &StoredSnapshot, e: &serde_json::Error) -> StorageError {
    StorageIOError::read_snapshot(Some(stored.meta.signature()), e).into()
}

/// Writes the snapshot file on the blocking pool.
async fn save(dir: &Path, stored: &StoredSnapshot) -> Result<(), StorageError> {
    let sig = Some(stored.meta.signature());
    let json = serde_json::to_vec(stored).map_err(|e| StorageIOError::write_snapshot(sig.clone(), &e))?;
    let path = snapshot_path(dir);
    tokio::task::spawn_blocking(move || files::write_atomic(&path, &json))
        .await
        .map_err(|e| StorageIOError::write_snapshot(sig.clone(), &e))?
        .map_err(|e| StorageIOError::write_snapshot(sig, &e).into())
}

impl StateMachine {
    /// Opens the state machine of `dir`: the image of its snapshot, if any.
    /// Blocking: call it on the blocking pool.
    pub(crate) fn open(dir: &Path) -> Result<(StateMachine, Arc<Shared>), MetaError> {
        let path = snapshot_path(dir);
        let stored: Option<StoredSnapshot> = match files::read_optional(&path)? {
            None => None,
            Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| MetaError::Corrupt {
                path: path.clone(),
                line: 1,
                reason: e.to_string(),
            })?),
        };
        let state = stored.as_ref().map_or_else(AppliedState::empty, AppliedState::of_snapshot);
        let shared = Arc::new(Shared {
            version: watch::channel(state.version).0,
            state: RwLock::new(state),
            snapshot: Mutex::new(stored),
            snapshot_bytes: Mutex::new(None),
            #[cfg(test)]
            panic_on_apply: std::sync::atomic::AtomicBool::new(false),
        });
        Ok((StateMachine { shared: shared.clone(), dir: dir.to_path_buf() }, shared))
    }
}

/// Applies one entry to `st`, answering what it did (also an observer's
/// apply, `observer_state`, so it refuses stale proposals identically).
pub(crate) fn apply_entry(st: &mut AppliedState, entry: &Entry) -> ApplyOutcome {
    st.last_applied = Some(entry.log_id);
    let epoch = epoch_of(entry.log_id.leader_id.term);
    match &entry.payload {
        EntryPayload::Blank => {
            st.version.epoch = epoch;
            ApplyOutcome::Raft(st.version)
        }
        EntryPayload::Membership(m) => {
            st.membership = StoredMembership::new(Some(entry.log_id), m.clone());
            st.version.epoch = epoch;
            ApplyOutcome::Raft(st.version)
        }
        EntryPayload::Normal(p) if p.based_on != st.version => ApplyOutcome::Stale { actual: st.version },
        EntryPayload::Normal(p) => {
            let image = Arc::make_mut(&mut st.image);
            for r in &p.records {
                image.apply(r);
            }
            st.version = MetadataVersion { end_offset: image.end_offset(), epoch };
            ApplyOutcome::Applied(st.version)
        }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let st = self.shared.state.read();
        Ok((st.last_applied, st.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyOutcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // A panic here (a bug in applying a record) must not leave the
        // state machine's task dead while openraft's core waits for it
        // forever and the node serves frozen metadata: it becomes a storage
        // error, which stops the core (`QuorumMetadataLog::core_stopped`),
        // and the node exits. The state is only published whole, so nothing
        // half-applied is ever seen.
        let shared = &self.shared;
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            #[cfg(test)]
            if shared.panic_on_apply.load(std::sync::atomic::Ordering::Relaxed) {
                panic!("test fault: the state machine panics while applying");
            }
            // Only this task writes the state: work on a copy (the image is
            // shared with readers and copied on its first change), then publish.
            let mut st = shared.state.read().clone();
            let outcomes: Vec<ApplyOutcome> = entries.into_iter().map(|e| apply_entry(&mut st, &e)).collect();
            shared.publish(st);
            outcomes
        }));
        applied.map_err(|panic| {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            StorageIOError::write_state_machine(&std::io::Error::other(format!("applying entries panicked: {why}")))
                .into()
        })
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder { shared: self.shared.clone(), dir: self.dir.clone() }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data: SnapshotData = serde_json::from_slice(snapshot.get_ref())
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let stored = StoredSnapshot { meta: meta.clone(), data };
        save(&self.dir, &stored).await?;
        let state = AppliedState::of_snapshot(&stored);
        *self.shared.snapshot.lock() = Some(stored);
        self.shared.publish(state);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let stored = self.shared.snapshot.lock().clone();
        match stored {
            Some(s) => to_snapshot(&s).map(Some).map_err(|e| read_error(&s, &e)),
            None => Ok(None),
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let st = self.shared.state.read().clone();
        let snapshot_id = match st.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index),
            None => "empty".to_string(),
        };
        let meta = SnapshotMeta { last_log_id: st.last_applied, last_membership: st.membership.clone(), snapshot_id };
        let stored =
            StoredSnapshot { meta, data: SnapshotData { version: st.version, records: st.image.to_records() } };
        save(&self.dir, &stored).await?;
        let snapshot = to_snapshot(&stored).map_err(|e| read_error(&stored, &e))?;
        *self.shared.snapshot.lock() = Some(stored);
        Ok(snapshot)
    }
}
