//! CreatePartitions with explicit replica assignments on a 3-node cluster,
//! as Kafka's KRaft controller decides them
//! (`ReplicationControlManager.createPartitions`): rdkafka's AdminClient
//! (`NewPartitions::assign`) through a node that forwards to the active
//! controller. `validate_only` checks and adds nothing; a valid assignment
//! places the replicas as asked on every node (Metadata and
//! DescribeTopicPartitions), its first replica leading; each bad case
//! (assignment count, width, duplicate, unknown broker, empty list, every
//! replica fenced) gets INVALID_REPLICA_ASSIGNMENT with Kafka's message and
//! adds nothing; a fenced broker may be named beside an unfenced one, which
//! then leads, the fenced one out of the ISR.

mod process;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_partitions_request::{CreatePartitionsAssignment, CreatePartitionsTopic};
use kafka_protocol::messages::describe_topic_partitions_request::TopicRequest;
use kafka_protocol::messages::{BrokerId, CreatePartitionsRequest, DescribeTopicPartitionsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use kaskade_client::connection::{Connection, ConnectionConfig};
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use process::cluster::{active_controller, create, start_cluster_with, wait_for};
use process::{client_config, WAIT};

/// Short, so that a killed broker is fenced well within `WAIT`.
const SESSION: Duration = Duration::from_secs(6);

/// (leader, replicas, isr) of each partition.
type Placement = Vec<(i32, Vec<i32>, Vec<i32>)>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// The listed brokers and each partition's placement of `topic`, as the
/// node at `bootstrap` answers Metadata.
fn placement(bootstrap: &str, topic: &str) -> Option<(Vec<i32>, Placement)> {
    let consumer: BaseConsumer = client_config(bootstrap).create().ok()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)).ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    if t.error().is_some() {
        return None;
    }
    let mut parts: Vec<_> = t.partitions().iter().map(|p| (p.id(), p)).collect();
    parts.sort_by_key(|(id, _)| *id);
    let placed = parts.iter().map(|(_, p)| (p.leader(), p.replicas().to_vec(), p.isr().to_vec())).collect();
    Some((md.brokers().iter().map(|b| b.id()).collect(), placed))
}

/// The same through DescribeTopicPartitions (v0), from a client connection.
fn described(rt: &tokio::runtime::Runtime, bootstrap: &str, topic: &str) -> Option<Placement> {
    let conn = connect(rt, bootstrap)?;
    let req = DescribeTopicPartitionsRequest::default()
        .with_topics(vec![TopicRequest::default().with_name(TopicName(StrBytes::from_string(topic.into())))])
        .with_response_partition_limit(100);
    let resp = rt.block_on(conn.send(&req, 0)).ok()?;
    let t = resp.topics.into_iter().find(|t| t.error_code == 0)?;
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<i32>>();
    let mut parts = t.partitions;
    parts.sort_by_key(|p| p.partition_index);
    Some(parts.iter().map(|p| (p.leader_id.0, ids(&p.replica_nodes), ids(&p.isr_nodes))).collect())
}

fn connect(rt: &tokio::runtime::Runtime, bootstrap: &str) -> Option<std::sync::Arc<Connection>> {
    let config = ConnectionConfig {
        client_id: "assignments-test".into(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: WAIT,
    };
    rt.block_on(Connection::connect(bootstrap, config)).ok()
}

/// CreateTopics of one partition, retried within `WAIT` on retriable answers; a retry that
/// finds the topic made by an earlier attempt counts as made.
fn create_topic(rt: &tokio::runtime::Runtime, bootstrap: &str, name: &str, replication: i32) {
    let deadline = Instant::now() + WAIT;
    let mut retried = false;
    loop {
        match create(rt, bootstrap, NewTopic::new(name, 1, TopicReplication::Fixed(replication))) {
            Ok(()) => return,
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) if retried => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("CreateTopics {name}: {e:?}, retrying");
                retried = true;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("CreateTopics {name}: {e:?}"),
        }
    }
}

