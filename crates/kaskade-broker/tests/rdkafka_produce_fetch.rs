//! Produce and fetch with a real client (librdkafka via `rdkafka`) against
//! an in-process broker: delivery reports, keys and partitioning, headers
//! and odd values, size limits, many partitions, long polling, restarts,
//! bad input from other connections, and long-running multi-partition
//! consumption.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::statistics::Statistics;
use rdkafka::{Message, Offset, Timestamp};

/// Deterministic filler bytes (xorshift), so big values are not all zeros.
fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

// 1. The seeds' flow: `orders`, three keyed JSON records, acks=all; the
// topic is auto-created by the producer's metadata request, as with Kafka's
// defaults.
#[test]
fn seed_orders_flow_acks_all_and_read_back() {
    let tb = TestBroker::start();
    let p = producer(&tb.bootstrap(), &[]);
    let mut sent = Vec::new();
    for i in 1..=3 {
        let key = format!("customer-{i}");
        let value = format!("{{\"orderId\":{i},\"amount\":{}}}", i * 10);
        let (partition, offset) = send(&p, FutureRecord::to("orders").key(key.as_bytes()).payload(value.as_bytes()))
            .unwrap_or_else(|e| panic!("delivery of {key} failed: {e}"));
        sent.push((partition, offset, key, value));
    }
    // num.partitions defaults to 1: all in partition 0, offsets 0, 1, 2.
    let placed: Vec<(i32, i64)> = sent.iter().map(|(p, o, _, _)| (*p, *o)).collect();
    assert_eq!(placed, vec![(0, 0), (0, 1), (0, 2)]);

    let c = consumer(&tb.bootstrap(), &[]);
    assign(&c, &[("orders", 0, Offset::Offset(0))]);
    let got = consume(&c, 3, WAIT);
    for (m, (partition, offset, key, value)) in got.iter().zip(&sent) {
        assert_eq!(m.topic(), "orders");
        assert_eq!((m.partition(), m.offset()), (*partition, *offset));
        assert_eq!(m.key(), Some(key.as_bytes()));
        assert_eq!(m.payload(), Some(value.as_bytes()));
        assert!(matches!(m.timestamp(), Timestamp::CreateTime(t) if t > 0), "{:?}", m.timestamp());
    }
    let (lo, hi) = c.fetch_watermarks("orders", 0, WAIT).expect("watermarks");
    assert_eq!((lo, hi), (0, 3));
}

// 2. Keys: the same key always lands in the same partition, and that is
// the partition Kafka's Java producer (murmur2) would choose.
#[test]
fn same_key_same_partition_murmur2() {
    // Kafka's own vectors (UtilsTest.testMurmur2).
    assert_eq!(murmur2(b"21"), -973932308);
    assert_eq!(murmur2(b"foobar"), -790332482);
    assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
    assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
    assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
    assert_eq!(murmur2(b"abc"), 479470107);

    let tb = TestBroker::start();
    let topic = unique("keys");
    let parts = 7;
    create_topic(&admin(&tb.bootstrap()), &topic, parts, &[]);
    let p = producer(&tb.bootstrap(), &[("partitioner", "murmur2_random")]);
    let mut placed: BTreeMap<String, i32> = BTreeMap::new();
    let mut acked = Vec::new();
    for round in 0..2 {
        let futures: Vec<_> = (0..100)
            .map(|k| {
                let key = format!("user-{k}");
                let value = format!("round-{round}");
                let f = p
                    .send_result(FutureRecord::<[u8], [u8]>::to(&topic).key(key.as_bytes()).payload(value.as_bytes()))
                    .map_err(|(e, _)| e)
                    .expect("enqueue");
                (key, value, f)
            })
            .collect();
        for (key, value, f) in futures {
            let d = block_on(async { tokio::time::timeout(WAIT, f).await })
                .expect("delivery report in time")
                .expect("not canceled")
                .unwrap_or_else(|(e, _)| panic!("delivery of {key}: {e}"));
            let expected = partition_for_key(key.as_bytes(), parts);
            assert_eq!(d.partition, expected, "key {key}: librdkafka murmur2_random vs Kafka's murmur2");
            if let Some(prev) = placed.insert(key.clone(), d.partition) {
                assert_eq!(prev, d.partition, "key {key} moved partitions");
            }
            acked.push((d.partition, d.offset, key, value));
        }
    }
    // More than one partition is used (100 keys over 7 partitions).
    let used: BTreeSet<i32> = placed.values().copied().collect();
    assert!(used.len() > 1, "{used:?}");
    // The broker stored each record where it acked it.
    let stored = read_all(&tb.bootstrap(), &topic, parts);
    assert_eq!(stored.len(), acked.len());
    for (partition, offset, key, value) in acked {
        let (k, v) =
            stored.get(&(partition, offset)).unwrap_or_else(|| panic!("{key} missing at {partition}@{offset}"));
        assert_eq!(k.as_deref(), Some(key.as_bytes()));
        assert_eq!(v.as_deref(), Some(value.as_bytes()));
    }
}

