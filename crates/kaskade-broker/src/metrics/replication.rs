//! Replication health read from the metadata image this node applied (the
//! same image on every node): the partitions this node leads whose ISR is
//! smaller than their replica set (Kafka's ReplicaManager
//! `UnderReplicatedPartitions` and the per-partition `UnderReplicated`
//! gauge, both reported by the leader), and the partitions of the cluster
//! with no leader (Kafka's `OfflinePartitionsCount`, which Kafka reports on
//! the active controller only; every Kaskade node reports the same value).

use kaskade_meta::Image;
use kaskade_types::NodeId;

use super::text::{Exposition, Labels};

/// Renders the replication families for node `node` from `image`.
pub(super) fn render(x: &mut Exposition<'_>, image: &Image, node: NodeId) {
    let mut led = Vec::new();
    let mut offline = 0usize;
    for topic in image.topics() {
        for (index, p) in topic.partitions.iter().enumerate() {
            match p.leader {
                None => offline += 1,
                Some(leader) if leader == node => {
                    debug_assert!(p.isr.len() <= p.replicas.len(), "the ISR is a subset of the replicas");
                    led.push((topic.name.as_str(), index, p.isr.len() < p.replicas.len()));
                }
                Some(_) => {}
            }
        }
    }
    x.family(
        "kaskade_partition_under_replicated",
        "gauge",
        "1 when a partition this node leads has fewer in-sync replicas than replicas, else 0.",
    );
    for (topic, index, under) in &led {
        let labels = Labels::new(&[("topic", topic), ("partition", &index.to_string())]);
        x.sample_labelled("kaskade_partition_under_replicated", &labels, if *under { 1.0 } else { 0.0 });
    }
    x.family(
        "kaskade_under_replicated_partitions",
        "gauge",
        "Partitions this node leads whose in-sync replicas are fewer than their replicas.",
    );
    let under = led.iter().filter(|(_, _, under)| *under).count();
    x.sample("kaskade_under_replicated_partitions", &[], under as f64);
    x.family("kaskade_offline_partitions", "gauge", "Partitions of the cluster that have no leader.");
    x.sample("kaskade_offline_partitions", &[], offline as f64);
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

    #[test]
    fn under_replicated_counts_what_this_node_leads_and_offline_counts_the_cluster() {
        let id = Uuid::new_v4();
        let mut image = Image::default();
        image.apply(&MetadataRecord::Topic { name: "t".into(), id });
        let parts = [
            partition(Some(1), &[1, 2, 3], &[1, 2, 3]), // led here, in sync
            partition(Some(1), &[1, 2, 3], &[1, 3]),    // led here, under-replicated
            partition(Some(2), &[2, 1], &[2]),          // led elsewhere: its leader reports it
            partition(None, &[3], &[3]),                // offline
        ];
        for (i, p) in parts.iter().enumerate() {
            image.apply(&p.to_record(id, i as i32));
        }
        let mut out = String::new();
        render(&mut Exposition::new(&mut out), &image, NodeId(1));
        assert!(out.contains("kaskade_partition_under_replicated{topic=\"t\",partition=\"0\"} 0\n"), "{out}");
        assert!(out.contains("kaskade_partition_under_replicated{topic=\"t\",partition=\"1\"} 1\n"), "{out}");
        assert!(!out.contains("partition=\"2\""), "{out}");
        assert!(out.contains("kaskade_under_replicated_partitions 1\n"), "{out}");
        assert!(out.contains("kaskade_offline_partitions 1\n"), "{out}");
    }
}
