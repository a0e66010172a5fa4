//! Admin requests carried out by the active controller, as Kafka's KRaft
//! brokers forward them (KIP-590 Envelope), on 3 controller-only and 2
//! broker-only processes: CreateTopics, AlterConfigs,
//! IncrementalAlterConfigs, CreatePartitions, DeleteTopics, ElectLeaders,
//! AlterPartitionReassignments and AlterUserScramCredentials sent to a
//! broker are counted by the active controller's request metrics (and by
//! no other controller's), the broker answers once its own Metadata shows
//! the change, and the other broker follows; a broker resource naming
//! another broker is refused by the broker itself (Kafka's preprocess). On
//! the controller listener: the same APIs directly (KIP-919
//! `--bootstrap-controller`), NOT_CONTROLLER from a controller that is not
//! the active one; an Envelope from a connection that is not a registered
//! broker gets CLUSTER_AUTHORIZATION_FAILED, malformed envelopes Kafka's
//! codes, a frame that does not decode closes the connection. Last, kill -9
//! of the active controller while a large CreateTopics is forwarded: the
//! client gets an answer within the request's timeout (success, a retriable
//! error, or TOPIC_ALREADY_EXISTS when the first attempt had committed),
//! never a hang, and the topic can be created once another controller leads.

mod process;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{
    alter_partition_reassignments_request, alter_user_scram_credentials_request, create_topics_request::CreatableTopic,
    incremental_alter_configs_request, AlterPartitionReassignmentsRequest, AlterUserScramCredentialsRequest,
    CreateTopicsRequest, CreateTopicsResponse, DefaultPrincipalData, ElectLeadersRequest, EnvelopeRequest,
    IncrementalAlterConfigsRequest, MetadataRequest, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::ResponseError;
use kaskade_client::connection::{Connection, ConnectionConfig};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use process::cluster::{create, describe_quorum, metadata, start_dedicated, wait_for, Node};
use process::scrape::scrape;
use process::{client_config, WAIT};

const CONTROLLERS: i32 = 3;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// The active controller's `kaskade_requests_total` for `api`, per controller.
fn requests(nodes: &[Node], api: &str) -> Vec<f64> {
    let key = format!("kaskade_requests_total{{api=\"{api}\"}}");
    nodes[..CONTROLLERS as usize].iter().map(|n| scrape(n).and_then(|m| m.get(&key).copied()).unwrap_or(0.0)).collect()
}

fn connect(runtime: &tokio::runtime::Runtime, addr: &str, client_id: &str) -> Arc<Connection> {
    let config = ConnectionConfig {
        client_id: client_id.to_string(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: WAIT,
    };
    runtime.block_on(Connection::connect(addr, config)).expect("connect")
}

fn create_request(name: &str, partitions: i32) -> CreateTopicsRequest {
    let topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.to_string())))
        .with_num_partitions(partitions)
        .with_replication_factor(2);
    CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(20_000)
}

/// A CreateTopics for `name`, encoded as a client would (header + body).
fn encoded_create(name: &str, version: i16) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(19)
        .with_request_api_version(version)
        .with_correlation_id(77)
        .with_client_id(Some(StrBytes::from_static_str("a-client")));
    let mut out = bytes::BytesMut::new();
    header.encode(&mut out, 2).expect("header");
    create_request(name, 1).encode(&mut out, version).expect("body");
    out.freeze()
}

/// A principal as Kafka's `DefaultKafkaPrincipalBuilder` serializes it:
/// its version (0), then `DefaultPrincipalData`.
fn principal() -> Bytes {
    let data = DefaultPrincipalData::default()
        .with_type(StrBytes::from_static_str("User"))
        .with_name(StrBytes::from_static_str("ANONYMOUS"));
    let mut out = bytes::BytesMut::from(&[0u8, 0][..]);
    data.encode(&mut out, 0).expect("principal");
    out.freeze()
}

fn envelope(data: Bytes, principal: Option<Bytes>, address: &[u8]) -> EnvelopeRequest {
    EnvelopeRequest::default()
        .with_request_data(data)
        .with_request_principal(principal)
        .with_client_host_address(Bytes::copy_from_slice(address))
}

/// Writes `bytes` on a fresh connection and reads until the peer closes it.
fn closed_after(addr: &str, bytes: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s.write_all(bytes).expect("write");
    let mut answer = Vec::new();
    match s.read_to_end(&mut answer) {
        Ok(_) => answer,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => answer,
        Err(e) => panic!("{addr} did not close the connection within {WAIT:?}: {e}"),
    }
}