// 3. Headers, a null key, empty and null values and a 1 MiB value come back
// byte-exact; a record over the topic's max.message.bytes is refused by the
// broker with MESSAGE_TOO_LARGE.
#[test]
fn headers_null_key_empty_value_and_big_values() {
    let tb = TestBroker::start();
    let a = admin(&tb.bootstrap());
    // 1 MiB of value plus record and batch overhead is over Kafka's default
    // 1048588, as it is with Kafka: the topic allows a little more.
    let topic = unique("shapes");
    create_topic(&a, &topic, 1, &[("max.message.bytes", "1100000")]);
    let roomy = unique("roomy");
    create_topic(&a, &roomy, 1, &[("max.message.bytes", "3000000")]);
    // Client-side size checks out of the way: the broker decides.
    let p = producer(&tb.bootstrap(), &[("message.max.bytes", "10000000"), ("compression.type", "none")]);

    let mib = filler(1 << 20, 42);
    let headers = || {
        OwnedHeaders::new()
            .insert(Header { key: "trace-id", value: Some("abc-123") })
            .insert(Header { key: "bin", value: Some(&[0u8, 255, 1, 254][..]) })
            .insert(Header { key: "empty", value: Some("") })
            .insert(Header::<&[u8]> { key: "null", value: None })
            .insert(Header { key: "trace-id", value: Some("dup-key") })
    };
    type Rec = (Option<Vec<u8>>, Option<Vec<u8>>, bool, i64);
    let records: Vec<Rec> = vec![
        (Some(b"k-headers".to_vec()), Some(b"with headers".to_vec()), true, 1_600_000_000_000),
        (None, Some(b"no key".to_vec()), false, 1_600_000_000_001),
        (Some(b"k-empty".to_vec()), Some(Vec::new()), false, 1_600_000_000_002),
        (Some(b"k-tombstone".to_vec()), None, false, 1_600_000_000_003),
        (Some(b"k-1mib".to_vec()), Some(mib.clone()), true, 1_600_000_000_004),
    ];
    let mut offsets = Vec::new();
    for (key, value, with_headers, ts) in &records {
        let mut r = FutureRecord::<[u8], [u8]>::to(&topic).partition(0).timestamp(*ts);
        if let Some(k) = key {
            r = r.key(&k[..]);
        }
        if let Some(v) = value {
            r = r.payload(&v[..]);
        }
        if *with_headers {
            r = r.headers(headers());
        }
        let (part, off) = send(&p, r).unwrap_or_else(|e| panic!("delivery of {key:?}: {e}"));
        assert_eq!(part, 0);
        offsets.push(off);
    }
    assert_eq!(offsets, vec![0, 1, 2, 3, 4]);

    let c = consumer(&tb.bootstrap(), &[]);
    assign(&c, &[(topic.as_str(), 0, Offset::Offset(0))]);
    let got = consume(&c, records.len(), WAIT);
    let want_headers = headers();
    for (m, (key, value, with_headers, ts)) in got.iter().zip(&records) {
        assert_eq!(m.key(), key.as_deref(), "key at offset {}", m.offset());
        assert_eq!(m.payload(), value.as_deref(), "value at offset {}", m.offset());
        assert_eq!(m.timestamp(), Timestamp::CreateTime(*ts));
        match (m.headers(), with_headers) {
            (Some(h), true) => {
                let got: Vec<(String, Option<Vec<u8>>)> =
                    h.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect();
                let want: Vec<(String, Option<Vec<u8>>)> =
                    want_headers.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect();
                assert_eq!(got, want, "headers at offset {}", m.offset());
            }
            (None, false) => {}
            (Some(h), false) => {
                assert_eq!(h.count(), 0, "unexpected headers at offset {}", m.offset())
            }
            (None, true) => panic!("headers lost at offset {}", m.offset()),
        }
    }

    // 2 MiB: the same producer gets it into a topic that allows it ...
    let two_mib = filler(2 << 20, 7);
    let (_, off) = send(&p, FutureRecord::<[u8], [u8]>::to(&roomy).partition(0).key(&b"big"[..]).payload(&two_mib[..]))
        .expect("2 MiB into a topic with max.message.bytes=3000000");
    let c2 = consumer(&tb.bootstrap(), &[]);
    assign(&c2, &[(roomy.as_str(), 0, Offset::Offset(off))]);
    let m = consume(&c2, 1, WAIT).remove(0);
    assert!(m.payload() == Some(&two_mib[..]), "2 MiB value differs after the round trip");

    // ... and the broker refuses it for the 1.1 MB topic.
    let err = send(&p, FutureRecord::<[u8], [u8]>::to(&topic).partition(0).key(&b"too-big"[..]).payload(&two_mib[..]))
        .expect_err("2 MiB must be refused by a topic with max.message.bytes=1100000");
    assert_eq!(err, KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), "{err}");
    let (_, hi) = c.fetch_watermarks(&topic, 0, WAIT).expect("watermarks");
    assert_eq!(hi, 5, "the refused record must not be in the log");
}

