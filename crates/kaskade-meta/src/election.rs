//! Partition leadership when brokers are fenced and unfenced, as KRaft's
//! ReplicationControlManager decides it: pure functions from the image to
//! the records of the change, so the active controller appends them through
//! `update` and every decision is unit-tested without a cluster.
//!
//! Fencing broker `b` (its session expired, or a controlled shutdown):
//! - every partition `b` leads gets a new leader, the first replica (in
//!   replica order) that is in the ISR and unfenced; if there is none, the
//!   leader becomes none, unless the topic allows unclean elections
//!   (`unclean.leader.election.enable`, [`unclean_enabled`]): then the first
//!   unfenced replica leads and the ISR becomes just it, which loses the
//!   records it had not replicated (KRaft's `Election.UNCLEAN`);
//! - `b` leaves the ISR of every partition it is in, unless it is the last
//!   member: KRaft keeps the last ISR member so that it, and only it, can
//!   lead again without losing acknowledged records (no unclean election);
//! - then the `FenceBroker` record.
//!
//! Unfencing `b`: the `UnfenceBroker` record, and every leaderless partition
//! whose ISR holds an unfenced replica (now including `b`) gets the first of
//! them as leader; with no such replica, a topic that allows unclean
//! elections gets its first unfenced replica as leader and sole ISR member.
//!
//! Invariants: every partition change is `PartitionImage::change_record`
//! (partition epoch +1, leader epoch +1 when the leader changes); a new
//! leader is always unfenced, and an ISR member unless the topic allows
//! unclean elections and no ISR member is eligible (then it is the whole
//! ISR); an ISR never becomes empty; a partition that would not change gets
//! no record.

use kaskade_types::NodeId;

use crate::image::{Image, PartitionImage, TopicImage};
use crate::record::MetadataRecord;

/// Kafka's topic config (and broker default) that allows an out-of-sync
/// replica to lead.
pub const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";

/// Whether `topic` allows unclean leader elections, as KRaft's controller
/// resolves it: the topic's own config, else the cluster-wide dynamic
/// broker default, else `static_default` (the controller's
/// `unclean.leader.election.enable`). Kafka parses it as Java's
/// `Boolean.parseBoolean`: only `true`, in any case, is true.
pub fn unclean_enabled(image: &Image, topic: &TopicImage, static_default: bool) -> bool {
    let value = topic
        .configs
        .get(UNCLEAN_LEADER_ELECTION_ENABLE)
        .or_else(|| image.broker_configs("").and_then(|c| c.get(UNCLEAN_LEADER_ELECTION_ENABLE)));
    value.map_or(static_default, |v| v.eq_ignore_ascii_case("true"))
}

/// The records that fence `node`: leaderships moved away, ISRs left, then
/// `FenceBroker`. Nothing if `node` is not registered. `unclean_default`
/// is the controller's `unclean.leader.election.enable`.
pub fn fence(image: &Image, node: NodeId, unclean_default: bool) -> Vec<MetadataRecord> {
    if !image.brokers().contains_key(&node) {
        return Vec::new();
    }
    let eligible = |n: NodeId| n != node && image.is_unfenced(n);
    let mut out = changes(image, |t, p| {
        if !p.isr.contains(&node) && p.leader != Some(node) {
            return None;
        }
        let isr: Vec<NodeId> =
            if p.isr.len() > 1 { p.isr.iter().copied().filter(|n| *n != node).collect() } else { p.isr.clone() };
        if p.leader.is_some() && p.leader != Some(node) {
            return Some((p.leader, isr));
        }
        match first_eligible(p, &isr, eligible) {
            Some(leader) => Some((Some(leader), isr)),
            None => Some(unclean_choice(image, t, p, eligible, unclean_default).unwrap_or((None, isr))),
        }
    });
    out.push(MetadataRecord::FenceBroker { node_id: node.get() });
    out
}

/// The records that unfence `node`: `UnfenceBroker`, then a leader for
/// every leaderless partition that can have one. Nothing if `node` is not
/// registered.
pub fn unfence(image: &Image, node: NodeId, unclean_default: bool) -> Vec<MetadataRecord> {
    if !image.brokers().contains_key(&node) {
        return Vec::new();
    }
    let eligible = |n: NodeId| n == node || image.is_unfenced(n);
    let mut out = vec![MetadataRecord::UnfenceBroker { node_id: node.get() }];
    out.extend(changes(image, |t, p| {
        if p.leader.is_some() {
            return None;
        }
        match first_eligible(p, &p.isr, eligible) {
            Some(leader) => Some((Some(leader), p.isr.clone())),
            None => unclean_choice(image, t, p, eligible, unclean_default),
        }
    }));
    out
}

/// KRaft's last resort when no ISR member may lead: if the topic allows
/// it, the first eligible replica leads alone (leader, ISR of just it).
fn unclean_choice(
    image: &Image,
    topic: &TopicImage,
    p: &PartitionImage,
    eligible: impl Fn(NodeId) -> bool,
    unclean_default: bool,
) -> Option<(Option<NodeId>, Vec<NodeId>)> {
    if !unclean_enabled(image, topic, unclean_default) {
        return None;
    }
    p.replicas.iter().copied().find(|r| eligible(*r)).map(|leader| (Some(leader), vec![leader]))
}

