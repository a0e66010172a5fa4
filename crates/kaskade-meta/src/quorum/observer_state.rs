//! An observer's copy of the metadata log's state, without I/O: the entries
//! it fetched, applied in order with the state machine's own
//! `apply_entry` (so a stale proposal is refused exactly as every
//! controller refuses it and the versions come out the same), snapshots it
//! loaded, and where its next Fetch starts.
//!
//! Invariants: entries are applied only in index order with no gap, and
//! only below the high watermark the answer carried (committed), so this
//! state is always a committed prefix of the quorum's log; an entry whose
//! index or term disagrees with the batch it came in is refused; a snapshot
//! older than what is applied is ignored, so the state never moves back.

use std::collections::BTreeMap;

use kaskade_types::NodeId;

use super::metadata_fetch::SnapshotId;
use super::state_machine::{apply_entry, AppliedState, StoredSnapshot};
use super::types::{epoch_of, to_node_id, Entry};
use crate::metadata_log::Committed;

/// One fetched entry: the offset and epoch its batch named, and the entry.
pub type Fetched = (i64, i32, Entry);

/// Why fetched entries were not all taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyError {
    /// An entry's own log id disagrees with its batch's offset or epoch.
    Mismatch { offset: i64, epoch: i32 },
    /// The entries skip past the next offset.
    Gap { expected: i64, got: i64 },
}

/// The observer's state; see the module docs.
#[derive(Clone, Debug)]
pub struct ObserverState {
    st: AppliedState,
}

impl Default for ObserverState {
    fn default() -> Self {
        ObserverState { st: AppliedState::empty() }
    }
}

impl ObserverState {
    /// Where the next Fetch starts: the offset after the last applied entry
    /// and that entry's epoch (0 and 0 with nothing, as Kafka's empty log).
    pub fn next_fetch(&self) -> (i64, i32) {
        match self.st.last_applied {
            Some(l) => (i64::try_from(l.index).unwrap_or(i64::MAX).saturating_add(1), epoch_of(l.leader_id.term)),
            None => (0, 0),
        }
    }

    /// Applies the fetched entries below `high_watermark`, in order; those
    /// already applied are skipped. Returns how many were applied.
    pub fn apply(&mut self, entries: Vec<Fetched>, high_watermark: i64) -> Result<usize, ApplyError> {
        let mut applied = 0;
        for (offset, epoch, entry) in entries {
            let (next, _) = self.next_fetch();
            if offset >= high_watermark {
                break;
            }
            if offset < next {
                continue;
            }
            if offset > next {
                return Err(ApplyError::Gap { expected: next, got: offset });
            }
            let index_ok = u64::try_from(offset).is_ok_and(|o| o == entry.log_id.index);
            if !index_ok || epoch_of(entry.log_id.leader_id.term) != epoch {
                return Err(ApplyError::Mismatch { offset, epoch });
            }
            apply_entry(&mut self.st, &entry);
            applied += 1;
        }
        debug_assert!(self.next_fetch().0 <= high_watermark.max(self.next_fetch().0), "never past what was answered");
        Ok(applied)
    }

    /// Takes a snapshot fetched with FetchSnapshot, unless it is older than
    /// what is applied. Returns whether it was taken.
    pub fn load(&mut self, snapshot: &StoredSnapshot) -> bool {
        let newer = match (snapshot.meta.last_log_id, self.st.last_applied) {
            (Some(s), Some(ours)) => s.index > ours.index,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if newer {
            self.st = AppliedState::of_snapshot(snapshot);
        }
        newer
    }

    /// The snapshot id a loaded snapshot must have been asked for.
    pub fn snapshot_matches(snapshot: &StoredSnapshot, asked: SnapshotId) -> bool {
        snapshot.kafka_id() == Some(asked)
    }

    /// The image and version applied.
    pub fn committed(&self) -> Committed {
        Committed { image: self.st.image.clone(), version: self.st.version }
    }

    /// The voters of the applied membership (node id -> controller
    /// listener address): the controllers the quorum has now.
    pub fn voters(&self) -> BTreeMap<NodeId, String> {
        let membership = self.st.membership.membership();
        membership
            .voter_ids()
            .filter_map(|id| membership.get_node(&id).map(|n| (to_node_id(id), n.addr.clone())))
            .collect()
    }
}

#[cfg(test)]
#[path = "observer_state_tests.rs"]
mod tests;