fn topic_partitions(bootstrap: &str, topic: &str) -> Option<usize> {
    metadata(bootstrap, topic).map(|(_, leaders)| leaders.len()).filter(|n| *n > 0)
}

#[test]
fn admin_requests_sent_to_brokers_are_carried_out_by_the_active_controller() {
    let root = tempfile::tempdir().expect("tempdir");
    let http = vec![("KAFKA_HTTP_LISTENER".to_string(), "127.0.0.1:0".to_string())];
    let mut nodes = start_dedicated(root.path(), CONTROLLERS, &http);
    let rt = runtime();
    let (b4, b5) = (nodes[3].bootstrap(), nodes[4].bootstrap());
    let controller_addr = |id: i32| format!("127.0.0.1:{}", nodes[0].voters[&id]);
    let (_, leader, _) = wait_for("the quorum has a leader", || describe_quorum(&rt, &b4).filter(|q| q.0 == 0));
    let li = (leader - 1) as usize;
    let before = requests(&nodes, "CreateTopics");

    // CreateTopics through broker 4: decided by the active controller,
    // in broker 4's own Metadata when answered, then in broker 5's.
    create(&rt, &b4, NewTopic::new("fwd", 6, TopicReplication::Fixed(2))).expect("create through a broker");
    assert_eq!(topic_partitions(&b4, "fwd"), Some(6), "the answering broker already has the topic");
    wait_for("broker 5 has the topic", || topic_partitions(&b5, "fwd").filter(|n| *n == 6));
    let after = requests(&nodes, "CreateTopics");
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        if i == li {
            assert!(a - b >= 1.0, "the active controller {leader} decided it: {before:?} -> {after:?}");
        } else {
            assert_eq!(a - b, 0.0, "controller {} is not active: {before:?} -> {after:?}", i + 1);
        }
    }

    // Topic configs (AlterConfigs) through broker 5, read through broker 4.
    let admin: AdminClient<DefaultClientContext> = client_config(&b5).create().expect("admin");
    let options = AdminOptions::new().operation_timeout(Some(WAIT)).request_timeout(Some(WAIT));
    let altered = rt.block_on(
        admin.alter_configs(&[AlterConfig::new(ResourceSpecifier::Topic("fwd")).set("retention.ms", "4242")], &options),
    );
    assert!(altered.expect("AlterConfigs").iter().all(|r| r.is_ok()), "topic config altered");
    let admin4: AdminClient<DefaultClientContext> = client_config(&b4).create().expect("admin");
    let described = rt.block_on(admin4.describe_configs(&[ResourceSpecifier::Topic("fwd")], &options));
    let described = described.expect("DescribeConfigs").remove(0).expect("described");
    assert_eq!(described.get("retention.ms").and_then(|e| e.value.as_deref()), Some("4242"));
    assert!(requests(&nodes, "AlterConfigs")[li] >= 1.0, "the active controller altered it");

    // Dynamic broker configs (IncrementalAlterConfigs): broker 4 forwards
    // its own id and the cluster default, refuses broker 5's itself.
    let conn = connect(&rt, &b4, "admin-test");
    let resource = |name: &str| {
        let op = incremental_alter_configs_request::AlterableConfig::default()
            .with_name(StrBytes::from_static_str("log.retention.ms"))
            .with_config_operation(0)
            .with_value(Some(StrBytes::from_static_str("3600000")));
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(vec![op])
    };
    let req =
        IncrementalAlterConfigsRequest::default().with_resources(vec![resource("5"), resource("4"), resource("")]);
    let resp = rt.block_on(conn.send(&req, 1)).expect("IncrementalAlterConfigs");
    let codes: Vec<(String, i16)> =
        resp.responses.iter().map(|r| (r.resource_name.to_string(), r.error_code)).collect();
    let invalid = ResponseError::InvalidRequest.code();
    assert_eq!(codes, [("5".to_string(), invalid), ("4".to_string(), 0), (String::new(), 0)], "{resp:?}");
    assert!(requests(&nodes, "IncrementalAlterConfigs")[li] >= 1.0);

    // ElectLeaders, AlterPartitionReassignments and
    // AlterUserScramCredentials through broker 4: the active controller
    // answers (no election needed, no reassignment to cancel, a new user).
    let elect = ElectLeadersRequest::default().with_election_type(0).with_timeout_ms(20_000);
    let resp = rt.block_on(conn.send(&elect, 2)).expect("ElectLeaders");
    assert_eq!(resp.error_code, 0, "{resp:?}");
    let cancel = alter_partition_reassignments_request::ReassignableTopic::default()
        .with_name(TopicName(StrBytes::from_static_str("fwd")))
        .with_partitions(vec![alter_partition_reassignments_request::ReassignablePartition::default()]);
    let req = AlterPartitionReassignmentsRequest::default().with_timeout_ms(20_000).with_topics(vec![cancel]);
    let resp = rt.block_on(conn.send(&req, 0)).expect("AlterPartitionReassignments");
    let code = resp.responses[0].partitions[0].error_code;
    assert_eq!((resp.error_code, code), (0, ResponseError::NoReassignmentInProgress.code()), "{resp:?}");
    let upsert = alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
        .with_name(StrBytes::from_static_str("alice"))
        .with_mechanism(1)
        .with_iterations(4096)
        .with_salt(Bytes::from_static(b"salt"))
        .with_salted_password(Bytes::from_static(&[7; 32]));
    let req = AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsert]);
    let resp = rt.block_on(conn.send(&req, 0)).expect("AlterUserScramCredentials");
    assert_eq!(resp.results.iter().map(|r| r.error_code).collect::<Vec<_>>(), [0], "{resp:?}");
    for api in ["ElectLeaders", "AlterPartitionReassignments", "AlterUserScramCredentials"] {
        let counts = requests(&nodes, api);
        assert!(counts[li] >= 1.0, "the active controller took {api}: {counts:?}");
        assert!(counts.iter().enumerate().all(|(i, c)| i == li || *c == 0.0), "{api}: {counts:?}");
    }

    // CreatePartitions through broker 5, DeleteTopics through broker 4.
    let grown = rt.block_on(admin.create_partitions(&[NewPartitions::new("fwd", 8)], &options));
    assert!(grown.expect("CreatePartitions").iter().all(|r| r.is_ok()));
    assert_eq!(topic_partitions(&b5, "fwd"), Some(8));
    wait_for("broker 4 sees 8 partitions", || topic_partitions(&b4, "fwd").filter(|n| *n == 8));
    let deleted = rt.block_on(admin4.delete_topics(&["fwd"], &options));
    assert!(deleted.expect("DeleteTopics").iter().all(|r| r.is_ok()));
    wait_for("the topic is gone from broker 5", || topic_partitions(&b5, "fwd").is_none().then_some(()));
    let counted = |api: &str| requests(&nodes, api)[li];
    assert!(counted("CreatePartitions") >= 1.0 && counted("DeleteTopics") >= 1.0);

    // Metadata auto-creating a topic through broker 5: the active
    // controller creates it (a CreateTopics in an Envelope) and broker 5
    // answers with it ready.
    let created_before = counted("CreateTopics");
    let conn5 = connect(&rt, &b5, "auto-creator");
    let wanted = kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
        .with_name(Some(TopicName(StrBytes::from_static_str("auto-made"))));
    let req = MetadataRequest::default().with_topics(Some(vec![wanted])).with_allow_auto_topic_creation(true);
    let resp = rt.block_on(conn5.send(&req, 12)).expect("Metadata");
    let topic = &resp.topics[0];
    assert_eq!((topic.error_code, topic.partitions.len()), (0, 1), "{resp:?}");
    assert!(counted("CreateTopics") > created_before, "the active controller created it");
    wait_for("broker 4 has the auto-created topic", || topic_partitions(&b4, "auto-made"));

    // On the controller listener: the active controller decides a
    // CreateTopics sent to it directly; the others answer NOT_CONTROLLER.
    for id in 1..=CONTROLLERS {
        let conn = connect(&rt, &controller_addr(id), "kafka-topics");
        let name = format!("direct-{id}");
        let resp: CreateTopicsResponse =
            rt.block_on(conn.send(&create_request(&name, 2), 7)).expect("CreateTopics on the controller");
        let want = if id == leader { 0 } else { ResponseError::NotController.code() };
        assert_eq!(resp.topics[0].error_code, want, "controller {id}: {resp:?}");
    }
    wait_for("the directly created topic reaches the brokers", || topic_partitions(&b5, &format!("direct-{leader}")));

    // Envelopes: a client's is refused; malformed ones get Kafka's codes.
    let active = controller_addr(leader);
    let data = encoded_create("enveloped", 7);
    let ok_envelope = || envelope(data.clone(), Some(principal()), &[127, 0, 0, 1]);
    for client_id in ["a-client", "kaskade-broker-99", "kaskade-broker-1"] {
        let conn = connect(&rt, &active, client_id);
        let resp = rt.block_on(conn.send(&ok_envelope(), 0)).expect("Envelope");
        assert_eq!(resp.error_code, ResponseError::ClusterAuthorizationFailed.code(), "{client_id}: {resp:?}");
    }
    let broker = connect(&rt, &active, "kaskade-broker-4");
    let send = |e: EnvelopeRequest| rt.block_on(broker.send(&e, 0)).expect("Envelope").error_code;
    assert_eq!(
        send(envelope(data.clone(), None, &[127, 0, 0, 1])),
        ResponseError::PrincipalDeserializationFailure.code()
    );
    assert_eq!(send(envelope(data.clone(), Some(principal()), &[1, 2, 3])), ResponseError::InvalidRequest.code());
    let metadata_frame = kaskade_client::connection::encode_frame(&MetadataRequest::default(), 12, 1, "c").expect("m");
    let not_forwardable = metadata_frame.slice(4..);
    assert_eq!(
        send(envelope(not_forwardable, Some(principal()), &[127, 0, 0, 1])),
        ResponseError::InvalidRequest.code()
    );
    let cut_short = data.slice(..data.len() - 5);
    assert_eq!(send(envelope(cut_short, Some(principal()), &[127, 0, 0, 1])), ResponseError::UnsupportedVersion.code());
    // A well-formed one from a registered broker is carried out.
    let resp = rt.block_on(broker.send(&ok_envelope(), 0)).expect("Envelope");
    assert_eq!(resp.error_code, 0, "{resp:?}");
    wait_for("the enveloped topic reaches the brokers", || topic_partitions(&b4, "enveloped"));
    // An Envelope frame whose body does not decode closes the connection.
    let frame = kaskade_client::connection::encode_frame(&ok_envelope(), 0, 5, "kaskade-broker-4").expect("frame");
    let mut garbled = frame[..frame.len() - 20].to_vec();
    let size = (garbled.len() - 4) as i32;
    garbled[..4].copy_from_slice(&size.to_be_bytes());
    assert!(closed_after(&active, &garbled).is_empty(), "a garbled Envelope is not answered");

    // kill -9 of the active controller while a large CreateTopics is
    // forwarded: answered within its timeout, never a hang.
    let bootstrap = b4.clone();
    let creating = std::thread::spawn(move || {
        let rt = runtime();
        let started = Instant::now();
        let outcome = create(&rt, &bootstrap, NewTopic::new("during-kill", 300, TopicReplication::Fixed(2)));
        (outcome, started.elapsed())
    });
    // A moment for the request to reach the controller: the checks below
    // hold wherever the kill lands.
    std::thread::sleep(Duration::from_millis(300));
    nodes[li].kill9();
    let (outcome, took) = creating.join().expect("the creating thread");
    eprintln!("admin_forwarding: CreateTopics across a kill -9 of the active controller: {outcome:?} in {took:?}");
    assert!(took < WAIT + Duration::from_secs(10), "answered within the request's timeout: {took:?}");
    let allowed = [
        RDKafkaErrorCode::RequestTimedOut,
        RDKafkaErrorCode::NotController,
        RDKafkaErrorCode::TopicAlreadyExists,
        RDKafkaErrorCode::OperationTimedOut,
    ];
    if let Err((message, code)) = &outcome {
        assert!(allowed.contains(code), "a retriable error or the topic made by the first attempt: {code:?} {message}");
    }
    // Each attempt may take up to its own timeout: a longer deadline.
    let brokers = BTreeSet::from([4, 5]);
    let deadline = Instant::now() + 3 * WAIT;
    loop {
        let made = create(&rt, &b5, NewTopic::new("during-kill", 300, TopicReplication::Fixed(2)));
        let placed = matches!(made, Ok(()) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)))
            && metadata(&b5, "during-kill").is_some_and(|(listed, leaders)| {
                listed == brokers && leaders.len() == 300 && leaders.iter().all(|l| brokers.contains(l))
            });
        if placed {
            break;
        }
        assert!(Instant::now() < deadline, "the topic exists once another controller leads: {made:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    for (i, node) in nodes.iter().enumerate() {
        assert!(!node.log().contains("panicked"), "node {} did not panic", i + 1);
    }
}
