//! Metadata: brokers, cluster id, controller, and topics with their
//! partitions; missing topics are auto-created when the request allows it
//! and `auto.create.topics.enable` is set (client test suites rely on it).

use kafka_protocol::ResponseError;
use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kaskade_meta::TopicImage;
use kaskade_types::NodeId;

use super::authorized_operations::{self as ops, OMITTED as AUTHORIZED_OPS_OMITTED};
use crate::broker::Broker;
use crate::error::BrokerError;
use crate::topic::manager::validate_topic_name;

pub fn topic_entry(t: &TopicImage) -> MetadataResponseTopic {
    let mut rt = MetadataResponseTopic::default();
    rt.name = Some(TopicName(StrBytes::from_string(t.name.clone())));
    rt.topic_id = t.id;
    rt.is_internal = t.name.starts_with("__");
    rt.topic_authorized_operations = AUTHORIZED_OPS_OMITTED;
    for (i, p) in t.partitions.iter().enumerate() {
        let mut rp = MetadataResponsePartition::default();
        rp.partition_index = i as i32;
        // Kafka's -1: no leader.
        rp.leader_id = BrokerId(p.leader.map_or(-1, |n| n.get()));
        rp.leader_epoch = p.leader_epoch.get();
        if p.leader.is_none() {
            // Offline (its last ISR member is fenced), as Kafka's metadata cache answers.
            rp.error_code = ResponseError::LeaderNotAvailable.code();
        }
        rp.replica_nodes = p.replicas.iter().map(|b| BrokerId(b.get())).collect();
        rp.isr_nodes = p.isr.iter().map(|b| BrokerId(b.get())).collect();
        rt.partitions.push(rp);
    }
    rt
}

fn error_entry(name: Option<String>, id: uuid::Uuid, code: i16) -> MetadataResponseTopic {
    let mut rt = MetadataResponseTopic::default();
    rt.name = name.map(|n| TopicName(StrBytes::from_string(n)));
    rt.topic_id = id;
    rt.error_code = code;
    rt.topic_authorized_operations = AUTHORIZED_OPS_OMITTED;
    rt
}

/// The broker entries of a Metadata or a DescribeCluster answer, one per
/// live broker (the image's registrations, see `Broker::live_brokers`), in
/// the one place that turns a registration into the wire's (id, host,
/// port, rack); `entry` builds the API's own entry type from them.
pub(crate) fn broker_entries<T>(
    broker: &Broker,
    entry: impl Fn(BrokerId, StrBytes, i32, Option<StrBytes>) -> T,
) -> Vec<T> {
    // Each client is told the endpoints of the listener it connected to.
    let listener = super::Caller::listener();
    broker
        .live_brokers(listener.as_deref())
        .into_iter()
        .map(|live| {
            let host = StrBytes::from_string(live.endpoint.host);
            entry(BrokerId(live.id.get()), host, live.endpoint.port, live.rack.map(StrBytes::from_string))
        })
        .collect()
}

