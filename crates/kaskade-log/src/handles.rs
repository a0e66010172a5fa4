//! A bounded cache of open segment files, so a node with thousands of
//! partitions and long retention holds a bounded number of descriptors.
//!
//! The active segment of every log keeps its `.log` open (appends need it;
//! its indexes open their files per operation, `index::Descriptor`), so a
//! partition costs one descriptor; closed segments are opened on first read,
//! all three files held while cached, and evicted least-recently-used.
//! Evicting only drops the cache's `Arc`: a read in progress keeps its files
//! until it finishes.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::segment::SegmentFiles;

static NEXT_SEGMENT_ID: AtomicU64 = AtomicU64::new(1);

/// A process-unique id for a segment, the cache key.
pub fn next_segment_id() -> u64 {
    NEXT_SEGMENT_ID.fetch_add(1, Ordering::Relaxed)
}

#[derive(Debug)]
pub struct HandleCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    tick: u64,
    map: HashMap<u64, (Arc<SegmentFiles>, u64)>,
}

impl HandleCache {
    pub fn new(capacity: usize) -> Self {
        HandleCache { capacity: capacity.max(1), inner: Mutex::new(Inner::default()) }
    }

    pub fn get_or_open(
        &self,
        id: u64,
        open: impl FnOnce() -> io::Result<SegmentFiles>,
    ) -> io::Result<Arc<SegmentFiles>> {
        {
            let mut g = self.inner.lock();
            g.tick += 1;
            let tick = g.tick;
            if let Some((files, used)) = g.map.get_mut(&id) {
                *used = tick;
                return Ok(files.clone());
            }
        }
        // Open outside the lock: other partitions' reads are not held up.
        let files = Arc::new(open()?);
        let mut g = self.inner.lock();
        g.tick += 1;
        let tick = g.tick;
        g.map.insert(id, (files.clone(), tick));
        if g.map.len() > self.capacity {
            if let Some(victim) = g.map.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| *k) {
                g.map.remove(&victim);
            }
        }
        Ok(files)
    }

    pub fn remove(&self, id: u64) {
        self.inner.lock().map.remove(&id);
    }

    /// Closed-segment file sets currently open.
    pub fn open_count(&self) -> usize {
        self.inner.lock().map.len()
    }
}
