//! The cluster marker writer's decisions against a fake local log and a
//! fake remote broker, then over a real connection to a second broker
//! served in process.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kaskade_types::{ProducerEpoch, ProducerId};
use parking_lot::Mutex;

use super::*;
use crate::coordinator::MarkerDisposition;

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn commit() -> TxnMarker {
    TxnMarker {
        producer_id: ProducerId(42),
        producer_epoch: ProducerEpoch(3),
        coordinator_epoch: 7,
        marker: Marker::Commit,
    }
}

/// This node's logs: every marker written at once; what was asked.
#[derive(Default)]
struct FakeLocal(Mutex<Vec<TopicPartition>>);

impl MarkerWriter for FakeLocal {
    fn write(&self, partitions: &[TopicPartition], _: TxnMarker) -> MarkersWritten {
        self.0.lock().extend_from_slice(partitions);
        let n = partitions.len();
        Box::pin(async move { vec![Ok(()); n] })
    }
}

/// Other brokers: each answers every partition with its code in `codes`
/// (none by default), leaves out those in `omit`, or is unreachable.
#[derive(Default)]
struct FakeRemote {
    sent: Mutex<Vec<(NodeId, WriteTxnMarkersRequest)>>,
    codes: Mutex<HashMap<TopicPartition, ResponseError>>,
    omit: Mutex<Vec<TopicPartition>>,
    unreachable: Mutex<Vec<NodeId>>,
}

impl MarkerChannel for Arc<FakeRemote> {
    fn send(
        &self,
        node: NodeId,
        request: WriteTxnMarkersRequest,
    ) -> BoxFuture<'static, Result<WriteTxnMarkersResponse, String>> {
        self.sent.lock().push((node, request.clone()));
        let answer = if self.unreachable.lock().contains(&node) {
            Err("connection refused".to_string())
        } else {
            Ok(self.answer(&request))
        };
        Box::pin(async move { answer })
    }
}

impl FakeRemote {
    fn answer(&self, request: &WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
        let (codes, omit) = (self.codes.lock(), self.omit.lock());
        let mut response = WriteTxnMarkersResponse::default();
        for m in &request.markers {
            let mut result = WritableTxnMarkerResult::default();
            result.producer_id = m.producer_id;
            for t in &m.topics {
                let mut topic = WritableTxnMarkerTopicResult::default();
                topic.name = t.name.clone();
                for &p in &t.partition_indexes {
                    let key = tp(&t.name.0, p);
                    if omit.contains(&key) {
                        continue;
                    }
                    let mut partition = WritableTxnMarkerPartitionResult::default();
                    partition.partition_index = p;
                    partition.error_code = codes.get(&key).map_or(0, |e| e.code());
                    topic.partitions.push(partition);
                }
                result.topics.push(topic);
            }
            response.markers.push(result);
        }
        response
    }
}

/// A writer whose image is `placements` (anything else: unknown).
fn writer(
    placements: Arc<Mutex<HashMap<TopicPartition, Placement>>>,
) -> (ClusterMarkers, Arc<FakeLocal>, Arc<FakeRemote>) {
    let local = Arc::new(FakeLocal::default());
    let remote = Arc::new(FakeRemote::default());
    let place: Placer = Arc::new(move |tp| placements.lock().get(tp).copied().unwrap_or(Placement::Unknown));
    (ClusterMarkers::new(local.clone(), place, Arc::new(remote.clone())), local, remote)
}

/// Each request as (node, producer id, epoch, commit?, coordinator epoch, topic -> partitions).
type Sent = (i32, i64, i16, bool, i32, BTreeMap<String, Vec<i32>>);

fn sent(remote: &FakeRemote) -> Vec<Sent> {
    remote
        .sent
        .lock()
        .iter()
        .map(|(node, req)| {
            assert_eq!(req.markers.len(), 1, "one transaction per request");
            let m = &req.markers[0];
            let topics = m.topics.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect();
            (node.get(), m.producer_id.0, m.producer_epoch, m.transaction_result, m.coordinator_epoch, topics)
        })
        .collect()
}

