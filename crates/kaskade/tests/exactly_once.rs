//! Exactly-once across broker crashes, with the `kaskade` binary as a child
//! process and librdkafka clients:
//!
//! - a consume-transform-produce loop (transactions, offsets sent to the
//!   transaction) while the broker is killed with SIGKILL several times:
//!   afterwards the output holds every input record exactly once and the
//!   group's committed offsets agree with it;
//! - an idempotent producer sending records while the broker is killed
//!   once and restarted cleanly once: every record is stored exactly once,
//!   in order per partition.
//!
//! `KASKADE_EOS_KILLS` (default 3) and `KASKADE_EOS_RECORDS` (default
//! 1,000,000) scale them; `KASKADE_CRASH_SEED` replays kill timings.

mod process;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use process::{client_config, free_port, BrokerProcess, Rng, WAIT};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

const PARTITIONS: i32 = 2;

fn create_topics(bootstrap: &str, names: &[&str]) {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create().expect("admin");
    let opts = AdminOptions::new().request_timeout(Some(WAIT));
    let topics: Vec<NewTopic> =
        names.iter().map(|n| NewTopic::new(n, PARTITIONS, TopicReplication::Fixed(1))).collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    for r in rt.block_on(admin.create_topics(&topics, &opts)).expect("create_topics") {
        assert!(r.is_ok(), "{r:?}");
    }
}

/// Every value of `topic` a consumer with `isolation` reads, by partition,
/// from the start to the end its isolation level allows.
fn read_values(bootstrap: &str, topic: &str, isolation: &str) -> BTreeMap<i32, Vec<String>> {
    let mut cfg = client_config(bootstrap);
    cfg.set("group.id", "eos-verifier")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "50");
    let c: BaseConsumer = cfg.create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut out: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut at_end = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while at_end < PARTITIONS {
        assert!(Instant::now() < deadline, "reading {topic} did not reach the end");
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out
                .entry(m.partition())
                .or_default()
                .push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()),
            Some(Err(KafkaError::PartitionEOF(_))) => at_end += 1,
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
    out
}

/// One incarnation of the transformer: a transactional producer (its
/// init fences and aborts whatever the previous incarnation left open)
/// and a read_committed consumer resuming at the group's committed
/// offsets. Copies `in-*` to `out-*` in transactions of up to 50 records.
/// Returns when the input is all copied (`Ok(true)`) or on the first error
/// (`Ok(false)`: the caller starts a new incarnation).
fn transform(bootstrap: &str, input: &str, output: &str, group: &str, total: usize, txns: &AtomicU64) -> bool {
    let mut pc = client_config(bootstrap);
    pc.set("transactional.id", "eos-transformer").set("linger.ms", "1").set("transaction.timeout.ms", "10000");
    let Ok(p) = pc.create::<ThreadedProducer<DefaultProducerContext>>() else { return false };
    if p.init_transactions(Duration::from_secs(10)).is_err() {
        return false;
    }
    let mut cc = client_config(bootstrap);
    cc.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "50");
    let Ok(c) = cc.create::<BaseConsumer>() else { return false };
    let mut tpl = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        tpl.add_partition(input, partition);
    }
    let Ok(committed) = c.committed_offsets(tpl, Duration::from_secs(10)) else { return false };
    let mut positions = TopicPartitionList::new();
    let mut done = 0usize;
    for e in committed.elements() {
        let at = match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        };
        done += at as usize;
        positions.add_partition_offset(input, e.partition(), Offset::Offset(at)).expect("tpl");
    }
    if c.assign(&positions).is_err() {
        return false;
    }
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    while done < total {
        if p.begin_transaction().is_err() {
            return false;
        }
        let mut batch = 0;
        let deadline = Instant::now() + Duration::from_secs(2);
        while batch < 50 && Instant::now() < deadline {
            match c.poll(Duration::from_millis(50)) {
                Some(Ok(m)) => {
                    let v = format!("out-{}", String::from_utf8_lossy(m.payload().unwrap_or_default()));
                    let record = BaseRecord::<[u8], [u8]>::to(output).partition(m.partition()).payload(v.as_bytes());
                    if p.send(record).is_err() {
                        return false;
                    }
                    next.insert(m.partition(), m.offset() + 1);
                    batch += 1;
                }
                Some(Err(_)) => return false,
                None => {}
            }
        }
        let mut offsets = TopicPartitionList::new();
        for (partition, o) in &next {
            offsets.add_partition_offset(input, *partition, Offset::Offset(*o)).expect("tpl");
        }
        let Some(meta) = c.group_metadata() else { return false };
        if p.send_offsets_to_transaction(&offsets, &meta, Duration::from_secs(10)).is_err()
            || p.commit_transaction(Duration::from_secs(10)).is_err()
        {
            return false;
        }
        txns.fetch_add(1, Ordering::SeqCst);
        done = next.values().sum::<i64>() as usize;
    }
    true
}

