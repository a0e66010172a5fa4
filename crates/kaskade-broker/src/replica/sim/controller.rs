//! The controller model: a real metadata [`Image`] changed only by the
//! pure decision functions the active controller uses (`election::fence`
//! and `unfence` for broker sessions, `reassignment::isr_change` for a
//! leader's AlterPartition, `leader_election::elect` for preferred-leader
//! elections). It never crashes (the quorum is openraft's, out of scope);
//! it can be cut off from replicas by the simulated network.
//!
//! Sessions: a broker whose heartbeat has not arrived for `SESSION_MS` is
//! fenced (leaderships move, it leaves ISRs), and unfenced by its next
//! heartbeat. An AlterPartition is taken only when the image still has
//! the leader, leader epoch and partition epoch it was decided on.

use std::collections::BTreeMap;

use kaskade_meta::image::{Image, PartitionImage};
use kaskade_meta::leader_election::{elect, ElectionKind};
use kaskade_meta::record::MetadataRecord;
use kaskade_meta::{election, reassignment};
use kaskade_types::{LeaderEpoch, NodeId};
use uuid::Uuid;

use super::NODES;
use crate::partition::LeaderAndIsr;

/// The broker session timeout (ms) of the simulation.
pub(super) const SESSION_MS: i64 = 400;

#[derive(Debug)]
pub(super) struct Controller {
    pub image: Image,
    topic: Uuid,
    /// Bumped with every change: nodes apply a newer image only.
    pub version: u64,
    last_heartbeat: BTreeMap<NodeId, i64>,
    /// Each broker's registered incarnation.
    incarnations: BTreeMap<NodeId, u64>,
    pub elections: u64,
    pub isr_changes: u64,
}

impl Controller {
    /// Three registered, unfenced brokers and topic "t" with one partition
    /// on all of them, led by the first.
    pub fn new() -> Controller {
        let mut image = Image::default();
        for n in NODES {
            image.apply(&MetadataRecord::RegisterBroker {
                node_id: n.get(),
                incarnation_id: Uuid::from_u128(n.get() as u128),
                endpoints: vec![],
                rack: None,
                fenced: false,
                process: None,
            });
        }
        let topic = Uuid::from_u128(7);
        image.apply(&MetadataRecord::Topic { name: "t".into(), id: topic });
        let p = PartitionImage {
            leader: Some(NODES[0]),
            replicas: NODES.to_vec(),
            isr: NODES.to_vec(),
            leader_epoch: LeaderEpoch(0),
            partition_epoch: 0,
            adding_replicas: vec![],
            removing_replicas: vec![],
        };
        image.apply(&p.to_record(topic, 0));
        let last_heartbeat = NODES.iter().map(|n| (*n, 0)).collect();
        let incarnations = NODES.iter().map(|n| (*n, 0)).collect();
        Controller { image, topic, version: 1, last_heartbeat, incarnations, elections: 0, isr_changes: 0 }
    }

    pub fn partition(&self) -> &PartitionImage {
        let t = self.image.topic_by_id(&self.topic);
        let p = t.and_then(|t| t.partitions.first());
        p.expect("the simulated partition is always in the image")
    }

    /// The partition record as a broker applies it.
    pub fn state(&self) -> LeaderAndIsr {
        LeaderAndIsr::from_image(self.partition())
    }

    fn apply(&mut self, records: &[MetadataRecord]) {
        if records.is_empty() {
            return;
        }
        for r in records {
            self.image.apply(r);
        }
        self.version += 1;
    }

    /// A heartbeat of `incarnation`: another incarnation's is refused
    /// (STALE_BROKER_EPOCH).
    pub fn heartbeat(&mut self, node: NodeId, incarnation: u64, now: i64) {
        if self.incarnations.get(&node) != Some(&incarnation) {
            return;
        }
        self.alive(node, now);
    }

    /// A new incarnation registers: refused while the old one is unfenced
    /// (DUPLICATE_BROKER_REGISTRATION: its session has not expired), so a
    /// restarted broker never takes back leaderships of its last run.
    /// Whether it is registered.
    pub fn register(&mut self, node: NodeId, incarnation: u64, now: i64) -> bool {
        if self.incarnations.get(&node) == Some(&incarnation) {
            return true;
        }
        if self.image.is_unfenced(node) {
            return false;
        }
        self.incarnations.insert(node, incarnation);
        self.alive(node, now);
        true
    }

    fn alive(&mut self, node: NodeId, now: i64) {
        self.last_heartbeat.insert(node, now);
        if !self.image.is_unfenced(node) {
            let records = election::unfence(&self.image, node, false);
            self.apply(&records);
        }
    }

    /// Fences the brokers whose sessions expired.
    pub fn tick(&mut self, now: i64) {
        for n in NODES {
            let silent = now - self.last_heartbeat.get(&n).copied().unwrap_or(0) > SESSION_MS;
            if silent && self.image.is_unfenced(n) {
                let records = election::fence(&self.image, n, false);
                self.apply(&records);
            }
        }
    }

    /// A leader's AlterPartition: taken when the image is still the one
    /// it was decided on.
    pub fn alter_partition(&mut self, from: NodeId, epoch: LeaderEpoch, partition_epoch: i32, isr: Vec<NodeId>) {
        let p = self.partition().clone();
        if p.leader != Some(from) || p.leader_epoch != epoch || p.partition_epoch != partition_epoch {
            return;
        }
        if let Some(record) = reassignment::isr_change(&self.image, self.topic, 0, &p, isr) {
            self.isr_changes += 1;
            self.apply(&[record]);
        }
    }

    /// A preferred-leader election (ElectLeaders / auto rebalancing).
    pub fn elect_preferred(&mut self) {
        let p = self.partition().clone();
        if let Ok(elected) = elect(&self.image, self.topic, 0, &p, ElectionKind::Preferred) {
            self.elections += 1;
            self.apply(&[elected.record]);
        }
    }

    /// Moves leadership to another ISR member as a controlled shutdown
    /// does: the leader is fenced (a new leader from the ISR, the old one
    /// out of it) and unfenced at once (it rejoins the ISR when its new
    /// leader finds it caught up).
    pub fn bounce_leader(&mut self, now: i64) {
        let Some(leader) = self.partition().leader else { return };
        if self.partition().isr.len() < 2 {
            return;
        }
        let fenced = election::fence(&self.image, leader, false);
        self.apply(&fenced);
        self.elections += 1;
        self.alive(leader, now);
    }
}
