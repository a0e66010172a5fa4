//! Leader elections asked for by an admin (ElectLeaders, key 43) or run by
//! the active controller on its own (preferred-leader rebalancing and
//! unclean elections of offline partitions), decided as KRaft's
//! ReplicationControlManager and PartitionChangeBuilder decide them: pure
//! functions from the image to the records of the change.
//!
//! A replica is *eligible* when it is in the ISR and its broker is
//! unfenced (on a node of its own, which registers no brokers, every
//! replica's broker is live).
//!
//! - PREFERRED: ELECTION_NOT_NEEDED if the first replica (the preferred
//!   one) already leads; else the preferred replica if eligible; else the
//!   current leader stays if eligible, and the election changed nothing:
//!   PREFERRED_LEADER_NOT_AVAILABLE; else (no leader) the first eligible
//!   replica, as PartitionChangeBuilder's `electPreferredLeader` does.
//! - UNCLEAN: ELECTION_NOT_NEEDED if the partition has a leader; else the
//!   first eligible replica (clean), else the first replica whose broker
//!   is live, and the ISR becomes just it: the records it lacks are lost.
//!   ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica's broker is live.
//! - Rebalancing: every partition not led by its preferred replica gets a
//!   PREFERRED election, at most `max` changes at a time (KRaft's
//!   `maybeBalancePartitionLeaders`, 1000 per run).
//! - Unclean check: every leaderless partition of a topic that allows
//!   unclean elections ([`election::unclean_enabled`]) gets an UNCLEAN one
//!   (KRaft's `maybeElectUncleanLeaders`).
//!
//! Invariants: a change is `PartitionImage::change_record` (epochs move
//! on); a new leader's broker is live; a clean leader is an ISR member and
//! the ISR is kept; an unclean leader is the whole ISR.
//!
//! Committed unclean elections are counted in [`UNCLEAN_ELECTIONS`]
//! (Kafka's `ControllerStats` `UncleanLeaderElectionsPerSec`, which the
//! controller marks once per partition it elects uncleanly), when the
//! controller logs them ([`UncleanElection::warn`]): after the append, so a
//! decision that lost the race to a moved image is not counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use kaskade_types::{NodeId, TopicPartition};
use uuid::Uuid;

use crate::election;
use crate::election_timer::Facts;
use crate::image::{Image, PartitionImage, TopicImage};
use crate::record::MetadataRecord;

/// KRaft's cap on the elections of one rebalancing or unclean check.
pub const MAX_ELECTIONS_PER_RUN: usize = 1000;

/// Kafka's ElectionType.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionKind {
    Preferred,
    Unclean,
}

impl ElectionKind {
    /// The wire value (0 PREFERRED, 1 UNCLEAN); `None` for another.
    pub fn from_wire(value: i8) -> Option<ElectionKind> {
        match value {
            0 => Some(ElectionKind::Preferred),
            1 => Some(ElectionKind::Unclean),
            _ => None,
        }
    }
}

/// Why a partition got no new leader: Kafka's per-partition errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElectionRefusal {
    /// UNKNOWN_TOPIC_OR_PARTITION, with Kafka's message.
    UnknownTopicOrPartition(String),
    /// ELECTION_NOT_NEEDED: it already has the leader asked for.
    NotNeeded,
    /// PREFERRED_LEADER_NOT_AVAILABLE.
    PreferredLeaderNotAvailable,
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE.
    EligibleLeadersNotAvailable,
}

/// A new leader decided for one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Elected {
    pub record: MetadataRecord,
    pub leader: NodeId,
    /// The leader was not in the ISR: records may be lost.
    pub unclean: bool,
}

/// The partitions of one topic an ElectLeaders request names, in the
/// request's order (a partition may be named twice).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestedPartitions {
    pub topic: String,
    pub partitions: Vec<i32>,
}

/// The outcome of an ElectLeaders request for one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionElection {
    pub partition: i32,
    pub outcome: Result<(), ElectionRefusal>,
}

/// The outcome of an ElectLeaders request for one topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicElections {
    pub topic: String,
    pub partitions: Vec<PartitionElection>,
}

/// An election whose new leader was not in the ISR: the records it lacked
/// are lost, so it is logged at WARN ([`UncleanElection::warn`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UncleanElection {
    pub partition: TopicPartition,
    pub leader: NodeId,
}

/// What an ElectLeaders request decided: the records, the per-partition
/// outcomes in request order, and the unclean elections (to be logged).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElectLeaders {
    pub records: Vec<MetadataRecord>,
    pub results: Vec<TopicElections>,
    pub unclean: Vec<UncleanElection>,
}

/// What one of the controller's own runs (rebalancing, unclean check)
/// decided: the records, the unclean elections among them (to be logged),
/// and whether the cap cut the run short (run again soon).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElectionRun {
    pub records: Vec<MetadataRecord>,
    pub unclean: Vec<UncleanElection>,
    pub capped: bool,
}

