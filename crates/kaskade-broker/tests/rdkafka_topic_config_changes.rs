//! A configuration change takes effect on the very next produce. The
//! partition logs carry the topic's typed configuration (`LogConfig`),
//! built when the topic's overrides or the broker's defaults change, not
//! parsed per request; every way of changing it (IncrementalAlterConfigs
//! and AlterConfigs on the topic, dynamic broker defaults cluster-wide and
//! per broker) hands the logs their new config before it answers, so a
//! produce sent after the answer sees it. Changes go over the raw wire
//! (the `rdkafka` crate has no IncrementalAlterConfigs); records are sent
//! with librdkafka.

mod common;

use common::wire::SyncConn;
use common::*;
use kafka_protocol::messages::{
    alter_configs_request, incremental_alter_configs_request, AlterConfigsRequest, AlterConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// DescribeConfigs / AlterConfigs resource types.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;
/// IncrementalAlterConfigs operations.
const SET: i8 = 0;
const DELETE: i8 = 1;

/// IncrementalAlterConfigs v1 on one resource; panics unless it succeeds.
fn incremental(conn: &mut SyncConn, resource_type: i8, name: &str, ops: &[(&str, i8, Option<&str>)]) {
    let configs = ops
        .iter()
        .map(|(key, op, value)| {
            incremental_alter_configs_request::AlterableConfig::default()
                .with_name(StrBytes::from_string(key.to_string()))
                .with_config_operation(*op)
                .with_value(value.map(|v| StrBytes::from_string(v.to_string())))
        })
        .collect();
    let resource = incremental_alter_configs_request::AlterConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(StrBytes::from_string(name.to_string()))
        .with_configs(configs);
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![resource]);
    let resp: IncrementalAlterConfigsResponse = conn.call(1, &req);
    let r = resp.responses.first().expect("one resource answered");
    assert_eq!(r.error_code, 0, "IncrementalAlterConfigs {name:?} {ops:?}: {:?}", r.error_message);
}

/// Legacy AlterConfigs v1 on one resource: `configs` become its whole set of
/// overrides; panics unless it succeeds.
fn alter(conn: &mut SyncConn, resource_type: i8, name: &str, configs: &[(&str, &str)]) {
    let configs = configs
        .iter()
        .map(|(key, value)| {
            alter_configs_request::AlterableConfig::default()
                .with_name(StrBytes::from_string(key.to_string()))
                .with_value(Some(StrBytes::from_string(value.to_string())))
        })
        .collect();
    let resource = alter_configs_request::AlterConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(StrBytes::from_string(name.to_string()))
        .with_configs(configs);
    let req = AlterConfigsRequest::default().with_resources(vec![resource]);
    let resp: AlterConfigsResponse = conn.call(1, &req);
    let r = resp.responses.first().expect("one resource answered");
    assert_eq!(r.error_code, 0, "AlterConfigs {name:?}: {:?}", r.error_message);
}

/// One record without a key (refused by compacted topics).
fn keyless(p: &FutureProducer, topic: &str) -> Result<i64, KafkaError> {
    send(p, FutureRecord::<[u8], [u8]>::to(topic).partition(0).payload(&b"no key"[..])).map(|(_, off)| off)
}

/// One keyed record of about `size` bytes.
fn keyed(p: &FutureProducer, topic: &str, size: usize) -> Result<i64, KafkaError> {
    let value = vec![b'v'; size];
    send(p, FutureRecord::<[u8], [u8]>::to(topic).partition(0).key(&b"k"[..]).payload(&value[..])).map(|(_, off)| off)
}

const REFUSED_KEYLESS: KafkaError = KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord);
const TOO_LARGE: KafkaError = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);

/// The codec (attribute bits 0-2) of the batch holding `offset` in the
/// partition's first segment.
fn codec_at(broker: &TestBroker, topic: &str, offset: i64) -> i16 {
    let path = broker.data_dir().join(format!("{topic}-0")).join("00000000000000000000.log");
    let bytes = std::fs::read(&path).expect("segment");
    let mut pos = 0usize;
    // Each batch: base offset (8), length (4) of the rest; attributes at 21,
    // last offset delta at 23.
    while pos + 27 <= bytes.len() {
        let at = |i: usize, n: usize| &bytes[pos + i..pos + i + n];
        let base = i64::from_be_bytes(at(0, 8).try_into().expect("8 bytes"));
        let len = i32::from_be_bytes(at(8, 4).try_into().expect("4 bytes")) as usize;
        let last = base + i64::from(i32::from_be_bytes(at(23, 4).try_into().expect("4 bytes")));
        if (base..=last).contains(&offset) {
            return i16::from_be_bytes(at(21, 2).try_into().expect("2 bytes")) & 0x7;
        }
        pos += 12 + len;
    }
    panic!("offset {offset} is not in {}", path.display());
}

