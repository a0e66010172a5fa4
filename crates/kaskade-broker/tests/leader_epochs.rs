//! Leader epochs through the partition layer: Fetch, ListOffsets and
//! OffsetForLeaderEpoch check the request's `current_leader_epoch` against
//! the partition's (older: FENCED_LEADER_EPOCH, newer: UNKNOWN_LEADER_EPOCH),
//! and OffsetForLeaderEpoch answers from the log's leader-epoch cache, which
//! the partition fills when it becomes leader, across a restart.
//!
//! One node never elects anyone, so the test plays the controller: with the
//! broker stopped it appends a partition record with leader epoch 1 to the
//! metadata log, as an election would, and starts the broker again. Records
//! are produced with librdkafka; the epoch checks go over the raw wire at
//! exact versions (a client library would hide the error codes).

mod common;

use common::wire::SyncConn;
use common::*;
use kafka_protocol::messages::{
    fetch_request, list_offsets_request, offset_for_leader_epoch_request, BrokerId, FetchRequest, FetchResponse,
    ListOffsetsRequest, ListOffsetsResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use kaskade_meta::{LocalMetadataLog, MetadataLog, MetadataRecord};
use rdkafka::producer::FutureRecord;

const TOPIC: &str = "epochs";

fn name() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

fn produce(broker: &TestBroker, n: usize) {
    let p = producer(&broker.bootstrap(), &[("acks", "all")]);
    for i in 0..n {
        let value = format!("v{i}");
        send(&p, FutureRecord::to(TOPIC).payload(value.as_bytes())).expect("produce");
    }
}

/// What a controller's election writes: partition 0 led by node 1 at
/// `epoch`. Appended while the broker is stopped.
fn elect(broker: &TestBroker, epoch: i32) {
    let meta = LocalMetadataLog::open(&broker.data_dir().join("kaskade-metadata")).expect("metadata log");
    let committed = meta.committed();
    let topic = committed.image.topic(TOPIC).expect("topic");
    let record = MetadataRecord::Partition {
        topic_id: topic.id,
        partition: 0,
        leader: 1,
        replicas: vec![1],
        isr: vec![1],
        leader_epoch: epoch,
        partition_epoch: 0,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
    };
    meta.append(committed.version, vec![record]).expect("append the election");
}

/// (error code, leader epoch, end offset) of OffsetForLeaderEpoch v4.
fn end_of_epoch(conn: &mut SyncConn, current: i32, epoch: i32) -> (i16, i32, i64) {
    let partition = offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
        .with_partition(0)
        .with_current_leader_epoch(current)
        .with_leader_epoch(epoch);
    let topic = offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
        .with_topic(name())
        .with_partitions(vec![partition]);
    let req = OffsetForLeaderEpochRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![topic]);
    let resp: OffsetForLeaderEpochResponse = conn.call(4, &req);
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.leader_epoch, p.end_offset)
}

/// (error code, offset) of ListOffsets v7 for "latest".
fn latest(conn: &mut SyncConn, current: i32) -> (i16, i64) {
    let partition = list_offsets_request::ListOffsetsPartition::default()
        .with_partition_index(0)
        .with_current_leader_epoch(current)
        .with_timestamp(-1);
    let topic = list_offsets_request::ListOffsetsTopic::default().with_name(name()).with_partitions(vec![partition]);
    let req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![topic]);
    let resp: ListOffsetsResponse = conn.call(7, &req);
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.offset)
}

/// Fetch v12 from offset 0 of partition 0, named with `current` (`None`:
/// not named, an incremental fetch of a session that remembers it).
fn fetch_request(session_id: i32, session_epoch: i32, current: Option<i32>) -> FetchRequest {
    let topics = current.map_or_else(Vec::new, |current| {
        let partition = fetch_request::FetchPartition::default()
            .with_partition(0)
            .with_current_leader_epoch(current)
            .with_fetch_offset(0)
            .with_partition_max_bytes(1 << 20);
        vec![fetch_request::FetchTopic::default().with_topic(name()).with_partitions(vec![partition])]
    });
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_session_id(session_id)
        .with_session_epoch(session_epoch)
        .with_topics(topics)
}

