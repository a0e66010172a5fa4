//! Replication health read from the metadata image this node applied (the
//! same image on every node), plus two counters the ISR task adds to.
//!
//! From the image, for the partitions this node leads (Kafka reports these
//! on the leader): `UnderReplicated` (ISR smaller than the replica set),
//! `UnderMinIsr` and `AtMinIsr` (ISR below / equal to the topic's effective
//! `min.insync.replicas`), their ReplicaManager counts, and `LeaderCount`;
//! `PartitionCount` counts the partitions with a replica on this node; and
//! the partitions of the cluster with no leader (Kafka's
//! `OfflinePartitionsCount`, which Kafka reports on the active controller
//! only; every Kaskade node reports the same value).
//!
//! Follower lag (`FetcherLagMetrics`) is kept per partition replica by the
//! replica fetcher (one relaxed atomic store per fetched partition,
//! `Partition::record_follower_lag`) and read here for the partitions the
//! image makes this node follow.
//!
//! ISR changes (`IsrShrinksPerSec`, `IsrExpandsPerSec`) are counted by the
//! leader's ISR task (`replica::isr`) when a change it proposed committed:
//! [`ISR_CHANGES`], process-wide like Kafka's per-JVM registry.
//!
//! Unclean leader elections (`UncleanLeaderElectionsPerSec`) are counted
//! by the active controller when one commits
//! (`kaskade_meta::leader_election::UNCLEAN_ELECTIONS`): like Kafka's
//! `ControllerStats`, a node counts only those it decided, so the cluster's
//! total is the sum over its controllers.
//!
//! Also from the image, for the cluster: the partitions not led by their
//! preferred replica (Kafka's `PreferredReplicaImbalanceCount`, a leaderless
//! one included, as KRaft counts it).

use std::sync::atomic::{AtomicU64, Ordering};

use kaskade_meta::leader_election::UncleanElections;
use kaskade_meta::{Image, TopicImage};
use kaskade_types::NodeId;

use super::text::{Exposition, Labels};

/// ISR shrinks and expands this node proposed as leader and saw commit.
#[derive(Debug, Default)]
pub struct IsrChanges {
    shrinks: AtomicU64,
    expands: AtomicU64,
}

/// This process's ISR change counters.
pub static ISR_CHANGES: IsrChanges = IsrChanges::new();

impl IsrChanges {
    pub const fn new() -> Self {
        IsrChanges { shrinks: AtomicU64::new(0), expands: AtomicU64::new(0) }
    }

    /// Counts a committed change of an ISR from `old` to `new`: a shrink
    /// when a member left, an expand when one joined (Kafka's separate
    /// `maybeShrinkIsr` / `maybeExpandIsr` paths; a change doing both, which
    /// Kaskade's single proposal can make, counts as both).
    pub fn count(&self, old: &[NodeId], new: &[NodeId]) {
        if old.iter().any(|n| !new.contains(n)) {
            self.shrinks.fetch_add(1, Ordering::Relaxed);
        }
        if new.iter().any(|n| !old.contains(n)) {
            self.expands.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The changes counted so far.
    pub fn totals(&self) -> IsrChangeTotals {
        IsrChangeTotals { shrinks: self.shrinks.load(Ordering::Relaxed), expands: self.expands.load(Ordering::Relaxed) }
    }
}

/// What [`IsrChanges`] counted: committed ISR shrinks and expands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IsrChangeTotals {
    pub shrinks: u64,
    pub expands: u64,
}

/// What the replication families read besides the image: a topic's
/// effective `min.insync.replicas`, and the lag of this node's replica of a
/// partition it follows (`None` before its first fetch).
pub(super) struct Sources<'a> {
    pub min_isr: &'a dyn Fn(&TopicImage) -> usize,
    pub follower_lag: &'a dyn Fn(&str, i32) -> Option<i64>,
    pub isr_changes: &'a IsrChanges,
    pub unclean_elections: &'a UncleanElections,
}

/// One partition this node leads.
struct Led<'a> {
    topic: &'a str,
    index: usize,
    under: bool,
    under_min: bool,
    at_min: bool,
}

