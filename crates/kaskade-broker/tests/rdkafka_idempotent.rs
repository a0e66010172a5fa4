//! Idempotent producers end to end.
//!
//! - librdkafka with `enable.idempotence=true` writes every record exactly
//!   once and in order, also when produce responses are lost and it
//!   retries (a TCP proxy between it and the broker cuts the connection
//!   right before some produce responses would be delivered: the broker
//!   appended the batch, the client resends it);
//! - over the raw protocol: InitProducerId, the same idempotent batch sent
//!   twice is stored once and the retry gets the original base offset (also
//!   after a restart), a sequence gap is refused with
//!   OUT_OF_ORDER_SEQUENCE_NUMBER (45), a stale epoch with
//!   INVALID_PRODUCER_EPOCH (47), a transactional id with
//!   TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53).

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, ProducerId, TopicName,
    TransactionalId,
};
use kafka_protocol::protocol::{Request, StrBytes};
use kaskade_log::batch::build;
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;

/// Sends `waves` x `per_wave` records, record `i` to partition
/// `i % partitions` with value `"{i:08}"` + padding, waiting for every
/// delivery of a wave before the next (so each wave is its own produce
/// requests).
fn produce_waves(bootstrap: &str, topic: &str, partitions: i32, waves: usize, per_wave: usize, extra: &[(&str, &str)]) {
    let mut config = vec![("enable.idempotence", "true"), ("message.timeout.ms", "60000")];
    config.extend_from_slice(extra);
    let p = producer(bootstrap, &config);
    let pad = vec![b'x'; 100];
    for w in 0..waves {
        let mut futs = Vec::with_capacity(per_wave);
        for j in 0..per_wave {
            let i = w * per_wave + j;
            let mut value = format!("{i:08}").into_bytes();
            value.extend_from_slice(&pad);
            let key = format!("k{i}");
            let rec =
                FutureRecord::to(topic).partition((i % partitions as usize) as i32).key(key.as_bytes()).payload(&value);
            futs.push(p.send_result(rec).map_err(|(e, _)| e).expect("enqueue"));
        }
        for (j, f) in futs.into_iter().enumerate() {
            match block_on(async { tokio::time::timeout(WAIT * 2, f).await }) {
                Ok(Ok(Ok(_))) => {}
                other => panic!("record {} not delivered: {other:?}", w * per_wave + j),
            }
        }
    }
}

/// Every record 0..n is stored exactly once, in its partition, in order.
fn assert_exactly_once(bootstrap: &str, topic: &str, partitions: i32, n: usize) {
    let all = read_all(bootstrap, topic, partitions);
    let mut seen = vec![0u32; n];
    let mut last: BTreeMap<i32, usize> = BTreeMap::new();
    for ((p, off), (_, value)) in &all {
        let value = value.as_ref().expect("value");
        let i: usize = std::str::from_utf8(&value[..8]).expect("utf8").parse().expect("index");
        assert!(i < n, "unknown record {i}");
        seen[i] += 1;
        assert_eq!(i % partitions as usize, *p as usize, "record {i} in partition {p}");
        if let Some(prev) = last.insert(*p, i) {
            assert!(i > prev, "partition {p} offset {off}: record {i} after record {prev} (duplicate or reordering)");
        }
    }
    let dups: Vec<usize> = (0..n).filter(|i| seen[*i] > 1).collect();
    let lost: Vec<usize> = (0..n).filter(|i| seen[*i] == 0).collect();
    assert!(dups.is_empty() && lost.is_empty(), "stored twice: {dups:?}; missing: {lost:?}");
    assert_eq!(all.len(), n);
}

#[test]
fn idempotent_producer_writes_every_record_once() {
    let tb = TestBroker::start();
    let topic = unique("idem");
    create_topic(&admin(&tb.bootstrap()), &topic, 6, &[]);
    produce_waves(&tb.bootstrap(), &topic, 6, 4, 5_000, &[]);
    assert_exactly_once(&tb.bootstrap(), &topic, 6, 20_000);
    // librdkafka really produced idempotently: one producer id per partition.
    for p in 0..6 {
        let log = tb.server().broker.topics.log(&topic, p).expect("log");
        assert_eq!(log.producer_count(), 1, "partition {p}");
    }
}

/// A TCP proxy that forwards both ways, and for every `drop_every`-th
/// Produce request (up to `max_drops` times) closes both connections
/// instead of delivering its response: the broker has appended the batch,
/// the client never learns.
struct Proxy {
    addr: SocketAddr,
    dropped: Arc<AtomicUsize>,
}

fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let n = i32::from_be_bytes(len);
    if !(8..=64 << 20).contains(&n) {
        return Err(std::io::Error::other(format!("bad frame length {n}")));
    }
    let mut buf = vec![0u8; n as usize];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

fn write_frame(s: &mut TcpStream, f: &[u8]) -> std::io::Result<()> {
    let mut out = (f.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(f);
    s.write_all(&out)
}

fn start_proxy(listener: TcpListener, upstream: SocketAddr, drop_every: usize, max_drops: usize) -> Proxy {
    let addr = listener.local_addr().expect("addr");
    let dropped = Arc::new(AtomicUsize::new(0));
    let produces = Arc::new(AtomicUsize::new(0));
    let marked = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(upstream) else { continue };
            let doomed = Arc::new(Mutex::new(HashSet::<i32>::new()));
            let (mut c_in, mut s_out) = (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
            let (doomed2, produces, marked) = (doomed.clone(), produces.clone(), marked.clone());
            std::thread::spawn(move || {
                while let Ok(f) = read_frame(&mut c_in) {
                    let key = i16::from_be_bytes([f[0], f[1]]);
                    let corr = i32::from_be_bytes([f[4], f[5], f[6], f[7]]);
                    if key == ApiKey::Produce as i16
                        && (produces.fetch_add(1, Ordering::SeqCst) + 1) % drop_every == 0
                        && marked.fetch_add(1, Ordering::SeqCst) < max_drops
                    {
                        doomed2.lock().expect("lock").insert(corr);
                    }
                    if write_frame(&mut s_out, &f).is_err() {
                        break;
                    }
                }
            });
            let d = d.clone();
            std::thread::spawn(move || {
                let (mut s_in, mut c_out) = (server, client);
                while let Ok(f) = read_frame(&mut s_in) {
                    let corr = i32::from_be_bytes([f[0], f[1], f[2], f[3]]);
                    if doomed.lock().expect("lock").remove(&corr) {
                        d.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    if write_frame(&mut c_out, &f).is_err() {
                        break;
                    }
                }
                let _ = c_out.shutdown(Shutdown::Both);
                let _ = s_in.shutdown(Shutdown::Both);
            });
        }
    });
    Proxy { addr, dropped }
}

#[test]
fn lost_produce_responses_are_retried_without_duplicates() {
    // Clients must reach the broker only through the proxy: the broker
    // advertises the proxy's address.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let proxy_port = listener.local_addr().expect("addr").port();
    let advertised = format!("PLAINTEXT://127.0.0.1:{proxy_port}");
    let tb = TestBroker::start_with(&[("advertised.listeners", advertised.as_str())]);
    let proxy = start_proxy(listener, tb.addr(), 3, 8);
    let bootstrap = proxy.addr.to_string();
    let topic = unique("idem-retry");
    create_topic(&admin(&bootstrap), &topic, 3, &[]);
    // Reconnect at once: librdkafka backs off exponentially (up to 10 s)
    // after connections that die young.
    produce_waves(
        &bootstrap,
        &topic,
        3,
        30,
        400,
        &[("reconnect.backoff.ms", "10"), ("reconnect.backoff.max.ms", "50")],
    );
    let dropped = proxy.dropped.load(Ordering::SeqCst);
    assert!(dropped >= 3, "the proxy dropped only {dropped} produce responses: retries were not exercised");
    assert_exactly_once(&bootstrap, &topic, 3, 12_000);
    for p in 0..3 {
        let log = tb.server().broker.topics.log(&topic, p).expect("log");
        assert_eq!(log.producer_count(), 1, "partition {p}");
    }
}

/// A blocking raw Kafka connection (requests encoded with kafka-protocol).
struct Raw(common::wire::SyncConn);

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        Raw(common::wire::SyncConn::connect(addr))
    }

    fn call<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        self.0.call(version, req)
    }

    fn init_producer_id(&mut self, txn: Option<&'static str>) -> InitProducerIdResponse {
        let req = InitProducerIdRequest::default()
            .with_transactional_id(txn.map(|t| TransactionalId(StrBytes::from_static_str(t))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        self.call(4, &req)
    }

    fn produce(&mut self, topic: &str, batch: Vec<u8>) -> PartitionProduceResponse {
        let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from(batch)))]),
        ]);
        let resp: ProduceResponse = self.call(9, &req);
        resp.responses
            .into_iter()
            .next()
            .and_then(|t| t.partition_responses.into_iter().next())
            .expect("partition response")
    }
}