#[tokio::test]
async fn markers_go_to_this_nodes_log_or_one_request_per_leader() {
    use Placement::*;
    let placements = Arc::new(Mutex::new(HashMap::from([
        (tp("t", 0), Here),
        (tp("t", 1), Leader(NodeId(2))),
        (tp("t", 2), Leader(NodeId(3))),
        (tp("t", 3), Leader(NodeId(2))),
        (tp("u", 0), Leader(NodeId(2))),
        (tp("t", 4), NoLeader),
    ])));
    let (w, local, remote) = writer(placements);
    let asked = [tp("t", 0), tp("t", 1), tp("t", 2), tp("t", 3), tp("u", 0), tp("t", 9), tp("t", 4)];
    let outcomes = w.write(&asked, commit()).await;

    assert_eq!(*local.0.lock(), vec![tp("t", 0)]);
    let by_topic = |entries: &[(&str, &[i32])]| -> BTreeMap<String, Vec<i32>> {
        entries.iter().map(|(t, p)| (t.to_string(), p.to_vec())).collect()
    };
    assert_eq!(
        sent(&remote),
        vec![
            (2, 42, 3, true, 7, by_topic(&[("t", &[1, 3]), ("u", &[0])])),
            (3, 42, 3, true, 7, by_topic(&[("t", &[2])])),
        ]
    );
    assert_eq!(outcomes[..5], [Ok(()), Ok(()), Ok(()), Ok(()), Ok(())]);
    assert_eq!(outcomes[5], Err(MarkerError::UnknownPartition), "deleted: dropped");
    assert!(matches!(outcomes[6], Err(MarkerError::Failed(ResponseError::LeaderNotAvailable, _))));
    assert_eq!(outcomes[6].as_ref().map_err(MarkerError::disposition), Err(MarkerDisposition::Retry));
    assert_eq!(outcomes.len(), asked.len());
}

#[tokio::test]
async fn the_leaders_answers_map_to_retry_done_or_stop() {
    use Placement::*;
    let placements = Arc::new(Mutex::new(HashMap::from([
        (tp("t", 0), Leader(NodeId(2))),
        (tp("t", 1), Leader(NodeId(2))),
        (tp("t", 2), Leader(NodeId(2))),
        (tp("t", 3), Leader(NodeId(2))),
        (tp("t", 4), Leader(NodeId(2))),
        (tp("t", 5), Leader(NodeId(2))),
        (tp("t", 6), Leader(NodeId(3))),
    ])));
    let (w, _, remote) = writer(placements);
    remote.codes.lock().extend([
        (tp("t", 0), ResponseError::NotLeaderOrFollower),
        (tp("t", 1), ResponseError::InvalidProducerEpoch),
        (tp("t", 2), ResponseError::TransactionCoordinatorFenced),
        (tp("t", 3), ResponseError::UnknownTopicOrPartition),
        (tp("t", 4), ResponseError::NotEnoughReplicasAfterAppend),
    ]);
    remote.omit.lock().push(tp("t", 5));
    remote.unreachable.lock().push(NodeId(3));
    let outcomes = w.write(&(0..7).map(|p| tp("t", p)).collect::<Vec<_>>(), commit()).await;
    let dispositions: Vec<_> = outcomes.iter().map(|o| o.as_ref().map_err(MarkerError::disposition)).collect();
    use MarkerDisposition::*;
    assert_eq!(
        dispositions,
        vec![
            Err(Retry), // not the leader any more: a newer image names another
            Err(Stop),  // a newer producer epoch: this coordinator is stale
            Err(Stop),  // a newer coordinator owns the transaction
            Err(Retry), // the leader does not have it yet; our image drops it once deleted
            Err(Retry),
            Err(Retry), // left out of the answer
            Err(Retry), // unreachable
        ]
    );
    assert!(matches!(&outcomes[0], Err(MarkerError::Failed(ResponseError::NotLeaderOrFollower, _))));
    assert!(
        matches!(&outcomes[6], Err(MarkerError::Failed(ResponseError::NetworkException, m)) if m.contains("connection refused"))
    );
}

