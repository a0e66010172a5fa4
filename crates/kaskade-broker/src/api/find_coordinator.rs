//! FindCoordinator (v0..v6; batched keys from v4): the coordinator of a
//! group or transactional id is the broker that leads its partition of
//! `__consumer_offsets` / `__transaction_state` (Kafka's
//! `partitionFor(key)`), named with its registered endpoint (this node's
//! advertised one when it leads). The internal topic is created on the
//! first lookup, as Kafka does; while it cannot be, or the partition has no
//! leader with a known endpoint, COORDINATOR_NOT_AVAILABLE. Another key type
//! is INVALID_REQUEST. Errors carry Kafka's "no node" answer (-1, "", -1).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kaskade_meta::Image;
use kaskade_types::Endpoint;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::group::records::OFFSETS_TOPIC;
use crate::txn::records::TXN_TOPIC;

/// Key type of a group coordinator.
const KEY_TYPE_GROUP: i8 = 0;
/// Key type of a transaction coordinator.
const KEY_TYPE_TRANSACTION: i8 = 1;

/// The internal topic of `key_type`, creating it (through its coordinator,
/// which then loads the partitions this node leads) if it does not exist.
async fn internal_topic(broker: &Broker, key_type: i8) -> Result<&'static str, ResponseError> {
    let topic = match key_type {
        KEY_TYPE_GROUP => OFFSETS_TOPIC,
        KEY_TYPE_TRANSACTION => TXN_TOPIC,
        _ => return Err(ResponseError::InvalidRequest),
    };
    if broker.topics.image().topic(topic).is_none() {
        if key_type == KEY_TYPE_GROUP {
            // The group task creates the topic when it starts.
            broker.groups.call(|_, _| ()).await.map_err(|_| ResponseError::CoordinatorNotAvailable)?;
        } else {
            broker.txns.ready().await.map_err(|_| ResponseError::CoordinatorNotAvailable)?;
        }
    }
    Ok(topic)
}

/// The coordinator of `key` in `image`: the leader of its partition of
/// `topic` and its endpoint.
fn locate(broker: &Broker, image: &Image, topic: &str, key: &str) -> Result<(i32, Endpoint), ResponseError> {
    let t = image.topic(topic).ok_or(ResponseError::CoordinatorNotAvailable)?;
    let count = i32::try_from(t.partitions.len()).map_err(|_| ResponseError::CoordinatorNotAvailable)?;
    if count == 0 {
        return Err(ResponseError::CoordinatorNotAvailable);
    }
    let partition = if topic == OFFSETS_TOPIC {
        crate::group::records::partition_for(key, count)
    } else {
        crate::txn::records::partition_for(key, count)
    };
    debug_assert!((0..count).contains(&partition), "partition_for stays in the topic");
    let leader = usize::try_from(partition)
        .ok()
        .and_then(|p| t.partitions.get(p))
        .and_then(|p| p.leader)
        .ok_or(ResponseError::CoordinatorNotAvailable)?;
    // The endpoint on the listener the client came in on, as Kafka answers.
    let listener = crate::api::Caller::listener();
    let answering = broker.answering_listener(listener.as_deref());
    if leader == broker.node_id() {
        return Ok((leader.get(), answering.endpoint.clone()));
    }
    let registered = image.brokers().get(&leader).filter(|b| !b.fenced);
    let endpoint =
        registered.and_then(|b| b.endpoint(&answering.listener)).ok_or(ResponseError::CoordinatorNotAvailable)?;
    Ok((leader.get(), Endpoint { host: endpoint.host.clone(), port: i32::from(endpoint.port) }))
}

/// The coordinator of one key.
async fn find(broker: &Broker, key_type: i8, key: &str) -> Result<(i32, Endpoint), ResponseError> {
    let topic = internal_topic(broker, key_type).await?;
    locate(broker, &broker.topics.image(), topic, key)
}

/// The wire's (node id, host, port) of a lookup: Kafka's -1, "", -1 for
/// none.
fn wire(found: &Result<(i32, Endpoint), ResponseError>) -> (i32, StrBytes, i32) {
    match found {
        Ok((node, e)) => (*node, StrBytes::from_string(e.host.clone()), e.port),
        Err(_) => (-1, StrBytes::default(), -1),
    }
}

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: FindCoordinatorRequest,
) -> Result<FindCoordinatorResponse, BrokerError> {
    let mut resp = FindCoordinatorResponse::default();
    let key_type = if version == 0 { KEY_TYPE_GROUP } else { req.key_type };
    if version >= 4 {
        for key in req.coordinator_keys {
            let found = find(broker, key_type, &key).await;
            let error = found.as_ref().err().copied();
            let (node, host, port) = wire(&found);
            let mut c = Coordinator::default();
            c.key = key;
            c.node_id = BrokerId(node);
            c.host = host;
            c.port = port;
            c.error_code = error.map_or(0, |e| e.code());
            // Kafka answers an empty message, not null, for a found key.
            c.error_message = Some(error.map_or_else(StrBytes::default, |e| StrBytes::from_string(e.to_string())));
            resp.coordinators.push(c);
        }
    } else {
        let found = find(broker, key_type, &req.key).await;
        let error = found.as_ref().err().copied();
        let (node, host, port) = wire(&found);
        resp.error_code = error.map_or(0, |e| e.code());
        if version >= 1 {
            // Kafka names the error even when there is none: "NONE".
            resp.error_message =
                Some(error.map_or_else(|| StrBytes::from_static_str("NONE"), |e| StrBytes::from_string(e.to_string())));
        }
        resp.node_id = BrokerId(node);
        resp.host = host;
        resp.port = port;
    }
    Ok(resp)
}