/// Whether `node`'s broker may lead.
fn is_live(image: &Image, node: NodeId) -> bool {
    image.is_unfenced(node) || image.brokers().is_empty()
}

fn is_eligible(image: &Image, p: &PartitionImage, node: NodeId) -> bool {
    p.isr.contains(&node) && is_live(image, node)
}

/// Elects a leader for partition `index` of `topic` (`p`), as `kind` asks.
pub fn elect(
    image: &Image,
    topic_id: Uuid,
    index: i32,
    p: &PartitionImage,
    kind: ElectionKind,
) -> Result<Elected, ElectionRefusal> {
    let preferred = p.replicas.first().copied();
    match kind {
        ElectionKind::Preferred => {
            if p.leader.is_some() && p.leader == preferred {
                return Err(ElectionRefusal::NotNeeded);
            }
            let chosen = preferred
                .filter(|r| is_eligible(image, p, *r))
                .or_else(|| p.leader.filter(|l| is_eligible(image, p, *l)))
                .or_else(|| p.replicas.iter().copied().skip(1).find(|r| is_eligible(image, p, *r)));
            match chosen {
                Some(leader) if Some(leader) != p.leader => Ok(Elected {
                    record: p.change_record(topic_id, index, Some(leader), p.isr.clone()),
                    leader,
                    unclean: false,
                }),
                _ => Err(ElectionRefusal::PreferredLeaderNotAvailable),
            }
        }
        ElectionKind::Unclean => {
            if p.leader.is_some() {
                return Err(ElectionRefusal::NotNeeded);
            }
            if let Some(leader) = p.replicas.iter().copied().find(|r| is_eligible(image, p, *r)) {
                let record = p.change_record(topic_id, index, Some(leader), p.isr.clone());
                return Ok(Elected { record, leader, unclean: false });
            }
            match p.replicas.iter().copied().find(|r| is_live(image, *r)) {
                Some(leader) => Ok(Elected {
                    record: p.change_record(topic_id, index, Some(leader), vec![leader]),
                    leader,
                    unclean: true,
                }),
                None => Err(ElectionRefusal::EligibleLeadersNotAvailable),
            }
        }
    }
}

/// KRaft's `electLeaders`: `requested` names topics and partitions, or
/// `None` for every partition of every topic, whose results then leave
/// out the partitions that needed no election (each topic is still
/// listed). A partition named twice is decided once; the repeat gets
/// ELECTION_NOT_NEEDED if the first elected, else the same refusal.
pub fn elect_leaders(image: &Image, requested: Option<&[RequestedPartitions]>, kind: ElectionKind) -> ElectLeaders {
    let mut out = ElectLeaders::default();
    let mut decided: HashMap<(String, i32), Result<(), ElectionRefusal>> = HashMap::new();
    let mut one = |out: &mut ElectLeaders, topic: &str, index: i32| -> Result<(), ElectionRefusal> {
        if let Some(first) = decided.get(&(topic.to_string(), index)) {
            return first.clone().and(Err(ElectionRefusal::NotNeeded));
        }
        let outcome = elect_named(image, topic, index, kind).map(|e| {
            if e.unclean {
                out.unclean.push(UncleanElection { partition: TopicPartition::new(topic, index), leader: e.leader });
            }
            out.records.push(e.record);
        });
        decided.insert((topic.to_string(), index), outcome.clone());
        outcome
    };
    match requested {
        None => {
            for t in image.topics() {
                let mut results = TopicElections { topic: t.name.clone(), partitions: Vec::new() };
                for index in 0..partition_count(t) {
                    let outcome = one(&mut out, &t.name, index);
                    if outcome != Err(ElectionRefusal::NotNeeded) {
                        results.partitions.push(PartitionElection { partition: index, outcome });
                    }
                }
                out.results.push(results);
            }
        }
        Some(topics) => {
            for RequestedPartitions { topic, partitions } in topics {
                let partitions = partitions
                    .iter()
                    .map(|i| PartitionElection { partition: *i, outcome: one(&mut out, topic, *i) })
                    .collect();
                out.results.push(TopicElections { topic: topic.clone(), partitions });
            }
        }
    }
    out
}

fn partition_count(t: &TopicImage) -> i32 {
    i32::try_from(t.partitions.len()).unwrap_or(i32::MAX)
}

/// One named partition, with Kafka's messages for the unknown ones.
fn elect_named(image: &Image, topic: &str, index: i32, kind: ElectionKind) -> Result<Elected, ElectionRefusal> {
    let Some(t) = image.topic(topic) else {
        return Err(ElectionRefusal::UnknownTopicOrPartition(format!("No such topic as {topic}")));
    };
    let p = usize::try_from(index).ok().and_then(|i| t.partitions.get(i));
    let Some(p) = p else {
        return Err(ElectionRefusal::UnknownTopicOrPartition(format!("No such partition as {topic}-{index}")));
    };
    elect(image, t.id, index, p, kind)
}

