//! The quorum's storage against openraft's own storage test suite, and its
//! files across reopen: truncate, purge, a torn tail, a corrupt middle.

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, EntryPayload, LogState, RaftLogReader};

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::types::{Entry, LogId, StorageError, TypeConfig};
use crate::MetaError;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = LogStore::open(dir.path()).expect("open log");
        let (sm, _) = StateMachine::open(dir.path()).expect("open state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).expect("openraft's storage suite passes");
}

fn blank(term: u64, index: u64) -> Entry {
    Entry { log_id: LogId::new(CommittedLeaderId::new(term, 1), index), payload: EntryPayload::Blank }
}

async fn state(log: &mut LogStore) -> (Option<u64>, Option<u64>) {
    let LogState { last_purged_log_id, last_log_id } = log.get_log_state().await.expect("state");
    (last_purged_log_id.map(|l| l.index), last_log_id.map(|l| l.index))
}

#[tokio::test]
async fn the_log_file_survives_truncate_purge_and_reopen_and_cuts_a_torn_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = LogStore::open(dir.path()).expect("open");
    log.blocking_append((1..=10).map(|i| blank(1, i))).await.expect("append");
    log.truncate(blank(1, 8).log_id).await.expect("truncate");
    log.purge(blank(1, 3).log_id).await.expect("purge");
    log.blocking_append([blank(2, 8)]).await.expect("append after truncate");
    assert_eq!(state(&mut log).await, (Some(3), Some(8)));
    drop(log);

    let mut log = LogStore::open(dir.path()).expect("reopen");
    assert_eq!(state(&mut log).await, (Some(3), Some(8)));
    let entries = log.try_get_log_entries(0..100).await.expect("read");
    assert_eq!(entries.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), vec![4, 5, 6, 7, 8]);
    assert_eq!(entries.last().expect("last").log_id.leader_id.term, 2, "the truncated 8 was replaced");
    drop(log);

    // A crash mid-append leaves half a record: it is cut, the rest stays.
    let path = dir.path().join("log");
    let mut bytes = std::fs::read(&path).expect("read");
    let whole = bytes.len();
    bytes.extend_from_slice(&[0, 0, 0, 50, 1, 2, 3]);
    std::fs::write(&path, &bytes).expect("write");
    let mut log = LogStore::open(dir.path()).expect("reopen a torn log");
    assert_eq!(state(&mut log).await, (Some(3), Some(8)));
    assert_eq!(std::fs::metadata(&path).expect("stat").len() as usize, whole);
    drop(log);

    // A flipped byte before the end is corruption: the log is not opened.
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[super::files::RECORD_HEADER + 2] ^= 1;
    std::fs::write(&path, &bytes).expect("write");
    assert!(matches!(LogStore::open(dir.path()), Err(MetaError::Corrupt { line: 1, .. })));
}

#[tokio::test]
async fn corrupt_vote_or_snapshot_files_stop_the_open_and_a_bad_snapshot_is_not_installed() {
    use openraft::storage::RaftStateMachine;

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("vote.json"), b"{not json").expect("write");
    assert!(matches!(LogStore::open(dir.path()), Err(MetaError::Corrupt { .. })));
    std::fs::write(dir.path().join("snapshot.json"), b"[1,2").expect("write");
    assert!(matches!(StateMachine::open(dir.path()), Err(MetaError::Corrupt { .. })));

    let clean = tempfile::tempdir().expect("tempdir");
    let (mut sm, shared) = StateMachine::open(clean.path()).expect("open");
    let before = shared.committed();
    let meta = super::types::SnapshotMeta {
        last_log_id: Some(blank(1, 5).log_id),
        last_membership: Default::default(),
        snapshot_id: "bad".into(),
    };
    let bad = Box::new(std::io::Cursor::new(b"{\"version\":".to_vec()));
    assert!(sm.install_snapshot(&meta, bad).await.is_err(), "undecodable snapshot data is refused");
    assert_eq!(shared.committed().version, before.version, "and changes nothing");
    assert!(!clean.path().join("snapshot.json").exists());
}
