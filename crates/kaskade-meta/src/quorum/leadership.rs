//! The active controller's own leader elections, wired to I/O: at every
//! step of the liveness loop (`brokers`), the [`ElectionTimer`] is told
//! what the committed image says and, when a run is due, the records of
//! `leader_election::rebalance` (preferred leaders back, KRaft's
//! `maybeBalancePartitionLeaders`) or `leader_election::unclean_elections`
//! (KRaft's `maybeElectUncleanLeaders`) are appended through `decide`.
//!
//! Invariants: the timer steps only while this controller is active (the
//! caller checked, holding the sessions' lock); the runs' appends are made
//! without that lock, so heartbeats are not held up by them, and are
//! decided on the committed image and again if it moved (a fencing
//! decision committed meanwhile wins, the run decides anew on top of it);
//! a run whose controller lost leadership meanwhile fails to append
//! (NOT_CONTROLLER) and changes nothing; a failed run is logged and
//! scheduled again by the timer (the image still shows the imbalance).
//!
//! [`ElectionTimer`]: crate::election_timer::ElectionTimer

use super::brokers::State;
use super::node::QuorumMetadataLog;
use crate::election_timer::Due;
use crate::leader_election::{self, MAX_ELECTIONS_PER_RUN};

impl QuorumMetadataLog {
    /// One step of the controller's election schedule at `now`, on the
    /// committed image: which runs are due.
    pub(super) fn election_step(&self, state: &mut State, now: i64) -> Due {
        let committed = crate::MetadataLog::committed(self);
        state.elections.step(now, leader_election::facts(&committed.image, self.brokers.unclean_default))
    }

    /// Carries out the runs that are `due`.
    pub(super) async fn run_elections(&self, due: Due) {
        let unclean_default = self.brokers.unclean_default;
        if due.unclean {
            // Offline partitions first: a leader at all matters more than
            // the preferred one.
            let mut capped = false;
            let result = self
                .decide(|image| {
                    // `decide` logs the unclean ones from the records.
                    let run = leader_election::unclean_elections(image, unclean_default, MAX_ELECTIONS_PER_RUN);
                    capped = run.capped;
                    Ok(run.records)
                })
                .await;
            self.brokers.state.lock().await.elections.unclean_checked(capped);
            if let Err(e) = result {
                tracing::warn!(error = %e, "the unclean leader election check failed; trying again later");
            }
        }
        if due.rebalance {
            let mut moved = 0;
            let mut capped = false;
            let result = self
                .decide(|image| {
                    let run = leader_election::rebalance(image, MAX_ELECTIONS_PER_RUN);
                    (moved, capped) = (run.records.len(), run.capped);
                    Ok(run.records)
                })
                .await;
            self.brokers.state.lock().await.elections.rebalanced(capped);
            match result {
                Ok(_) if moved > 0 => {
                    tracing::info!(partitions = moved, "auto leader rebalance: preferred replicas lead again")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "auto leader rebalance failed; trying again later"),
            }
        }
    }
}