// 4. A topic with 1,000 partitions: created with the admin API, one record
// in each partition, metadata lists every partition with a leader, and
// everything reads back.
#[test]
fn thousand_partitions() {
    let tb = TestBroker::start();
    let topic = unique("wide");
    let parts = 1000;
    create_topic(&admin(&tb.bootstrap()), &topic, parts, &[]);

    let c = consumer(&tb.bootstrap(), &[]);
    let md = c.fetch_metadata(Some(&topic), WAIT).expect("metadata");
    let t = md.topics().iter().find(|t| t.name() == topic).expect("topic in metadata");
    assert!(t.error().is_none(), "{:?}", t.error());
    assert_eq!(t.partitions().len(), parts as usize);
    let node = tb.server().broker.node_id().get();
    let ids: BTreeSet<i32> = t.partitions().iter().map(|p| p.id()).collect();
    assert_eq!(ids, (0..parts).collect());
    for p in t.partitions() {
        assert_eq!(p.leader(), node, "partition {} leader", p.id());
        assert_eq!(p.replicas(), &[node]);
        assert_eq!(p.isr(), &[node]);
        assert!(p.error().is_none());
    }

    let p = producer(&tb.bootstrap(), &[]);
    let futures: Vec<_> = (0..parts)
        .map(|i| {
            let v = format!("value-{i}");
            p.send_result(FutureRecord::<[u8], [u8]>::to(&topic).partition(i).payload(v.as_bytes()))
                .map_err(|(e, _)| e)
                .expect("enqueue")
        })
        .collect();
    for (i, f) in futures.into_iter().enumerate() {
        let d = block_on(async { tokio::time::timeout(WAIT, f).await })
            .expect("delivery in time")
            .expect("not canceled")
            .unwrap_or_else(|(e, _)| panic!("partition {i}: {e}"));
        assert_eq!((d.partition, d.offset), (i as i32, 0));
    }

    let positions: Vec<(&str, i32, Offset)> = (0..parts).map(|i| (topic.as_str(), i, Offset::Offset(0))).collect();
    assign(&c, &positions);
    let got = consume(&c, parts as usize, WAIT);
    let by_partition: BTreeMap<i32, Vec<u8>> =
        got.iter().map(|m| (m.partition(), m.payload().unwrap_or_default().to_vec())).collect();
    assert_eq!(by_partition.len(), parts as usize);
    for (i, v) in by_partition {
        assert_eq!(v, format!("value-{i}").into_bytes());
    }
}

/// Keeps librdkafka's latest statistics, to see which requests went out.
#[derive(Default)]
struct StatsContext {
    last: Mutex<Option<Statistics>>,
}

impl ClientContext for StatsContext {
    fn stats(&self, statistics: Statistics) {
        *self.last.lock().unwrap() = Some(statistics);
    }
}

impl ConsumerContext for StatsContext {}

impl StatsContext {
    /// Fetch requests sent to real brokers (not the bootstrap entry).
    fn fetch_requests(&self) -> i64 {
        let last = self.last.lock().unwrap();
        last.as_ref()
            .map(|s| {
                s.brokers.values().filter(|b| b.nodeid >= 0).map(|b| b.req.get("Fetch").copied().unwrap_or(0)).sum()
            })
            .unwrap_or(0)
    }
}

// 6. Long poll: a consumer parked at the end with fetch.wait.max.ms=10000
// gets a record produced later as soon as it is appended, not when its
// fetch's wait expires; with no data a 300 ms poll returns nothing.
#[test]
fn long_poll_wakes_on_append() {
    let tb = TestBroker::start();
    let topic = unique("longpoll");
    create_topic(&admin(&tb.bootstrap()), &topic, 1, &[]);
    let p = producer(&tb.bootstrap(), &[("linger.ms", "0")]);
    send(&p, FutureRecord::<[u8], [u8]>::to(&topic).partition(0).payload(&b"before"[..])).expect("first record");

    let max_wait = Duration::from_secs(10);
    let c: BaseConsumer<StatsContext> = client_config(
        &tb.bootstrap(),
        &[
            ("group.id", unique("lp").as_str()),
            ("enable.auto.commit", "false"),
            ("fetch.wait.max.ms", "10000"),
            ("fetch.min.bytes", "1"),
            ("statistics.interval.ms", "100"),
        ],
    )
    .create_with_context(StatsContext::default())
    .expect("consumer");
    // Positioned exactly at the end (offset 1): no ListOffsets race.
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(1)).unwrap();
    c.assign(&tpl).unwrap();

    // Nothing to read: a 300 ms poll returns no message.
    let t0 = Instant::now();
    let (msgs, _errs) = drain(&c, Duration::from_millis(300));
    assert!(msgs.is_empty(), "no data yet, got {} message(s)", msgs.len());
    assert!(t0.elapsed() < Duration::from_secs(3));

    // Wait until the consumer has a fetch out (it is now parked at the
    // broker for up to 10 s), serving the consumer queue meanwhile.
    let deadline = Instant::now() + WAIT;
    while c.context().fetch_requests() < 1 {
        assert!(Instant::now() < deadline, "the consumer never sent a Fetch");
        if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
            panic!("unexpected message at offset {}", m.offset());
        }
    }
    let fetches_before = c.context().fetch_requests();

    let produced_at = Instant::now();
    let (_, off) =
        send(&p, FutureRecord::<[u8], [u8]>::to(&topic).partition(0).payload(&b"after"[..])).expect("second record");
    assert_eq!(off, 1);
    let got = consume(&c, 1, max_wait + Duration::from_secs(5)).remove(0);
    let latency = produced_at.elapsed();
    assert_eq!(got.payload(), Some(&b"after"[..]));
    // The parked fetch returned because of the append: well before its
    // 10 s wait would have expired.
    assert!(latency < max_wait / 2, "record arrived after {latency:?}: the parked fetch was not woken by the append");
    // And it was that parked fetch (or at most the one after it) that
    // carried it: no stream of short fetches.
    let fetches_after = c.context().fetch_requests();
    assert!(
        fetches_after - fetches_before <= 2,
        "fetches went from {fetches_before} to {fetches_after}: not long polling"
    );

    // Teardown: the consumer's next fetch is parked for 10 s, and the
    // broker's clean shutdown waits for requests in flight even when their
    // client is gone. Close the consumer, then wake that fetch with a record.
    drop(c);
    send(&p, FutureRecord::<[u8], [u8]>::to(&topic).partition(0).payload(&b"wake"[..])).expect("wake-up record");
}

