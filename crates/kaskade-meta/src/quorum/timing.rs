//! Kafka's controller-quorum timing keys mapped onto openraft's timers.
//!
//! KRaft: a voter that has not fetched from the leader successfully for
//! `controller.quorum.fetch.timeout.ms` (2000) becomes a candidate; a
//! candidate that loses tries again after a random backoff of at most
//! `controller.quorum.election.backoff.max.ms` (1000);
//! `controller.quorum.election.timeout.ms` (1000) bounds a candidacy.
//!
//! openraft 0.9 has one random timeout, drawn once per process from
//! `[election_timeout_min, election_timeout_max)`, and a leader lease of
//! `election_timeout_max`: a follower that heard from a leader campaigns
//! once lease + timeout passed since the last heartbeat; a candidate (no
//! lease) waits the timeout alone before trying again. Its heartbeats are
//! AppendEntries every `heartbeat_interval`, which is also their timeout.
//!
//! The mapping keeps KRaft's bound on a follower's wait: `max` is the
//! election timeout, at most half the fetch timeout, so lease + timeout
//! < 2 x `max` <= `controller.quorum.fetch.timeout.ms`; `min` is `max` less
//! half the election backoff (the random spread that keeps two followers
//! from campaigning together, as KRaft's backoff does); heartbeats every
//! `max / 5`. Kafka's defaults give [500, 1000) ms and 200 ms heartbeats: a
//! follower campaigns 1.5-2 s after the leader's last heartbeat (it was
//! 3-4 s with [1000, 2000), the election timeout taken as openraft's
//! `min`, before the lease was accounted for).
//!
//! Invariants (openraft's `Config::validate` and liveness): heartbeat >= 1
//! ms, heartbeat < min < max, and lease + max <= the fetch timeout whenever
//! the keys leave room for it (values below `FLOOR_MS` are raised to it).

use std::ops::Range;
use std::time::Duration;

/// The three keys, in milliseconds, as configured (Kafka accepts 0 and up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KraftTimeouts {
    /// `controller.quorum.election.timeout.ms`
    pub election_timeout_ms: u32,
    /// `controller.quorum.fetch.timeout.ms`
    pub fetch_timeout_ms: u32,
    /// `controller.quorum.election.backoff.max.ms`
    pub election_backoff_max_ms: u32,
}

impl Default for KraftTimeouts {
    /// Kafka's defaults.
    fn default() -> Self {
        KraftTimeouts { election_timeout_ms: 1000, fetch_timeout_ms: 2000, election_backoff_max_ms: 1000 }
    }
}

/// openraft's timers for a controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftTiming {
    pub election_timeout: Range<Duration>,
    pub heartbeat_interval: Duration,
}

/// The smallest election timeout used: below it heartbeats every `max / 5`
/// would round to nothing.
const FLOOR_MS: u64 = 10;

impl From<KraftTimeouts> for RaftTiming {
    fn from(k: KraftTimeouts) -> RaftTiming {
        let max = u64::from(k.election_timeout_ms).min(u64::from(k.fetch_timeout_ms) / 2).max(FLOOR_MS);
        let spread = u64::from(k.election_backoff_max_ms).min(max) / 2;
        // A zero spread would make openraft's range empty.
        let min = (max - spread).min(max - 1);
        let heartbeat = (max / 5).max(1);
        debug_assert!(1 <= heartbeat && heartbeat < min && min < max, "{heartbeat} < {min} < {max}");
        RaftTiming {
            election_timeout: Duration::from_millis(min)..Duration::from_millis(max),
            heartbeat_interval: Duration::from_millis(heartbeat),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: &RaftTiming) -> (u128, u128, u128) {
        (t.election_timeout.start.as_millis(), t.election_timeout.end.as_millis(), t.heartbeat_interval.as_millis())
    }

    #[test]
    fn kafkas_defaults_campaign_within_the_fetch_timeout() {
        let t = RaftTiming::from(KraftTimeouts::default());
        assert_eq!(ms(&t), (500, 1000, 200));
        // openraft's follower waits lease (= max) + a timeout below max.
        let (_, max, _) = ms(&t);
        assert!(max + max <= 2000, "a follower campaigns within controller.quorum.fetch.timeout.ms");
    }

    #[test]
    fn a_short_fetch_timeout_bounds_the_election_timeout() {
        let t = RaftTiming::from(KraftTimeouts {
            election_timeout_ms: 1000,
            fetch_timeout_ms: 600,
            election_backoff_max_ms: 1000,
        });
        assert_eq!(ms(&t), (150, 300, 60));
    }

    #[test]
    fn the_backoff_sets_the_random_spread() {
        let t = RaftTiming::from(KraftTimeouts {
            election_timeout_ms: 1000,
            fetch_timeout_ms: 2000,
            election_backoff_max_ms: 200,
        });
        assert_eq!(ms(&t), (900, 1000, 200));
    }

    #[test]
    fn every_accepted_value_gives_a_valid_openraft_config() {
        for e in [0, 1, 2, 9, 10, 11, 50, 1000, u32::MAX] {
            for f in [0, 1, 19, 20, 21, 2000, u32::MAX] {
                for b in [0, 1, 2, 1000, u32::MAX] {
                    let t = RaftTiming::from(KraftTimeouts {
                        election_timeout_ms: e,
                        fetch_timeout_ms: f,
                        election_backoff_max_ms: b,
                    });
                    let (min, max, hb) = ms(&t);
                    assert!(1 <= hb && hb < min && min < max, "{e} {f} {b}: {min}..{max}, heartbeat {hb}");
                    let cfg = openraft::Config {
                        election_timeout_min: min as u64,
                        election_timeout_max: max as u64,
                        heartbeat_interval: hb as u64,
                        ..Default::default()
                    };
                    assert!(cfg.validate().is_ok(), "{e} {f} {b}");
                }
            }
        }
    }
}
