//! Broker liveness on the active controller, as KRaft's
//! BrokerHeartbeatManager keeps it: a state machine without I/O. Time is
//! an input (`now`, milliseconds), so every event is unit-tested and a
//! seeded simulation drives it.
//!
//! Per registered broker the machine keeps a session: the incarnation that
//! registered, the deadline by which its next heartbeat must arrive
//! (`broker.session.timeout.ms` after the last one), the metadata offset it
//! must have applied before it may be unfenced (its registration's), and
//! whether it asked for a controlled shutdown.
//!
//! Decisions are level-triggered against the committed image: the machine
//! says `Fence` for an expired session only while the image has the broker
//! unfenced, `Unfence` only while the image has it fenced. So a decision
//! whose records failed to commit is simply decided again on the next
//! event, and the image stays the one truth about who is fenced.
//!
//! Sessions live only in the active controller's memory: a controller that
//! becomes active gives every registered broker a fresh deadline
//! ([`Liveness::became_active_controller`]), as KRaft does after a
//! failover, so brokers are never fenced for heartbeats the old controller
//! received.

use std::collections::BTreeMap;

use kaskade_types::NodeId;
use uuid::Uuid;

use crate::image::Image;

/// What a broker says in a heartbeat (KRaft's BrokerHeartbeatRequest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    pub node: NodeId,
    /// The process's registration: a heartbeat of another incarnation is refused.
    pub incarnation: Uuid,
    /// The metadata log offset the broker has applied.
    pub metadata_offset: i64,
    /// The broker asks to be (or stay) fenced (Kafka's `want_fence`: it
    /// is not ready to serve, e.g. every log directory failed).
    pub want_fence: bool,
    /// The broker is shutting down and asks for its leaderships to be moved.
    pub want_shut_down: bool,
}

/// What the active controller is to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The session expired: fence the broker (`election::fence`).
    Fence(NodeId),
    /// A fenced broker heartbeats and caught up: unfence it (`election::unfence`).
    Unfence(NodeId),
    /// A controlled shutdown: move its leaderships and fence it
    /// (`election::fence`), then tell it to shut down.
    ShutdownOk(NodeId),
}

/// Why a heartbeat or a registration is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LivenessError {
    /// Kafka's STALE_BROKER_EPOCH: not the registered incarnation (or not registered).
    #[error("broker {0} is not registered with this incarnation")]
    StaleIncarnation(NodeId),
    /// Kafka's DUPLICATE_BROKER_REGISTRATION: another incarnation of the id is alive.
    #[error("broker {0} is already registered by another process that is alive")]
    DuplicateRegistration(NodeId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Session {
    incarnation: Uuid,
    deadline_ms: i64,
    /// The broker is caught up once it applied this offset.
    caught_up_at: i64,
    shutting_down: bool,
}

/// The sessions of the registered brokers.
#[derive(Clone, Debug)]
pub struct Liveness {
    session_timeout_ms: i64,
    sessions: BTreeMap<NodeId, Session>,
}

impl Liveness {
    pub fn new(session_timeout_ms: i64) -> Liveness {
        debug_assert!(session_timeout_ms > 0);
        Liveness { session_timeout_ms, sessions: BTreeMap::new() }
    }

    /// This controller became active: every broker the image registers gets
    /// a fresh session of its registered incarnation, nothing else survives.
    /// A fenced broker must have applied this image before it is unfenced
    /// (its registration is in it; the image does not say at which offset).
    pub fn became_active_controller(&mut self, now: i64, image: &Image) {
        let caught_up_at = image.end_offset();
        self.sessions = image
            .brokers()
            .values()
            .map(|b| {
                let session = Session {
                    incarnation: b.incarnation_id,
                    deadline_ms: now + self.session_timeout_ms,
                    caught_up_at,
                    shutting_down: false,
                };
                (b.id, session)
            })
            .collect();
    }

    /// Whether `incarnation` may register `node`: not while another
    /// incarnation of it is unfenced and its session has not expired.
    pub fn check_registration(
        &self,
        node: NodeId,
        incarnation: Uuid,
        now: i64,
        image: &Image,
    ) -> Result<(), LivenessError> {
        match self.sessions.get(&node) {
            Some(s) if s.incarnation != incarnation && s.deadline_ms > now && image.is_unfenced(node) => {
                Err(LivenessError::DuplicateRegistration(node))
            }
            _ => Ok(()),
        }
    }

    /// `incarnation` of `node` registered (its record is committed at
    /// `offset`, the end offset it must reach before it is unfenced).
    pub fn registered(&mut self, node: NodeId, incarnation: Uuid, offset: i64, now: i64) {
        let session = Session {
            incarnation,
            deadline_ms: now + self.session_timeout_ms,
            caught_up_at: offset,
            shutting_down: false,
        };
        self.sessions.insert(node, session);
    }

    /// A heartbeat arrived: the session moves on, and the broker is to be
    /// unfenced (fenced, caught up, neither shutting down nor asking to
    /// stay fenced), shut down (asked to, still unfenced) or fenced (it
    /// asks to be, as KRaft's BrokerHeartbeatManager fences an unfenced
    /// broker whose heartbeat says `want_fence`).
    pub fn heartbeat(&mut self, hb: Heartbeat, now: i64, image: &Image) -> Result<Option<Decision>, LivenessError> {
        let session = match self.sessions.get_mut(&hb.node) {
            Some(s) if s.incarnation == hb.incarnation => s,
            _ => return Err(LivenessError::StaleIncarnation(hb.node)),
        };
        session.deadline_ms = now + self.session_timeout_ms;
        session.shutting_down |= hb.want_shut_down;
        let unfenced = image.is_unfenced(hb.node);
        Ok(if session.shutting_down {
            unfenced.then_some(Decision::ShutdownOk(hb.node))
        } else if hb.want_fence {
            unfenced.then_some(Decision::Fence(hb.node))
        } else if !unfenced && hb.metadata_offset >= session.caught_up_at {
            Some(Decision::Unfence(hb.node))
        } else {
            None
        })
    }

    /// Whether `node` may stop now: it asked to, and is fenced (its
    /// leaderships are elsewhere).
    pub fn should_shut_down(&self, node: NodeId, image: &Image) -> bool {
        self.sessions.get(&node).is_some_and(|s| s.shutting_down) && !image.is_unfenced(node)
    }

    /// Whether `node` (at `metadata_offset`) has caught up with its registration.
    pub fn is_caught_up(&self, node: NodeId, metadata_offset: i64) -> bool {
        self.sessions.get(&node).is_some_and(|s| metadata_offset >= s.caught_up_at)
    }

    /// Time passed: every unfenced broker whose session expired is fenced.
    pub fn tick(&self, now: i64, image: &Image) -> Vec<Decision> {
        self.sessions
            .iter()
            .filter(|(node, s)| s.deadline_ms <= now && image.is_unfenced(**node))
            .map(|(node, _)| Decision::Fence(*node))
            .collect()
    }

    /// The earliest session deadline, for a controller that sleeps until then.
    pub fn next_deadline(&self) -> Option<i64> {
        self.sessions.values().map(|s| s.deadline_ms).min()
    }
}

#[cfg(test)]
#[path = "liveness_tests.rs"]
mod tests;