#[test]
fn topic_config_changes_apply_to_the_next_produce() {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique("cfg-change");
    create_topic(&admin(&bootstrap), &topic, 1, &[]);
    let p = producer(&bootstrap, &[("linger.ms", "0")]);
    let mut conn = SyncConn::connect(broker.addr());
    keyless(&p, &topic).expect("a delete-policy topic takes keyless records");

    // IncrementalAlterConfigs on the topic.
    incremental(&mut conn, TOPIC, &topic, &[("cleanup.policy", SET, Some("compact"))]);
    assert_eq!(keyless(&p, &topic), Err(REFUSED_KEYLESS), "compacted now");
    keyed(&p, &topic, 10).expect("keyed records are still taken");

    // Legacy AlterConfigs replaces the whole set: cleanup.policy goes back
    // to the default, max.message.bytes is new.
    alter(&mut conn, TOPIC, &topic, &[("max.message.bytes", "2000")]);
    keyless(&p, &topic).expect("cleanup.policy is back to delete");
    assert_eq!(keyed(&p, &topic, 4000), Err(TOO_LARGE), "max.message.bytes=2000 now");
    incremental(&mut conn, TOPIC, &topic, &[("max.message.bytes", DELETE, None)]);
    keyed(&p, &topic, 4000).expect("back to the broker's message.max.bytes");

    // A value with blanks around it is accepted, and means what it says.
    incremental(&mut conn, TOPIC, &topic, &[("compression.type", SET, Some(" gzip "))]);
    let off = keyed(&p, &topic, 100).expect("delivered");
    assert_eq!(codec_at(&broker, &topic, off), 1, "stored as gzip");
    incremental(&mut conn, TOPIC, &topic, &[("compression.type", DELETE, None)]);
    let off = keyed(&p, &topic, 100).expect("delivered");
    assert_eq!(codec_at(&broker, &topic, off), 0, "stored as the producer sent it");
}

#[test]
fn dynamic_broker_defaults_apply_to_the_next_produce() {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    let a = admin(&bootstrap);
    let plain = unique("cfg-plain");
    let pinned = unique("cfg-pinned");
    create_topic(&a, &plain, 1, &[]);
    create_topic(&a, &pinned, 1, &[("cleanup.policy", "delete")]);
    let p = producer(&bootstrap, &[("linger.ms", "0")]);
    let mut conn = SyncConn::connect(broker.addr());
    let node = "1";

    // The cluster-wide default reaches topics without an override only.
    incremental(&mut conn, BROKER, "", &[("log.cleanup.policy", SET, Some("compact"))]);
    assert_eq!(keyless(&p, &plain), Err(REFUSED_KEYLESS), "the new default is compact");
    keyless(&p, &pinned).expect("a topic override outranks the broker default");

    // This broker's own value outranks the cluster-wide one ...
    incremental(&mut conn, BROKER, node, &[("log.cleanup.policy", SET, Some("delete"))]);
    keyless(&p, &plain).expect("the broker's own default is delete");
    // ... and once removed, the cluster-wide one is back.
    incremental(&mut conn, BROKER, node, &[("log.cleanup.policy", DELETE, None)]);
    assert_eq!(keyless(&p, &plain), Err(REFUSED_KEYLESS), "the cluster-wide default again");
    incremental(&mut conn, BROKER, "", &[("log.cleanup.policy", DELETE, None)]);
    keyless(&p, &plain).expect("the static default again");

    // message.max.bytes is max.message.bytes' broker synonym.
    alter(&mut conn, BROKER, node, &[("message.max.bytes", "2000")]);
    assert_eq!(keyed(&p, &plain, 4000), Err(TOO_LARGE), "message.max.bytes=2000 now");
    alter(&mut conn, BROKER, node, &[]);
    keyed(&p, &plain, 4000).expect("the static message.max.bytes again");
}
