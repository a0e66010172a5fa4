//! Producer id blocks from the active controller (AllocateProducerIds, 67)
//! in a three-node cluster: idempotent producers' InitProducerId on every
//! broker (each asks the active controller for its own block of 1000)
//! never get the same producer id, and no two brokers hand out ids of one
//! block. On the controller listeners an AllocateProducerIds at a broker
//! epoch the broker does not have gets no block: STALE_BROKER_EPOCH from
//! the active controller, NOT_CONTROLLER from the others. Every wait is on
//! a condition with a deadline.

mod process;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafka_protocol::messages::{AllocateProducerIdsRequest, BrokerId, InitProducerIdRequest, ProducerId};
use kafka_protocol::ResponseError;
use kaskade_client::connection::{Connection, ConnectionConfig};

use process::cluster::{start_cluster_with, wait_for};

fn config() -> ConnectionConfig {
    ConnectionConfig {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(15),
        ..Default::default()
    }
}

/// An idempotent producer's new id from the broker at `bootstrap`.
fn init_producer_id(runtime: &tokio::runtime::Runtime, bootstrap: &str) -> Option<i64> {
    let conn = runtime.block_on(Connection::connect(bootstrap, config())).ok()?;
    let req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let version = conn.version::<InitProducerIdRequest>().ok()?;
    let answer = runtime.block_on(conn.send(&req, version)).ok()?;
    // COORDINATOR_LOAD_IN_PROGRESS while the broker has no block: retried.
    (answer.error_code == 0).then_some(answer.producer_id.0)
}

#[test]
fn brokers_get_distinct_producer_id_blocks_from_the_active_controller() {
    let root = tempfile::tempdir().expect("tempdir");
    let nodes = start_cluster_with(root.path(), 3, &[]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");

    let mut by_broker: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for round in 0..3 {
        for node in &nodes {
            let id = wait_for(&format!("node {} hands out a producer id (round {round})", node.id), || {
                init_producer_id(&runtime, &node.bootstrap())
            });
            by_broker.entry(node.id).or_default().push(id);
        }
    }
    let all: Vec<i64> = by_broker.values().flatten().copied().collect();
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "no producer id handed out twice: {by_broker:?}");
    // Each broker's ids come from blocks of its own.
    let mut owner: BTreeMap<i64, i32> = BTreeMap::new();
    for (broker, ids) in &by_broker {
        assert!(ids.iter().all(|id| *id >= 0), "{by_broker:?}");
        for id in ids {
            let previous = owner.insert(id / 1000, *broker);
            assert!(previous.is_none_or(|b| b == *broker), "block {} is on two brokers: {by_broker:?}", id / 1000);
        }
    }
    eprintln!("producer_id_blocks: ids by broker {by_broker:?}");

    // A stale broker epoch, at every controller listener: no block.
    let request = AllocateProducerIdsRequest::default().with_broker_id(BrokerId(2)).with_broker_epoch(12345);
    let answers = wait_for("one active controller refuses the epoch, the others say NOT_CONTROLLER", || {
        let mut codes = BTreeMap::new();
        for (id, port) in &nodes[0].voters {
            let conn = runtime.block_on(Connection::connect(&format!("127.0.0.1:{port}"), config())).ok()?;
            let answer = runtime.block_on(conn.send(&request, 0)).ok()?;
            assert_eq!(answer.producer_id_len, 0, "a refusal names no block: {answer:?}");
            codes.insert(*id, answer.error_code);
        }
        let stale = codes.values().filter(|c| **c == ResponseError::StaleBrokerEpoch.code()).count();
        let not = codes.values().filter(|c| **c == ResponseError::NotController.code()).count();
        (stale == 1 && not == 2).then_some(codes)
    });
    eprintln!("producer_id_blocks: AllocateProducerIds at a stale broker epoch, by controller: {answers:?}");
}
