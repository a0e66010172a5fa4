//! Test fixture shared by the decision modules' tests (fencing, elections,
//! reassignment): an image of registered brokers and one topic "t", built
//! through the same records the controller writes.

use kaskade_types::{LeaderEpoch, NodeId};
use uuid::Uuid;

use crate::image::{Image, PartitionImage};
use crate::record::MetadataRecord;

/// Node ids from integers.
pub fn n(ids: &[i32]) -> Vec<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

/// Brokers `1..=brokers` registered (those in `fenced` fenced) and topic "t"
/// whose partitions have these (leader, replicas, isr), leader -1 meaning
/// none, all at leader epoch `epoch` and partition epoch `partition_epoch`.
pub fn cluster(
    brokers: i32,
    fenced: &[i32],
    (epoch, partition_epoch): (LeaderEpoch, i32),
    partitions: &[(i32, &[i32], &[i32])],
) -> (Image, Uuid) {
    let mut img = Image::default();
    for id in 1..=brokers {
        img.apply(&MetadataRecord::RegisterBroker {
            node_id: id,
            incarnation_id: Uuid::new_v4(),
            endpoints: vec![],
            rack: None,
            fenced: fenced.contains(&id),
            process: None,
        });
    }
    let id = Uuid::new_v4();
    img.apply(&MetadataRecord::Topic { name: "t".into(), id });
    for (i, (leader, replicas, isr)) in partitions.iter().enumerate() {
        let p = PartitionImage {
            leader: (*leader >= 0).then_some(NodeId(*leader)),
            replicas: n(replicas),
            isr: n(isr),
            leader_epoch: epoch,
            partition_epoch,
            adding_replicas: vec![],
            removing_replicas: vec![],
        };
        img.apply(&p.to_record(id, i as i32));
    }
    (img, id)
}
