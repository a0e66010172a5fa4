//! The admin APIs with a real client (librdkafka via `rdkafka`): create
//! (and its errors), describe and alter configs, create partitions, delete
//! and recreate, delete records, list offsets.

mod common;

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};

use common::*;
use rdkafka::admin::{
    AdminClient, AlterConfig, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::bindings as rd;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset, TopicPartitionList};

type Admin = AdminClient<DefaultClientContext>;

/// CreateTopics for one topic: Ok or the broker's error code.
fn try_create(a: &Admin, t: NewTopic<'_>, validate_only: bool) -> Result<(), RDKafkaErrorCode> {
    let res =
        block_on(a.create_topics([&t], &admin_opts().validate_only(validate_only))).expect("create_topics request");
    assert_eq!(res.len(), 1);
    res[0].clone().map(|_| ()).map_err(|(_, e)| e)
}

fn topic_exists(a: &Admin, name: &str) -> bool {
    let md = a.inner().fetch_metadata(None, WAIT).expect("metadata");
    md.topics().iter().any(|t| t.name() == name)
}

fn partition_count(a: &Admin, name: &str) -> usize {
    let md = a.inner().fetch_metadata(Some(name), WAIT).expect("metadata");
    let t = md.topics().iter().find(|t| t.name() == name).expect("topic in metadata");
    assert!(t.error().is_none(), "{name}: {:?}", t.error());
    t.partitions().len()
}

/// (value, source) of every config entry of a topic.
fn describe_topic(a: &Admin, name: &str) -> BTreeMap<String, (Option<String>, ConfigSource, bool)> {
    let res = block_on(a.describe_configs([&ResourceSpecifier::Topic(name)], &admin_opts()))
        .expect("describe_configs request");
    let r = res.into_iter().next().expect("one resource").expect("describe ok");
    r.entries.into_iter().map(|e| (e.name, (e.value, e.source, e.is_default))).collect()
}

/// The error librdkafka reports for one config resource, if any.
///
/// # Safety
/// `r` must point to a live `rd_kafka_ConfigResource_t`.
unsafe fn resource_error(r: *const rd::rd_kafka_ConfigResource_t) -> Result<(), (RDKafkaErrorCode, String)> {
    let code = rd::rd_kafka_ConfigResource_error(r);
    if code == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        return Ok(());
    }
    let s = rd::rd_kafka_ConfigResource_error_string(r);
    let msg = if s.is_null() { String::new() } else { CStr::from_ptr(s).to_string_lossy().into_owned() };
    Err((RDKafkaErrorCode::from(code), msg))
}

/// Which config admin call [`config_call`] makes.
enum ConfigCall<'a> {
    /// IncrementalAlterConfigs with (key, op, value) operations.
    IncrementalAlter(&'a [(&'a str, rd::rd_kafka_AlterConfigOpType_t, Option<&'a str>)]),
    /// DescribeConfigs (only the resource's error is returned).
    Describe,
}

