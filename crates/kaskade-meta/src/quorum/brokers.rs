//! Brokers and the active controller: registration, heartbeats, fencing
//! and controlled shutdown (KRaft's BrokerRegistration and BrokerHeartbeat
//! APIs with the controller's ClusterControlManager and
//! BrokerHeartbeatManager).
//!
//! A broker sends Kafka's BrokerRegistration (62) and BrokerHeartbeat (63)
//! to the active controller's controller listener; kaskade-broker's
//! handlers turn them into a [`BrokerCall`] for
//! [`QuorumMetadataLog::handle_broker_call`] (the same facts: node id,
//! incarnation, endpoints and rack; metadata offset, want_fence,
//! want_shut_down) and its answer back (is_caught_up, is_fenced,
//! should_shut_down, or Kafka's errors NOT_CONTROLLER, STALE_BROKER_EPOCH,
//! DUPLICATE_BROKER_REGISTRATION).
//!
//! The active controller runs the [`Liveness`] machine: sessions start
//! fresh when it becomes active, a background loop ([`run_liveness`]) fences
//! every broker whose session expired, a heartbeat unfences a caught-up
//! broker or carries out a controlled shutdown, and a registration of an id
//! whose other incarnation is alive is refused. Every decision is written
//! as records (`election`) through this controller's own log, decided
//! against the committed image and decided again if it moved.
//!
//! Invariants: one decision at a time (the sessions' async lock is held
//! from deciding until the records committed); only the leader decides,
//! and only once its image holds every entry of earlier terms (so
//! `became_active_controller` sees every registration); the image is the
//! truth about who is fenced, the sessions only about time.
//!
//! [`run_liveness`]: QuorumMetadataLog::run_liveness

use std::time::Duration;

use kaskade_types::NodeId;
use openraft::LogIdOptionExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Mutex};
use uuid::Uuid;

use super::node::QuorumConfig;
use super::node::QuorumMetadataLog;
use super::types::to_node_id;
use crate::election;
use crate::election_timer::ElectionTimer;
use crate::image::Image;
use crate::leader_election;
use crate::liveness::{Decision, Heartbeat, Liveness, LivenessError};
use crate::record::{BrokerEndpoint, BrokerProcess, MetadataRecord};
use crate::MetaError;

/// What a broker asks of the active controller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BrokerCall {
    /// KRaft's BrokerRegistrationRequest: registers fenced; the first
    /// heartbeat that finds it caught up unfences it. `process` is absent
    /// in a call from a broker older than it (a rolling upgrade).
    Register {
        node_id: i32,
        incarnation_id: Uuid,
        endpoints: Vec<BrokerEndpoint>,
        rack: Option<String>,
        #[serde(default)]
        process: Option<BrokerProcess>,
    },
    /// KRaft's BrokerHeartbeatRequest (the broker epoch already resolved
    /// to the registration's incarnation).
    Heartbeat { node_id: i32, incarnation_id: Uuid, metadata_offset: i64, want_fence: bool, want_shut_down: bool },
}

/// KRaft's BrokerHeartbeatResponse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAnswer {
    pub is_caught_up: bool,
    pub is_fenced: bool,
    pub should_shut_down: bool,
}

/// The controller's answer to a [`BrokerCall`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BrokerAnswer {
    Registered,
    Heartbeat(HeartbeatAnswer),
}

/// Why a broker call was not carried out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum BrokerRefusal {
    /// NOT_CONTROLLER: not (yet) the active controller; retry at `leader`.
    #[error("not the active controller (the leader is {leader:?})")]
    NotController {
        #[serde(with = "super::types::wire_node_id")]
        leader: Option<NodeId>,
    },
    /// STALE_BROKER_EPOCH: this incarnation is not the registered one.
    #[error("this broker's registration is not the current one")]
    StaleBrokerEpoch,
    /// DUPLICATE_BROKER_REGISTRATION: another incarnation is alive.
    #[error("broker id {0} is registered by another process that is still heartbeating")]
    DuplicateBrokerRegistration(i32),
    /// No controller could be reached.
    #[error("no active controller reachable: {0}")]
    Unreachable(String),
    /// Writing the decision failed.
    #[error("the controller failed: {0}")]
    Failed(String),
}

