//! The hand-over to the log cleaner (`crate::cleaner`).

use super::*;

/// What the log cleaner (`crate::cleaner`) needs from a log: a view to
/// plan with, the files of closed segments, and the swap under the lock.
impl Log {
    pub(crate) fn cleaner_view(&self) -> crate::cleaner::CleanerView {
        let st = self.state.lock();
        let active_base = st.segments.keys().next_back().copied().unwrap_or(st.next_offset);
        let closed = st
            .segments
            .values()
            .filter(|s| s.active.is_none())
            .map(|s| crate::cleaner::SegmentMeta {
                base: s.base,
                id: s.id,
                size: s.size,
                next_offset: s.next_offset,
                max_timestamp: s.max_timestamp,
            })
            .collect();
        crate::cleaner::CleanerView {
            config: st.config.clone(),
            log_start: st.log_start,
            log_end: st.next_offset,
            active_base,
            closed,
        }
    }

    /// The files of a closed segment, `None` if it is gone or changed.
    pub(crate) fn cleaner_files(&self, meta: &crate::cleaner::SegmentMeta) -> Result<Option<Arc<SegmentFiles>>> {
        let st = self.state.lock();
        match st.segments.get(&meta.base) {
            Some(s) if s.id == meta.id && s.active.is_none() => {
                Ok(Some(self.files_for(s, st.config.segment_index_bytes)?))
            }
            _ => Ok(None),
        }
    }

    /// Swaps a cleaned segment (fsynced `.cleaned` files) in for the
    /// segments it replaces, if they are all still there unchanged (else
    /// `Ok(false)`: retention, DeleteRecords or a truncation got there
    /// first). Only renames and one directory fsync run under the lock.
    pub(crate) fn install_cleaned(
        &self,
        replaced: &[crate::cleaner::SegmentMeta],
        cleaned: Segment,
        crash_at: Option<u32>,
    ) -> Result<bool> {
        use crate::cleaner::swap::{self, Installed};
        let mut st = self.state.lock();
        let intact = !st.closed
            && replaced.iter().all(|m| {
                st.segments.get(&m.base).is_some_and(|s| s.id == m.id && s.size == m.size && s.active.is_none())
            });
        if !intact {
            return Ok(false);
        }
        let base = cleaned.base;
        let others: Vec<i64> = replaced.iter().map(|m| m.base).filter(|b| *b != base).collect();
        let outcome = swap::install(&self.dir, base, &others, crash_at)?;
        if matches!(outcome, Installed::Crashed) {
            return Err(LogError::Io(std::io::Error::other("injected crash in the segment swap")));
        }
        for m in replaced {
            if let Some(s) = st.segments.remove(&m.base) {
                self.env.cache.remove(s.id);
            }
        }
        st.segments.insert(base, cleaned);
        drop(st);
        if let Installed::CommittedWithError(e) = outcome {
            return Err(e.into());
        }
        swap::sync_dir(&self.dir)?;
        Ok(true)
    }
}
