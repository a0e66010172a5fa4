//! Deleting data: the log start offset (DeleteRecords), retention by time
//! and size, truncation, and crash-safe segment file deletion.

use super::*;

impl Log {
    /// Moves the log start offset forward (DeleteRecords) and deletes the
    /// segments that lie wholly below it.
    pub fn advance_log_start(&self, offset: i64) -> Result<i64> {
        let mut st = self.state.lock();
        if offset > st.next_offset || offset < 0 {
            return Err(LogError::OffsetOutOfRange { offset, start: st.log_start, end: st.next_offset });
        }
        if offset > st.log_start {
            st.log_start = offset;
        }
        self.delete_below_log_start(&mut st)?;
        let start = st.log_start;
        st.epochs.truncate_from_start(start)?;
        Ok(st.log_start)
    }

    pub(super) fn delete_below_log_start(&self, st: &mut State) -> Result<()> {
        loop {
            let mut it = st.segments.keys();
            let (Some(&first), Some(&second)) = (it.next(), it.next()) else { return Ok(()) };
            if second > st.log_start {
                return Ok(());
            }
            self.delete_segment(st, first)?;
        }
    }

    pub(super) fn delete_segment(&self, st: &mut State, base: i64) -> Result<()> {
        if let Some(seg) = st.segments.remove(&base) {
            self.env.cache.remove(seg.id);
            delete_segment_files(&self.dir, base)?;
        }
        if let Some(&first) = st.segments.keys().next() {
            st.log_start = st.log_start.max(first);
            st.txns.drop_below(first);
        }
        Ok(())
    }

    /// Applies `retention.ms` and `retention.bytes`: deletes whole
    /// segments, oldest first. Returns how many were deleted. Only when
    /// `cleanup.policy` includes `delete`, as Kafka does: a compacted log
    /// (`__consumer_offsets`) keeps its latest values however old.
    pub fn apply_retention(&self) -> Result<usize> {
        let now = self.env.clock.now_ms();
        let mut st = self.state.lock();
        if !st.config.cleanup_policy.deletes() {
            return Ok(0);
        }
        self.drain_writes(&mut st);
        let mut deleted = 0;
        let retention_ms = st.config.retention_ms;
        if retention_ms >= 0 {
            while let Some((&base, seg)) = st.segments.iter().next() {
                let expired = seg.size > 0 && seg.max_timestamp >= 0 && now - seg.max_timestamp > retention_ms;
                if !expired {
                    break;
                }
                if st.segments.len() == 1 {
                    // The active segment expired whole: roll so it can go.
                    self.roll_locked(&mut st, now)?;
                }
                self.delete_segment(&mut st, base)?;
                deleted += 1;
            }
        }
        let retention_bytes = st.config.retention_bytes;
        if retention_bytes >= 0 {
            let mut diff: i64 = st.segments.values().map(|s| s.size as i64).sum::<i64>() - retention_bytes;
            while st.segments.len() > 1 {
                let Some((&base, seg)) = st.segments.iter().next() else { break };
                if diff - (seg.size as i64) < 0 {
                    break;
                }
                diff -= seg.size as i64;
                self.delete_segment(&mut st, base)?;
                deleted += 1;
            }
        }
        if deleted > 0 {
            if let Some((&first, _)) = st.segments.iter().next() {
                st.log_start = st.log_start.max(first);
            }
            tracing::info!(tp = %self.tp, deleted, log_start = st.log_start, "retention deleted segments");
            let start = st.log_start;
            st.epochs.truncate_from_start(start)?;
        }
        Ok(deleted)
    }

    /// Removes every batch whose last offset is >= `offset` (replication's
    /// truncation). The log end becomes the base of the first removed batch.
    pub fn truncate_to(&self, offset: i64) -> Result<()> {
        self.truncate(offset, false)
    }

    /// Deletes every batch and starts the log over, empty, at `offset`,
    /// which may lie past the log end (Kafka's `truncateFullyAndStartAt`: a
    /// follower whose log ends below its leader's log start). The epoch
    /// cache and producer state start over too; the new start is made
    /// durable, and the HW moves to it.
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<()> {
        self.truncate(offset, true)?;
        self.flush_blocking()?;
        self.hw.update(self.log_end_offset());
        Ok(())
    }

    fn truncate(&self, offset: i64, start_over: bool) -> Result<()> {
        let now = self.env.clock.now_ms();
        let mut st = self.state.lock();
        self.drain_writes(&mut st);
        if offset >= st.next_offset && !start_over {
            return Ok(());
        }
        let everything = start_over || offset <= st.log_start;
        if everything {
            // Nothing left: start over empty at `offset`.
            let bases: Vec<i64> = st.segments.keys().copied().collect();
            for b in bases {
                self.delete_segment(&mut st, b)?;
            }
            let base = offset.max(0);
            let files = SegmentFiles::open(&self.dir, base, st.config.segment_index_bytes, true)?;
            files.log.set_len(0)?;
            let mut seg = Segment::new(next_segment_id(), base, now);
            seg.active = Some(Arc::new(files));
            st.segments.insert(base, seg);
            st.log_start = base;
            st.next_offset = base;
        } else {
            // The first segment starts at or below the log start, which is
            // below `offset`, so at least one segment survives.
            let doomed: Vec<i64> = st.segments.range(offset..).map(|(b, _)| *b).collect();
            for b in doomed {
                self.delete_segment(&mut st, b)?;
            }
            let index_bytes = st.config.segment_index_bytes;
            let interval = st.config.index_interval_bytes;
            let last_base = *st.segments.keys().next_back().ok_or(LogError::Closed)?;
            let files = {
                let seg = st.segments.get(&last_base).ok_or(LogError::Closed)?;
                self.files_for(seg, index_bytes)?
            };
            let seg = st.segments.get_mut(&last_base).ok_or(LogError::Closed)?;
            seg.truncate_to(&files, offset, interval)?;
            self.env.cache.remove(seg.id);
            seg.active = Some(files);
            st.next_offset = seg.next_offset.max(seg.base);
            // The batch holding the log start may have been cut whole
            // (truncation mid-batch): keep `log_start <= next_offset`.
            st.log_start = st.log_start.min(st.next_offset);
        }
        // The leader epochs follow the log (Kafka's `truncateFromEnd`, and a
        // log started over forgets them all).
        let end = st.next_offset;
        if everything {
            st.epochs.clear()?;
        } else {
            st.epochs.truncate_from_end(end)?;
        }
        // The producer state follows the log; an error is returned once the
        // log's own bookkeeping below is done.
        let producers = if everything {
            st.producers.clear();
            st.txns = TxnLog::default();
            st.snapshots.delete_all().map_err(LogError::from)
        } else {
            self.reload_producer_state(&mut st)
        };
        drop(st);
        self.flush.reset_to(end);
        self.end_tx.send_replace(end);
        self.hw.truncate(end);
        producers
    }
}

/// Deletes a segment's files crash-safely: rename to `.deleted` first (so
/// a crash leaves files recovery recognises and removes), then unlink.
pub(crate) fn delete_segment_files(dir: &Path, base: i64) -> Result<()> {
    let mut renamed = Vec::new();
    for p in Segment::paths(dir, base).into_iter().chain([txn::txn_index_path(dir, base)]) {
        if p.exists() {
            let mut d = p.clone().into_os_string();
            d.push(".deleted");
            std::fs::rename(&p, &d)?;
            renamed.push(PathBuf::from(d));
        }
    }
    for d in renamed {
        std::fs::remove_file(d)?;
    }
    Ok(())
}