/// A per-partition 0/1 family: name, help, and which partitions are 1.
type PerPartition = (&'static str, &'static str, fn(&Led<'_>) -> bool);

/// Renders the replication families for node `node` from `image`.
pub(super) fn render(x: &mut Exposition<'_>, image: &Image, node: NodeId, src: &Sources<'_>) {
    let mut led = Vec::new();
    let mut followed = Vec::new();
    let mut offline = 0usize;
    let mut hosted = 0usize;
    let mut imbalanced = 0usize;
    for topic in image.topics() {
        let mut min_isr = None;
        for (index, p) in topic.partitions.iter().enumerate() {
            if p.replicas.contains(&node) {
                hosted += 1;
            }
            if p.leader.is_none() || p.leader != p.replicas.first().copied() {
                imbalanced += 1;
            }
            match p.leader {
                None => offline += 1,
                Some(leader) if leader == node => {
                    debug_assert!(p.isr.len() <= p.replicas.len(), "the ISR is a subset of the replicas");
                    // Read once per topic, and only for topics led here.
                    let min = *min_isr.get_or_insert_with(|| (src.min_isr)(topic));
                    led.push(Led {
                        topic: topic.name.as_str(),
                        index,
                        under: p.isr.len() < p.replicas.len(),
                        under_min: p.isr.len() < min,
                        at_min: p.isr.len() == min,
                    });
                }
                Some(leader) if p.replicas.contains(&node) => {
                    if let Some(lag) = (src.follower_lag)(&topic.name, index as i32) {
                        followed.push((topic.name.as_str(), index, leader, lag));
                    }
                }
                Some(_) => {}
            }
        }
    }
    let labels: Vec<Labels> =
        led.iter().map(|l| Labels::new(&[("topic", l.topic), ("partition", &l.index.to_string())])).collect();
    let per_partition: [PerPartition; 3] = [
        (
            "kaskade_partition_under_replicated",
            "1 when a partition this node leads has fewer in-sync replicas than replicas, else 0.",
            |l| l.under,
        ),
        (
            "kaskade_partition_under_min_isr",
            "1 when a partition this node leads has fewer in-sync replicas than min.insync.replicas, else 0.",
            |l| l.under_min,
        ),
        (
            "kaskade_partition_at_min_isr",
            "1 when a partition this node leads has exactly min.insync.replicas in-sync replicas, else 0.",
            |l| l.at_min,
        ),
    ];
    for (name, help, pick) in per_partition {
        x.family(name, "gauge", help);
        for (l, labels) in led.iter().zip(&labels) {
            x.sample_labelled(name, labels, if pick(l) { 1.0 } else { 0.0 });
        }
    }
    let counts: [(&str, &str, usize); 6] = [
        (
            "kaskade_under_replicated_partitions",
            "Partitions this node leads whose in-sync replicas are fewer than their replicas.",
            led.iter().filter(|l| l.under).count(),
        ),
        (
            "kaskade_under_min_isr_partitions",
            "Partitions this node leads whose in-sync replicas are fewer than min.insync.replicas.",
            led.iter().filter(|l| l.under_min).count(),
        ),
        (
            "kaskade_at_min_isr_partitions",
            "Partitions this node leads with exactly min.insync.replicas in-sync replicas.",
            led.iter().filter(|l| l.at_min).count(),
        ),
        ("kaskade_leader_partitions", "Partitions this node leads.", led.len()),
        ("kaskade_partitions", "Partitions with a replica on this node.", hosted),
        ("kaskade_offline_partitions", "Partitions of the cluster that have no leader.", offline),
    ];
    for (name, help, value) in counts {
        x.family(name, "gauge", help);
        x.sample(name, &[], value as f64);
    }
    let IsrChangeTotals { shrinks, expands } = src.isr_changes.totals();
    x.family(
        "kaskade_isr_shrinks_total",
        "counter",
        "ISR shrinks this node proposed as leader that committed to the metadata log.",
    );
    x.sample("kaskade_isr_shrinks_total", &[], shrinks as f64);
    x.family(
        "kaskade_isr_expands_total",
        "counter",
        "ISR expands this node proposed as leader that committed to the metadata log.",
    );
    x.sample("kaskade_isr_expands_total", &[], expands as f64);
    x.family(
        "kaskade_unclean_leader_elections_total",
        "counter",
        "Unclean leader elections (a leader that was not in the ISR) this node committed as the active controller.",
    );
    x.sample("kaskade_unclean_leader_elections_total", &[], src.unclean_elections.total() as f64);
    x.family(
        "kaskade_replica_fetcher_lag",
        "gauge",
        "Records this node's replica of a partition it follows is behind: the leader's high watermark at the last fetch minus this replica's log end (at least 0).",
    );
    for (topic, index, leader, lag) in &followed {
        let (index, leader) = (index.to_string(), leader.get().to_string());
        x.sample(
            "kaskade_replica_fetcher_lag",
            &[("topic", *topic), ("partition", &index), ("leader", &leader)],
            *lag as f64,
        );
    }
    x.family(
        "kaskade_replica_fetcher_max_lag",
        "gauge",
        "The largest kaskade_replica_fetcher_lag of this node (0 when it follows nothing).",
    );
    let max = followed.iter().map(|f| f.3).max().unwrap_or(0);
    x.sample("kaskade_replica_fetcher_max_lag", &[], max as f64);
    x.family(
        "kaskade_preferred_replica_imbalance",
        "gauge",
        "Partitions of the cluster not led by their preferred (first) replica.",
    );
    x.sample("kaskade_preferred_replica_imbalance", &[], imbalanced as f64);
}

#[cfg(test)]
mod tests {
    use kaskade_meta::{MetadataRecord, PartitionImage, Uuid};
    use kaskade_types::LeaderEpoch;

    use super::*;

    fn partition(leader: Option<i32>, replicas: &[i32], isr: &[i32]) -> PartitionImage {
        PartitionImage {
            leader: leader.map(NodeId),
            replicas: replicas.iter().copied().map(NodeId).collect(),
            isr: isr.iter().copied().map(NodeId).collect(),
            leader_epoch: LeaderEpoch(0),
            partition_epoch: 0,
            adding_replicas: vec![],
            removing_replicas: vec![],
        }
    }

    fn image(parts: &[PartitionImage]) -> Image {
        let id = Uuid::new_v4();
        let mut image = Image::default();
        image.apply(&MetadataRecord::Topic { name: "t".into(), id });
        for (i, p) in parts.iter().enumerate() {
            image.apply(&p.to_record(id, i as i32));
        }
        image
    }

    fn scrape(
        image: &Image,
        node: i32,
        min_isr: usize,
        lag: &dyn Fn(&str, i32) -> Option<i64>,
        isr: &IsrChanges,
    ) -> String {
        let mut out = String::new();
        let min = move |_: &TopicImage| min_isr;
        let unclean = UncleanElections::new();
        let src = Sources { min_isr: &min, follower_lag: lag, isr_changes: isr, unclean_elections: &unclean };
        render(&mut Exposition::new(&mut out), image, NodeId(node), &src);
        out
    }

    fn has(out: &str, line: &str) -> bool {
        out.lines().any(|l| l == line)
    }

    #[test]
    fn under_replicated_counts_what_this_node_leads_and_offline_counts_the_cluster() {
        let image = image(&[
            partition(Some(1), &[1, 2, 3], &[1, 2, 3]), // led here, in sync
            partition(Some(1), &[1, 2, 3], &[1, 3]),    // led here, under-replicated
            partition(Some(2), &[2, 1], &[2]),          // led elsewhere: its leader reports it
            partition(None, &[3], &[3]),                // offline
        ]);
        let out = scrape(&image, 1, 1, &|_, _| None, &IsrChanges::new());
        assert!(has(&out, "kaskade_partition_under_replicated{topic=\"t\",partition=\"0\"} 0"), "{out}");
        assert!(has(&out, "kaskade_partition_under_replicated{topic=\"t\",partition=\"1\"} 1"), "{out}");
        assert!(!out.contains("kaskade_partition_under_replicated{topic=\"t\",partition=\"2\"}"), "{out}");
        assert!(has(&out, "kaskade_under_replicated_partitions 1"), "{out}");
        assert!(has(&out, "kaskade_offline_partitions 1"), "{out}");
    }

    #[test]
    fn min_isr_gauges_use_the_topics_effective_min_insync_replicas() {
        let image = image(&[
            partition(Some(1), &[1, 2, 3], &[1, 2, 3]), // above min 2
            partition(Some(1), &[1, 2, 3], &[1, 3]),    // at min
            partition(Some(1), &[1, 2, 3], &[1]),       // under min
            partition(Some(2), &[1, 2, 3], &[2]),       // under min, but its leader reports it
        ]);
        let out = scrape(&image, 1, 2, &|_, _| None, &IsrChanges::new());
        for (p, under, at) in [(0, 0, 0), (1, 0, 1), (2, 1, 0)] {
            assert!(
                has(&out, &format!("kaskade_partition_under_min_isr{{topic=\"t\",partition=\"{p}\"}} {under}")),
                "{out}"
            );
            assert!(has(&out, &format!("kaskade_partition_at_min_isr{{topic=\"t\",partition=\"{p}\"}} {at}")), "{out}");
        }
        assert!(!out.contains("min_isr{topic=\"t\",partition=\"3\"}"), "{out}");
        assert!(has(&out, "kaskade_under_min_isr_partitions 1"), "{out}");
        assert!(has(&out, "kaskade_at_min_isr_partitions 1"), "{out}");
        // min.insync.replicas=1: an ISR of one is at min, none under.
        let out = scrape(&image, 1, 1, &|_, _| None, &IsrChanges::new());
        assert!(has(&out, "kaskade_under_min_isr_partitions 0"), "{out}");
        assert!(has(&out, "kaskade_at_min_isr_partitions 1"), "{out}");
    }

    #[test]
    fn leader_and_partition_counts_are_this_nodes() {
        let image = image(&[
            partition(Some(1), &[1, 2], &[1, 2]),
            partition(Some(2), &[1, 2], &[1, 2]),
            partition(Some(2), &[2, 3], &[2, 3]),
            partition(None, &[1], &[1]),
        ]);
        let out = scrape(&image, 1, 1, &|_, _| None, &IsrChanges::new());
        assert!(has(&out, "kaskade_leader_partitions 1"), "{out}");
        assert!(has(&out, "kaskade_partitions 3"), "{out}");
        let out = scrape(&image, 3, 1, &|_, _| None, &IsrChanges::new());
        assert!(has(&out, "kaskade_leader_partitions 0"), "{out}");
        assert!(has(&out, "kaskade_partitions 1"), "{out}");
    }

    #[test]
    fn follower_lag_per_followed_partition_and_its_max() {
        let image = image(&[
            partition(Some(2), &[1, 2], &[1, 2]), // followed from 2, lag 7
            partition(Some(3), &[1, 3], &[3]),    // followed from 3, lag 40
            partition(Some(2), &[1, 2], &[2]),    // followed, not fetched yet
            partition(Some(1), &[1, 2], &[1, 2]), // led here: no follower lag
            partition(Some(2), &[2, 3], &[2, 3]), // not hosted here
        ]);
        let lag = |t: &str, p: i32| match (t, p) {
            ("t", 0) => Some(7),
            ("t", 1) => Some(40),
            ("t", 3) | ("t", 4) => Some(1000), // must not be asked for, or shown
            _ => None,
        };
        let out = scrape(&image, 1, 1, &lag, &IsrChanges::new());
        assert!(has(&out, "kaskade_replica_fetcher_lag{topic=\"t\",partition=\"0\",leader=\"2\"} 7"), "{out}");
        assert!(has(&out, "kaskade_replica_fetcher_lag{topic=\"t\",partition=\"1\",leader=\"3\"} 40"), "{out}");
        assert_eq!(out.lines().filter(|l| l.starts_with("kaskade_replica_fetcher_lag{")).count(), 2, "{out}");
        assert!(has(&out, "kaskade_replica_fetcher_max_lag 40"), "{out}");
        let out = scrape(&image, 3, 1, &|_, _| None, &IsrChanges::new());
        assert!(has(&out, "kaskade_replica_fetcher_max_lag 0"), "{out}");
    }

    #[test]
    fn isr_changes_count_shrinks_and_expands() {
        let c = IsrChanges::new();
        let n = |ids: &[i32]| ids.iter().copied().map(NodeId).collect::<Vec<_>>();
        c.count(&n(&[1, 2, 3]), &n(&[1, 3])); // shrink
        c.count(&n(&[1, 3]), &n(&[1, 2, 3])); // expand
        c.count(&n(&[1, 3]), &n(&[1, 2])); // both
        c.count(&n(&[1, 2]), &n(&[2, 1])); // reordered: neither
        assert_eq!(c.totals(), IsrChangeTotals { shrinks: 2, expands: 2 });
        let out = scrape(&image(&[]), 1, 1, &|_, _| None, &c);
        assert!(has(&out, "kaskade_isr_shrinks_total 2"), "{out}");
        assert!(has(&out, "kaskade_isr_expands_total 2"), "{out}");
        assert!(has(&out, "kaskade_unclean_leader_elections_total 0"), "{out}");
    }

    #[test]
    fn preferred_replica_imbalance_counts_the_clusters_partitions_off_their_first_replica() {
        let image = image(&[
            partition(Some(1), &[1, 2, 3], &[1, 2, 3]), // on its preferred replica
            partition(Some(2), &[1, 2, 3], &[1, 2, 3]), // not
            partition(Some(2), &[2, 1], &[2]),          // preferred, led elsewhere
            partition(None, &[3], &[3]),                // leaderless: counted, as KRaft does
        ]);
        let out = scrape(&image, 1, 1, &|_, _| None, &IsrChanges::new());
        assert!(has(&out, "kaskade_preferred_replica_imbalance 2"), "{out}");
    }
}