/// IncrementalAlterConfigs or DescribeConfigs for one topic through
/// librdkafka's C API: the `rdkafka` crate has no wrapper for the first and
/// drops per-resource errors of the second. Returns the resource's error.
fn config_call(a: &Admin, topic: &str, call: ConfigCall<'_>) -> Result<(), (RDKafkaErrorCode, String)> {
    let cstr = |s: &str| CString::new(s).expect("no NUL");
    // SAFETY: plain use of librdkafka's admin C API on a live client handle;
    // every object created here is destroyed here, and pointers read from
    // the result event are used before the event is destroyed.
    unsafe {
        let rk = a.inner().native_ptr();
        let queue = rd::rd_kafka_queue_new(rk);
        let name = cstr(topic);
        let resource =
            rd::rd_kafka_ConfigResource_new(rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC, name.as_ptr());
        let mut resources = [resource];
        let options = match &call {
            ConfigCall::IncrementalAlter(ops) => {
                for (key, op, value) in ops.iter() {
                    let k = cstr(key);
                    let v = value.map(cstr);
                    let err = rd::rd_kafka_ConfigResource_add_incremental_config(
                        resource,
                        k.as_ptr(),
                        *op,
                        v.as_ref().map_or(std::ptr::null(), |v| v.as_ptr()),
                    );
                    if !err.is_null() {
                        let msg = CStr::from_ptr(rd::rd_kafka_error_string(err)).to_string_lossy().into_owned();
                        rd::rd_kafka_error_destroy(err);
                        panic!("adding incremental op {key}: {msg}");
                    }
                }
                let options = rd::rd_kafka_AdminOptions_new(
                    rk,
                    rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS,
                );
                rd::rd_kafka_IncrementalAlterConfigs(rk, resources.as_mut_ptr(), 1, options, queue);
                options
            }
            ConfigCall::Describe => {
                let options =
                    rd::rd_kafka_AdminOptions_new(rk, rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
                rd::rd_kafka_DescribeConfigs(rk, resources.as_mut_ptr(), 1, options, queue);
                options
            }
        };
        let event = rd::rd_kafka_queue_poll(queue, WAIT.as_millis() as i32);
        assert!(!event.is_null(), "no admin result within {WAIT:?}");
        let top = rd::rd_kafka_event_error(event);
        let outcome = if top != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            let msg = CStr::from_ptr(rd::rd_kafka_event_error_string(event)).to_string_lossy().into_owned();
            Err((RDKafkaErrorCode::from(top), msg))
        } else {
            let mut count = 0usize;
            let list = match call {
                ConfigCall::IncrementalAlter(_) => {
                    let result = rd::rd_kafka_event_IncrementalAlterConfigs_result(event);
                    assert!(!result.is_null(), "not an IncrementalAlterConfigs result");
                    rd::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count)
                }
                ConfigCall::Describe => {
                    let result = rd::rd_kafka_event_DescribeConfigs_result(event);
                    assert!(!result.is_null(), "not a DescribeConfigs result");
                    rd::rd_kafka_DescribeConfigs_result_resources(result, &mut count)
                }
            };
            assert_eq!(count, 1);
            resource_error(*list)
        };
        rd::rd_kafka_event_destroy(event);
        rd::rd_kafka_AdminOptions_destroy(options);
        rd::rd_kafka_ConfigResource_destroy(resource);
        rd::rd_kafka_queue_destroy(queue);
        outcome
    }
}

fn incremental_alter(
    a: &Admin,
    topic: &str,
    ops: &[(&str, rd::rd_kafka_AlterConfigOpType_t, Option<&str>)],
) -> Result<(), (RDKafkaErrorCode, String)> {
    config_call(a, topic, ConfigCall::IncrementalAlter(ops))
}

use rd::rd_kafka_AlterConfigOpType_t::{
    RD_KAFKA_ALTER_CONFIG_OP_TYPE_APPEND as APPEND, RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE as DELETE,
    RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET as SET, RD_KAFKA_ALTER_CONFIG_OP_TYPE_SUBTRACT as SUBTRACT,
};