// 7. A clean restart keeps every offset and byte.
#[test]
fn data_survives_clean_restart() {
    let mut tb = TestBroker::start();
    let topic = unique("durable");
    let parts = 3;
    create_topic(&admin(&tb.bootstrap()), &topic, parts, &[]);
    {
        let p = producer(&tb.bootstrap(), &[]);
        for i in 0..60 {
            let v = filler(100 + i * 37, i as u64);
            send(
                &p,
                FutureRecord::<[u8], [u8]>::to(&topic)
                    .partition((i % 3) as i32)
                    .key(format!("k{i}").as_bytes())
                    .payload(&v[..]),
            )
            .expect("delivery");
        }
    }
    let before = read_all(&tb.bootstrap(), &topic, parts);
    assert_eq!(before.len(), 60);
    let marks_before: Vec<(i64, i64)> = {
        let c = consumer(&tb.bootstrap(), &[]);
        (0..parts).map(|p| c.fetch_watermarks(&topic, p, WAIT).unwrap()).collect()
    };

    tb.restart();

    let after = read_all(&tb.bootstrap(), &topic, parts);
    assert_eq!(before, after, "records differ after a clean restart");
    let c = consumer(&tb.bootstrap(), &[]);
    let marks_after: Vec<(i64, i64)> = (0..parts).map(|p| c.fetch_watermarks(&topic, p, WAIT).unwrap()).collect();
    assert_eq!(marks_before, marks_after);
    // New records continue the offsets.
    let p = producer(&tb.bootstrap(), &[]);
    let (part, off) =
        send(&p, FutureRecord::<[u8], [u8]>::to(&topic).partition(1).payload(&b"next"[..])).expect("delivery");
    assert_eq!((part, off), (1, marks_before[1].1));
}

/// Reads from a raw connection until the broker closes it (EOF or reset);
/// panics if it stays open for `WAIT`.
fn expect_closed(s: &mut std::net::TcpStream, what: &str) {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                panic!("the broker kept the connection open after {what}")
            }
            Err(_) => return, // reset
        }
    }
}

