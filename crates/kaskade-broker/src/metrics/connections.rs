//! Kafka client connections, as Kafka's socket-server metrics
//! `connection-count` and `connection-creation-total`: process-wide atomics
//! the listener bumps, read at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};

use super::text::Exposition;

static OPEN: AtomicU64 = AtomicU64::new(0);
static ACCEPTED: AtomicU64 = AtomicU64::new(0);

/// One open connection, counted from creation until drop (its task ends,
/// normally or by panic).
pub struct OpenConnection(());

impl OpenConnection {
    /// Counts an accepted connection.
    pub fn new() -> Self {
        ACCEPTED.fetch_add(1, Ordering::Relaxed);
        OPEN.fetch_add(1, Ordering::Relaxed);
        OpenConnection(())
    }
}

impl Default for OpenConnection {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let before = OPEN.fetch_sub(1, Ordering::Relaxed);
        debug_assert!(before > 0, "more connections closed than opened");
    }
}

pub(super) fn render(x: &mut Exposition<'_>) {
    x.family("kaskade_connections", "gauge", "Open Kafka client connections.");
    x.sample("kaskade_connections", &[], OPEN.load(Ordering::Relaxed) as f64);
    x.family("kaskade_connections_accepted_total", "counter", "Kafka client connections accepted.");
    x.sample("kaskade_connections_accepted_total", &[], ACCEPTED.load(Ordering::Relaxed) as f64);
}