/// (error code, high watermark, record bytes) of a sessionless fetch.
fn fetch(conn: &mut SyncConn, current: i32) -> (i16, i64, usize) {
    let resp: FetchResponse = conn.call(12, &fetch_request(0, -1, Some(current)));
    let p = &resp.responses[0].partitions[0];
    (p.error_code, p.high_watermark, p.records.as_ref().map_or(0, |r| r.len()))
}

#[test]
fn epoch_checks_and_the_epoch_cache_after_an_election_and_a_restart() {
    let mut broker = TestBroker::start();
    create_topic(&admin(&broker.bootstrap()), TOPIC, 1, &[]);
    produce(&broker, 5);
    let mut conn = SyncConn::connect(broker.addr());
    assert_eq!(end_of_epoch(&mut conn, 0, 0), (0, 0, 5), "epoch 0 runs to the log end");
    assert_eq!(end_of_epoch(&mut conn, 1, 0).0, ResponseError::UnknownLeaderEpoch.code());
    assert_eq!(fetch(&mut conn, 1).0, ResponseError::UnknownLeaderEpoch.code(), "Fetch checks the epoch too");
    drop(conn);

    broker.shutdown();
    elect(&broker, 1);
    broker.restart();
    let mut conn = SyncConn::connect(broker.addr());
    // Epoch 1 has no batch yet: only the partition's becoming leader put it
    // in the cache, at the log end of the time.
    assert_eq!(end_of_epoch(&mut conn, 1, 0), (0, 0, 5), "epoch 0 ended where epoch 1 began");
    assert_eq!(end_of_epoch(&mut conn, 1, 1), (0, 1, 5));
    let checkpoint = std::fs::read_to_string(broker.data_dir().join(format!("{TOPIC}-0/leader-epoch-checkpoint")))
        .expect("leader-epoch-checkpoint");
    assert_eq!(checkpoint, "0\n2\n0 0\n1 5\n", "Kafka's checkpoint format");

    produce(&broker, 3);
    let fenced = ResponseError::FencedLeaderEpoch.code();
    let unknown = ResponseError::UnknownLeaderEpoch.code();
    assert_eq!(end_of_epoch(&mut conn, 1, 1), (0, 1, 8), "the latest epoch runs to the log end");
    assert_eq!(end_of_epoch(&mut conn, -1, 0), (0, 0, 5), "no current epoch: no check");
    assert_eq!(end_of_epoch(&mut conn, 0, 1).0, fenced);
    assert_eq!(end_of_epoch(&mut conn, 2, 1).0, unknown);

    assert_eq!(latest(&mut conn, 1), (0, 8));
    assert_eq!(latest(&mut conn, -1), (0, 8));
    assert_eq!(latest(&mut conn, 0), (fenced, -1));
    assert_eq!(latest(&mut conn, 2), (unknown, -1));

    let (code, hw, bytes) = fetch(&mut conn, 1);
    assert_eq!((code, hw), (0, 8));
    assert!(bytes > 0, "the current epoch reads the records");
    assert!(fetch(&mut conn, -1).2 > 0, "no current epoch: no check");
    assert_eq!(fetch(&mut conn, 0), (fenced, -1, 0));
    assert_eq!(fetch(&mut conn, 2), (unknown, -1, 0));

    // A fetch session remembers the epoch the client named: an incremental
    // fetch that does not name the partition is checked against it.
    let created: FetchResponse = conn.call(12, &fetch_request(0, 0, Some(0)));
    assert_ne!(created.session_id, 0, "a session was created");
    assert_eq!(created.responses[0].partitions[0].error_code, fenced);
    let again: FetchResponse = conn.call(12, &fetch_request(created.session_id, 1, None));
    assert_eq!(again.responses.len(), 1, "an error is news: {again:?}");
    assert_eq!(again.responses[0].partitions[0].error_code, fenced, "checked against the remembered epoch");
}