// 9. Bad input on other connections does not disturb a working client.
#[test]
fn bad_input_on_other_connections_leaves_producer_unaffected() {
    let tb = TestBroker::start();
    let topic = unique("steady");
    create_topic(&admin(&tb.bootstrap()), &topic, 2, &[]);

    let acked = Arc::new(Mutex::new(Vec::<(i32, i64, Vec<u8>)>::new()));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (acked, failures, count, stop) = (acked.clone(), failures.clone(), count.clone(), stop.clone());
        let (bootstrap, topic) = (tb.bootstrap(), topic.clone());
        std::thread::spawn(move || {
            let p = producer(&bootstrap, &[("linger.ms", "1")]);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let v = format!("steady-{i}").into_bytes();
                match send(&p, FutureRecord::<[u8], [u8]>::to(&topic).partition((i % 2) as i32).payload(&v[..])) {
                    Ok((part, off)) => acked.lock().unwrap().push((part, off, v)),
                    Err(e) => failures.lock().unwrap().push(format!("record {i}: {e}")),
                }
                count.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        })
    };
    let acks = |n: u64| {
        let c = count.clone();
        wait_for(&format!("{n} deliveries"), WAIT, move || (c.load(Ordering::Relaxed) >= n).then_some(()))
    };
    acks(20);

    // A frame cut short, left open for the rest of the test.
    let mut truncated = std::net::TcpStream::connect(tb.addr()).unwrap();
    truncated.write_all(&100i32.to_be_bytes()).unwrap();
    truncated.write_all(&[0, 18, 0, 3, 0, 0, 0, 1, 0]).unwrap();

    for round in 0..20u64 {
        // Garbage that reads as a huge length ("GET " = 0x47455420).
        let mut s = std::net::TcpStream::connect(tb.addr()).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        expect_closed(&mut s, "an HTTP request");
        // A 2^31-1 frame length, then some bytes.
        let mut s = std::net::TcpStream::connect(tb.addr()).unwrap();
        s.write_all(&i32::MAX.to_be_bytes()).unwrap();
        let _ = s.write_all(&filler(1000, round));
        expect_closed(&mut s, "a 2^31-1 frame length");
        // A frame of the right length whose header is garbage.
        let mut s = std::net::TcpStream::connect(tb.addr()).unwrap();
        let junk = filler(60, round + 100);
        s.write_all(&(junk.len() as i32).to_be_bytes()).unwrap();
        let _ = s.write_all(&junk);
        expect_closed(&mut s, "a garbage frame");
        // A truncated frame, closed by the client mid-frame.
        let mut s = std::net::TcpStream::connect(tb.addr()).unwrap();
        s.write_all(&64i32.to_be_bytes()).unwrap();
        s.write_all(&[0, 3, 0, 12]).unwrap();
        drop(s);
    }
    // The producer kept getting acks through it all, and still does.
    let now = count.load(Ordering::Relaxed);
    acks(now + 50);
    drop(truncated);
    let now = count.load(Ordering::Relaxed);
    acks(now + 20);
    stop.store(true, Ordering::Relaxed);
    worker.join().expect("producer thread");

    let failures = failures.lock().unwrap();
    assert!(failures.is_empty(), "deliveries failed: {failures:?}");
    let acked = acked.lock().unwrap();
    let stored = read_all(&tb.bootstrap(), &topic, 2);
    assert_eq!(stored.len(), acked.len(), "log holds exactly the acked records");
    for (part, off, v) in acked.iter() {
        let (_, got) = stored.get(&(*part, *off)).unwrap_or_else(|| panic!("acked record missing at {part}@{off}"));
        assert_eq!(got.as_deref(), Some(&v[..]));
    }
}

// 10. One long-running consumer over several partitions keeps receiving
// what is produced to each of them, round after round, including
// partitions that were idle for a while. (librdkafka fetches sessionless,
// so this is the multi-partition fetch path; incremental sessions are
// driven by `fetch_session_incremental` below.)
#[test]
fn long_running_consumer_over_many_partitions() {
    let tb = TestBroker::start();
    let topic = unique("rounds");
    let parts = 6;
    create_topic(&admin(&tb.bootstrap()), &topic, parts, &[]);
    let p = producer(&tb.bootstrap(), &[]);
    let c = consumer(&tb.bootstrap(), &[]);
    let positions: Vec<(&str, i32, Offset)> = (0..parts).map(|i| (topic.as_str(), i, Offset::Offset(0))).collect();
    assign(&c, &positions);

    let mut next_offset = vec![0i64; parts as usize];
    for round in 0..8 {
        // Even rounds write to every partition; odd rounds to one only, so
        // the others sit idle for a round.
        let targets: Vec<i32> = if round % 2 == 0 { (0..parts).collect() } else { vec![round % parts] };
        let mut want = BTreeSet::new();
        for &part in &targets {
            for j in 0..3 {
                let v = format!("r{round}-p{part}-{j}");
                let (pp, off) = send(&p, FutureRecord::<[u8], [u8]>::to(&topic).partition(part).payload(v.as_bytes()))
                    .expect("delivery");
                assert_eq!((pp, off), (part, next_offset[part as usize]));
                next_offset[part as usize] += 1;
                want.insert((part, off, v));
            }
        }
        let got: BTreeSet<(i32, i64, String)> = consume(&c, want.len(), WAIT)
            .into_iter()
            .map(|m| (m.partition(), m.offset(), String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()))
            .collect();
        assert_eq!(got, want, "round {round}");
    }
    let (extra, _) = drain(&c, Duration::from_millis(300));
    assert!(
        extra.is_empty(),
        "records delivered twice: {:?}",
        extra.iter().map(|m| (m.partition(), m.offset())).collect::<Vec<_>>()
    );
}

/// Fetch at an exact version over kaskade-client's connection, for what
/// librdkafka does not do (fetch sessions driven by hand).
const V: i16 = 12;

struct RawConn {
    conn: common::wire::SyncConn,
    parked: Option<common::wire::InFlight<kafka_protocol::messages::FetchResponse>>,
}

impl RawConn {
    fn connect(addr: std::net::SocketAddr) -> RawConn {
        RawConn { conn: common::wire::SyncConn::connect(addr), parked: None }
    }

