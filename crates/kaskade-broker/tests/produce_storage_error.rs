//! An acks=all Produce whose fsync fails: the broker answers
//! KAFKA_STORAGE_ERROR (never acknowledges the batch, never leaves the
//! request hanging until its timeout), as Kafka's `DelayedProduce` does
//! when the local append's log goes offline.
//!
//! The failure is injected at the log's flush seam
//! (`Log::inject_sync_failure`): the group-commit fsync fails as a failing
//! disk's would. The request goes over the raw wire at an exact version so
//! the error code is seen as the broker sent it (librdkafka would retry).

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::wire::SyncConn;
use common::*;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use kaskade_log::batch::build;

const TOPIC: &str = "fsync-fails";
/// The request's own timeout: the answer must come well before it.
const REQUEST_TIMEOUT_MS: i32 = 60_000;

fn produce_request(acks: i16) -> ProduceRequest {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    ProduceRequest::default().with_acks(acks).with_timeout_ms(REQUEST_TIMEOUT_MS).with_topic_data(vec![
        TopicProduceData::default().with_name(TopicName(StrBytes::from_static_str(TOPIC))).with_partition_data(vec![
            PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(build::filled(3, 50, now, 7)))),
        ]),
    ])
}

/// The one partition's (error code, base offset).
fn answer(resp: &ProduceResponse) -> (i16, i64) {
    let p = resp.responses.first().and_then(|t| t.partition_responses.first()).expect("a partition answer");
    (p.error_code, p.base_offset)
}

#[test]
fn acks_all_answers_kafka_storage_error_promptly_when_the_fsync_fails() {
    let tb = TestBroker::start();
    create_topic(&admin(&tb.bootstrap()), TOPIC, 1, &[]);
    let mut conn = SyncConn::connect(tb.addr());
    // Healthy first: acks=all is acknowledged at offset 0.
    let ok: ProduceResponse = conn.call(9, &produce_request(-1));
    assert_eq!(answer(&ok), (0, 0));
    let log = tb.server().broker.topics.log(TOPIC, 0).expect("the partition's log");
    let hw_before = log.high_watermark();
    assert_eq!(hw_before, 3);

    log.inject_sync_failure(Some("injected: EIO from fdatasync".into()));
    let sent = Instant::now();
    let waiting = conn.start(9, produce_request(-1));
    let resp = conn.finish(waiting);
    let took = sent.elapsed();
    assert_eq!(
        answer(&resp),
        (ResponseError::KafkaStorageError.code(), -1),
        "the acks=all write is answered with KAFKA_STORAGE_ERROR, not acknowledged"
    );
    assert!(
        took < Duration::from_millis(REQUEST_TIMEOUT_MS as u64 / 4),
        "answered when the fsync failed ({took:?}), not at the request timeout"
    );
    assert_eq!(log.high_watermark(), hw_before, "the batch never became visible to consumers");

    // The log is offline now: the next write is refused at once, whatever
    // its acks.
    let again: ProduceResponse = conn.call(9, &produce_request(1));
    assert_eq!(answer(&again), (ResponseError::KafkaStorageError.code(), -1));
    log.inject_sync_failure(None);
}
