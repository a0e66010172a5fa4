//! A byte range of a segment's log file, handed out by reads instead of the
//! bytes themselves, so that the network layer can send it with
//! `sendfile(2)` from the page cache straight to the socket.
//!
//! Invariants: the range holds whole batches only (the same ones a buffered
//! read would return, see `segment::locate`), and lies below the segment's
//! published size when it was taken, so its bytes never change afterwards
//! (appends go past it; compaction and retention replace or unlink the file,
//! and the open handle this range keeps still reaches the old inode).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::segment::SegmentFiles;

/// Whole batches at `[position, position + len)` of a segment's log file.
#[derive(Clone, Debug)]
pub struct FileRange {
    files: Arc<SegmentFiles>,
    position: u64,
    len: usize,
    next_offset: i64,
    records: u64,
}

impl FileRange {
    pub(crate) fn new(
        files: Arc<SegmentFiles>,
        position: u64,
        len: usize,
        next_offset: i64,
        records: u64,
    ) -> FileRange {
        debug_assert!(len > 0, "a range holds at least one batch");
        FileRange { files, position, len, next_offset, records }
    }

    /// How many records the range's batches hold (their headers' counts).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The open log file (kept open as long as the range lives).
    pub fn file(&self) -> &File {
        &self.files.log
    }

    /// Where the range starts in the file.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The range's length in bytes (never 0).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a range holds at least one batch.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The offset after the range's last batch.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Starts reading the range into the page cache (`readahead(2)`), so that
    /// a later `sendfile(2)` of it on an async worker seldom waits for the
    /// disk. Blocking; best effort (a failure only costs that wait).
    ///
    /// Skipped when the range's last byte is already cached: consumers
    /// near the log end read what was just appended through the page cache,
    /// and a `readahead(2)` over a megabyte of resident pages still walks
    /// them all (about a tenth of the broker's CPU per fetch in a profile of
    /// `kbench consume`). Pages are appended front to back and `locate` has
    /// just read every batch's header page, so a resident last page nearly
    /// always means a resident range; when it does not, `sendfile` waits for
    /// the missing pages, as it does when readahead loses a race with
    /// eviction.
    pub fn prefetch(&self) {
        use std::os::fd::AsRawFd;
        if self.tail_cached() {
            return;
        }
        let Ok(offset) = libc::off64_t::try_from(self.position) else { return };
        // SAFETY: the descriptor is open for the call (borrowed from self).
        unsafe {
            libc::readahead(self.files.log.as_raw_fd(), offset, self.len);
        }
    }

    /// Whether the page holding the range's last byte is in the page cache:
    /// a one-byte `preadv2(2)` with `RWF_NOWAIT`, which fails with `EAGAIN`
    /// instead of reading from the disk. False when the check itself fails
    /// (a kernel or file system without `RWF_NOWAIT`), so that the caller
    /// prefetches.
    pub fn tail_cached(&self) -> bool {
        use std::os::fd::AsRawFd;
        let Some(last) = self.position.checked_add(self.len as u64 - 1) else { return false };
        let Ok(offset) = libc::off_t::try_from(last) else { return false };
        let mut byte = 0u8;
        let mut iov = libc::iovec { iov_base: (&raw mut byte).cast(), iov_len: 1 };
        // SAFETY: `iov` points at one writable byte that outlives the call;
        // the descriptor is open for the call (borrowed from self).
        let n = unsafe { libc::preadv2(self.files.log.as_raw_fd(), &raw mut iov, 1, offset, libc::RWF_NOWAIT) };
        n == 1
    }

    /// The range's bytes, read into memory (the buffered path).
    pub fn read(&self) -> io::Result<Bytes> {
        let mut buf = BytesMut::zeroed(self.len);
        self.files.log.read_exact_at(&mut buf, self.position)?;
        Ok(buf.freeze())
    }
}