#[test]
fn consume_transform_produce_is_exactly_once_through_kill_9() {
    let kills: u32 = std::env::var("KASKADE_EOS_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let mut rng = Rng::from_env("consume_transform_produce");
    let tmp = tempfile::Builder::new().prefix("kaskade-eos-").tempdir().expect("temp dir");
    let (data, log) = (tmp.path().join("data"), tmp.path().join("broker.log"));
    let port = free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let mut broker = BrokerProcess::start(&data, port, &log);
    create_topics(&bootstrap, &["eos-in", "eos-out"]);
    // The input: 3,000 records, acknowledged before the loop starts.
    const TOTAL: usize = 3000;
    {
        let mut c = client_config(&bootstrap);
        c.set("acks", "all").set("linger.ms", "5");
        let p: ThreadedProducer<DefaultProducerContext> = c.create().expect("producer");
        for i in 0..TOTAL {
            let v = format!("in-{i:05}");
            let partition = (i % PARTITIONS as usize) as i32;
            p.send(BaseRecord::<[u8], [u8]>::to("eos-in").partition(partition).payload(v.as_bytes())).expect("send");
        }
        p.flush(WAIT).expect("input delivered");
    }
    let txns = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let worker = {
        let (b, t, f) = (bootstrap.clone(), txns.clone(), finished.clone());
        std::thread::spawn(move || {
            let mut incarnations = 0;
            while !transform(&b, "eos-in", "eos-out", "eos-group", TOTAL, &t) {
                incarnations += 1;
                assert!(incarnations < 200, "the transformer keeps failing");
                std::thread::sleep(Duration::from_millis(100));
            }
            f.store(true, Ordering::SeqCst);
            incarnations
        })
    };
    for kill in 1..=kills {
        // Some transactions from this incarnation, then a random moment.
        let target = txns.load(Ordering::SeqCst) + 3;
        let deadline = Instant::now() + Duration::from_secs(60);
        while txns.load(Ordering::SeqCst) < target && !finished.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "kill {kill}: no progress; broker log:\n{}", broker.log_tail());
            std::thread::sleep(Duration::from_millis(10));
        }
        if finished.load(Ordering::SeqCst) {
            eprintln!("kill {kill}: the loop finished first");
            break;
        }
        std::thread::sleep(Duration::from_millis(rng.next() % 200));
        broker.kill9();
        eprintln!("kill {kill}: after {} committed transactions", txns.load(Ordering::SeqCst));
        broker = BrokerProcess::start(&data, port, &log);
    }
    let incarnations = worker.join().expect("transformer");
    eprintln!("{} transactions committed, {incarnations} transformer restarts", txns.load(Ordering::SeqCst));

    let output = read_values(&bootstrap, "eos-out", "read_committed");
    let mut seen: Vec<String> = output.values().flatten().cloned().collect();
    seen.sort();
    let expected: Vec<String> = (0..TOTAL).map(|i| format!("out-in-{i:05}")).collect();
    assert_eq!(seen.len(), TOTAL, "each input exactly once in the committed output");
    assert_eq!(seen, expected);
    // In order within each partition, as the input was.
    for values in output.values() {
        assert!(values.windows(2).all(|w| w[0] < w[1]), "output out of order");
    }
    // The group's committed offsets agree with the output.
    let mut cc = client_config(&bootstrap);
    cc.set("group.id", "eos-group").set("isolation.level", "read_committed");
    let c: BaseConsumer = cc.create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition("eos-in", p);
    }
    let committed = c.committed_offsets(tpl, WAIT).expect("committed offsets");
    for e in committed.elements() {
        let copied = output.get(&e.partition()).map_or(0, Vec::len) as i64;
        assert_eq!(e.offset(), Offset::Offset(copied), "partition {}", e.partition());
    }
    broker.stop();
}

