//! TxnOffsetCommit (key 28), versions 0 to 4: offsets committed inside a
//! transaction, pending until its marker (`group::txn_offsets`). The
//! producer must have added the group with AddOffsetsToTxn first: its
//! transaction coordinator says so, the one on this node or, on a cluster,
//! the one on another broker, asked with DescribeTransactions.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, TransactionalId, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;

use kaskade_types::{Offset, ProducerEpoch, ProducerId, TopicPartition};

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::group::{commit_generation, committed_leader_epoch, CommitPartition, CommitRequest};
use crate::txn::records::{partition_for, TXN_TOPIC};

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: TxnOffsetCommitRequest,
) -> Result<TxnOffsetCommitResponse, BrokerError> {
    let partitions: Vec<CommitPartition> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| CommitPartition {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: Offset(p.committed_offset),
                leader_epoch: committed_leader_epoch(p.committed_leader_epoch),
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let commit = CommitRequest {
        group_id: req.group_id.to_string(),
        // v0-2 carry no member: a commit from outside the group.
        generation_id: if version >= 3 { commit_generation(req.generation_id) } else { None },
        member_id: if version >= 3 { req.member_id.to_string() } else { String::new() },
        group_instance_id: req.group_instance_id.as_ref().map(|i| i.to_string()),
        partitions,
        api_version: 8,
    };
    let producer = super::producer_of(req.producer_id, req.producer_epoch);
    let id = req.transactional_id.to_string();
    let n = commit.partitions.len();
    let offsets_partition = super::offsets_partition_of(broker, &req.group_id);
    // The transaction must hold the group's offsets partition.
    let in_txn = txn_view(broker, &id).await.map(|m| match m {
        Some(m) if m.producer_id != producer.id => Err(ResponseError::InvalidProducerIdMapping),
        Some(m) if m.producer_epoch != producer.epoch => Err(ResponseError::ProducerFenced),
        // AddOffsetsToTxn must have added the group's offsets partition:
        // only that partition's marker settles these offsets.
        Some(m) if m.ongoing && m.partitions.contains(&offsets_partition) => Ok(()),
        Some(_) => Err(ResponseError::InvalidTxnState),
        None => Err(ResponseError::InvalidProducerIdMapping),
    });
    let errors: Vec<Option<ResponseError>> = match in_txn {
        Ok(Ok(())) => broker
            .groups
            .call_durable_gated(move |engine, now, gate| match gate.check(&commit.group_id) {
                Err(e) => vec![Some(e); commit.partitions.len()],
                Ok(()) => engine.txn_commit_offsets(now, producer, &commit),
            })
            .await
            .unwrap_or_else(|e| match e {
                BrokerError::Kafka { code, .. } => vec![Some(code); n],
                _ => vec![Some(ResponseError::CoordinatorNotAvailable); n],
            }),
        Ok(Err(e)) | Err(e) => vec![Some(e); n],
    };
    let mut resp = TxnOffsetCommitResponse::default();
    let mut errors = errors.into_iter();
    for topic in &req.topics {
        let mut t = TxnOffsetCommitResponseTopic::default();
        t.name = topic.name.clone();
        for p in &topic.partitions {
            let mut r = TxnOffsetCommitResponsePartition::default();
            r.partition_index = p.partition_index;
            r.error_code = errors.next().flatten().map_or(0, |e| super::fenced_for(version, 3, e));
            t.partitions.push(r);
        }
        resp.topics.push(t);
    }
    Ok(resp)
}

/// A transaction as its coordinator describes it.
struct TxnView {
    producer_id: ProducerId,
    producer_epoch: ProducerEpoch,
    ongoing: bool,
    partitions: Vec<TopicPartition>,
}

/// Transactional id `id` as its coordinator knows it (`None`: unknown):
/// this node's transaction coordinator, or, when another node leads the
/// id's `__transaction_state` partition (a group and a transaction
/// coordinated on different brokers), that node asked with
/// DescribeTransactions. Its errors come back as they are (retriable ones
/// make the producer retry); an unreachable coordinator is
/// COORDINATOR_NOT_AVAILABLE.
async fn txn_view(broker: &Arc<Broker>, id: &str) -> Result<Option<TxnView>, ResponseError> {
    match broker.txns.describe(id).await {
        Ok(meta) => {
            return Ok(meta.map(|m| TxnView {
                producer_id: m.producer_id,
                producer_epoch: m.producer_epoch,
                ongoing: m.state == crate::txn::TxnState::Ongoing,
                partitions: m.partitions.into_iter().collect(),
            }))
        }
        Err(ResponseError::NotCoordinator) => {}
        Err(e) => return Err(e),
    }
    let image = broker.topics.image();
    let leader = image.topic(TXN_TOPIC).and_then(|t| {
        let p = usize::try_from(partition_for(id, t.partitions.len() as i32)).ok()?;
        t.partitions.get(p)?.leader
    });
    let node = leader.filter(|l| *l != broker.node_id()).ok_or(ResponseError::CoordinatorNotAvailable)?;
    let unavailable = |e: String| {
        tracing::warn!(node = node.get(), transactional_id = id, "asking the transaction coordinator: {e}");
        ResponseError::CoordinatorNotAvailable
    };
    let conn = broker.peers.connection(node).await.map_err(|e| unavailable(e.to_string()))?;
    let version = conn.version::<DescribeTransactionsRequest>().map_err(|e| unavailable(e.to_string()))?;
    let req = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(StrBytes::from_string(id.to_string()))]);
    let resp = conn.send(&req, version).await.map_err(|e| {
        broker.peers.disconnect(node, &conn);
        unavailable(e.to_string())
    })?;
    let state = resp.transaction_states.into_iter().next().ok_or_else(|| unavailable("no answer".into()))?;
    match ResponseError::try_from_code(state.error_code) {
        None => {}
        Some(ResponseError::TransactionalIdNotFound) => return Ok(None),
        Some(e) => return Err(e),
    }
    Ok(Some(TxnView {
        producer_id: ProducerId(state.producer_id.0),
        producer_epoch: ProducerEpoch(state.producer_epoch),
        ongoing: &*state.transaction_state == crate::txn::TxnState::Ongoing.name(),
        partitions: state
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|&p| TopicPartition::new(t.topic.0.as_str(), p)))
            .collect(),
    }))
}