#[test]
fn create_topics_and_their_errors() {
    let tb = TestBroker::start();
    let a = admin(&tb.bootstrap());
    let name = unique("created");

    // validate_only: answered as a create would be, but nothing is created.
    try_create(&a, NewTopic::new(&name, 3, TopicReplication::Fixed(1)), true).expect("validate_only create");
    assert!(!topic_exists(&a, &name), "validate_only created the topic");
    try_create(&a, NewTopic::new(&name, 0, TopicReplication::Fixed(1)), true)
        .expect_err("validate_only still validates");

    try_create(&a, NewTopic::new(&name, 3, TopicReplication::Fixed(1)).set("retention.ms", "3600000"), false)
        .expect("create");
    assert!(topic_exists(&a, &name));
    assert_eq!(partition_count(&a, &name), 3);

    assert_eq!(
        try_create(&a, NewTopic::new(&name, 3, TopicReplication::Fixed(1)), false),
        Err(RDKafkaErrorCode::TopicAlreadyExists)
    );
    assert_eq!(
        try_create(&a, NewTopic::new(&name, 3, TopicReplication::Fixed(1)), true),
        Err(RDKafkaErrorCode::TopicAlreadyExists),
        "validate_only reports an existing topic too"
    );
    let other = unique("other");
    assert_eq!(
        try_create(&a, NewTopic::new(&other, 0, TopicReplication::Fixed(1)), false),
        Err(RDKafkaErrorCode::InvalidPartitions)
    );
    assert_eq!(
        try_create(&a, NewTopic::new(&other, 1, TopicReplication::Fixed(3)), false),
        Err(RDKafkaErrorCode::InvalidReplicationFactor)
    );
    assert_eq!(
        try_create(&a, NewTopic::new("bad name!", 1, TopicReplication::Fixed(1)), false),
        Err(RDKafkaErrorCode::InvalidTopic)
    );
    assert_eq!(
        try_create(&a, NewTopic::new(&"x".repeat(250), 1, TopicReplication::Fixed(1)), false),
        Err(RDKafkaErrorCode::InvalidTopic)
    );
    assert_eq!(
        try_create(&a, NewTopic::new("..", 1, TopicReplication::Fixed(1)), false),
        Err(RDKafkaErrorCode::InvalidTopic)
    );
    assert_eq!(
        try_create(&a, NewTopic::new(&other, 1, TopicReplication::Fixed(1)).set("retention.ms", "not-a-number"), false),
        Err(RDKafkaErrorCode::InvalidConfig)
    );
    assert_eq!(
        try_create(&a, NewTopic::new(&other, 1, TopicReplication::Fixed(1)).set("no.such.config", "1"), false),
        Err(RDKafkaErrorCode::InvalidConfig)
    );
    // Kafka 4 (KIP-1030): segment.bytes is at least 1 MiB.
    assert_eq!(
        try_create(&a, NewTopic::new(&other, 1, TopicReplication::Fixed(1)).set("segment.bytes", "1024"), false),
        Err(RDKafkaErrorCode::InvalidConfig)
    );
    // None of the failed attempts left anything behind.
    assert!(!topic_exists(&a, &other));
    assert!(!topic_exists(&a, "bad name!"));
    // -1 partitions and replication factor take the broker defaults.
    try_create(&a, NewTopic::new(&other, -1, TopicReplication::Fixed(-1)), false).expect("create with defaults");
    assert_eq!(partition_count(&a, &other), 1, "num.partitions defaults to 1");
}

