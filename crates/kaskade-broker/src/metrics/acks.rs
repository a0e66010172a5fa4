//! The acks=all wait: how long a Produce request waits, after its appends,
//! for an fsync to cover every batch it wrote (Kafka's time in the produce
//! purgatory, the `RemoteTimeMs` of `request=Produce`; on one node the wait
//! is for durability, with replication for the ISR).
//!
//! A guard ([`AckWait`]) started where the wait begins and recorded when it
//! is dropped, so the handler needs one line and every way out (all durable,
//! a storage error, `timeout.ms` passed, the request abandoned because its
//! connection closed) records how long it waited.

use std::time::Instant;

use kaskade_types::LatencyHistogram;

use super::text::Exposition;

static WAIT: LatencyHistogram = LatencyHistogram::new();

/// One request's acks=all wait, recorded on drop.
#[must_use = "the wait is recorded when the guard is dropped"]
pub struct AckWait {
    began: Instant,
}

impl AckWait {
    /// Starts timing a wait that begins now.
    pub fn start() -> Self {
        AckWait { began: Instant::now() }
    }
}

impl Drop for AckWait {
    fn drop(&mut self) {
        WAIT.record(self.began.elapsed());
    }
}

pub(super) fn render(x: &mut Exposition<'_>) {
    x.family(
        "kaskade_produce_ack_wait_seconds",
        "histogram",
        "Time an acks=all Produce request waited after its appends until every batch it wrote was durable (or it timed out).",
    );
    x.histogram("kaskade_produce_ack_wait_seconds", &[], &WAIT.snapshot());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_recorded_when_its_guard_drops() {
        let before = WAIT.snapshot().count;
        let wait = AckWait::start();
        assert_eq!(WAIT.snapshot().count, before, "nothing recorded while waiting");
        drop(wait);
        // Other tests of this process may produce too: at least ours.
        assert!(WAIT.snapshot().count > before);
        let mut out = String::new();
        render(&mut Exposition::new(&mut out));
        assert!(out.contains("# TYPE kaskade_produce_ack_wait_seconds histogram\n"), "{out}");
        assert!(out.lines().any(|l| l.starts_with("kaskade_produce_ack_wait_seconds_bucket{le=\"+Inf\"} ")), "{out}");
    }
}