/// rdkafka's CreatePartitions for one topic: `Ok` or the error code.
fn grow(
    rt: &tokio::runtime::Runtime,
    admin: &AdminClient<DefaultClientContext>,
    partitions: NewPartitions<'_>,
    validate_only: bool,
) -> Result<(), RDKafkaErrorCode> {
    let options =
        AdminOptions::new().operation_timeout(Some(WAIT)).request_timeout(Some(WAIT)).validate_only(validate_only);
    let results = rt.block_on(admin.create_partitions(&[partitions], &options)).expect("CreatePartitions sent");
    results.into_iter().next().expect("one result").map(|_| ()).map_err(|(_, code)| code)
}

/// A CreatePartitions sent on a connection: (error code, message).
fn grow_raw(rt: &tokio::runtime::Runtime, bootstrap: &str, topic: &str, count: i32, lists: &[&[i32]]) -> (i16, String) {
    let conn = connect(rt, bootstrap).expect("connect");
    let assignments = lists
        .iter()
        .map(|l| CreatePartitionsAssignment::default().with_broker_ids(l.iter().map(|b| BrokerId(*b)).collect()))
        .collect();
    let t = CreatePartitionsTopic::default()
        .with_name(TopicName(StrBytes::from_string(topic.into())))
        .with_count(count)
        .with_assignments(Some(assignments));
    let req = CreatePartitionsRequest::default().with_topics(vec![t]).with_timeout_ms(WAIT.as_millis() as i32);
    let resp = rt.block_on(conn.send(&req, 3)).expect("CreatePartitions");
    let r = resp.results.into_iter().next().expect("one result");
    (r.error_code, r.error_message.map(|m| m.to_string()).unwrap_or_default())
}