#[test]
fn describe_and_alter_configs() {
    let tb = TestBroker::start();
    let a = admin(&tb.bootstrap());
    let name = unique("configs");
    try_create(&a, NewTopic::new(&name, 1, TopicReplication::Fixed(1)).set("retention.ms", "3600000"), false)
        .expect("create");

    let d = describe_topic(&a, &name);
    let (v, src, is_default) = &d["retention.ms"];
    assert_eq!((v.as_deref(), src, is_default), (Some("3600000"), &ConfigSource::DynamicTopic, &false));
    let (v, src, is_default) = &d["cleanup.policy"];
    assert_eq!((v.as_deref(), src, is_default), (Some("delete"), &ConfigSource::Default, &true));
    let (v, src, _) = &d["max.message.bytes"];
    assert_eq!((v.as_deref(), src), (Some("1048588"), &ConfigSource::Default));
    let (v, src, _) = &d["segment.bytes"];
    assert_eq!((v.as_deref(), src), (Some("1073741824"), &ConfigSource::Default));

    // An unknown topic is an error for that resource.
    let err = config_call(&a, "no-such-topic", ConfigCall::Describe).expect_err("describing an unknown topic");
    assert_eq!(err.0, RDKafkaErrorCode::UnknownTopicOrPartition, "{err:?}");
    config_call(&a, &name, ConfigCall::Describe).expect("describing an existing topic");

    // The broker's own configs.
    let node = tb.server().broker.node_id().get();
    let res = block_on(a.describe_configs([&ResourceSpecifier::Broker(node)], &admin_opts())).expect("request");
    let broker = res.into_iter().next().unwrap().expect("broker configs");
    let mmb = broker.get("message.max.bytes").expect("message.max.bytes");
    assert_eq!((mmb.value.as_deref(), &mmb.source), (Some("1048588"), &ConfigSource::Default));

    // Incremental: SET adds to the overrides, keeping the others.
    incremental_alter(&a, &name, &[("segment.bytes", SET, Some("1048576"))]).expect("SET");
    let d = describe_topic(&a, &name);
    assert_eq!(d["segment.bytes"].0.as_deref(), Some("1048576"));
    assert_eq!(d["segment.bytes"].1, ConfigSource::DynamicTopic);
    assert_eq!(d["retention.ms"].0.as_deref(), Some("3600000"), "an incremental SET must keep other overrides");
    // DELETE goes back to the default.
    incremental_alter(&a, &name, &[("retention.ms", DELETE, None)]).expect("DELETE");
    let d = describe_topic(&a, &name);
    assert_eq!(d["retention.ms"].0.as_deref(), Some("604800000"));
    assert_eq!(d["retention.ms"].1, ConfigSource::Default);
    // APPEND and SUBTRACT on a list.
    incremental_alter(&a, &name, &[("cleanup.policy", APPEND, Some("compact"))]).expect("APPEND");
    assert_eq!(describe_topic(&a, &name)["cleanup.policy"].0.as_deref(), Some("delete,compact"));
    incremental_alter(&a, &name, &[("cleanup.policy", SUBTRACT, Some("delete"))]).expect("SUBTRACT");
    assert_eq!(describe_topic(&a, &name)["cleanup.policy"].0.as_deref(), Some("compact"));
    // A bad value is INVALID_CONFIG and changes nothing.
    let err = incremental_alter(&a, &name, &[("segment.bytes", SET, Some("lots"))]).expect_err("bad value");
    assert_eq!(err.0, RDKafkaErrorCode::InvalidConfig, "{err:?}");
    assert_eq!(describe_topic(&a, &name)["segment.bytes"].0.as_deref(), Some("1048576"));
    // APPEND on a non-list key is refused.
    let err = incremental_alter(&a, &name, &[("retention.ms", APPEND, Some("5"))]).expect_err("APPEND on a non-list");
    assert_eq!(err.0, RDKafkaErrorCode::InvalidConfig, "{err:?}");
    // An unknown topic.
    let err = incremental_alter(&a, "no-such-topic", &[("retention.ms", SET, Some("5"))]).expect_err("unknown topic");
    assert_eq!(err.0, RDKafkaErrorCode::UnknownTopicOrPartition, "{err:?}");

    // Legacy AlterConfigs replaces the whole set of overrides.
    let alter = AlterConfig::new(ResourceSpecifier::Topic(&name)).set("max.message.bytes", "2000000");
    let res = block_on(a.alter_configs([&alter], &admin_opts())).expect("alter_configs request");
    assert!(res[0].is_ok(), "{:?}", res[0]);
    let d = describe_topic(&a, &name);
    assert_eq!(d["max.message.bytes"].0.as_deref(), Some("2000000"));
    assert_eq!(d["max.message.bytes"].1, ConfigSource::DynamicTopic);
    assert_eq!(d["segment.bytes"].1, ConfigSource::Default, "legacy AlterConfigs removes overrides it does not name");
    assert_eq!(d["cleanup.policy"].0.as_deref(), Some("delete"));

    // The new limit is enforced on produce: 1.5 MB now fits.
    let p = producer(&tb.bootstrap(), &[("message.max.bytes", "10000000")]);
    let big = vec![7u8; 1_500_000];
    send(&p, FutureRecord::<[u8], [u8]>::to(&name).partition(0).payload(&big[..]))
        .expect("1.5 MB under max.message.bytes=2000000");
}