    /// Sends a Fetch (v12: topic names, sessions) and reads its response.
    fn fetch(&mut self, req: kafka_protocol::messages::FetchRequest) -> kafka_protocol::messages::FetchResponse {
        self.conn.call(V, &req)
    }

    /// Whether the Fetch sent with `send_fetch` is unanswered after `window`.
    fn silent_for(&mut self, window: Duration) -> bool {
        let parked = self.parked.as_ref().expect("a fetch was sent");
        self.conn.unanswered_after(parked, window)
    }

    fn send_fetch(&mut self, req: kafka_protocol::messages::FetchRequest) {
        assert!(self.parked.is_none(), "one parked fetch at a time");
        self.parked = Some(self.conn.start(V, req));
    }

    fn recv_fetch(&mut self) -> kafka_protocol::messages::FetchResponse {
        let parked = self.parked.take().expect("a fetch was sent");
        self.conn.finish(parked)
    }
}

/// A Fetch as the Java consumer's FetchSessionHandler builds it.
fn session_fetch(
    topic: &str,
    session: (i32, i32),
    parts: &[(i32, i64)],
    forgotten: &[i32],
    max_wait_ms: i32,
) -> kafka_protocol::messages::FetchRequest {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
    use kafka_protocol::messages::{FetchRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let name = TopicName(StrBytes::from_string(topic.to_string()));
    let mut req = FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_session_id(session.0)
        .with_session_epoch(session.1);
    if !parts.is_empty() {
        req.topics.push(
            FetchTopic::default().with_topic(name.clone()).with_partitions(
                parts
                    .iter()
                    .map(|(p, o)| {
                        FetchPartition::default()
                            .with_partition(*p)
                            .with_fetch_offset(*o)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            ),
        );
    }
    if !forgotten.is_empty() {
        req.forgotten_topics_data.push(ForgottenTopic::default().with_topic(name).with_partitions(forgotten.to_vec()));
    }
    req
}

/// (partition, high watermark, values) of each partition in a response.
fn fetched(resp: &kafka_protocol::messages::FetchResponse) -> Vec<(i32, i64, Vec<String>)> {
    let mut out = Vec::new();
    for t in &resp.responses {
        for p in &t.partitions {
            assert_eq!(p.error_code, 0, "partition {} error", p.partition_index);
            let mut values = Vec::new();
            if let Some(mut records) = p.records.clone() {
                while !records.is_empty() {
                    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut records).expect("record batch");
                    for r in set.records {
                        values.push(String::from_utf8_lossy(&r.value.unwrap_or_default()).into_owned());
                    }
                }
            }
            out.push((p.partition_index, p.high_watermark, values));
        }
    }
    out
}

// 10b. Incremental fetch sessions (KIP-227), as the Java consumer uses them
// (librdkafka fetches sessionless): records produced with librdkafka reach
// a session fetcher; incremental responses carry only partitions with
// news; a parked incremental fetch wakes on an append; forgotten
// partitions stay out; epochs and ids are checked.
#[test]
fn fetch_session_incremental() {
    let tb = TestBroker::start();
    let topic = unique("sessions");
    create_topic(&admin(&tb.bootstrap()), &topic, 3, &[]);
    let p = producer(&tb.bootstrap(), &[("linger.ms", "0")]);
    let put = |part: i32, v: &str| {
        send(&p, FutureRecord::<[u8], [u8]>::to(&topic).partition(part).payload(v.as_bytes())).expect("delivery")
    };
    for part in 0..3 {
        put(part, &format!("p{part}-a"));
        put(part, &format!("p{part}-b"));
    }
    let mut conn = RawConn::connect(tb.addr());

    // Full fetch creating a session (id 0, epoch 0): every partition.
    let r = conn.fetch(session_fetch(&topic, (0, 0), &[(0, 0), (1, 0), (2, 0)], &[], 0));
    assert_eq!(r.error_code, 0);
    let id = r.session_id;
    assert!(id > 0, "a session was created");
    assert_eq!(fetched(&r), (0..3).map(|p| (p, 2, vec![format!("p{p}-a"), format!("p{p}-b")])).collect::<Vec<_>>());

    // Incremental (epoch 1), new positions, no new data: nothing to report.
    let r = conn.fetch(session_fetch(&topic, (id, 1), &[(0, 2), (1, 2), (2, 2)], &[], 200));
    assert_eq!((r.error_code, r.session_id), (0, id));
    assert_eq!(fetched(&r), vec![], "no partition has news");

    // Incremental (epoch 2) naming nothing, parked; an append to partition
    // 1 wakes it, and only partition 1 comes back.
    conn.send_fetch(session_fetch(&topic, (id, 2), &[], &[], 10_000));
    assert!(conn.silent_for(Duration::from_millis(300)), "the fetch answered without data instead of waiting");
    let t0 = Instant::now();
    put(1, "p1-c");
    let r = conn.recv_fetch();
    let waited = t0.elapsed();
    assert_eq!(r.error_code, 0);
    assert_eq!(fetched(&r), vec![(1, 3, vec!["p1-c".to_string()])]);
    assert!(waited < Duration::from_secs(5), "the parked incremental fetch waited {waited:?}");

    // Incremental (epoch 3): partition 1 moves on, partition 2 is
    // forgotten; new data on 0 and 2 reports only 0.
    put(0, "p0-c");
    put(2, "p2-c");
    let r = conn.fetch(session_fetch(&topic, (id, 3), &[(1, 3)], &[2], 0));
    assert_eq!(r.error_code, 0);
    assert_eq!(fetched(&r), vec![(0, 3, vec!["p0-c".to_string()])]);
    let r = conn.fetch(session_fetch(&topic, (id, 4), &[(0, 3)], &[], 200));
    assert_eq!(fetched(&r), vec![], "forgotten partition 2 must not come back");

    // A stale epoch and an unknown session are refused.
    let r = conn.fetch(session_fetch(&topic, (id, 4), &[], &[], 0));
    assert_eq!(r.error_code, 71, "INVALID_FETCH_SESSION_EPOCH");
    let r = conn.fetch(session_fetch(&topic, (id + 1000, 1), &[], &[], 0));
    assert_eq!(r.error_code, 70, "FETCH_SESSION_ID_NOT_FOUND");
    // The session still works at its expected epoch.
    let r = conn.fetch(session_fetch(&topic, (id, 5), &[], &[], 0));
    assert_eq!(r.error_code, 0);
    // Closing it (epoch -1) answers sessionless, in full.
    let r = conn.fetch(session_fetch(&topic, (id, -1), &[(0, 3), (2, 2)], &[], 0));
    assert_eq!((r.error_code, r.session_id), (0, 0));
    assert_eq!(fetched(&r), vec![(0, 3, vec![]), (2, 3, vec!["p2-c".to_string()])]);
    let r = conn.fetch(session_fetch(&topic, (id, 6), &[], &[], 0));
    assert_eq!(r.error_code, 70, "the closed session is gone");
}

// Batches compressed by the producer (every codec librdkafka has) are
// stored as sent and read back; a timestamp lookup finds a record inside
// a compressed batch.
#[test]
fn compressed_batches_round_trip() {
    let tb = TestBroker::start();
    let a = admin(&tb.bootstrap());
    let c = consumer(&tb.bootstrap(), &[]);
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = unique(codec);
        create_topic(&a, &topic, 1, &[]);
        // A long linger: the ten records go out as one batch.
        let p = producer(&tb.bootstrap(), &[("compression.type", codec), ("linger.ms", "200")]);
        let base = 1_650_000_000_000i64;
        let values: Vec<Vec<u8>> = (0..10).map(|i| format!("{codec}-{i}-{}", "abc".repeat(200)).into_bytes()).collect();
        let futures: Vec<_> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                p.send_result(
                    FutureRecord::<[u8], [u8]>::to(&topic)
                        .partition(0)
                        .timestamp(base + i as i64 * 1000)
                        .payload(&v[..]),
                )
                .map_err(|(e, _)| e)
                .expect("enqueue")
            })
            .collect();
        let offsets: Vec<i64> = futures
            .into_iter()
            .map(|f| {
                block_on(async { tokio::time::timeout(WAIT, f).await })
                    .expect("delivery in time")
                    .expect("not canceled")
                    .unwrap_or_else(|(e, _)| panic!("{codec}: {e}"))
                    .offset
            })
            .collect();
        assert_eq!(offsets, (0..10).collect::<Vec<i64>>(), "{codec}");
        // Stored as sent: one batch with the producer's codec.
        let seg = tb.data_dir().join(format!("{topic}-0")).join(format!("{:020}.log", 0));
        let bytes = std::fs::read(&seg).expect("segment");
        let batch_len = i32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
        assert_eq!(12 + batch_len, bytes.len(), "{codec}: one batch");
        let attributes = i16::from_be_bytes(bytes[21..23].try_into().unwrap());
        // librdkafka uses lz4 only with brokers that have FindCoordinator
        // (its proxy for Kafka >= 0.9); without it, it sends lz4 batches
        // uncompressed.
        let lz4_usable = tb.server().broker.router.get(kafka_protocol::messages::ApiKey::FindCoordinator).is_some();
        let want = match codec {
            "gzip" => 1,
            "snappy" => 2,
            "lz4" if lz4_usable => 3,
            "lz4" => 0,
            _ => 4,
        };
        assert_eq!(attributes & 7, want, "{codec}: codec bits of the stored batch");
        let raw: usize = values.iter().map(Vec::len).sum();
        if want != 0 {
            assert!(bytes.len() < raw / 2, "{codec}: {} bytes on disk for {raw} bytes of values", bytes.len());
        }

        assign(&c, &[(topic.as_str(), 0, Offset::Offset(3))]);
        let got = consume(&c, 7, WAIT);
        for (m, i) in got.iter().zip(3..) {
            assert_eq!((m.offset(), m.payload()), (i as i64, Some(&values[i][..])), "{codec}");
            assert_eq!(m.timestamp(), Timestamp::CreateTime(base + i as i64 * 1000));
        }
        let mut tpl = rdkafka::TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(base + 4500)).unwrap();
        let r = c.offsets_for_times(tpl, WAIT).expect("offsets_for_times");
        assert_eq!(
            r.find_partition(&topic, 0).unwrap().offset(),
            Offset::Offset(5),
            "{codec}: lookup inside a compressed batch"
        );
    }
}

