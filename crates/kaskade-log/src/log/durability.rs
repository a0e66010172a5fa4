//! Durability: the fsync state (durable end, recovery point), flush
//! requests and the clean close.

use super::*;

impl Log {
    /// Every offset below this is on disk.
    pub fn durable_end(&self) -> i64 {
        self.flush.durable_end()
    }

    /// Offsets below this are flushed: Kafka's recovery point.
    pub fn recovery_point(&self) -> i64 {
        self.flush.recovery_point()
    }

    /// Notified with the new log end offset after every append (and
    /// truncation): what long polls park on.
    pub fn subscribe_end(&self) -> watch::Receiver<i64> {
        self.end_tx.subscribe()
    }

    /// Waits until every offset below `end` is on disk. Immediate in lazy
    /// flush mode, where acknowledgement does not wait for fsync.
    pub async fn wait_durable(&self, end: i64) -> Result<()> {
        if !self.is_durable_mode() {
            return Ok(());
        }
        let mut rx = self.flush.subscribe();
        let flush = self.flush.clone();
        let res = rx.wait_for(|d| *d >= end || flush.failure().is_some()).await;
        if let Some(f) = self.flush.failure() {
            return Err(LogError::Io(std::io::Error::other(format!("fsync failed: {f}"))));
        }
        res.map(|_| ()).map_err(|_| LogError::Closed)
    }

    /// Fault injection for tests of the storage-error paths: while
    /// `failure` is set, every fsync of this log fails with it (as a failing
    /// disk's would: the log goes offline, waiters get the error, appends
    /// are refused); `None` lets syncs through again, though a log once
    /// failed stays offline, as Kafka's does until restarted.
    #[doc(hidden)]
    pub fn inject_sync_failure(&self, failure: Option<String>) {
        self.flush.inject_failure(failure);
    }

    /// Lazy mode: flushes when `flush.ms` has passed since the oldest
    /// unflushed append. Called periodically by the log manager.
    pub fn flush_if_due(&self) {
        let now = self.env.clock.now_ms();
        let due = {
            let mut st = self.state.lock();
            let due = match st.config.flush {
                FlushPolicy::Lazy { ms: Some(ms), .. } => st.first_unflushed_ms.is_some_and(|t| now - t >= ms as i64),
                _ => false,
            };
            if due {
                st.unflushed_messages = 0;
                st.first_unflushed_ms = None;
            }
            due
        };
        if due {
            self.request_flush();
        }
    }

    /// Queues a flush of everything written so far.
    pub fn request_flush(&self) {
        if self.flush.try_queue() {
            self.env.flusher.submit(&self.flush);
        }
    }

    /// Flushes synchronously (blocking): shutdown and tests.
    pub fn flush_blocking(&self) -> Result<()> {
        loop {
            let out = self.flush.sync_now()?;
            if !out.again {
                return Ok(());
            }
        }
    }

    /// Refuses further appends, flushes everything and writes the producer
    /// snapshot at the log end (so the next start replays nothing), unless
    /// there is one at the end already, as Kafka's `takeSnapshot` skips an
    /// offset it has: the producer state changes only with the log end
    /// (appends; truncation and clearing delete the snapshots past the new
    /// end) or by expiry, which the load applies again. So an idle
    /// partition's shutdown writes no snapshot, nor does an empty log's.
    pub fn close(&self) -> Result<()> {
        let (snapshot, end) = {
            let mut st = self.state.lock();
            st.closed = true;
            self.drain_writes(&mut st);
            // A clean shutdown leaves complete indexes on disk.
            if let Some(files) = st.segments.values().next_back().and_then(|s| s.active.as_ref()) {
                files.write_index_tails()?;
            }
            st.producers.remove_expired(self.env.clock.now_ms());
            (st.producers.to_snapshot(), st.next_offset)
        };
        self.flush_blocking()?;
        self.sync_snapshots()?;
        let mut st = self.state.lock();
        // An empty log with no state and no snapshot loads as empty
        // without one: Kafka writes none either.
        let nothing = end == st.log_start && st.producers.is_empty() && st.snapshots.offsets().is_empty();
        if nothing || st.snapshots.offsets().last() == Some(&end) {
            return Ok(());
        }
        st.snapshots.write(end, &snapshot, true)?;
        st.snapshots.retain_latest(SNAPSHOTS_TO_KEEP)?;
        Ok(())
    }
}
