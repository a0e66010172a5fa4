//! A topic's `compression.type` as Kafka honours it (LogValidator): batches
//! that librdkafka sends in another codec are stored recompressed, with the
//! topic's KIP-390 level, and consumers read the same records back.

mod common;

use common::*;
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset};

/// The codec (attribute bits 0-2) of the first batch of a partition's log.
fn first_batch_codec(broker: &TestBroker, topic: &str) -> i16 {
    let path = broker.data_dir().join(format!("{topic}-0")).join("00000000000000000000.log");
    let bytes = std::fs::read(&path).expect("segment");
    // base offset 8, length 4, leader epoch 4, magic 1, crc 4: attributes at 21.
    i16::from_be_bytes([bytes[21], bytes[22]]) & 0x7
}

#[test]
fn batches_are_stored_in_the_topic_codec_and_read_back_unchanged() {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    let admin = admin(&bootstrap);
    // (topic codec, producer codec, codec expected on disk)
    let cases = [
        ("gzip", "none", 1),
        ("snappy", "lz4", 2),
        ("lz4", "zstd", 3),
        ("zstd", "gzip", 4),
        ("uncompressed", "snappy", 0),
        ("producer", "gzip", 1),
    ];
    for (topic_codec, producer_codec, on_disk) in cases {
        let topic = unique(&format!("recompress-{topic_codec}"));
        create_topic(&admin, &topic, 1, &[("compression.type", topic_codec), ("compression.zstd.level", "9")]);
        let p = producer(&bootstrap, &[("compression.codec", producer_codec), ("linger.ms", "50")]);
        let values: Vec<String> = (0..20).map(|i| format!("{topic_codec}-{i}-{}", "v".repeat(100))).collect();
        let sends: Vec<_> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let key = format!("k{i}");
                p.send_result(FutureRecord::to(&topic).key(key.as_bytes()).payload(v.as_bytes()).partition(0))
                    .expect("queued")
            })
            .collect();
        for s in sends {
            block_on(s).expect("delivered").expect("acknowledged");
        }
        assert_eq!(first_batch_codec(&broker, &topic), on_disk, "{topic_codec} topic, {producer_codec} producer");
        let c = consumer(&bootstrap, &[]);
        assign(&c, &[(topic.as_str(), 0, Offset::Beginning)]);
        let got: Vec<String> = consume(&c, values.len(), WAIT)
            .iter()
            .map(|m| String::from_utf8(m.payload().expect("value").to_vec()).expect("utf-8"))
            .collect();
        assert_eq!(got, values, "{topic_codec}: the records come back as sent");
    }
}