#[test]
fn explicit_assignments_are_placed_as_asked_and_bad_ones_refused_as_kafka_refuses_them() {
    let root = tempfile::tempdir().expect("tempdir");
    let env = [
        ("KAFKA_BROKER_SESSION_TIMEOUT_MS".to_string(), SESSION.as_millis().to_string()),
        ("KAFKA_BROKER_HEARTBEAT_INTERVAL_MS".to_string(), "500".to_string()),
    ];
    let mut nodes = start_cluster_with(root.path(), 3, &env);
    let rt = runtime();
    let boots: Vec<String> = nodes.iter().map(|n| n.bootstrap()).collect();
    let active = wait_for("an active controller", || active_controller(&rt, &boots[0]));
    // Requests go through a node that is not the active controller, so
    // they are forwarded as Kafka's brokers forward them.
    let via = (0..3).find(|i| nodes[*i].id != active).expect("a non-controller");
    let admin: AdminClient<DefaultClientContext> = client_config(&boots[via]).create().expect("admin");

    create_topic(&rt, &boots[via], "placed", 2);
    // Every broker registered and unfenced (listed) everywhere, so the
    // ISRs below are whole.
    for b in &boots {
        wait_for("every node has the topic and lists every broker", || {
            placement(b, "placed").filter(|(brokers, p)| p.len() == 1 && brokers.len() == 3)
        });
    }

    // validate_only: accepted, nothing added.
    let asked: [&[i32]; 2] = [&[3, 1], &[2, 3]];
    assert_eq!(grow(&rt, &admin, NewPartitions::new("placed", 3).assign(&asked), true), Ok(()));
    for b in &boots {
        let (_, p) = placement(b, "placed").expect("metadata");
        assert_eq!(p.len(), 1, "validate_only added partitions on {b}");
    }

    // Placed as asked, on every node, the first replica leading.
    assert_eq!(grow(&rt, &admin, NewPartitions::new("placed", 3).assign(&asked), false), Ok(()));
    let expected = [(3, vec![3, 1], vec![3, 1]), (2, vec![2, 3], vec![2, 3])];
    for b in &boots {
        let (_, p) =
            wait_for("the assigned partitions in Metadata", || placement(b, "placed").filter(|(_, p)| p.len() == 3));
        assert_eq!(p[1..], expected, "Metadata on {b}");
        let d = wait_for("DescribeTopicPartitions answers", || described(&rt, b, "placed"));
        assert_eq!(d[1..], expected, "DescribeTopicPartitions on {b}");
    }

    // Each bad case: INVALID_REPLICA_ASSIGNMENT, nothing added.
    let invalid = Err(RDKafkaErrorCode::InvalidReplicaAssignment);
    let one: [&[i32]; 1] = [&[1, 2]];
    assert_eq!(grow(&rt, &admin, NewPartitions::new("placed", 5).assign(&one), false), invalid, "2 added, 1 list");
    let wide: [&[i32]; 1] = [&[1, 2, 3]];
    assert_eq!(grow(&rt, &admin, NewPartitions::new("placed", 4).assign(&wide), false), invalid, "3 replicas of 2");
    let twice: [&[i32]; 1] = [&[1, 1]];
    assert_eq!(grow(&rt, &admin, NewPartitions::new("placed", 4).assign(&twice), false), invalid, "broker twice");
    let unknown: [&[i32]; 1] = [&[1, 9]];
    assert_eq!(grow(&rt, &admin, NewPartitions::new("placed", 4).assign(&unknown), false), invalid, "broker 9");
    let second_bad: [&[i32]; 2] = [&[1, 2], &[2, 9]];
    assert_eq!(grow(&rt, &admin, NewPartitions::new("placed", 5).assign(&second_bad), false), invalid);
    assert_eq!(grow(&rt, &admin, NewPartitions::new("placed", 4).assign(&unknown), true), invalid, "validate_only");

    // Kafka's messages, on the wire.
    let code = ResponseError::InvalidReplicaAssignment.code();
    let cases: [(i32, &[&[i32]], &str); 5] = [
        (5, &[&[1, 2]], "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."),
        (
            4,
            &[&[1, 2, 3]],
            "The manual partition assignment includes a partition with 3 replica(s), but this is not consistent with previous partitions, which have 2 replica(s).",
        ),
        (4, &[&[1, 1]], "The manual partition assignment includes the broker 1 more than once."),
        (4, &[&[1, 9]], "The manual partition assignment includes broker 9, but no such broker is registered."),
        (4, &[&[]], "The manual partition assignment includes an empty replica list."),
    ];
    for (count, lists, message) in cases {
        assert_eq!(grow_raw(&rt, &boots[via], "placed", count, lists), (code, message.to_string()));
    }
    for b in &boots {
        assert_eq!(placement(b, "placed").expect("metadata").1.len(), 3, "a refused request added partitions on {b}");
    }

    // A fenced broker: killed, fenced after its session, still registered.
    // The victim is not the active controller; the requests now go to the
    // active controller's node, an unfenced broker.
    let victim = nodes[via].id;
    let live_at = (0..3).find(|i| nodes[*i].id == active).expect("the controller is a node");
    let live = nodes[live_at].id;
    let ask = boots[live_at].clone();
    create_topic(&rt, &ask, "lonely", 1);
    wait_for("the RF-1 topic", || placement(&ask, "lonely").filter(|(_, p)| p.len() == 1));
    let killed = Instant::now();
    nodes[via].kill9();
    wait_for("the killed broker fenced (unlisted)", || {
        placement(&ask, "placed").filter(|(brokers, _)| !brokers.contains(&victim))
    });
    eprintln!("kill -9 -> broker {victim} unlisted in {:?} (session {SESSION:?})", killed.elapsed());
    let admin: AdminClient<DefaultClientContext> = client_config(&ask).create().expect("admin");
    let alone: [&[i32]; 1] = [&[victim]];
    let all_fenced =
        "All brokers specified in the manual partition assignment for partition 1 are fenced or in controlled shutdown."
            .to_string();
    assert_eq!(grow(&rt, &admin, NewPartitions::new("lonely", 2).assign(&alone), false), invalid);
    assert_eq!(grow_raw(&rt, &ask, "lonely", 2, &alone), (code, all_fenced));
    // Beside an unfenced broker it may be named: the unfenced one leads.
    let beside: [&[i32]; 1] = [&[victim, live]];
    assert_eq!(grow(&rt, &admin, NewPartitions::new("placed", 4).assign(&beside), false), Ok(()));
    let d: BTreeMap<usize, _> =
        wait_for("the partition beside a fenced broker", || described(&rt, &ask, "placed").filter(|d| d.len() == 4))
            .into_iter()
            .enumerate()
            .collect();
    assert_eq!(d[&3], (live, vec![victim, live], vec![live]), "the fenced replica is out of the ISR");
}