/// The active controller's broker sessions.
pub struct Brokers {
    pub(super) state: Mutex<State>,
    /// How often the liveness loop looks for expired sessions.
    tick: Duration,
    stopped: watch::Sender<bool>,
    /// The static `unclean.leader.election.enable`.
    pub(super) unclean_default: bool,
}

pub(super) struct State {
    liveness: Liveness,
    /// When the controller's own elections are due (`leadership`).
    pub(super) elections: ElectionTimer,
    /// The Raft term this controller became active in (sessions belong to it).
    active_term: Option<u64>,
}

/// How many times a decision is made again on a newer image before giving up.
const MAX_DECISIONS: usize = 16;

impl Brokers {
    pub(super) fn new(config: &QuorumConfig) -> Brokers {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1);
        let session_timeout = config.broker_session_timeout;
        let elections = ElectionTimer::new(
            config.leader_imbalance_check_interval.map(ms),
            ms(config.unclean_leader_election_interval),
        );
        Brokers {
            state: Mutex::new(State { liveness: Liveness::new(ms(session_timeout)), elections, active_term: None }),
            tick: (session_timeout / 20).clamp(Duration::from_millis(20), Duration::from_secs(1)),
            stopped: watch::channel(false).0,
            unclean_default: config.unclean_leader_election_enable,
        }
    }

    pub(super) fn stop(&self) {
        self.stopped.send_replace(true);
    }
}

fn liveness_refusal(e: LivenessError) -> BrokerRefusal {
    match e {
        LivenessError::StaleIncarnation(_) => BrokerRefusal::StaleBrokerEpoch,
        LivenessError::DuplicateRegistration(n) => BrokerRefusal::DuplicateBrokerRegistration(n.get()),
    }
}

/// The records of a liveness decision on `image`.
fn records_of(decision: Decision, image: &Image, unclean_default: bool) -> Vec<MetadataRecord> {
    match decision {
        Decision::Fence(n) | Decision::ShutdownOk(n) => election::fence(image, n, unclean_default),
        Decision::Unfence(n) => election::unfence(image, n, unclean_default),
    }
}

impl QuorumMetadataLog {
    /// The active controller's side of a broker call.
    pub async fn handle_broker_call(&self, call: BrokerCall) -> Result<BrokerAnswer, BrokerRefusal> {
        let mut state = self.brokers.state.lock().await;
        let now = self.now_ms();
        self.ensure_active(&mut state, now)?;
        match call {
            BrokerCall::Register { node_id, incarnation_id, endpoints, rack, process } => {
                let node = NodeId(node_id);
                let registration = MetadataRecord::RegisterBroker {
                    node_id,
                    incarnation_id,
                    endpoints: endpoints.clone(),
                    rack: rack.clone(),
                    fenced: true,
                    process,
                };
                let liveness = &state.liveness;
                let unclean_default = self.brokers.unclean_default;
                let committed = self
                    .decide(|image| {
                        liveness.check_registration(node, incarnation_id, now, image).map_err(liveness_refusal)?;
                        // An expired session the loop has not fenced yet:
                        // move its leaderships before the new incarnation
                        // registers fenced (the first heartbeat unfences).
                        let mut records = if image.is_unfenced(node) {
                            election::fence(image, node, unclean_default)
                        } else {
                            Vec::new()
                        };
                        records.push(registration.clone());
                        Ok(records)
                    })
                    .await?;
                state.liveness.registered(node, incarnation_id, committed.end_offset(), now);
                tracing::info!(node = node_id, %incarnation_id, "broker registered (fenced until it heartbeats)");
                Ok(BrokerAnswer::Registered)
            }
            BrokerCall::Heartbeat { node_id, incarnation_id, metadata_offset, want_fence, want_shut_down } => {
                let hb = Heartbeat {
                    node: NodeId(node_id),
                    incarnation: incarnation_id,
                    metadata_offset,
                    want_fence,
                    want_shut_down,
                };
                let liveness = &mut state.liveness;
                let unclean_default = self.brokers.unclean_default;
                let mut decided = None;
                let image = self
                    .decide(|image| {
                        let d = liveness.heartbeat(hb, now, image).map_err(liveness_refusal)?;
                        decided = d;
                        Ok(d.map(|d| records_of(d, image, unclean_default)).unwrap_or_default())
                    })
                    .await?;
                if let Some(d) = decided {
                    tracing::info!(node = node_id, decision = ?d, "broker heartbeat decided");
                }
                Ok(BrokerAnswer::Heartbeat(HeartbeatAnswer {
                    is_caught_up: state.liveness.is_caught_up(hb.node, metadata_offset),
                    is_fenced: !image.is_unfenced(hb.node),
                    should_shut_down: state.liveness.should_shut_down(hb.node, &image),
                }))
            }
        }
    }

