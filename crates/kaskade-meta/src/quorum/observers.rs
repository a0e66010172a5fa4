//! The observers a controller knows of: broker-only nodes fetching the
//! metadata log with Kafka's Fetch (`metadata_serve`), as KRaft's leader
//! tracks the observers fetching its log and DescribeQuorum lists them
//! (`LeaderState.updateReplicaState`).
//!
//! A pure state machine, no I/O and no clock of its own: each valid fetch
//! is an event with the time it arrived. An observer's position is its
//! fetch offset (it holds every entry before it: Kafka's observer log end
//! offset), the same Raft offsets as the voters'; it is caught up when that
//! offset reached the high watermark the controller had then.
//!
//! Invariants: an observer silent for [`OBSERVER_SESSION_TIMEOUT_MS`] is
//! dropped (Kafka's `OBSERVER_SESSION_TIMEOUT_MS`, 5 minutes), so a broker
//! that left stops being listed; times never move backwards for an entry.

use std::collections::BTreeMap;

use super::status::ReplicaStatus;

/// How long an observer stays listed after its last fetch (Kafka's
/// `LeaderState.OBSERVER_SESSION_TIMEOUT_MS`).
pub const OBSERVER_SESSION_TIMEOUT_MS: i64 = 300_000;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Entry {
    log_end_offset: i64,
    last_fetch_ms: i64,
    /// -1 if never.
    last_caught_up_ms: i64,
}

/// The observers, by node id.
#[derive(Clone, Debug, Default)]
pub struct Observers {
    by_id: BTreeMap<i32, Entry>,
}

impl Observers {
    /// Observer `id` fetched from `fetch_offset` at `now_ms` while the
    /// high watermark was `high_watermark`.
    pub fn fetched(&mut self, id: i32, fetch_offset: i64, high_watermark: i64, now_ms: i64) {
        let entry = self.by_id.entry(id).or_insert(Entry { last_caught_up_ms: -1, ..Entry::default() });
        entry.log_end_offset = fetch_offset;
        entry.last_fetch_ms = entry.last_fetch_ms.max(now_ms);
        if fetch_offset >= high_watermark {
            entry.last_caught_up_ms = entry.last_caught_up_ms.max(now_ms);
        }
    }

    /// The observers fetched within the session timeout before `now_ms`,
    /// by id; older ones are forgotten.
    pub fn list(&mut self, now_ms: i64) -> Vec<ReplicaStatus> {
        self.by_id.retain(|_, e| now_ms.saturating_sub(e.last_fetch_ms) < OBSERVER_SESSION_TIMEOUT_MS);
        self.by_id
            .iter()
            .map(|(id, e)| ReplicaStatus {
                directory_id: None,
                replica_id: *id,
                log_end_offset: e.log_end_offset,
                last_fetch_timestamp: e.last_fetch_ms,
                last_caught_up_timestamp: e.last_caught_up_ms,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_observer_is_at_its_fetch_offset_and_not_caught_up() {
        let mut o = Observers::default();
        o.fetched(4, 0, 10, 1_000);
        let listed = o.list(1_000);
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].replica_id, listed[0].log_end_offset, listed[0].last_fetch_timestamp), (4, 0, 1_000));
        assert_eq!(listed[0].last_caught_up_timestamp, -1);
    }

    #[test]
    fn reaching_the_high_watermark_is_caught_up() {
        let mut o = Observers::default();
        o.fetched(4, 7, 12, 1_100);
        let l = o.list(1_100);
        assert_eq!((l[0].log_end_offset, l[0].last_caught_up_timestamp), (7, -1));
        o.fetched(4, 12, 12, 1_200);
        let l = o.list(1_200);
        assert_eq!((l[0].log_end_offset, l[0].last_fetch_timestamp, l[0].last_caught_up_timestamp), (12, 1_200, 1_200));
        // Behind again later: the last caught-up time stays.
        o.fetched(4, 12, 15, 1_300);
        assert_eq!(o.list(1_300)[0].last_caught_up_timestamp, 1_200);
    }

    #[test]
    fn silent_observers_are_dropped_after_the_session_timeout_and_times_never_go_back() {
        let mut o = Observers::default();
        o.fetched(4, 10, 10, 5_000);
        o.fetched(4, 10, 10, 4_000);
        assert_eq!(o.list(5_000)[0].last_fetch_timestamp, 5_000);
        o.fetched(6, 0, 10, 5_000 + OBSERVER_SESSION_TIMEOUT_MS);
        let ids: Vec<i32> = o.list(5_000 + OBSERVER_SESSION_TIMEOUT_MS).iter().map(|r| r.replica_id).collect();
        assert_eq!(ids, vec![6], "4 was silent for the whole session timeout");
    }
}