// acks=0 and acks=1 are accepted too (acks=0 gets no response, and its
// records are still appended).
#[test]
fn acks_zero_and_one() {
    let tb = TestBroker::start();
    let topic = unique("acks");
    create_topic(&admin(&tb.bootstrap()), &topic, 1, &[]);
    let p1 = producer(&tb.bootstrap(), &[("acks", "1")]);
    assert_eq!(send(&p1, FutureRecord::<[u8], [u8]>::to(&topic).partition(0).payload(&b"one"[..])).unwrap(), (0, 0));
    let p0 = producer(&tb.bootstrap(), &[("acks", "0")]);
    for i in 0..5 {
        // No offset comes back with acks=0.
        let (part, off) =
            send(&p0, FutureRecord::<[u8], [u8]>::to(&topic).partition(0).payload(format!("zero-{i}").as_bytes()))
                .unwrap();
        assert_eq!((part, off), (0, -1001), "acks=0 delivery reports carry no offset");
    }
    let c = consumer(&tb.bootstrap(), &[]);
    assign(&c, &[(topic.as_str(), 0, Offset::Offset(0))]);
    let got: Vec<Vec<u8>> = consume(&c, 6, WAIT).iter().map(|m| m.payload().unwrap().to_vec()).collect();
    let mut want = vec![b"one".to_vec()];
    want.extend((0..5).map(|i| format!("zero-{i}").into_bytes()));
    assert_eq!(got, want);
    // And the connection still serves acks=1 after the unanswered requests.
    assert_eq!(send(&p0, FutureRecord::<[u8], [u8]>::to(&topic).partition(0).payload(&b"x"[..])).unwrap().1, -1001);
    assert_eq!(send(&p1, FutureRecord::<[u8], [u8]>::to(&topic).partition(0).payload(&b"y"[..])).unwrap(), (0, 7));
}

