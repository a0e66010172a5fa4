//! The high watermark: what consumers may read up to. It is an input to the
//! log, set by its owner through `Log::update_high_watermark` (Kafka's
//! `updateHighWatermark`), not derived from fsync state inside the read
//! path. The owner's rule on one node (the ISR is this node alone) is "HW =
//! this replica's durable end" in durable mode, so no consumer sees a record
//! a crash could take back, and "HW = log end" in lazy mode, as Kafka does
//! with one replica. Until the broker's partition layer applies that rule,
//! the log applies it itself (`follow_local`), driven by its own position
//! changes: every published append and every fsync.
//!
//! Invariants: the HW only moves forward, except a truncation lowers it to
//! the new log end; it never passes the log end it was clamped against.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

use super::Log;

#[derive(Debug)]
pub(super) struct HighWatermark {
    tx: watch::Sender<i64>,
    /// The log end as last published (`Log::end_tx`): the clamp.
    end: watch::Receiver<i64>,
    /// The single-node rule follows the durable end (durable mode) rather
    /// than the log end (lazy mode).
    durable: AtomicBool,
}

impl HighWatermark {
    pub(super) fn new(initial: i64, end: watch::Receiver<i64>, durable: bool) -> Self {
        let (tx, _) = watch::channel(initial);
        HighWatermark { tx, end, durable: AtomicBool::new(durable) }
    }

    pub(super) fn get(&self) -> i64 {
        *self.tx.borrow()
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<i64> {
        self.tx.subscribe()
    }

    /// Moves the HW forward to `offset`, clamped to the log end; returns
    /// the HW after the update.
    pub(super) fn update(&self, offset: i64) -> i64 {
        let end = *self.end.borrow();
        let target = offset.min(end);
        debug_assert!(target <= end, "high watermark {target} past the log end {end}");
        self.tx.send_if_modified(|hw| {
            let newer = target > *hw;
            if newer {
                *hw = target;
            }
            newer
        });
        self.get()
    }

    /// A truncation moved the log end back to `end`: the HW follows.
    pub(super) fn truncate(&self, end: i64) {
        self.tx.send_if_modified(|hw| {
            let lower = *hw > end;
            if lower {
                *hw = end;
            }
            lower
        });
    }

    pub(super) fn set_durable(&self, durable: bool) {
        self.durable.store(durable, Ordering::Release);
    }

    /// The single-node rule: HW = durable end (durable mode) or log end.
    pub(super) fn follow_local(&self, durable_end: i64) {
        let end = *self.end.borrow();
        let target = if self.durable.load(Ordering::Acquire) { durable_end.min(end) } else { end };
        self.update(target);
    }
}

impl Log {
    /// What consumers may read up to (see the module doc).
    pub fn high_watermark(&self) -> i64 {
        self.hw.get()
    }

    /// Notified whenever the high watermark moves: what acks=all waits and
    /// long polls park on.
    pub fn subscribe_high_watermark(&self) -> watch::Receiver<i64> {
        self.hw.subscribe()
    }

    /// Sets the high watermark (Kafka's `updateHighWatermark`): only
    /// forward, and never past the log end. Returns the HW after the call.
    pub fn update_high_watermark(&self, offset: i64) -> i64 {
        self.hw.update(offset)
    }

    /// Notified with the new durable end after every fsync that moved it:
    /// with `subscribe_end`, the positions an HW rule is computed from.
    pub fn subscribe_durable_end(&self) -> watch::Receiver<i64> {
        self.flush.subscribe()
    }

    /// Applies the single-node HW rule to the log's current positions.
    pub(super) fn follow_local_high_watermark(&self) {
        self.hw.follow_local(self.flush.durable_end());
    }
}
