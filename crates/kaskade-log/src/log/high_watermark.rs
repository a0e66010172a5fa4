//! The high watermark: what consumers may read up to. It is an input to the
//! log, decided by its owner (the broker's partition layer: HW = min over
//! the ISR's positions, Kafka's `updateHighWatermark`), never derived by the
//! log itself. The log reports its own positions (log end, durable end and
//! whether it runs in durable mode) to the owner's [`PositionListener`]
//! whenever one moves (every published append, every fsync that moved the
//! durable end, a flush-mode change), synchronously on the thread that
//! moved it, and applies the HW the listener answers. A log without a
//! listener keeps the HW it opened with until its owner sets one.
//!
//! Invariants: the HW only moves forward, except a truncation lowers it to
//! the new log end; it never passes the log end it was clamped against.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use kaskade_types::Offset;
use tokio::sync::watch;

use super::Log;

/// A log's own positions, as reported to its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Positions {
    /// The offset after the last published batch.
    pub log_end: Offset,
    /// Every offset below this is on disk.
    pub durable_end: Offset,
    /// The log's flush policy is durable (acks wait for fsync) rather than
    /// lazy (`flush.messages` > 1).
    pub durable_mode: bool,
}

/// The owner's HW rule: called with the log's positions whenever one moves;
/// answers the HW to set (`None`: unchanged). It runs on appending threads
/// and on the flusher thread, so it must be short and must not block.
pub type PositionListener = Arc<dyn Fn(Positions) -> Option<Offset> + Send + Sync>;

pub(super) struct HighWatermark {
    tx: watch::Sender<i64>,
    /// The log end as last published (`Log::end_tx`): the clamp.
    end: watch::Receiver<i64>,
    /// The log's flush policy is durable (a position, reported).
    durable: AtomicBool,
    /// Set once by the log's owner.
    listener: OnceLock<PositionListener>,
}

impl std::fmt::Debug for HighWatermark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HighWatermark")
            .field("hw", &self.get())
            .field("durable", &self.durable.load(Ordering::Relaxed))
            .field("listener", &self.listener.get().is_some())
            .finish()
    }
}

impl HighWatermark {
    pub(super) fn new(initial: i64, end: watch::Receiver<i64>, durable: bool) -> Self {
        let (tx, _) = watch::channel(initial);
        HighWatermark { tx, end, durable: AtomicBool::new(durable), listener: OnceLock::new() }
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

    fn positions(&self, durable_end: i64) -> Positions {
        Positions {
            log_end: Offset(*self.end.borrow()),
            durable_end: Offset(durable_end),
            durable_mode: self.durable.load(Ordering::Acquire),
        }
    }

    /// A position moved: asks the owner's rule for the HW and applies it.
    pub(super) fn positions_moved(&self, durable_end: i64) {
        let Some(listener) = self.listener.get() else { return };
        if let Some(hw) = listener(self.positions(durable_end)) {
            self.update(hw.get());
        }
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

    /// The log's positions now.
    pub fn positions(&self) -> Positions {
        self.hw.positions(self.flush.durable_end())
    }

    /// Installs the owner's HW rule (once per log: a second call is refused
    /// and returns `false`) and applies it to the positions now.
    pub fn set_position_listener(&self, listener: PositionListener) -> bool {
        if self.hw.listener.set(listener).is_err() {
            return false;
        }
        self.report_positions();
        true
    }

    /// Notified with the new durable end after every fsync that moved it.
    pub fn subscribe_durable_end(&self) -> watch::Receiver<i64> {
        self.flush.subscribe()
    }

    /// Reports the log's current positions to the owner's rule.
    pub(super) fn report_positions(&self) {
        self.hw.positions_moved(self.flush.durable_end());
    }
}