    /// Refuses unless this controller leads and its image holds every
    /// entry of earlier terms; the first time in a term, every registered
    /// broker gets a fresh session.
    fn ensure_active(&self, state: &mut State, now: i64) -> Result<(), BrokerRefusal> {
        let (leader, term, current) = {
            let metrics = self.raft().metrics();
            let m = metrics.borrow();
            let current = m.last_applied.is_some_and(|l| l.leader_id.get_term() >= m.current_term)
                && m.last_applied.index() == m.last_log_index;
            (m.current_leader, m.current_term, current)
        };
        if leader != Some(self.raft_id()) {
            state.active_term = None;
            return Err(BrokerRefusal::NotController { leader: leader.map(to_node_id) });
        }
        if !current {
            // Elected, but earlier registrations may not be applied yet.
            return Err(BrokerRefusal::NotController { leader: None });
        }
        if state.active_term != Some(term) {
            let committed = crate::MetadataLog::committed(self);
            state.liveness.became_active_controller(now, &committed.image);
            state.elections.became_active_controller();
            state.active_term = Some(term);
            tracing::info!(node = self.node_id().get(), term, "active controller: every broker gets a fresh session");
        }
        Ok(())
    }

    /// Decides records on the committed image and appends them, deciding
    /// again if the image moved; the image after (unchanged if nothing was
    /// decided). Every unclean election the records make is logged at WARN:
    /// it may have lost acknowledged records.
    pub(super) async fn decide(
        &self,
        mut decide: impl FnMut(&Image) -> Result<Vec<MetadataRecord>, BrokerRefusal>,
    ) -> Result<std::sync::Arc<Image>, BrokerRefusal> {
        for _ in 0..MAX_DECISIONS {
            let current = crate::MetadataLog::committed(self);
            let records = decide(&current.image)?;
            if records.is_empty() {
                return Ok(current.image);
            }
            let unclean = leader_election::unclean_in(&current.image, &records);
            // As the active controller of this term only (never forwarded).
            match self.append_as_active(current.version, records).await {
                Ok(committed) => {
                    for election in &unclean {
                        election.warn();
                    }
                    return Ok(committed.image);
                }
                Err(MetaError::Stale { .. }) => continue,
                Err(MetaError::NotLeader { leader }) => return Err(BrokerRefusal::NotController { leader }),
                Err(e) => return Err(BrokerRefusal::Failed(e.to_string())),
            }
        }
        Err(BrokerRefusal::Failed(format!("the metadata log moved {MAX_DECISIONS} times while deciding")))
    }

    /// While this controller runs: as the active controller, fences every
    /// broker whose session expired, every `tick`.
    pub(super) async fn run_liveness(self) {
        let mut stopped = self.brokers.stopped.subscribe();
        loop {
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(self.brokers.tick) => {}
            }
            let mut state = self.brokers.state.lock().await;
            let now = self.now_ms();
            if self.ensure_active(&mut state, now).is_err() {
                continue;
            }
            let liveness = &state.liveness;
            let unclean_default = self.brokers.unclean_default;
            let mut fenced = Vec::new();
            let result = self
                .decide(|image| {
                    let decisions = liveness.tick(now, image);
                    fenced = decisions.clone();
                    // One batch: fencing one broker changes who may lead
                    // for the next, so each decision sees the records before it.
                    let mut next = image.clone();
                    let mut records = Vec::new();
                    for d in decisions {
                        for r in records_of(d, &next, unclean_default) {
                            next.apply(&r);
                            records.push(r);
                        }
                    }
                    Ok(records)
                })
                .await;
            match result {
                Ok(_) if !fenced.is_empty() => tracing::warn!(decisions = ?fenced, "broker sessions expired: fenced"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "fencing expired brokers failed; deciding again"),
            }
            // The elections' appends run without the sessions' lock, so
            // heartbeats are answered meanwhile (a decision that raced a
            // fencing one is decided again on the newer image).
            let due = self.election_step(&mut state, now);
            drop(state);
            self.run_elections(due).await;
        }
    }
}
