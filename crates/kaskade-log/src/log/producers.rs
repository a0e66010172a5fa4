//! Glue between the log and its idempotent/transactional producer state:
//! the last stable offset, transaction indexing, producer snapshots at
//! rolls and their rebuild after a truncation.

use super::open::rewrite_txn_indexes;
use super::*;

impl Log {
    /// Indexes a transaction that just ended (an abort goes to the active
    /// segment's `.txnindex`, with the LSO the producer state computed when
    /// the marker was applied; the file is fsynced with the snapshots).
    pub(super) fn record_completed(&self, st: &mut State, done: &CompletedTxn) {
        if let Some(entry) = st.txns.complete(done) {
            let base = st.segments.range(..=entry.last_offset).next_back().map_or(0, |(b, _)| *b);
            match txn::append_txn_index(&txn::txn_index_path(&self.dir, base), &entry) {
                Ok(f) => st.unsynced_snapshots.push(f),
                // The marker is in the log: the next open re-indexes it.
                Err(e) => tracing::error!(tp = %self.tp, error = %e, "writing the aborted-transaction index failed"),
            }
        }
    }

    /// Kafka's last stable offset: read_committed consumers read below it.
    /// The first offset of the oldest transaction that is open, or whose
    /// marker is not yet below the high watermark; else the high watermark.
    pub fn last_stable_offset(&self) -> i64 {
        let mut st = self.state.lock();
        let hw = self.hw.get();
        let first_open = st.producers.first_open_txn();
        // An open transaction whose start was deleted (DeleteRecords,
        // retention) holds the LSO at the log start, as Kafka clamps it.
        st.txns.last_stable_offset(first_open, hw).max(st.log_start.min(hw))
    }

    /// The aborted transactions a read_committed fetch of `[start, upper)`
    /// must return (Kafka's `collectAbortedTransactions`).
    pub fn aborted_transactions(&self, start: i64, upper: i64) -> Vec<AbortedTxn> {
        self.state.lock().txns.aborted_between(start, upper)
    }

    /// Open transactions on this partition, oldest first.
    pub fn open_transactions(&self) -> Vec<crate::producer_state::OpenTxn> {
        self.state.lock().producers.open_txns().collect()
    }

    /// Every producer the partition knows (DescribeProducers).
    pub fn producer_entries(&self) -> Vec<ProducerEntry> {
        self.state.lock().producers.entries().cloned().collect()
    }

    /// Writes the producer snapshot at the new segment's base, as Kafka
    /// does on roll (a small write into the page cache). It is fsynced
    /// later by `sync_snapshots`, off the acknowledgement path, as Kafka
    /// flushes it asynchronously: a snapshot lost or torn by a crash is
    /// detected by its CRC and only costs a longer replay. So a failure here
    /// is logged, not returned.
    pub(super) fn snapshot_on_roll(&self, st: &mut State, now: i64) {
        st.producers.remove_expired(now);
        let bytes = st.producers.to_snapshot();
        let end = st.next_offset;
        let res = st.snapshots.write(end, &bytes, false).and_then(|f| {
            st.unsynced_snapshots.push(f);
            st.snapshots.retain_latest(SNAPSHOTS_TO_KEEP)
        });
        if let Err(e) = res {
            tracing::warn!(tp = %self.tp, offset = end, error = %e, "writing the producer snapshot failed");
        }
    }

    /// Fsyncs the producer snapshots written at rolls since the last call
    /// (blocking; the log manager's background thread calls it).
    pub fn sync_snapshots(&self) -> Result<()> {
        let files = std::mem::take(&mut self.state.lock().unsynced_snapshots);
        if files.is_empty() {
            return Ok(());
        }
        for f in &files {
            f.sync_data()?;
        }
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }

    /// Rebuilds the producer state after the log end moved back: drops the
    /// snapshots past the end, loads the newest one left and replays the
    /// headers after it (Kafka's `truncateAndReload`).
    pub(super) fn reload_producer_state(&self, st: &mut State) -> Result<()> {
        // Never keep the state of batches that are gone, even if the
        // rebuild fails (an empty state accepts any sequence, KIP-360).
        st.producers.clear();
        let (ttl, now) = (self.env.producer_id_expiration_ms, self.env.clock.now_ms());
        let mut report = Vec::new();
        let end = st.next_offset;
        st.txns.truncate(end);
        rewrite_txn_indexes(&self.dir, st.segments.keys().copied(), st.txns.aborted())?;
        let mut completed = Vec::new();
        let State { snapshots, segments, config, log_start, next_offset, .. } = &mut *st;
        let (state, _) =
            producer_state::rebuild(snapshots, *log_start, *next_offset, ttl, now, &mut report, |state, from| {
                let mut n = 0;
                for seg in segments.values().filter(|s| s.next_offset > from && s.size > 0) {
                    let files = self.files_for(seg, config.segment_index_bytes)?;
                    n += producer_state::replay(state, &files, seg.size, from, &mut completed)?;
                }
                Ok(n)
            })?;
        for line in report {
            tracing::warn!("{}: {line}", self.tp);
        }
        st.producers = state;
        for done in &completed {
            self.record_completed(st, done);
        }
        Ok(())
    }

    /// What the partition knows of a producer (tests, tools).
    pub fn producer_entry(&self, producer_id: i64) -> Option<ProducerEntry> {
        self.state.lock().producers.get(producer_id).cloned()
    }

    /// How many producers the partition keeps state for.
    pub fn producer_count(&self) -> usize {
        self.state.lock().producers.len()
    }

    /// Forgets producers idle longer than `producer.id.expiration.ms`.
    /// Called periodically by the log manager. Returns how many went.
    pub fn remove_expired_producers(&self) -> usize {
        let now = self.env.clock.now_ms();
        self.state.lock().producers.remove_expired(now)
    }
}