crate::route_to!(TxnOffsetCommit, handle);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kaskade_meta::{BrokerEndpoint, MetadataRecord, Uuid};

    use super::*;
    use crate::config::BrokerConfig;
    use crate::network;
    use crate::router::Router;
    use crate::topic::TopicError;

    /// A broker with node id `node` served on a loopback port.
    async fn serve(node: i32) -> (Arc<Broker>, u16, network::ShutdownTrigger) {
        let id = node.to_string();
        let config = BrokerConfig::from_overrides([("listeners", "PLAINTEXT://127.0.0.1:0"), ("node.id", id.as_str())])
            .expect("config");
        let broker = Arc::new(Broker::for_tests(config, Router::default()));
        let listeners = network::bind_config(&broker.config).await.expect("bind");
        let port = listeners[0].local_addr().port();
        let (trigger, signal) = network::shutdown_channel();
        tokio::spawn(network::serve(broker.clone(), listeners, signal));
        (broker, port, trigger)
    }

    fn register(node_id: i32, port: u16) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            node_id,
            incarnation_id: Uuid::new_v4(),
            endpoints: vec![BrokerEndpoint {
                listener: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port,
                security_protocol: None,
            }],
            rack: None,
            fenced: false,
            process: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_coordinated_on_another_broker_is_asked_there() {
        let (a, _, _stop_a) = serve(1).await;
        let (b, b_port, _stop_b) = serve(2).await;
        // Broker 2 coordinates "tx" (its own __transaction_state); broker
        // 1's image places every __transaction_state partition on 2.
        let producer = b.txns.init_producer_id("tx", 60_000, None).await.expect("init on 2");
        let offsets = TopicPartition::new("__consumer_offsets", 3);
        b.txns.add_partitions("tx", producer, std::slice::from_ref(&offsets)).await.expect("added on 2");
        let count = b.topics.image().topic(TXN_TOPIC).expect("created on 2").partitions.len();
        let everywhere: Vec<(i32, Vec<i32>)> = (0..count as i32).map(|p| (p, vec![2])).collect();
        let records = vec![register(1, 1), register(2, b_port)];
        a.topics.update(|_| Ok::<_, TopicError>((records.clone(), ()))).expect("registered");
        a.topics.create(TXN_TOPIC, -1, -1, &everywhere, &BTreeMap::new(), false).expect("placed on 2");

        let view = txn_view(&a, "tx").await.expect("asked").expect("known on 2");
        assert_eq!((view.producer_id, view.producer_epoch), (producer.id, producer.epoch));
        assert!(view.ongoing);
        assert_eq!(view.partitions, vec![offsets]);
        assert!(txn_view(&a, "unknown").await.expect("asked").is_none(), "TRANSACTIONAL_ID_NOT_FOUND");

        // Broker 2 registers again where nothing listens: not reachable.
        let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        a.topics.update(|_| Ok::<_, TopicError>((vec![register(2, gone)], ()))).expect("re-registered");
        assert_eq!(txn_view(&a, "tx").await.err(), Some(ResponseError::CoordinatorNotAvailable));
        a.topics.logs().shutdown().expect("shutdown");
        b.topics.logs().shutdown().expect("shutdown");
    }
}