#[test]
fn create_partitions_delete_and_recreate() {
    let tb = TestBroker::start();
    let a = admin(&tb.bootstrap());
    let name = unique("grow");
    create_topic(&a, &name, 2, &[]);

    let res = block_on(a.create_partitions([&NewPartitions::new(&name, 5)], &admin_opts())).expect("request");
    assert!(res[0].is_ok(), "{:?}", res[0]);
    assert_eq!(partition_count(&a, &name), 5);
    let res = block_on(a.create_partitions([&NewPartitions::new(&name, 3)], &admin_opts())).expect("request");
    assert_eq!(res[0].clone().map_err(|(_, e)| e), Err(RDKafkaErrorCode::InvalidPartitions));
    let res = block_on(a.create_partitions([&NewPartitions::new(&name, 5)], &admin_opts())).expect("request");
    assert_eq!(res[0].clone().map_err(|(_, e)| e), Err(RDKafkaErrorCode::InvalidPartitions));
    let res = block_on(a.create_partitions([&NewPartitions::new(&name, 7)], &admin_opts().validate_only(true)))
        .expect("request");
    assert!(res[0].is_ok(), "{:?}", res[0]);
    assert_eq!(partition_count(&a, &name), 5, "validate_only added partitions");
    let res = block_on(a.create_partitions([&NewPartitions::new("no-such-topic", 3)], &admin_opts())).expect("request");
    assert_eq!(res[0].clone().map_err(|(_, e)| e), Err(RDKafkaErrorCode::UnknownTopicOrPartition));

    // A new partition takes records.
    let p = producer(&tb.bootstrap(), &[]);
    for i in 0..3 {
        let (part, off) =
            send(&p, FutureRecord::<[u8], [u8]>::to(&name).partition(4).payload(format!("old-{i}").as_bytes()))
                .expect("delivery");
        assert_eq!((part, off), (4, i));
    }
    drop(p);
    let old_id = tb.server().broker.topics.image().topic(&name).expect("in the image").id;

    // Delete.
    let res = block_on(a.delete_topics(&[&name], &admin_opts())).expect("delete_topics request");
    assert!(res[0].is_ok(), "{:?}", res[0]);
    assert!(!topic_exists(&a, &name));
    let res = block_on(a.delete_topics(&[&name], &admin_opts())).expect("delete_topics request");
    assert_eq!(res[0].clone().map_err(|(_, e)| e), Err(RDKafkaErrorCode::UnknownTopicOrPartition));
    let c = consumer(&tb.bootstrap(), &[("allow.auto.create.topics", "false")]);
    let md = c.fetch_metadata(Some(&name), WAIT).expect("metadata");
    let t = md.topics().iter().find(|t| t.name() == name).expect("the asked topic is answered");
    assert_eq!(t.error().map(RDKafkaErrorCode::from), Some(RDKafkaErrorCode::UnknownTopicOrPartition));
    assert!(!tb.data_dir().join(format!("{name}-4")).exists(), "the deleted topic's partition directories are gone");

    // Recreate with the same name: a new topic, empty, with its own id.
    create_topic(&a, &name, 1, &[]);
    let new_id = tb.server().broker.topics.image().topic(&name).expect("in the image").id;
    assert_ne!(old_id, new_id, "a recreated topic gets a new topic id");
    assert_eq!(partition_count(&a, &name), 1);
    let c = consumer(&tb.bootstrap(), &[]);
    assert_eq!(c.fetch_watermarks(&name, 0, WAIT).expect("watermarks"), (0, 0), "the recreated topic is empty");
    let p = producer(&tb.bootstrap(), &[]);
    assert_eq!(
        send(&p, FutureRecord::<[u8], [u8]>::to(&name).partition(0).payload(&b"new"[..])).expect("delivery"),
        (0, 0)
    );
    assign(&c, &[(name.as_str(), 0, Offset::Beginning)]);
    let got = consume(&c, 1, WAIT);
    assert_eq!(got[0].payload(), Some(&b"new"[..]));
}

