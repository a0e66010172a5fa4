//! Time-based snapshots of the metadata log: Kafka's
//! `metadata.log.max.snapshot.interval.ms` (a snapshot at least that often
//! while committed entries are not in the latest one), beside openraft's
//! count-based policy (`QuorumConfig::snapshot_every`).
//!
//! Each controller snapshots its own applied state, as Kafka's controllers
//! do. A snapshot lets the log before it be purged, and it is what a
//! broker-only node that starts (with nothing) or fell behind the log start
//! loads with FetchSnapshot (`metadata_serve`).
//!
//! Invariant: a snapshot is only asked for when an applied entry is not in
//! the latest one ([`needs_snapshot`]), so an idle quorum writes none.

use std::time::Duration;

use super::node::QuorumMetadataLog;

/// Whether entries up to `applied` (an index) are not all in a snapshot
/// ending at `snapshot_end` (the offset after its last entry).
pub fn needs_snapshot(applied: Option<u64>, snapshot_end: Option<i64>) -> bool {
    match (applied, snapshot_end) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(a), Some(end)) => i64::try_from(a).is_ok_and(|a| a >= end),
    }
}

impl QuorumMetadataLog {
    /// Snapshots every `every` while something new was applied, until the
    /// Raft core stops (or is shut down).
    pub(super) async fn run_snapshot_timer(self, every: Duration) {
        let stopped = self.core_stopped();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                _ = tokio::time::sleep(every) => {}
            }
            let applied = self.shared.last_applied().map(|l| l.index);
            if !needs_snapshot(applied, self.shared.snapshot_id().map(|s| s.end_offset)) {
                continue;
            }
            match self.snapshot_async().await {
                Ok(version) => tracing::debug!(?version, "took a timed metadata snapshot"),
                Err(e) => tracing::warn!(error = %e, "a timed metadata snapshot failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::needs_snapshot;

    #[test]
    fn a_snapshot_is_due_only_when_an_applied_entry_is_not_in_the_latest() {
        assert!(!needs_snapshot(None, None), "nothing applied");
        assert!(needs_snapshot(Some(0), None), "no snapshot yet");
        assert!(!needs_snapshot(Some(9), Some(10)), "the snapshot ends after entry 9");
        assert!(needs_snapshot(Some(10), Some(10)), "entry 10 is not in it");
    }
}