/// An idempotent batch of `n` records valued `"{tag}-{i}"`.
fn idem(pid: i64, epoch: i16, seq: i32, n: usize, tag: &str) -> Vec<u8> {
    let values: Vec<String> = (0..n).map(|i| format!("{tag}-{i}")).collect();
    let recs: Vec<build::Record<'_>> =
        values.iter().map(|v| build::Record { key: None, value: Some(v.as_bytes()), timestamp_delta: 0 }).collect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    let mut b = build::batch(&recs, now, pid);
    build::set_producer(&mut b, pid, epoch, seq);
    b
}

fn high_watermark(bootstrap: &str, topic: &str) -> i64 {
    consumer(bootstrap, &[]).fetch_watermarks(topic, 0, WAIT).expect("watermarks").1
}

#[test]
fn raw_retry_is_stored_once_and_gets_the_original_offset() {
    let mut tb = TestBroker::start();
    let topic = unique("idem-raw");
    create_topic(&admin(&tb.bootstrap()), &topic, 1, &[]);
    let mut raw = Raw::connect(tb.addr());
    let init = raw.init_producer_id(None);
    assert_eq!((init.error_code, init.producer_epoch), (0, 0));
    let pid = init.producer_id.0;
    assert!(pid >= 0);
    assert_eq!(raw.init_producer_id(None).producer_id.0, pid + 1, "each InitProducerId gets a new id");

    let r = raw.produce(&topic, idem(pid, 0, 0, 3, "a"));
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    let r = raw.produce(&topic, idem(pid, 0, 0, 3, "a"));
    assert_eq!((r.error_code, r.base_offset), (0, 0), "the retry gets the original base offset");
    let r = raw.produce(&topic, idem(pid, 0, 3, 2, "b"));
    assert_eq!((r.error_code, r.base_offset), (0, 3));
    let r = raw.produce(&topic, idem(pid, 0, 0, 3, "a"));
    assert_eq!((r.error_code, r.base_offset), (0, 0), "an older batch of the window too");
    assert_eq!(high_watermark(&tb.bootstrap(), &topic), 5, "stored once");
    let got: Vec<Vec<u8>> =
        read_all(&tb.bootstrap(), &topic, 1).into_values().map(|(_, v)| v.expect("value")).collect();
    let want: Vec<Vec<u8>> = ["a-0", "a-1", "a-2", "b-0", "b-1"].iter().map(|s| s.as_bytes().to_vec()).collect();
    assert_eq!(got, want);

    // A gap: refused, nothing written.
    let r = raw.produce(&topic, idem(pid, 0, 9, 1, "gap"));
    assert_eq!((r.error_code, r.base_offset), (45, -1));
    let msg = r.error_message.map(|m| m.to_string()).unwrap_or_default();
    assert!(msg.contains("Out of order sequence number"), "{msg}");
    // An epoch bump restarts at 0; the old epoch is then fenced.
    let r = raw.produce(&topic, idem(pid, 1, 0, 1, "c"));
    assert_eq!((r.error_code, r.base_offset), (0, 5));
    let r = raw.produce(&topic, idem(pid, 0, 5, 1, "stale"));
    assert_eq!(r.error_code, 47);
    assert_eq!(high_watermark(&tb.bootstrap(), &topic), 6);

    // A transactional id gets a producer id of its own.
    let txn = raw.init_producer_id(Some("my-txn"));
    assert_eq!((txn.error_code, txn.producer_epoch), (0, 0));
    assert_ne!(txn.producer_id.0, pid);

    // After a restart the last batch is still recognised, and the sequence
    // continues.
    drop(raw);
    tb.restart();
    let mut raw = Raw::connect(tb.addr());
    let r = raw.produce(&topic, idem(pid, 1, 0, 1, "c"));
    assert_eq!((r.error_code, r.base_offset), (0, 5), "deduplicated after the restart");
    assert_eq!(raw.produce(&topic, idem(pid, 1, 2, 1, "gap")).error_code, 45);
    let r = raw.produce(&topic, idem(pid, 1, 1, 1, "d"));
    assert_eq!((r.error_code, r.base_offset), (0, 6));
    let fresh = raw.init_producer_id(None).producer_id.0;
    assert!(fresh > pid + 1, "producer ids are not reused after a restart ({fresh} after {pid})");
    assert_eq!(high_watermark(&tb.bootstrap(), &topic), 7);
}