#[test]
fn idempotent_records_are_stored_once_in_order_through_two_restarts() {
    let total: u64 = std::env::var("KASKADE_EOS_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let mut rng = Rng::from_env("idempotent_restarts");
    let tmp = tempfile::Builder::new().prefix("kaskade-idem-").tempdir().expect("temp dir");
    let (data, log) = (tmp.path().join("data"), tmp.path().join("broker.log"));
    let port = free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let mut broker = BrokerProcess::start(&data, port, &log);
    create_topics(&bootstrap, &["idem"]);
    let acked = Arc::new(AtomicU64::new(0));
    let producer = {
        let (b, acked) = (bootstrap.clone(), acked.clone());
        std::thread::spawn(move || {
            let mut c = client_config(&b);
            c.set("enable.idempotence", "true")
                .set("acks", "all")
                .set("linger.ms", "5")
                .set("message.timeout.ms", "120000")
                .set("queue.buffering.max.messages", "100000");
            let p: ThreadedProducer<DefaultProducerContext> = c.create().expect("idempotent producer");
            let mut seq = [0u64; PARTITIONS as usize];
            let mut sent = 0u64;
            // `in_flight_count` is librdkafka's out-queue length, which also
            // counts requests and events: it may exceed the records sent.
            // (An underflow here panicked this thread now and then under load.)
            while sent < total {
                let partition = (sent % PARTITIONS as u64) as usize;
                let v = format!("{partition}-{:09}", seq[partition]);
                let record = BaseRecord::<[u8], [u8]>::to("idem").partition(partition as i32).payload(v.as_bytes());
                match p.send(record) {
                    Ok(()) => {
                        seq[partition] += 1;
                        sent += 1;
                        if sent.is_multiple_of(1000) {
                            acked.store(sent.saturating_sub(p.in_flight_count() as u64), Ordering::SeqCst);
                        }
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        acked.store(sent.saturating_sub(p.in_flight_count() as u64), Ordering::SeqCst);
                        p.poll(Duration::from_millis(5));
                    }
                    Err((e, _)) => panic!("send: {e}"),
                }
            }
            p.flush(Duration::from_secs(180)).expect("every record delivered");
            acked.store(total, Ordering::SeqCst);
        })
    };
    for (i, at) in [total / 3, 2 * total / 3].into_iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(180);
        while acked.load(Ordering::SeqCst) < at + rng.next() % (total / 10).max(1) {
            assert!(Instant::now() < deadline, "no progress; broker log:\n{}", broker.log_tail());
            std::thread::sleep(Duration::from_millis(5));
        }
        if i == 0 {
            broker.kill9();
            eprintln!("killed (SIGKILL) at about {} records", acked.load(Ordering::SeqCst));
        } else {
            broker.stop();
            eprintln!("stopped (SIGTERM) at about {} records", acked.load(Ordering::SeqCst));
        }
        broker = BrokerProcess::start(&data, port, &log);
    }
    producer.join().expect("producer");
    let stored = read_values(&bootstrap, "idem", "read_uncommitted");
    let count: usize = stored.values().map(Vec::len).sum();
    assert_eq!(count as u64, total, "exactly {total} records");
    for (partition, values) in &stored {
        for (i, v) in values.iter().enumerate() {
            assert_eq!(*v, format!("{partition}-{i:09}"), "partition {partition}: record {i} out of order or repeated");
        }
    }
    broker.stop();
}