crate::route_to!(FindCoordinator, handle);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::router::Router;

    /// An image with `__consumer_offsets` of `leaders` (-1: none) and
    /// brokers 2 (registered) and 3 (fenced).
    fn image(leaders: &[i32]) -> Image {
        use kaskade_meta::{BrokerEndpoint, MetadataRecord, Uuid};
        let id = Uuid::new_v4();
        let mut records = vec![MetadataRecord::Topic { name: OFFSETS_TOPIC.to_string(), id }];
        for (partition, &leader) in (0..).zip(leaders) {
            let replicas = if leader < 0 { vec![] } else { vec![leader] };
            records.push(MetadataRecord::Partition {
                topic_id: id,
                partition,
                leader,
                isr: replicas.clone(),
                replicas,
                leader_epoch: 0,
                partition_epoch: 0,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            });
        }
        for (node, fenced) in [(2, false), (3, true)] {
            records.push(MetadataRecord::RegisterBroker {
                node_id: node,
                incarnation_id: Uuid::new_v4(),
                endpoints: vec![BrokerEndpoint {
                    listener: "PLAINTEXT".into(),
                    host: format!("b{node}"),
                    port: 9000,
                    security_protocol: None,
                }],
                rack: None,
                fenced,
                process: None,
            });
        }
        let mut image = Image::default();
        for r in &records {
            image.apply(r);
        }
        image
    }

    #[test]
    fn names_the_leader_of_the_keys_partition_or_coordinator_not_available() {
        let broker = Broker::for_tests(BrokerConfig::default(), Router::default());
        // "g" hashes to one partition of four: put each kind of leader there.
        let p = crate::group::records::partition_for("g", 4) as usize;
        let with_leader = |leader: i32| {
            let mut leaders = [1, 1, 1, 1];
            leaders[p] = leader;
            image(&leaders)
        };
        let here = locate(&broker, &with_leader(1), OFFSETS_TOPIC, "g").expect("this node leads");
        assert_eq!(here, (1, broker.endpoint().clone()), "its advertised endpoint");
        let there = locate(&broker, &with_leader(2), OFFSETS_TOPIC, "g").expect("broker 2 leads");
        assert_eq!(there, (2, Endpoint { host: "b2".into(), port: 9000 }), "the registered endpoint");
        for (leader, why) in [(-1, "no leader"), (3, "a fenced leader"), (4, "an unregistered leader")] {
            assert_eq!(
                locate(&broker, &with_leader(leader), OFFSETS_TOPIC, "g"),
                Err(ResponseError::CoordinatorNotAvailable),
                "{why}"
            );
        }
        assert_eq!(
            locate(&broker, &Image::default(), OFFSETS_TOPIC, "g"),
            Err(ResponseError::CoordinatorNotAvailable),
            "no topic"
        );
    }

    #[tokio::test]
    async fn names_this_node_for_groups_and_transactions_and_refuses_other_key_types() {
        let broker = Broker::for_tests(BrokerConfig::default(), Router::default());
        let ask = |key_type: i8| {
            FindCoordinatorRequest::default()
                .with_key_type(key_type)
                .with_coordinator_keys(vec![StrBytes::from_static_str("k")])
        };
        for key_type in [KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION] {
            let resp = handle(&broker, 4, ask(key_type)).await.expect("answered");
            let c = &resp.coordinators[0];
            assert_eq!((c.error_code, c.node_id, c.host.as_str(), c.port), (0, BrokerId(1), "localhost", 9092));
        }
        let resp = handle(&broker, 4, ask(2)).await.expect("answered");
        let c = &resp.coordinators[0];
        assert_eq!(c.error_code, ResponseError::InvalidRequest.code());
        assert_eq!((c.node_id, c.host.as_str(), c.port), (BrokerId(-1), "", -1), "Kafka's no node");
        // Before v4: one key, in the top-level fields.
        let old = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g")).with_key_type(2);
        let resp = handle(&broker, 3, old).await.expect("answered");
        assert_eq!(
            (resp.error_code, resp.node_id, resp.port),
            (ResponseError::InvalidRequest.code(), BrokerId(-1), -1)
        );
    }
}
