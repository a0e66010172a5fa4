//! Log compaction seen by a real client (librdkafka via `rdkafka`): a topic
//! with `cleanup.policy=compact` gets many updates of a few keys; the
//! broker's cleaner thread (`log.cleaner.backoff.ms` shortened) compacts the
//! closed segments, and a consumer reading from the beginning then sees
//! each key's latest value at the offset it was acknowledged with, and none
//! of the older ones, also after a restart. DescribeConfigs reports the
//! compaction keys.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::admin::{ConfigSource, ResourceSpecifier};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset};

/// (offset, key, value) of every record from the beginning to the high
/// watermark, read until librdkafka reports the partition's end.
fn read_from_start(bootstrap: &str, topic: &str) -> Vec<(i64, String, Option<String>)> {
    let c = consumer(bootstrap, &[("enable.partition.eof", "true")]);
    assign(&c, &[(topic, 0, Offset::Beginning)]);
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "no end of partition within {WAIT:?}; read {out:?}");
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push((
                m.offset(),
                String::from_utf8(m.key().expect("keyed").to_vec()).expect("utf8"),
                m.payload().map(|p| String::from_utf8(p.to_vec()).expect("utf8")),
            )),
            Some(Err(KafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
}

/// Segment base offsets of the partition, from its directory.
fn segment_bases(broker: &TestBroker, topic: &str) -> Vec<i64> {
    let dir = broker.data_dir().join(format!("{topic}-0"));
    let mut bases: Vec<i64> = std::fs::read_dir(dir)
        .expect("partition dir")
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".log")?.parse().ok())
        .collect();
    bases.sort_unstable();
    bases
}

#[test]
fn a_compacted_topic_keeps_the_latest_value_of_each_key_at_its_offset() {
    let mut broker = TestBroker::start_with(&[("log.cleaner.backoff.ms", "100")]);
    let bootstrap = broker.bootstrap();
    let topic = unique("compacted");
    create_topic(
        &admin(&bootstrap),
        &topic,
        1,
        &[("cleanup.policy", "compact"), ("segment.ms", "1"), ("min.cleanable.dirty.ratio", "0.01")],
    );

    // 6 keys x 25 updates, one batch each (every delivery awaited), so with
    // segment.ms=1 the updates spread over many segments; then a deleted key.
    let p = producer(&bootstrap, &[("linger.ms", "0")]);
    let mut latest: BTreeMap<String, (i64, Option<String>)> = BTreeMap::new();
    for round in 0..25 {
        for k in 0..6 {
            let key = format!("key-{k}");
            let value = format!("{key}-round-{round}");
            let rec = FutureRecord::to(&topic).key(key.as_bytes()).payload(value.as_bytes());
            let (_, off) = send(&p, rec).expect("delivered");
            latest.insert(key, (off, Some(value)));
        }
    }
    let rec = FutureRecord::to(&topic).key("deleted".as_bytes()).payload("soon gone".as_bytes());
    send(&p, rec).expect("delivered");
    let (_, tomb) = send(&p, FutureRecord::<[u8], [u8]>::to(&topic).key("deleted".as_bytes())).expect("tombstone");
    latest.insert("deleted".into(), (tomb, None));
    let last_update = tomb;

    // The active segment is never cleaned: append sentinels until one has
    // rolled a segment after the last update.
    let sentinel = wait_for("a segment after the last update", WAIT, || {
        let rec = FutureRecord::to(&topic).key("sentinel".as_bytes()).payload("s".as_bytes());
        let (_, off) = send(&p, rec).expect("delivered");
        segment_bases(&broker, &topic).iter().any(|b| *b > last_update).then_some(off)
    });

    // The cleaner compacts in the background: poll with a deadline.
    let want = |got: &[(i64, String, Option<String>)]| {
        let mut seen: BTreeMap<String, Vec<(i64, Option<String>)>> = BTreeMap::new();
        for (off, k, v) in got {
            if *off <= last_update {
                seen.entry(k.clone()).or_default().push((*off, v.clone()));
            }
        }
        seen.into_iter().all(|(k, v)| v.len() == 1 && latest.get(&k) == Some(&v[0])) && latest.len() >= 6
    };
    let got = wait_for("the cleaner to compact the topic", Duration::from_secs(60), || {
        let got = read_from_start(&bootstrap, &topic);
        want(&got).then_some(got)
    });
    for (key, (off, value)) in &latest {
        match value {
            Some(v) => assert!(
                got.contains(&(*off, key.clone(), Some(v.clone()))),
                "{key}'s latest value is at its acknowledged offset {off}"
            ),
            None => assert!(
                got.iter().all(|(_, k, v)| k != key || v.is_none()),
                "nothing but (maybe) the tombstone is left of {key}"
            ),
        }
    }
    let offsets: Vec<i64> = got.iter().map(|g| g.0).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "offsets strictly increase: {offsets:?}");
    let c = consumer(&bootstrap, &[]);
    let (lo, hi) = c.fetch_watermarks(&topic, 0, WAIT).expect("watermarks");
    assert_eq!(lo, 0, "compaction does not move the log start");
    assert!(hi > sentinel, "compaction does not move the log end");

    // DescribeConfigs shows the topic's compaction keys.
    let a = admin(&bootstrap);
    let res = block_on(a.describe_configs([&ResourceSpecifier::Topic(&topic)], &admin_opts())).expect("describe");
    let cfg = res.into_iter().next().expect("one resource").expect("describe ok");
    let entry = |name: &str| cfg.get(name).unwrap_or_else(|| panic!("{name} is described"));
    assert_eq!(entry("cleanup.policy").value.as_deref(), Some("compact"));
    assert_eq!(entry("cleanup.policy").source, ConfigSource::DynamicTopic);
    assert_eq!(entry("delete.retention.ms").value.as_deref(), Some("86400000"));
    assert_eq!(entry("min.compaction.lag.ms").value.as_deref(), Some("0"));
    assert_eq!(entry("max.compaction.lag.ms").value.as_deref(), Some("9223372036854775807"));
    assert_eq!(entry("min.cleanable.dirty.ratio").value.as_deref(), Some("0.01"));

    // The cleaned segments are a valid log after a restart.
    drop((p, c, a));
    broker.restart();
    let again = read_from_start(&broker.bootstrap(), &topic);
    let before: Vec<_> = got.iter().filter(|g| g.0 <= last_update).collect();
    let after: Vec<_> = again.iter().filter(|g| g.0 <= last_update).collect();
    assert_eq!(after, before, "the compacted log reads the same after a restart");
}