#[test]
fn delete_records_and_list_offsets() {
    let tb = TestBroker::start();
    let a = admin(&tb.bootstrap());
    let name = unique("offsets");
    // Small segments (Kafka 4's minimum, 1 MiB) and 100 KB records, so
    // deleting records also removes whole segments.
    create_topic(&a, &name, 2, &[("segment.bytes", "1048576")]);
    let p = producer(&tb.bootstrap(), &[("linger.ms", "0")]);
    let base_ts = 1_700_000_000_000i64;
    for i in 0..20i64 {
        // Timestamps 10 s apart, one record per batch.
        let v = format!("value-{i:02}-{}", "x".repeat(100_000));
        let (part, off) = send(
            &p,
            FutureRecord::<[u8], [u8]>::to(&name).partition(0).timestamp(base_ts + i * 10_000).payload(v.as_bytes()),
        )
        .expect("delivery");
        assert_eq!((part, off), (0, i));
    }
    let c = consumer(&tb.bootstrap(), &[]);
    // Earliest / latest (ListOffsets -2 / -1).
    assert_eq!(c.fetch_watermarks(&name, 0, WAIT).unwrap(), (0, 20));
    assert_eq!(c.fetch_watermarks(&name, 1, WAIT).unwrap(), (0, 0));

    // By timestamp: the first record at or after it.
    let lookup = |ts: i64| -> Offset {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&name, 0, Offset::Offset(ts)).unwrap();
        let r = c.offsets_for_times(tpl, WAIT).expect("offsets_for_times");
        let e = r.find_partition(&name, 0).expect("partition in the answer");
        assert!(e.error().is_ok(), "{:?}", e.error());
        e.offset()
    };
    assert_eq!(lookup(base_ts), Offset::Offset(0));
    assert_eq!(lookup(0), Offset::Offset(0));
    assert_eq!(lookup(base_ts + 50_000), Offset::Offset(5));
    assert_eq!(lookup(base_ts + 50_001), Offset::Offset(6));
    assert_eq!(lookup(base_ts + 190_000), Offset::Offset(19));
    assert_eq!(lookup(base_ts + 190_001), Offset::End, "past the last timestamp: no offset (-1)");

    // DeleteRecords moves the low watermark.
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&name, 0, Offset::Offset(12)).unwrap();
    let r = block_on(a.delete_records(&tpl, &admin_opts())).expect("delete_records");
    let e = r.find_partition(&name, 0).expect("partition in the answer");
    assert!(e.error().is_ok(), "{:?}", e.error());
    assert_eq!(e.offset(), Offset::Offset(12), "the new low watermark");
    assert_eq!(c.fetch_watermarks(&name, 0, WAIT).unwrap(), (12, 20));
    // Earliest now starts there, and a timestamp before it answers it.
    assert_eq!(lookup(base_ts), Offset::Offset(12));
    assert_eq!(lookup(base_ts + 130_000), Offset::Offset(13));
    // Reading from the beginning starts at the low watermark.
    assign(&c, &[(name.as_str(), 0, Offset::Beginning)]);
    let got = consume(&c, 8, WAIT);
    assert_eq!(got.first().map(|m| m.offset()), Some(12));
    assert_eq!(got.last().map(|m| m.offset()), Some(19));
    assert!(got[0].payload().unwrap().starts_with(b"value-12-"));
    // Whole segments below the low watermark are gone from disk.
    let first_segment = tb.data_dir().join(format!("{name}-0")).join(format!("{:020}.log", 0));
    assert!(!first_segment.exists(), "{} should be deleted", first_segment.display());

    // Deleting below the low watermark is a no-op; past the high watermark
    // is OFFSET_OUT_OF_RANGE; -1 (Offset::End) means the high watermark.
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&name, 0, Offset::Offset(3)).unwrap();
    let r = block_on(a.delete_records(&tpl, &admin_opts())).expect("delete_records");
    assert_eq!(r.find_partition(&name, 0).unwrap().offset(), Offset::Offset(12));
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&name, 0, Offset::Offset(21)).unwrap();
    let r = block_on(a.delete_records(&tpl, &admin_opts())).expect("delete_records");
    assert_eq!(
        r.find_partition(&name, 0).unwrap().error().err().and_then(|e| e.rdkafka_error_code()),
        Some(RDKafkaErrorCode::OffsetOutOfRange)
    );
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&name, 0, Offset::End).unwrap();
    let r = block_on(a.delete_records(&tpl, &admin_opts())).expect("delete_records");
    assert_eq!(r.find_partition(&name, 0).unwrap().offset(), Offset::Offset(20));
    assert_eq!(c.fetch_watermarks(&name, 0, WAIT).unwrap(), (20, 20));
    // The next record still gets offset 20.
    assert_eq!(
        send(&p, FutureRecord::<[u8], [u8]>::to(&name).partition(0).payload(&b"after"[..])).expect("delivery"),
        (0, 20)
    );
}
