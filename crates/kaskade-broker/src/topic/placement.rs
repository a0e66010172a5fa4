//! Replica placement: which brokers hold each new partition, leader first.
//!
//! Pure: the usable brokers (id, rack) and the topic's existing partitions
//! in, one replica list per new partition out. Kafka's KRaft controller
//! does this in `StripedReplicaPlacer`; its rules, which hold here too:
//!
//! - **Racks interleaved.** Brokers are grouped by `broker.rack` (brokers
//!   without one form a rack of their own, sorted first, as KRaft's
//!   `Optional` comparator sorts them; KRaft accepts a mix of brokers with
//!   and without racks, only ZooKeeper-era Kafka refused it). The brokers
//!   are laid out rack-alternated (`A0 B0 C0 A1 B1 C1 A2 ...`, racks and
//!   brokers in each rack sorted), so walking that list moves to another
//!   rack at every step while any is left.
//! - **Leaders balanced.** Partition `i`'s leader is the list's broker at
//!   `start + i`: every broker leads the same number of a topic's new
//!   partitions, give or take one. `start` comes from the topic id (Kafka
//!   starts at random; a decision here reads only the image and the
//!   request, so deciding again gives the same answer); a topic that grows
//!   (CreatePartitions) continues after the leader of its last partition,
//!   as KRaft continues from the previous assignment.
//! - **Distinct racks as far as possible.** Followers are taken walking
//!   the list from the leader; a broker whose rack already holds a replica
//!   is skipped while some rack holds none, so a partition spans
//!   `min(replication factor, racks)` racks. A walk starts `1 + shift`
//!   after the leader, the shift growing by one every round of leaders (as
//!   Kafka's rack-aware assignment shifts its followers), so partitions
//!   with the same leader do not all share the same followers.
//!
//! Constraints (INVALID_REPLICATION_FACTOR otherwise): a positive factor,
//! no more than the usable brokers, never a broker twice in a partition.
//! Departure from KRaft: only unfenced brokers are usable (KRaft may put
//! followers on fenced brokers); the issue asks for "up to the number of
//! live brokers".

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::ResponseError;
use kaskade_types::NodeId;

use super::error::TopicError;

/// A broker replicas may be placed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsableBroker {
    pub id: NodeId,
    pub rack: Option<String>,
}

impl UsableBroker {
    pub fn new(id: i32, rack: Option<&str>) -> Self {
        UsableBroker { id: NodeId(id), rack: rack.map(str::to_string) }
    }
}

/// The brokers laid out rack-alternated, with each one's rack index.
struct RackList {
    brokers: Vec<NodeId>,
    rack_of: Vec<usize>,
    racks: usize,
}

impl RackList {
    fn new(usable: &[UsableBroker]) -> Self {
        let mut by_rack: BTreeMap<Option<&str>, Vec<NodeId>> = BTreeMap::new();
        for b in usable {
            by_rack.entry(b.rack.as_deref()).or_default().push(b.id);
        }
        for ids in by_rack.values_mut() {
            ids.sort_unstable();
            ids.dedup();
        }
        let racks: Vec<Vec<NodeId>> = by_rack.into_values().collect();
        let deepest = racks.iter().map(Vec::len).max().unwrap_or(0);
        let (mut brokers, mut rack_of) = (Vec::new(), Vec::new());
        for round in 0..deepest {
            for (r, ids) in racks.iter().enumerate() {
                if let Some(id) = ids.get(round) {
                    brokers.push(*id);
                    rack_of.push(r);
                }
            }
        }
        RackList { brokers, rack_of, racks: racks.len() }
    }

    fn len(&self) -> usize {
        self.brokers.len()
    }

    /// One partition: the leader at list position `lead`, followers walked
    /// from `lead + 1 + shift`, other racks first.
    fn partition(&self, lead: usize, shift: usize, replication: usize) -> Vec<NodeId> {
        let n = self.len();
        let mut chosen = vec![lead];
        let mut racks_used = vec![false; self.racks];
        racks_used[self.rack_of[lead]] = true;
        let mut used_count = 1;
        let mut cursor = lead + 1 + shift;
        while chosen.len() < replication {
            // Every rack holds a replica once `used_count == racks`; until
            // then an unused rack has no chosen broker, so a full lap finds
            // one. A lap always finds an unchosen broker (replication <= n).
            let every_rack = used_count == self.racks;
            let found = (0..n)
                .map(|k| (cursor + k) % n)
                .find(|&pos| !chosen.contains(&pos) && (every_rack || !racks_used[self.rack_of[pos]]));
            let Some(pos) = found else { break };
            chosen.push(pos);
            if !racks_used[self.rack_of[pos]] {
                racks_used[self.rack_of[pos]] = true;
                used_count += 1;
            }
            cursor = pos + 1;
        }
        chosen.into_iter().map(|pos| self.brokers[pos]).collect()
    }
}

/// Places `partitions` new partitions of `replication` replicas each on
/// `usable`, after the topic's `existing` partitions (replica lists,
/// leader first; empty for a new topic). `seed` (from the topic id) picks
/// the first leader of a topic with no usable previous leader.
pub fn place(
    usable: &[UsableBroker],
    existing: &[Vec<NodeId>],
    partitions: usize,
    replication: usize,
    seed: u64,
) -> Result<Vec<Vec<NodeId>>, TopicError> {
    let list = RackList::new(usable);
    let n = list.len();
    if replication == 0 {
        return Err(TopicError::new(
            ResponseError::InvalidReplicationFactor,
            format!("Invalid replication factor {replication}: the replication factor must be positive."),
        ));
    }
    if n == 0 {
        return Err(TopicError::new(ResponseError::InvalidReplicationFactor, "All brokers are currently fenced."));
    }
    if replication > n {
        return Err(TopicError::new(
            ResponseError::InvalidReplicationFactor,
            format!("Unable to replicate the partition {replication} time(s): The target replication factor of {replication} cannot be reached because only {n} broker(s) are registered."),
        ));
    }
    let position: HashMap<NodeId, usize> = list.brokers.iter().enumerate().map(|(i, b)| (*b, i)).collect();
    let start = existing
        .last()
        .and_then(|replicas| replicas.first())
        .and_then(|leader| position.get(leader))
        .map_or((seed % n as u64) as usize, |pos| pos + 1);
    Ok((0..partitions)
        .map(|i| {
            // The shift counts rounds of leaders over the whole topic, so
            // a grown topic keeps varying its followers.
            let round = (existing.len() + i) / n;
            let shift = if n > 1 { round % (n - 1) } else { 0 };
            list.partition((start + i) % n, shift, replication)
        })
        .collect())
}

/// A seed for [`place`] from a topic id.
pub fn seed_of(topic_id: &uuid::Uuid) -> u64 {
    let (hi, lo) = topic_id.as_u64_pair();
    hi ^ lo
}

#[cfg(test)]
#[path = "placement_tests.rs"]
mod tests;