#[tokio::test]
async fn a_retry_goes_to_the_leader_of_the_newer_image() {
    let placements = Arc::new(Mutex::new(HashMap::from([(tp("t", 0), Placement::Leader(NodeId(2)))])));
    let (w, _, remote) = writer(placements.clone());
    remote.codes.lock().insert(tp("t", 0), ResponseError::NotLeaderOrFollower);
    let first = w.write(&[tp("t", 0)], commit()).await;
    assert!(matches!(first[0], Err(MarkerError::Failed(ResponseError::NotLeaderOrFollower, _))));

    placements.lock().insert(tp("t", 0), Placement::Leader(NodeId(3)));
    remote.codes.lock().clear();
    assert_eq!(w.write(&[tp("t", 0)], commit()).await, vec![Ok(())]);
    assert_eq!(sent(&remote).iter().map(|s| s.0).collect::<Vec<_>>(), vec![2, 3]);

    // Deleted meanwhile: dropped without asking anyone.
    placements.lock().clear();
    assert_eq!(w.write(&[tp("t", 0)], commit()).await, vec![Err(MarkerError::UnknownPartition)]);
    assert_eq!(remote.sent.lock().len(), 2);
}

/// A broker with node id `node` served on a loopback port.
async fn serve(node: i32) -> (Arc<crate::Broker>, u16, crate::network::ShutdownTrigger) {
    use crate::network;
    let config = crate::config::BrokerConfig::from_overrides([
        ("listeners", "PLAINTEXT://127.0.0.1:0"),
        ("node.id", &node.to_string()),
    ])
    .expect("config");
    let broker = Arc::new(crate::Broker::for_tests(config, crate::router::Router::default()));
    let listeners = network::bind_config(&broker.config).await.expect("bind");
    let port = listeners[0].local_addr().port();
    let (trigger, signal) = network::shutdown_channel();
    tokio::spawn(network::serve(broker.clone(), listeners, signal));
    (broker, port, trigger)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_reach_the_leader_over_write_txn_markers() {
    use crate::topic::TopicError;
    let (a, _, _stop_a) = serve(1).await;
    let (b, b_port, _stop_b) = serve(2).await;
    // Broker 2 leads "t"-0 on its own; broker 1's image places "t"-0 and
    // "t"-1 on broker 2, which has only "t"-0.
    b.topics.create("t", 1, 1, &[], &BTreeMap::new(), false).expect("topic on 2");
    let register = |node_id: i32, port: u16| kaskade_meta::MetadataRecord::RegisterBroker {
        node_id,
        incarnation_id: kaskade_meta::Uuid::new_v4(),
        endpoints: vec![kaskade_meta::BrokerEndpoint {
            listener: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port,
            security_protocol: None,
        }],
        rack: None,
        fenced: false,
        process: None,
    };
    a.topics.update(|_| Ok::<_, TopicError>((vec![register(1, 1), register(2, b_port)], ()))).expect("registered");
    a.topics.create("t", -1, -1, &[(0, vec![2]), (1, vec![2])], &BTreeMap::new(), false).expect("topic on 1");
    // "v"-0: broker 2 knows that broker 1 leads it; broker 1 thinks 2 does.
    b.topics.update(|_| Ok::<_, TopicError>((vec![register(1, 1), register(2, b_port)], ()))).expect("registered");
    b.topics.create("v", -1, -1, &[(0, vec![1])], &BTreeMap::new(), false).expect("v on 2");
    a.topics.create("v", -1, -1, &[(0, vec![2])], &BTreeMap::new(), false).expect("v on 1");

    let peers = Arc::new(crate::inter_broker::InterBroker::for_broker(&a.topics, &a.config));
    let local: Arc<dyn MarkerWriter> =
        Arc::new(crate::coordinator::local::LocalMarkers::new(a.topics.clone(), a.groups.clone()));
    let w = ClusterMarkers::for_broker(local, a.topics.clone(), peers);
    let log = b.topics.log("t", 0).expect("log on 2");
    let before = log.log_end_offset();
    let outcomes = w.write(&[tp("t", 0), tp("t", 1), tp("v", 0)], commit()).await;
    assert_eq!(outcomes[0], Ok(()));
    assert_eq!(log.log_end_offset(), before + 1, "the marker is in broker 2's log");
    assert!(
        matches!(&outcomes[1], Err(MarkerError::Failed(ResponseError::UnknownTopicOrPartition, _))),
        "{:?}",
        outcomes[1]
    );
    assert!(
        matches!(&outcomes[2], Err(MarkerError::Failed(ResponseError::NotLeaderOrFollower, _))),
        "broker 2 does not lead v-0: {:?}",
        outcomes[2]
    );
    a.topics.logs().shutdown().expect("shutdown");
    b.topics.logs().shutdown().expect("shutdown");
}
