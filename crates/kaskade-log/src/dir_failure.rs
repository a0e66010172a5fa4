//! The log directory's failure signal (Kafka's `LogDirFailureChannel`):
//! the first append that fails on I/O in any log of the directory (a write
//! into the page cache, a roll, an fsync that failed before it: ENOSPC,
//! EIO) marks the directory failed, with the error. The broker reports it
//! to the active controller in its heartbeats (`offline_log_dirs`), which
//! moves its leaderships to other ISR members.
//!
//! Invariant: once failed the directory stays failed until the process
//! restarts, as Kafka's offline log directory does; only the first error
//! is kept.

use tokio::sync::watch;

/// Whether the log directory failed, and why.
#[derive(Debug)]
pub struct LogDirFailure {
    failed: watch::Sender<Option<String>>,
}

impl Default for LogDirFailure {
    fn default() -> Self {
        LogDirFailure { failed: watch::channel(None).0 }
    }
}

impl LogDirFailure {
    /// Marks the directory failed with `error`, unless it already is.
    pub fn report(&self, error: &str) {
        let first = self.failed.send_if_modified(|f| {
            if f.is_some() {
                return false;
            }
            *f = Some(error.to_string());
            true
        });
        if first {
            tracing::error!(error, "the log directory failed: it takes no more appends until restarted");
        }
        debug_assert!(self.failed.borrow().is_some());
    }

    /// The first error, once the directory failed.
    pub fn failure(&self) -> Option<String> {
        self.failed.borrow().clone()
    }

    /// Changes to the failure (it is set at most once).
    pub fn subscribe(&self) -> watch::Receiver<Option<String>> {
        self.failed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_kept_and_announced_once() {
        let f = LogDirFailure::default();
        let mut seen = f.subscribe();
        assert_eq!(f.failure(), None);
        f.report("No space left on device");
        f.report("Input/output error");
        assert_eq!(f.failure().as_deref(), Some("No space left on device"));
        assert!(seen.has_changed().expect("open"));
        seen.mark_unchanged();
        f.report("again");
        assert!(!seen.has_changed().expect("open"), "a later error announces nothing");
    }
}