// message.timestamp.type=LogAppendTime: the broker stamps the time of
// append, and the consumer sees it as such.
#[test]
fn log_append_time_topic() {
    let tb = TestBroker::start();
    let topic = unique("lat");
    create_topic(&admin(&tb.bootstrap()), &topic, 1, &[("message.timestamp.type", "LogAppendTime")]);
    let p = producer(&tb.bootstrap(), &[]);
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let before = now();
    let r = FutureRecord::<[u8], [u8]>::to(&topic).partition(0).timestamp(1_000).payload(&b"v"[..]);
    let fut = p.send_result(r).map_err(|(e, _)| e).unwrap();
    let d = block_on(fut).unwrap().unwrap();
    let after = now();
    assert!(
        matches!(d.timestamp, Timestamp::LogAppendTime(t) if (before..=after).contains(&t)),
        "delivery: {:?}",
        d.timestamp
    );
    let c = consumer(&tb.bootstrap(), &[]);
    assign(&c, &[(topic.as_str(), 0, Offset::Offset(0))]);
    let m = consume(&c, 1, WAIT).remove(0);
    assert!(
        matches!(m.timestamp(), Timestamp::LogAppendTime(t) if (before..=after).contains(&t)),
        "consumed: {:?}",
        m.timestamp()
    );
}

// A fetch position past the end is OFFSET_OUT_OF_RANGE; librdkafka then
// resets as auto.offset.reset says.
#[test]
fn out_of_range_position_resets() {
    let tb = TestBroker::start();
    let topic = unique("oor");
    create_topic(&admin(&tb.bootstrap()), &topic, 1, &[]);
    let p = producer(&tb.bootstrap(), &[]);
    for i in 0..3 {
        send(&p, FutureRecord::<[u8], [u8]>::to(&topic).partition(0).payload(format!("v{i}").as_bytes())).unwrap();
    }
    let c = consumer(&tb.bootstrap(), &[("auto.offset.reset", "earliest")]);
    assign(&c, &[(topic.as_str(), 0, Offset::Offset(1000))]);
    let got = consume(&c, 3, WAIT);
    assert_eq!(got.iter().map(|m| m.offset()).collect::<Vec<_>>(), vec![0, 1, 2]);

    let c = consumer(&tb.bootstrap(), &[("auto.offset.reset", "error")]);
    assign(&c, &[(topic.as_str(), 0, Offset::Offset(1000))]);
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no out-of-range error reported");
        match c.poll(Duration::from_millis(100)) {
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset))) => break,
            Some(Err(e)) => panic!("unexpected consumer error {e:?}"),
            Some(Ok(m)) => panic!("unexpected message at {}", m.offset()),
            None => {}
        }
    }
}
