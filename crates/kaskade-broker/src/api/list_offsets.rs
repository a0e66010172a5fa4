//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest
//! local (-4), earliest tiered (-5, no tiering: the log start), latest
//! tiered (-6) and by timestamp, answered by the partition layer
//! (`Partition::fetch_offset_for_timestamp`: the leader-epoch checks, then
//! Kafka's lookup semantics, see `partition::offsets`).

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kaskade_types::LeaderEpoch;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::partition::{FoundOffset, Isolation, OffsetSpec, PartitionError};

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: ListOffsetsRequest,
) -> Result<ListOffsetsResponse, BrokerError> {
    let isolation = if version >= 2 { Isolation::from_wire(req.isolation_level) } else { Isolation::ReadUncommitted };
    let mut resp = ListOffsetsResponse::default();
    for t in req.topics {
        let mut tr = ListOffsetsTopicResponse::default();
        tr.name = t.name.clone();
        for p in t.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            pr.timestamp = -1;
            pr.offset = -1;
            let partition = match broker.topics.partition(t.name.as_str(), p.partition_index) {
                Ok(partition) => partition,
                Err(e) => {
                    pr.error_code = e.response_error().code();
                    tr.partitions.push(pr);
                    continue;
                }
            };
            if version >= 4 {
                pr.leader_epoch = partition.leader_epoch().get();
            }
            let current = LeaderEpoch::from_wire(p.current_leader_epoch);
            let found = match OffsetSpec::from_wire(p.timestamp) {
                None => Err(PartitionError::InvalidRequest(format!("no such timestamp sentinel: {}", p.timestamp))),
                Some(spec) => {
                    tokio::task::spawn_blocking(move || partition.fetch_offset_for_timestamp(current, spec, isolation))
                        .await
                        .unwrap_or_else(|e| Err(PartitionError::Internal(format!("offset lookup did not finish: {e}"))))
                }
            };
            match found {
                Ok(FoundOffset { offset, timestamp }) => {
                    pr.offset = offset.map_or(-1, |o| o.get());
                    pr.timestamp = timestamp.unwrap_or(-1);
                }
                Err(e) => pr.error_code = e.response_error().code(),
            }
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    Ok(resp)
}

crate::route_to!(ListOffsets, handle);

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::ResponseError;

    fn request(topic: &str, current_leader_epoch: i32, timestamp: i64) -> ListOffsetsRequest {
        let mut p = ListOffsetsPartition::default();
        p.partition_index = 0;
        p.current_leader_epoch = current_leader_epoch;
        p.timestamp = timestamp;
        let mut t = ListOffsetsTopic::default();
        t.name = TopicName(StrBytes::from_string(topic.to_string()));
        t.partitions.push(p);
        let mut r = ListOffsetsRequest::default();
        r.replica_id = kafka_protocol::messages::BrokerId(-1);
        r.topics.push(t);
        r
    }

    fn answer(resp: &ListOffsetsResponse) -> (i16, i64, i32) {
        let p = &resp.topics[0].partitions[0];
        (p.error_code, p.offset, p.leader_epoch)
    }

    /// Moves partition 0 of `topic` to leader epoch `epoch` in the
    /// metadata image, as a controller's election would.
    fn elect(broker: &Broker, topic: &str, epoch: i32) {
        let node = broker.node_id().get();
        elect_on(broker, topic, epoch, node, vec![node]);
    }

    /// Makes `leader` the leader of partition 0 of `topic` at `epoch`, with
    /// `replicas` (all in the ISR).
    fn elect_on(broker: &Broker, topic: &str, epoch: i32, leader: i32, replicas: Vec<i32>) {
        let meta = broker.topics.metadata();
        let committed = meta.committed();
        let t = committed.image.topic(topic).expect("topic");
        let record = kaskade_meta::MetadataRecord::Partition {
            topic_id: t.id,
            partition: 0,
            leader,
            isr: replicas.clone(),
            replicas,
            leader_epoch: epoch,
            partition_epoch: 0,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        };
        meta.append(committed.version, vec![record]).expect("append");
        broker.topics.apply_committed().expect("apply");
    }

    #[tokio::test]
    async fn epochs_sentinels_and_unknown_partitions_get_kafka_codes() {
        let broker =
            Arc::new(Broker::for_tests(crate::config::BrokerConfig::default(), crate::router::Router::default()));
        broker.topics.create("lo", 1, -1, &[], &std::collections::BTreeMap::new(), false).expect("create topic");
        elect(&broker, "lo", 1);
        let ok = handle(&broker, 7, request("lo", 1, -1)).await.expect("answer");
        assert_eq!(answer(&ok), (0, 0, 1), "latest of an empty log at the current epoch");
        let absent = handle(&broker, 7, request("lo", -1, -2)).await.expect("answer");
        assert_eq!(answer(&absent).0, 0, "no epoch given: no check");
        let older = handle(&broker, 7, request("lo", 0, -1)).await.expect("answer");
        assert_eq!(answer(&older), (ResponseError::FencedLeaderEpoch.code(), -1, 1));
        let newer = handle(&broker, 7, request("lo", 2, -1)).await.expect("answer");
        assert_eq!(answer(&newer), (ResponseError::UnknownLeaderEpoch.code(), -1, 1));
        let bad = handle(&broker, 7, request("lo", 1, -7)).await.expect("answer");
        assert_eq!(answer(&bad).0, ResponseError::InvalidRequest.code());
        let unknown = handle(&broker, 7, request("nope", 1, -1)).await.expect("answer");
        assert_eq!(answer(&unknown).0, ResponseError::UnknownTopicOrPartition.code());
    }

    /// Once the image this node applied names another leader, it answers
    /// as a follower at the new epoch: ListOffsets and OffsetForLeaderEpoch
    /// NOT_LEADER_OR_FOLLOWER (the old epoch FENCED_LEADER_EPOCH), and a
    /// produce is refused, before any client sees the new leader in its
    /// Metadata (the image is published after the replicas took it).
    #[tokio::test]
    async fn a_deposed_leader_answers_as_a_follower_as_soon_as_its_image_says_so() {
        let broker =
            Arc::new(Broker::for_tests(crate::config::BrokerConfig::default(), crate::router::Router::default()));
        broker.topics.create("lo", 1, -1, &[], &std::collections::BTreeMap::new(), false).expect("create topic");
        let me = broker.node_id().get();
        elect(&broker, "lo", 1);
        let partition = broker.topics.partition("lo", 0).expect("hosted");
        let records = bytes::Bytes::from(kaskade_log::batch::build::filled(3, 10, 0, 1));
        partition.append_as_leader(records.clone(), None).expect("leads");
        assert_eq!(answer(&handle(&broker, 7, request("lo", 1, -1)).await.expect("answer")).0, 0);
        // Another broker is elected at epoch 2.
        elect_on(&broker, "lo", 2, me + 1, vec![me + 1, me]);
        let image = broker.topics.image();
        let named = image.topic("lo").and_then(|t| t.partitions.first()).and_then(|p| p.leader);
        assert_eq!(named.map(|n| n.get()), Some(me + 1), "the image names the new leader");
        let now = handle(&broker, 7, request("lo", -1, -1)).await.expect("answer");
        assert_eq!(answer(&now), (ResponseError::NotLeaderOrFollower.code(), -1, 2));
        let old = handle(&broker, 7, request("lo", 1, -1)).await.expect("answer");
        assert_eq!(answer(&old), (ResponseError::FencedLeaderEpoch.code(), -1, 2));
        let epoch_end = partition.end_offset_for_epoch(None, kaskade_types::LeaderEpoch(1));
        assert!(matches!(epoch_end, Err(crate::partition::PartitionError::NotLeader)), "{epoch_end:?}");
        let produced = partition.append_as_leader(records, None);
        assert!(matches!(produced, Err(crate::partition::PartitionError::NotLeader)), "{produced:?}");
    }
}