pub async fn handle(broker: &Arc<Broker>, version: i16, req: MetadataRequest) -> Result<MetadataResponse, BrokerError> {
    let mut resp = MetadataResponse::default();
    resp.brokers = broker_entries(broker, |id, host, port, rack| {
        MetadataResponseBroker::default().with_node_id(id).with_host(host).with_port(port).with_rack(rack)
    });
    resp.cluster_id = Some(StrBytes::from_string(broker.cluster_id().to_string()));
    let listed: Vec<NodeId> = resp.brokers.iter().map(|b| NodeId(b.node_id.0)).collect();
    resp.controller_id = BrokerId(broker.controller_id(&listed).map_or(-1, NodeId::get));
    // Asked for only up to v10; the field is gone from v11 on.
    resp.cluster_authorized_operations = ops::if_asked(req.include_cluster_authorized_operations, ops::CLUSTER);
    let topic_ops = ops::if_asked(req.include_topic_authorized_operations, ops::TOPIC);

    let image = broker.topics.image();
    // v0: an empty list means all topics; v1+: null means all.
    let all = match &req.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    if all {
        resp.topics = image.topics().map(topic_entry).collect();
        return Ok(with_topic_ops(resp, topic_ops));
    }
    // v4+ carries the flag; earlier versions always auto-create.
    let allow_create = (version < 4 || req.allow_auto_topic_creation) && broker.auto_create_topics();
    for t in req.topics.unwrap_or_default() {
        // A non-zero topic id names the topic, whatever the name field holds
        // (the Java client sends "" beside the id), as Kafka decides.
        let name = if t.topic_id.is_nil() { t.name.clone() } else { None };
        match &name {
            None => match image.topic_by_id(&t.topic_id) {
                Some(ti) => resp.topics.push(topic_entry(ti)),
                None => resp.topics.push(error_entry(None, t.topic_id, ResponseError::UnknownTopicId.code())),
            },
            Some(name) => {
                let name = name.to_string();
                if let Some(ti) = broker.topics.image().topic(&name) {
                    resp.topics.push(topic_entry(ti));
                    continue;
                }
                if let Err(e) = validate_topic_name(&name) {
                    resp.topics.push(error_entry(Some(name), uuid::Uuid::nil(), e.code()));
                    continue;
                }
                if !allow_create {
                    resp.topics.push(error_entry(
                        Some(name),
                        uuid::Uuid::nil(),
                        ResponseError::UnknownTopicOrPartition.code(),
                    ));
                    continue;
                }
                let n2 = name.clone();
                // In a cluster the active controller creates it (Kafka's
                // AutoTopicCreationManager sends it a CreateTopics).
                let created = match crate::api::forwarding::Forward::prepare(broker) {
                    Some(forward) => forward.auto_create(broker, &name).await,
                    None => {
                        crate::topic::on_blocking_pool(&broker.topics, move |tm| {
                            tm.create(&n2, -1, -1, &[], &BTreeMap::new(), false)
                        })
                        .await
                    }
                };
                match created {
                    Ok(ti) => resp.topics.push(topic_entry(&ti)),
                    // Lost a race with another creator: it exists now.
                    Err(e) if e.code() == ResponseError::TopicAlreadyExists.code() => {
                        match broker.topics.image().topic(&name) {
                            Some(ti) => resp.topics.push(topic_entry(ti)),
                            None => resp.topics.push(error_entry(
                                Some(name),
                                uuid::Uuid::nil(),
                                ResponseError::UnknownTopicOrPartition.code(),
                            )),
                        }
                    }
                    Err(e) => resp.topics.push(error_entry(Some(name), uuid::Uuid::nil(), e.code())),
                }
            }
        }
    }
    Ok(with_topic_ops(resp, topic_ops))
}

/// Sets the authorized operations of every topic that was found.
fn with_topic_ops(mut resp: MetadataResponse, topic_ops: i32) -> MetadataResponse {
    for t in resp.topics.iter_mut().filter(|t| t.error_code == 0) {
        t.topic_authorized_operations = topic_ops;
    }
    resp
}

crate::route_to!(Metadata, handle);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kaskade_meta::PartitionImage;
    use kaskade_types::{LeaderEpoch, NodeId};

    use super::*;

    #[test]
    fn a_partition_without_a_leader_is_leader_not_available() {
        let partition = |leader: Option<i32>| PartitionImage {
            leader: leader.map(NodeId),
            replicas: vec![NodeId(2)],
            isr: vec![NodeId(2)],
            leader_epoch: LeaderEpoch(3),
            partition_epoch: 4,
            adding_replicas: vec![],
            removing_replicas: vec![],
        };
        let topic = TopicImage {
            name: "t".into(),
            id: uuid::Uuid::new_v4(),
            partitions: vec![partition(Some(2)), partition(None)],
            configs: BTreeMap::new(),
        };
        let entry = topic_entry(&topic);
        let led = &entry.partitions[0];
        assert_eq!((led.error_code, led.leader_id), (0, BrokerId(2)));
        let offline = &entry.partitions[1];
        assert_eq!((offline.error_code, offline.leader_id), (ResponseError::LeaderNotAvailable.code(), BrokerId(-1)));
        assert_eq!(offline.isr_nodes, vec![BrokerId(2)], "the ISR it will lead from again");
    }
}