/// The first replica, in replica order, that is in `isr` and eligible.
fn first_eligible(p: &PartitionImage, isr: &[NodeId], eligible: impl Fn(NodeId) -> bool) -> Option<NodeId> {
    p.replicas.iter().copied().find(|r| isr.contains(r) && eligible(*r))
}

/// The change records of every partition for which `decide` names a new
/// (leader, ISR) that differs from today's.
fn changes(
    image: &Image,
    mut decide: impl FnMut(&TopicImage, &PartitionImage) -> Option<(Option<NodeId>, Vec<NodeId>)>,
) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for t in image.topics() {
        for (i, p) in t.partitions.iter().enumerate() {
            let Some((leader, isr)) = decide(t, p) else { continue };
            debug_assert!(!isr.is_empty(), "an ISR never becomes empty");
            debug_assert!(leader.is_none_or(|l| isr.contains(&l)), "a leader is an ISR member");
            if leader == p.leader && isr == p.isr {
                continue;
            }
            let Ok(index) = i32::try_from(i) else { continue };
            out.push(p.change_record(t.id, index, leader, isr));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaskade_types::LeaderEpoch;
    use uuid::Uuid;

    use crate::test_image::{cluster, n};

    /// An image with brokers 1..=3 registered (unfenced) and topic "t" whose
    /// partitions have these (leader, replicas, isr).
    fn image(partitions: &[(i32, &[i32], &[i32])]) -> (Image, Uuid) {
        cluster(3, &[], (LeaderEpoch(3), 7), partitions)
    }

    fn applied(mut img: Image, records: &[MetadataRecord]) -> Image {
        for r in records {
            img.apply(r);
        }
        img
    }

    fn partition(img: &Image, i: usize) -> PartitionImage {
        img.topic("t").expect("topic").partitions[i].clone()
    }

    #[test]
    fn rf1_fencing_the_leader_leaves_the_partition_leaderless_with_its_isr_and_unfencing_brings_it_back() {
        let (img, _) = image(&[(2, &[2], &[2]), (1, &[1], &[1])]);
        assert!(fence(&img, NodeId(9), false).is_empty(), "an unknown broker: no records");
        assert!(unfence(&img, NodeId(9), false).is_empty());
        let records = fence(&img, NodeId(2), false);
        assert_eq!(records.len(), 2, "one partition change and the fence: {records:?}");
        let img = applied(img, &records);
        let p = partition(&img, 0);
        assert_eq!((p.leader, p.isr.clone()), (None, n(&[2])), "KRaft keeps the last ISR member");
        assert_eq!((p.leader_epoch, p.partition_epoch), (LeaderEpoch(4), 8));
        assert_eq!(partition(&img, 1).partition_epoch, 7, "the other broker's partition is untouched");
        assert!(!img.is_unfenced(NodeId(2)));

        let img = applied(img.clone(), &unfence(&img, NodeId(2), false));
        let p = partition(&img, 0);
        assert_eq!((p.leader, p.isr.clone()), (Some(NodeId(2)), n(&[2])));
        assert_eq!((p.leader_epoch, p.partition_epoch), (LeaderEpoch(5), 9));
        assert!(img.is_unfenced(NodeId(2)));
    }

    #[test]
    fn rf3_fencing_the_leader_elects_the_next_unfenced_isr_member_in_replica_order() {
        // Replica order 2, 3, 1; ISR holds all three.
        let (img, _) = image(&[(2, &[2, 3, 1], &[1, 2, 3])]);
        let img = applied(img.clone(), &fence(&img, NodeId(3), false));
        let p = partition(&img, 0);
        assert_eq!((p.leader, p.isr.clone()), (Some(NodeId(2)), n(&[1, 2])), "a follower leaves the ISR");
        assert_eq!((p.leader_epoch, p.partition_epoch), (LeaderEpoch(3), 8), "same leader, same leader epoch");

        let img = applied(img.clone(), &fence(&img, NodeId(2), false));
        let p = partition(&img, 0);
        assert_eq!((p.leader, p.isr.clone()), (Some(NodeId(1)), n(&[1])), "3 is fenced, so 1 leads");
        assert_eq!((p.leader_epoch, p.partition_epoch), (LeaderEpoch(4), 9));

        let img = applied(img.clone(), &fence(&img, NodeId(1), false));
        let p = partition(&img, 0);
        assert_eq!((p.leader, p.isr.clone()), (None, n(&[1])));

        // 3 comes back first: not in the ISR, so it may not lead (no unclean election).
        let img = applied(img.clone(), &unfence(&img, NodeId(3), false));
        assert_eq!(partition(&img, 0).leader, None);
        let img = applied(img.clone(), &unfence(&img, NodeId(1), false));
        let p = partition(&img, 0);
        assert_eq!((p.leader, p.isr.clone(), p.leader_epoch), (Some(NodeId(1)), n(&[1]), LeaderEpoch(6)));
    }

    #[test]
    fn rf3_no_unfenced_isr_member_means_no_leader_but_a_non_empty_isr() {
        let (img, _) = image(&[(1, &[1, 2, 3], &[1, 2])]);
        let img = applied(img.clone(), &fence(&img, NodeId(2), false));
        assert_eq!(partition(&img, 0).isr, n(&[1]));
        // 3 is unfenced but out of the ISR.
        let img = applied(img.clone(), &fence(&img, NodeId(1), false));
        let p = partition(&img, 0);
        assert_eq!((p.leader, p.isr.clone()), (None, n(&[1])));
        assert!(img.is_unfenced(NodeId(3)));
    }

    #[test]
    fn fencing_twice_changes_no_partition_again() {
        let (img, _) = image(&[(1, &[1], &[1]), (2, &[2, 1], &[2, 1])]);
        let img = applied(img.clone(), &fence(&img, NodeId(1), false));
        let again = fence(&img, NodeId(1), false);
        assert_eq!(again, vec![MetadataRecord::FenceBroker { node_id: 1 }]);
    }

    fn set_topic_config(img: Image, id: Uuid, value: Option<&str>) -> Image {
        let record = MetadataRecord::TopicConfig {
            topic_id: id,
            name: UNCLEAN_LEADER_ELECTION_ENABLE.into(),
            value: value.map(str::to_string),
        };
        applied(img, &[record])
    }

    #[test]
    fn the_topic_config_then_the_cluster_default_then_the_static_default_decide_unclean_elections() {
        let (img, id) = image(&[(1, &[1], &[1])]);
        let topic = |img: &Image| img.topic("t").expect("topic").clone();
        assert!(!unclean_enabled(&img, &topic(&img), false));
        assert!(unclean_enabled(&img, &topic(&img), true), "the static default");
        let img = applied(
            img,
            &[MetadataRecord::BrokerConfig {
                resource: String::new(),
                name: UNCLEAN_LEADER_ELECTION_ENABLE.into(),
                value: Some("TRUE".into()),
            }],
        );
        assert!(unclean_enabled(&img, &topic(&img), false), "the cluster default, any case");
        let img = set_topic_config(img, id, Some("false"));
        assert!(!unclean_enabled(&img, &topic(&img), true), "the topic's own config wins");
        let img = set_topic_config(img, id, Some("yes"));
        assert!(!unclean_enabled(&img, &topic(&img), true), "only `true` is true (Boolean.parseBoolean)");
    }

    #[test]
    fn with_unclean_elections_fencing_the_last_isr_member_elects_a_live_out_of_sync_replica_alone() {
        // Replica 2 fell out of the ISR; 1 leads alone.
        let (img, id) = image(&[(1, &[1, 2], &[1])]);
        let clean = applied(img.clone(), &fence(&img, NodeId(1), false));
        assert_eq!(partition(&clean, 0).leader, None, "the default: the partition stays offline");

        let img = set_topic_config(img, id, Some("true"));
        let img = applied(img.clone(), &fence(&img, NodeId(1), false));
        let p = partition(&img, 0);
        assert_eq!((p.leader, p.isr.clone()), (Some(NodeId(2)), n(&[2])), "2 leads alone, records may be lost");
        assert_eq!(p.leader_epoch, LeaderEpoch(4), "a new leader epoch: 1 truncates to it when it returns");

        // 1 comes back: 2 keeps leading (1 is not in the ISR).
        let img = applied(img.clone(), &unfence(&img, NodeId(1), false));
        assert_eq!(partition(&img, 0).leader, Some(NodeId(2)));
    }

    #[test]
    fn with_unclean_elections_unfencing_an_out_of_sync_replica_of_an_offline_partition_elects_it() {
        let (img, _) = image(&[(1, &[1, 2, 3], &[1])]);
        let img = applied(img.clone(), &fence(&img, NodeId(2), false));
        let img = applied(img.clone(), &fence(&img, NodeId(3), false));
        let img = applied(img.clone(), &fence(&img, NodeId(1), true));
        assert_eq!(partition(&img, 0).leader, None, "no live replica at all: offline even when unclean");
        assert_eq!(partition(&img, 0).isr, n(&[1]));

        let clean = applied(img.clone(), &unfence(&img, NodeId(3), false));
        assert_eq!(partition(&clean, 0).leader, None, "not allowed: 3 waits for 1");
        let img = applied(img.clone(), &unfence(&img, NodeId(3), true));
        let p = partition(&img, 0);
        assert_eq!((p.leader, p.isr.clone()), (Some(NodeId(3)), n(&[3])));
    }

    #[test]
    fn unclean_elections_never_pass_over_a_live_isr_member() {
        let (img, _) = image(&[(1, &[3, 1, 2], &[1, 2])]);
        let img = applied(img.clone(), &fence(&img, NodeId(1), true));
        let p = partition(&img, 0);
        assert_eq!((p.leader, p.isr.clone()), (Some(NodeId(2)), n(&[2])), "clean: 2 is in the ISR");
    }
}
