//! The observers a controller knows of: broker-only nodes fetching the
//! committed image (`observer`), as KRaft's leader tracks the observers
//! fetching its log and DescribeQuorum lists them (`LeaderState`).
//!
//! A pure state machine, no I/O and no clock of its own: each fetch is an
//! event with the time it arrived. An observer's position is a Raft log end
//! offset, the same measure as the voters': when its fetch says it holds the
//! controller's applied image, it is at the controller's high watermark
//! (and caught up now); when it holds the image this controller last sent
//! it, it is at the end offset that image had. Otherwise its position is
//! unknown (-1, as Kafka reports a replica it has no offset for), and 0 when
//! it has no image yet.
//!
//! Invariants: an observer silent for [`OBSERVER_SESSION_TIMEOUT_MS`] is
//! dropped (Kafka's `OBSERVER_SESSION_TIMEOUT_MS`, 5 minutes), so a broker
//! that left stops being listed; times never move backwards for an entry.

use std::collections::BTreeMap;

use super::status::ReplicaStatus;
use crate::metadata_log::MetadataVersion;

/// How long an observer stays listed after its last fetch (Kafka's
/// `LeaderState.OBSERVER_SESSION_TIMEOUT_MS`).
pub const OBSERVER_SESSION_TIMEOUT_MS: i64 = 300_000;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Entry {
    log_end_offset: i64,
    last_fetch_ms: i64,
    /// -1 if never.
    last_caught_up_ms: i64,
    /// The image last sent to it and the Raft end offset it had.
    sent: Option<(MetadataVersion, i64)>,
}

/// What a controller applied when a fetch arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    pub version: MetadataVersion,
    /// The Raft log end offset of that image (the high watermark).
    pub end_offset: i64,
}

/// The observers, by node id.
#[derive(Clone, Debug, Default)]
pub struct Observers {
    by_id: BTreeMap<i32, Entry>,
}

impl Observers {
    /// Observer `id` fetched at `now_ms` holding `known` (`None`: no image
    /// yet) while this controller had `applied`.
    pub fn fetched(&mut self, id: i32, known: Option<MetadataVersion>, applied: Applied, now_ms: i64) {
        let entry = self.by_id.entry(id).or_insert(Entry { last_caught_up_ms: -1, ..Entry::default() });
        entry.log_end_offset = match known {
            None => 0,
            Some(v) if v == applied.version => applied.end_offset,
            Some(v) => match entry.sent {
                Some((sent, offset)) if sent == v => offset,
                _ => -1,
            },
        };
        entry.last_fetch_ms = entry.last_fetch_ms.max(now_ms);
        if known == Some(applied.version) {
            entry.last_caught_up_ms = entry.last_caught_up_ms.max(now_ms);
        }
    }

    /// This controller answered observer `id` with the image `sent`.
    pub fn sent(&mut self, id: i32, sent: Applied) {
        if let Some(entry) = self.by_id.get_mut(&id) {
            entry.sent = Some((sent.version, sent.end_offset));
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

    fn at(end_offset: i64, version: i64) -> Applied {
        Applied { version: MetadataVersion { end_offset: version, epoch: 1 }, end_offset }
    }

    #[test]
    fn a_new_observer_is_at_zero_and_not_caught_up() {
        let mut o = Observers::default();
        o.fetched(4, None, at(10, 3), 1_000);
        let listed = o.list(1_000);
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].replica_id, listed[0].log_end_offset, listed[0].last_fetch_timestamp), (4, 0, 1_000));
        assert_eq!(listed[0].last_caught_up_timestamp, -1);
    }

    #[test]
    fn the_image_sent_is_its_position_and_holding_the_applied_one_is_caught_up() {
        let mut o = Observers::default();
        let first = at(10, 3);
        o.fetched(4, None, first, 1_000);
        o.sent(4, first);
        // The controller moved on before the observer's next fetch.
        o.fetched(4, Some(first.version), at(12, 4), 1_100);
        let l = o.list(1_100);
        assert_eq!((l[0].log_end_offset, l[0].last_caught_up_timestamp), (10, -1));
        o.sent(4, at(12, 4));
        o.fetched(4, Some(at(12, 4).version), at(12, 4), 1_200);
        let l = o.list(1_200);
        assert_eq!((l[0].log_end_offset, l[0].last_fetch_timestamp, l[0].last_caught_up_timestamp), (12, 1_200, 1_200));
    }

    #[test]
    fn an_image_this_controller_did_not_send_is_an_unknown_position() {
        let mut o = Observers::default();
        // It followed another controller before this one.
        o.fetched(5, Some(MetadataVersion { end_offset: 2, epoch: 1 }), at(12, 4), 1_000);
        assert_eq!(o.list(1_000)[0].log_end_offset, -1);
    }

    #[test]
    fn silent_observers_are_dropped_after_the_session_timeout_and_times_never_go_back() {
        let mut o = Observers::default();
        o.fetched(4, Some(at(10, 3).version), at(10, 3), 5_000);
        o.fetched(4, Some(at(10, 3).version), at(10, 3), 4_000);
        assert_eq!(o.list(5_000)[0].last_fetch_timestamp, 5_000);
        o.fetched(6, None, at(10, 3), 5_000 + OBSERVER_SESSION_TIMEOUT_MS);
        let ids: Vec<i32> = o.list(5_000 + OBSERVER_SESSION_TIMEOUT_MS).iter().map(|r| r.replica_id).collect();
        assert_eq!(ids, vec![6], "4 was silent for the whole session timeout");
    }
}