/// Whether some partition is not led by its preferred replica (KRaft's
/// `arePartitionLeadersImbalanced`, a leaderless partition included).
pub fn is_imbalanced(image: &Image) -> bool {
    image
        .topics()
        .flat_map(|t| t.partitions.iter())
        .any(|p| p.leader.is_none() || p.leader != p.replicas.first().copied())
}

/// KRaft's `maybeBalancePartitionLeaders`: PREFERRED elections for the
/// partitions not led by their preferred replica, at most `max` changes.
/// A PREFERRED election never is unclean.
pub fn rebalance(image: &Image, max: usize) -> ElectionRun {
    let mut run = ElectionRun::default();
    for t in image.topics() {
        for (i, p) in t.partitions.iter().enumerate() {
            if run.records.len() >= max {
                run.capped = true;
                return run;
            }
            let Ok(index) = i32::try_from(i) else { continue };
            if let Ok(e) = elect(image, t.id, index, p, ElectionKind::Preferred) {
                run.records.push(e.record);
            }
        }
    }
    run
}

/// What the election timer needs to know of `image`: whether it is
/// imbalanced, how many partitions have no leader, and how many of those
/// belong to a topic that allows unclean elections (`unclean_default`:
/// the controller's `unclean.leader.election.enable`).
pub fn facts(image: &Image, unclean_default: bool) -> Facts {
    let mut facts = Facts { imbalanced: is_imbalanced(image), ..Facts::default() };
    for t in image.topics() {
        let n = t.partitions.iter().filter(|p| p.leader.is_none()).count();
        facts.leaderless += n;
        if n > 0 && election::unclean_enabled(image, t, unclean_default) {
            facts.leaderless_unclean += n;
        }
    }
    facts
}

/// KRaft's `maybeElectUncleanLeaders`: an UNCLEAN election for every
/// leaderless partition of a topic that allows it, at most `max`.
pub fn unclean_elections(image: &Image, unclean_default: bool, max: usize) -> ElectionRun {
    let mut run = ElectionRun::default();
    for t in image.topics() {
        if !t.partitions.iter().any(|p| p.leader.is_none()) || !election::unclean_enabled(image, t, unclean_default) {
            continue;
        }
        for (i, p) in t.partitions.iter().enumerate() {
            if run.records.len() >= max {
                run.capped = true;
                return run;
            }
            let Ok(index) = i32::try_from(i) else { continue };
            if let Ok(e) = elect(image, t.id, index, p, ElectionKind::Unclean) {
                if e.unclean {
                    run.unclean.push(UncleanElection {
                        partition: TopicPartition::new(t.name.as_str(), index),
                        leader: e.leader,
                    });
                }
                run.records.push(e.record);
            }
        }
    }
    run
}

/// The partition changes among `records` whose new leader was not in the
/// ISR of `before`: the unclean elections a batch makes, for the log.
pub fn unclean_in(before: &Image, records: &[MetadataRecord]) -> Vec<UncleanElection> {
    records
        .iter()
        .filter_map(|r| match r {
            MetadataRecord::Partition { topic_id, partition, leader, .. } if *leader >= 0 => {
                let t = before.topic_by_id(topic_id)?;
                let p = t.partitions.get(usize::try_from(*partition).ok()?)?;
                let leader = NodeId(*leader);
                (p.leader != Some(leader) && !p.isr.contains(&leader))
                    .then(|| UncleanElection { partition: TopicPartition::new(t.name.as_str(), *partition), leader })
            }
            _ => None,
        })
        .collect()
}

/// Unclean leader elections this process committed as the active
/// controller (process-wide, like Kafka's per-JVM `ControllerStats`).
pub static UNCLEAN_ELECTIONS: UncleanElections = UncleanElections::new();

/// A count of committed unclean leader elections.
#[derive(Debug, Default)]
pub struct UncleanElections(AtomicU64);

impl UncleanElections {
    pub const fn new() -> Self {
        UncleanElections(AtomicU64::new(0))
    }

    /// The elections counted so far.
    pub fn total(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl UncleanElection {
    /// Reports a committed unclean leader election: the WARN (Kafka logs
    /// one too: it can lose data) and one more in [`UNCLEAN_ELECTIONS`].
    /// Call it once per election, after its record committed.
    pub fn warn(&self) {
        self.warn_into(&UNCLEAN_ELECTIONS);
    }

    fn warn_into(&self, counter: &UncleanElections) {
        counter.count();
        let UncleanElection { partition: tp, leader } = self;
        tracing::warn!(
            topic = &*tp.topic,
            partition = tp.partition,
            leader = leader.get(),
            "unclean leader election: {tp} is now led by broker {leader}, which was not in the ISR; \
             records it had not replicated are lost (unclean.leader.election.enable=true)"
        );
    }
}

#[cfg(test)]
#[path = "leader_election_tests.rs"]
mod tests;
