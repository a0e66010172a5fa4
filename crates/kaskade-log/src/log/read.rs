//! Reads: whole batches from an offset, and lookups by timestamp.

use super::*;
use crate::file_range::FileRange;
use crate::resident::{self, Access};

impl Log {
    /// Reads whole batches from `start`, at most `max_bytes` (but always
    /// one whole batch when there is one), stopping before `upper` (the
    /// high watermark; `None` = the log end). Reads one segment at a time,
    /// as Kafka does.
    pub fn read(&self, start: i64, max_bytes: usize, upper: Option<i64>) -> Result<ReadResult> {
        let r = self.read_range(start, max_bytes, upper)?;
        let records = match r.records {
            Some(range) => Some(range.read()?),
            None => None,
        };
        Ok(ReadResult { records, log_start_offset: r.log_start_offset, log_end_offset: r.log_end_offset })
    }

    /// Like [`Log::read`], but returns where the batches lie (an open file
    /// and a byte range) instead of their bytes, for `sendfile(2)`.
    pub fn read_range(&self, start: i64, max_bytes: usize, upper: Option<i64>) -> Result<RangeRead> {
        self.read_range_with(start, max_bytes, upper, Access::Blocking)
    }

    /// [`Log::read_range`] without waiting for the disk, for async workers:
    /// `None` when the read would have to (the batches' headers are not all
    /// in the page cache, the fetch does not continue where the segment's
    /// last read ended, or the range lies in a closed segment, whose files
    /// may have to be opened). The caller then reads with `read_range` on a
    /// blocking thread. Errors other than that are the same as `read_range`'s.
    pub fn read_range_resident(&self, start: i64, max_bytes: usize, upper: Option<i64>) -> Option<Result<RangeRead>> {
        match self.read_range_with(start, max_bytes, upper, Access::Resident) {
            Err(LogError::Io(e)) if resident::is_would_block(&e) => None,
            other => Some(other),
        }
    }

    fn read_range_with(&self, start: i64, max_bytes: usize, upper: Option<i64>, access: Access) -> Result<RangeRead> {
        let (plan, log_start, log_end) = {
            let st = self.state.lock();
            let (log_start, log_end) = (st.log_start, st.next_offset);
            if start < log_start || start > log_end {
                return Err(LogError::OffsetOutOfRange { offset: start, start: log_start, end: log_end });
            }
            let mut plan = Vec::new();
            let floor = st.segments.range(..=start).next_back().map(|(b, _)| *b).unwrap_or(i64::MIN);
            for (_, seg) in st.segments.range(floor..) {
                if seg.next_offset <= start || seg.size == 0 {
                    continue;
                }
                if access == Access::Resident && seg.active.is_none() {
                    return Err(LogError::Io(resident::would_block()));
                }
                plan.push((self.files_for(seg, st.config.segment_index_bytes)?, seg.size));
                if plan.len() == 2 {
                    break;
                }
            }
            (plan, log_start, log_end)
        };
        let upper = upper.unwrap_or(log_end).min(log_end);
        let mut records = None;
        if start < upper {
            for (files, size) in plan {
                if let Some(l) = segment::locate_with(&files, size, start, max_bytes, upper, access)? {
                    records = Some(FileRange::new(files, l.position, l.len, l.next_offset, l.records));
                    break;
                }
            }
        }
        Ok(RangeRead { records, log_start_offset: log_start, log_end_offset: log_end })
    }

    /// The first batch whose max timestamp is >= `timestamp` (Kafka's
    /// ListOffsets by time). The caller picks the exact record in it.
    /// Batches wholly below the log start are not candidates (Kafka
    /// searches from the log start offset too).
    pub fn find_by_timestamp(&self, timestamp: i64) -> Result<Option<TimestampHit>> {
        let (candidates, log_start) = {
            let st = self.state.lock();
            let mut c = Vec::new();
            for seg in st.segments.values() {
                if seg.max_timestamp >= timestamp && seg.size > 0 && seg.next_offset > st.log_start {
                    c.push((self.files_for(seg, st.config.segment_index_bytes)?, seg.size));
                }
            }
            (c, st.log_start)
        };
        for (files, size) in candidates {
            if let Some((pos, header)) = segment::find_by_timestamp(&files, size, timestamp, log_start)? {
                let batch = segment::read_batch(&files, pos, header.total_len())?;
                return Ok(Some(TimestampHit { header, batch }));
            }
        }
        Ok(None)
    }

    /// The largest timestamp in the log and the last offset of the batch
    /// that holds it.
    pub fn max_timestamp(&self) -> Option<MaxTimestamp> {
        let st = self.state.lock();
        st.segments
            .values()
            .filter(|s| s.max_timestamp >= 0)
            .map(|s| MaxTimestamp { timestamp: s.max_timestamp, offset: s.max_timestamp_offset })
            .fold(None, |acc: Option<MaxTimestamp>, x| match acc {
                Some(a) if a.timestamp >= x.timestamp => Some(a),
                _ => Some(x),
            })
    }
}
