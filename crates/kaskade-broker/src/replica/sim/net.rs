//! The simulated network: every message between the controller, the
//! replicas and the producer is delivered after a random delay (so
//! messages between two parties may arrive out of order), dropped at
//! random, or dropped because the link from its sender to its receiver is
//! cut (a network partition, possibly one way). Messages to a crashed node
//! are lost. Delivery order is by time, then by sending order: a seed
//! replays the same deliveries.

use std::collections::{BTreeMap, BTreeSet};

use kaskade_types::sim::SimRng;
use kaskade_types::{LeaderEpoch, NodeId, Offset};

use crate::partition::LeaderAndIsr;

/// A party on the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Addr {
    Controller,
    Producer,
    Node(NodeId),
}

/// A replica's refusal, as the Kafka error it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    FencedLeaderEpoch,
    UnknownLeaderEpoch,
    NotLeaderOrFollower,
    /// Past the leader's log end; with the leader's HW.
    OffsetOutOfRange {
        leader_hw: Offset,
    },
}

/// One stored batch of one record: its leader epoch and the producer's
/// value (unique per send).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub epoch: LeaderEpoch,
    pub value: u64,
}

/// A Fetch answer's records and the leader's HW.
#[derive(Clone, Debug)]
pub(super) struct Fetched {
    /// The offset of the first entry (the fetch offset).
    pub from: Offset,
    pub entries: Vec<Entry>,
    pub high_watermark: Offset,
}

#[derive(Clone, Debug)]
pub(super) enum Msg {
    /// A follower's Fetch as a replica from `offset` (its position).
    Fetch {
        id: u64,
        epoch: LeaderEpoch,
        offset: Offset,
    },
    FetchAnswer {
        id: u64,
        answer: Result<Fetched, Refusal>,
    },
    /// OffsetForLeaderEpoch as a replica.
    EpochQuery {
        id: u64,
        current: LeaderEpoch,
        requested: LeaderEpoch,
    },
    EpochAnswer {
        id: u64,
        answer: Result<Option<(LeaderEpoch, Offset)>, Refusal>,
    },
    /// An acks=all Produce of one record.
    Produce {
        value: u64,
    },
    /// Its answer: the offset when acknowledged.
    Produced {
        value: u64,
        offset: Option<Offset>,
    },
    /// The controller's partition record, the `version`-th image.
    Image {
        version: u64,
        state: LeaderAndIsr,
        partition_epoch: i32,
    },
    /// A broker's heartbeat, from its `incarnation` (process run).
    Heartbeat {
        incarnation: u64,
    },
    /// A restarted broker's registration of its new incarnation.
    Register {
        incarnation: u64,
    },
    /// The controller took the registration at its `version`-th image:
    /// older images are of the previous run.
    Registered {
        incarnation: u64,
        version: u64,
    },
    /// The leader's ISR change (AlterPartition), against the epochs it saw.
    AlterPartition {
        epoch: LeaderEpoch,
        partition_epoch: i32,
        isr: Vec<NodeId>,
    },
}

#[derive(Debug)]
pub(super) struct Envelope {
    pub from: Addr,
    pub to: Addr,
    pub msg: Msg,
}

#[derive(Debug, Default)]
pub(super) struct Net {
    /// (delivery time, sending order) -> message.
    in_flight: BTreeMap<(i64, u64), Envelope>,
    sent: u64,
    /// Directed links that drop everything (from, to).
    cut: BTreeSet<(Addr, Addr)>,
    pub delivered: u64,
    pub dropped: u64,
}

/// Delivery delay bounds (ms) and the chance of a random drop (per mille).
const MIN_DELAY_MS: i64 = 1;
const MAX_DELAY_MS: i64 = 25;
const DROP_PER_MILLE: u64 = 20;

impl Net {
    pub fn send(&mut self, rng: &mut SimRng, now: i64, from: Addr, to: Addr, msg: Msg) {
        if self.cut.contains(&(from, to)) || rng.chance(DROP_PER_MILLE) {
            self.dropped += 1;
            return;
        }
        let at = now + MIN_DELAY_MS + rng.below((MAX_DELAY_MS - MIN_DELAY_MS + 1) as u64) as i64;
        self.sent += 1;
        self.in_flight.insert((at, self.sent), Envelope { from, to, msg });
    }

    /// The next message due by `now`, if any. A link cut while it was in
    /// flight drops it too.
    pub fn next_due(&mut self, now: i64) -> Option<Envelope> {
        loop {
            let key = *self.in_flight.keys().next().filter(|(at, _)| *at <= now)?;
            let e = self.in_flight.remove(&key)?;
            if self.cut.contains(&(e.from, e.to)) {
                self.dropped += 1;
                continue;
            }
            self.delivered += 1;
            return Some(e);
        }
    }

    /// Loses everything on its way to `to` (it crashed).
    pub fn lose_to(&mut self, to: Addr) {
        self.in_flight.retain(|_, e| e.to != to);
    }

    pub fn cut(&mut self, from: Addr, to: Addr) {
        self.cut.insert((from, to));
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    pub fn is_cut(&self) -> bool {
        !self.cut.is_empty()
    }
}
