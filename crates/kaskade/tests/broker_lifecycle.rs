//! Kafka's BrokerRegistration (62) and BrokerHeartbeat (63) on the
//! controller listener of a 3-node cluster of `kaskade serve` processes,
//! spoken by a raw client as a broker would: the nodes themselves register
//! and heartbeat this way (the cluster forms), and a made-up broker 7 gets
//! Kafka's answers: INCONSISTENT_CLUSTER_ID for another cluster's id,
//! NOT_CONTROLLER from a controller that is not the active one,
//! STALE_BROKER_EPOCH for an epoch its registration did not give or an id
//! never registered, DUPLICATE_BROKER_REGISTRATION for a second live
//! process, fenced while it asks to be (`want_fence`) or names an offline
//! log directory (`offline_log_dirs`), unfenced when caught up, and a
//! controlled shutdown (`want_shut_down`) that fences it and lets
//! it stop. A malformed request closes the connection and the controller
//! keeps answering. Every wait is on a condition with a deadline.

mod process;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use kafka_protocol::messages::broker_registration_request::Listener;
use kafka_protocol::messages::{
    ApiKey, BrokerHeartbeatRequest, BrokerHeartbeatResponse, BrokerId, BrokerRegistrationRequest,
    BrokerRegistrationResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use kaskade_client::connection::{Connection, ConnectionConfig};
use process::cluster::{active_controller, start_cluster, wait_for, CLUSTER_ID};
use process::WAIT;

fn registration(id: i32, cluster_id: &str, incarnation: uuid::Uuid) -> BrokerRegistrationRequest {
    let listener = Listener::default()
        .with_name(StrBytes::from_static_str("PLAINTEXT"))
        .with_host(StrBytes::from_static_str("127.0.0.1"))
        .with_port(1)
        .with_security_protocol(0);
    BrokerRegistrationRequest::default()
        .with_broker_id(BrokerId(id))
        .with_cluster_id(StrBytes::from_string(cluster_id.to_string()))
        .with_incarnation_id(incarnation)
        .with_listeners(vec![listener])
        .with_previous_broker_epoch(-1)
}

fn heartbeat(id: i32, epoch: i64, want_fence: bool, want_shut_down: bool) -> BrokerHeartbeatRequest {
    BrokerHeartbeatRequest::default()
        .with_broker_id(BrokerId(id))
        .with_broker_epoch(epoch)
        .with_current_metadata_offset(i64::MAX)
        .with_want_fence(want_fence)
        .with_want_shut_down(want_shut_down)
}

async fn register(conn: &Connection, req: &BrokerRegistrationRequest) -> BrokerRegistrationResponse {
    let version = conn.version::<BrokerRegistrationRequest>().expect("a common version");
    conn.send(req, version).await.expect("BrokerRegistration answered")
}

async fn beat(conn: &Connection, req: &BrokerHeartbeatRequest) -> BrokerHeartbeatResponse {
    let version = conn.version::<BrokerHeartbeatRequest>().expect("a common version");
    conn.send(req, version).await.expect("BrokerHeartbeat answered")
}

#[test]
fn registrations_and_heartbeats_over_kafkas_protocol_get_kafkas_answers() {
    let root = tempfile::tempdir().expect("tempdir");
    let nodes = start_cluster(root.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let active = wait_for("an active controller", || active_controller(&runtime, &nodes[0].bootstrap()));
    let controller = |id: i32| format!("127.0.0.1:{}", nodes[0].voters[&id]);
    let other = *nodes[0].voters.keys().find(|id| **id != active).expect("a follower controller");

    runtime.block_on(async {
        let config = ConnectionConfig { client_id: "broker-lifecycle-test".into(), ..ConnectionConfig::default() };
        let conn = Connection::connect(&controller(active), config.clone()).await.expect("connect to the active");
        assert!(conn.broker_range(ApiKey::BrokerRegistration).is_some(), "ApiVersions lists BrokerRegistration");
        assert!(conn.broker_range(ApiKey::BrokerHeartbeat).is_some(), "ApiVersions lists BrokerHeartbeat");

        let wrong = register(&conn, &registration(7, "another-cluster-id", uuid::Uuid::new_v4())).await;
        assert_eq!(wrong.error_code, ResponseError::InconsistentClusterId.code());
        assert_eq!(wrong.broker_epoch, -1);
        let nil = register(&conn, &registration(7, CLUSTER_ID, uuid::Uuid::nil())).await;
        assert_eq!(nil.error_code, ResponseError::InvalidRequest.code(), "a nil incarnation id");

        // A follower controller is not the active one.
        let follower = Connection::connect(&controller(other), config.clone()).await.expect("connect to a follower");
        let refused = register(&follower, &registration(7, CLUSTER_ID, uuid::Uuid::new_v4())).await;
        assert_eq!(refused.error_code, ResponseError::NotController.code());
        assert_eq!(
            beat(&follower, &heartbeat(1, 0, false, false)).await.error_code,
            ResponseError::NotController.code()
        );

        // Epochs the controller never gave.
        let never = beat(&conn, &heartbeat(99, 0, false, false)).await;
        assert_eq!((never.error_code, never.is_fenced), (ResponseError::StaleBrokerEpoch.code(), true));
        let stale = beat(&conn, &heartbeat(1, 12_345, false, false)).await;
        assert_eq!(stale.error_code, ResponseError::StaleBrokerEpoch.code(), "node 1's registration gave another");

        // Broker 7 registers, fenced; it stays fenced while it asks to.
        let first = uuid::Uuid::new_v4();
        let registered = register(&conn, &registration(7, CLUSTER_ID, first)).await;
        assert_eq!(registered.error_code, 0);
        let epoch = registered.broker_epoch;
        assert!(epoch >= 0, "{epoch}");
        let held = beat(&conn, &heartbeat(7, epoch, true, false)).await;
        assert_eq!((held.error_code, held.is_caught_up, held.is_fenced), (0, true, true));
        let deadline = Instant::now() + WAIT;
        loop {
            let answer = beat(&conn, &heartbeat(7, epoch, false, false)).await;
            assert_eq!(answer.error_code, 0);
            if !answer.is_fenced {
                break;
            }
            assert!(Instant::now() < deadline, "broker 7 still fenced after {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A heartbeat naming an offline log directory (v1) fences it, as
        // want_fence does; without one it is unfenced again.
        let offline = heartbeat(7, epoch, false, false).with_offline_log_dirs(vec![uuid::Uuid::new_v4()]);
        let dir_failed = beat(&conn, &offline).await;
        assert_eq!((dir_failed.error_code, dir_failed.is_fenced), (0, true), "an offline log dir fences");
        let deadline = Instant::now() + WAIT;
        while beat(&conn, &heartbeat(7, epoch, false, false)).await.is_fenced {
            assert!(Instant::now() < deadline, "broker 7 still fenced after {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A second process with id 7 while the first heartbeats.
        let duplicate = register(&conn, &registration(7, CLUSTER_ID, uuid::Uuid::new_v4())).await;
        assert_eq!(duplicate.error_code, ResponseError::DuplicateBrokerRegistration.code());

        // Controlled shutdown: fenced, then told it may stop.
        let deadline = Instant::now() + WAIT;
        loop {
            let answer = beat(&conn, &heartbeat(7, epoch, false, true)).await;
            assert_eq!(answer.error_code, 0);
            if answer.should_shut_down {
                assert!(answer.is_fenced);
                break;
            }
            assert!(Instant::now() < deadline, "no controlled shutdown within {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    // A malformed BrokerRegistration (v0 header, a body cut after 2 bytes)
    // closes the connection, answered with nothing.
    let mut raw = std::net::TcpStream::connect(controller(active)).expect("connect");
    raw.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut frame = Vec::new();
    frame.extend_from_slice(&62i16.to_be_bytes()); // API key
    frame.extend_from_slice(&0i16.to_be_bytes()); // version
    frame.extend_from_slice(&1i32.to_be_bytes()); // correlation id
    frame.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
    frame.push(0); // no tagged fields
    frame.extend_from_slice(&[0, 0]); // half a broker id
    let mut sent = (frame.len() as i32).to_be_bytes().to_vec();
    sent.extend_from_slice(&frame);
    raw.write_all(&sent).expect("sent");
    let mut buf = [0u8; 64];
    match raw.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the connection should close without an answer: {other:?}"),
    }

    // The controller keeps answering, and the cluster's own brokers stay registered.
    runtime.block_on(async {
        let conn = Connection::connect(&controller(active), ConnectionConfig::default()).await.expect("connect");
        let stale = beat(&conn, &heartbeat(2, 12_345, false, false)).await;
        assert_eq!(stale.error_code, ResponseError::StaleBrokerEpoch.code());
    });
    let expected: std::collections::BTreeSet<i32> = [1, 2, 3].into_iter().collect();
    // Node 2 may apply the fence a moment after the controller answered.
    wait_for("the nodes listed as brokers, and broker 7, fenced, not", || {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer = process::client_config(&nodes[1].bootstrap()).create().ok()?;
        let md = consumer.fetch_metadata(None, Duration::from_secs(5)).ok()?;
        let ids: std::collections::BTreeSet<i32> = md.brokers().iter().map(|b| b.id()).collect();
        (ids == expected).then_some(())
    });
}
