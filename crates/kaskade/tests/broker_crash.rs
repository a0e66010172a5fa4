//! Crash test: the `kaskade` binary runs as a child process under a real
//! producer (librdkafka, acks=all) and is killed with SIGKILL at a random
//! moment, several times; after each restart on the same data directory
//! every acknowledged record must be at its offset with its value.
//!
//! `KASKADE_CRASH_CYCLES` sets the number of kill cycles (default 3);
//! `KASKADE_CRASH_SEED` replays the kill timings of an earlier run (the
//! seed is printed).

mod process;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use process::{client_config, free_port, BrokerProcess, Rng, WAIT};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

const TOPIC: &str = "crash";
const PARTITIONS: i32 = 3;

/// What the producer learnt: every acknowledged record, and how many
/// deliveries failed (expected around a kill).
#[derive(Default)]
struct Acks {
    acked: Mutex<Vec<(i32, i64, Vec<u8>)>>,
    count: AtomicU64,
    failed: AtomicU64,
}

struct AckContext(Arc<Acks>);

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                let value = m.payload().expect("our records have values").to_vec();
                self.0.acked.lock().unwrap().push((m.partition(), m.offset(), value));
                self.0.count.fetch_add(1, Ordering::SeqCst);
            }
            Err(_) => {
                self.0.failed.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// Produces unique values (`v-<seq>`) until `stop`, backing off only when
/// librdkafka's queue is full, and holding off while `pause` is set (so
/// the data to verify does not grow during verification).
fn produce_until(bootstrap: String, acks: Arc<Acks>, stop: Arc<AtomicBool>, pause: Arc<AtomicBool>) {
    let mut c = client_config(&bootstrap);
    c.set("acks", "all")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "15000")
        .set("queue.buffering.max.messages", "2000")
        .set("enable.idempotence", "false");
    let p: ThreadedProducer<AckContext> = c.create_with_context(AckContext(acks)).expect("producer");
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if pause.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let value = format!("v-{seq:010}-{}", "x".repeat((seq % 200) as usize));
        let key = seq.to_string();
        match p.send(BaseRecord::to(TOPIC).key(key.as_bytes()).payload(value.as_bytes())) {
            Ok(()) => seq += 1,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err((e, _)) => panic!("send: {e}"),
        }
    }
    // Let what is queued resolve (delivered or timed out), bounded.
    let _ = p.flush(Duration::from_secs(20));
}

/// Every record of the topic: (partition, offset) -> value; checks that
/// offsets are contiguous from the low watermark.
fn read_everything(bootstrap: &str) -> BTreeMap<(i32, i64), Vec<u8>> {
    let mut cfg = client_config(bootstrap);
    cfg.set("group.id", "crash-verifier")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "50");
    let c: BaseConsumer = cfg.create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in 0..PARTITIONS {
        let (lo, hi) = c.fetch_watermarks(TOPIC, p, WAIT).expect("watermarks");
        if hi > lo {
            tpl.add_partition_offset(TOPIC, p, Offset::Offset(lo)).unwrap();
            ends.insert(p, (lo, hi));
        }
    }
    c.assign(&tpl).expect("assign");
    let want: i64 = ends.values().map(|(lo, hi)| hi - lo).sum();
    let mut out = BTreeMap::new();
    let mut next: BTreeMap<i32, i64> = ends.iter().map(|(p, (lo, _))| (*p, *lo)).collect();
    let deadline = Instant::now() + WAIT;
    while (out.len() as i64) < want {
        assert!(Instant::now() < deadline, "read {} of {want} records in {WAIT:?}", out.len());
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let (p, o) = (m.partition(), m.offset());
                if o >= ends[&p].1 {
                    continue; // produced after the watermarks were taken
                }
                let n = next.get_mut(&p).unwrap();
                assert_eq!(o, *n, "partition {p}: offsets are not contiguous");
                *n += 1;
                out.insert((p, o), m.payload().unwrap_or_default().to_vec());
            }
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
    out
}

/// Every acknowledged record is present, at its offset, with its value.
fn verify(bootstrap: &str, acks: &Acks, cycle: u32) -> usize {
    let acked = acks.acked.lock().unwrap().clone();
    let stored = read_everything(bootstrap);
    for (p, o, v) in &acked {
        match stored.get(&(*p, *o)) {
            Some(s) if s == v => {}
            Some(s) => panic!(
                "cycle {cycle}: acked record {p}@{o} changed: acked {:?}, stored {:?}",
                String::from_utf8_lossy(&v[..16.min(v.len())]),
                String::from_utf8_lossy(&s[..16.min(s.len())])
            ),
            None => panic!("cycle {cycle}: acked record {p}@{o} is missing ({} records stored)", stored.len()),
        }
    }
    acked.len()
}

#[test]
fn acked_records_survive_kill_9() {
    let cycles: u32 = std::env::var("KASKADE_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    eprintln!("broker_crash: {cycles} cycle(s)");
    let mut rng = Rng::from_env("broker_crash");

    let tmp = tempfile::Builder::new().prefix("kaskade-crash-").tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let log = tmp.path().join("broker.log");
    let port = free_port();
    let bootstrap = format!("127.0.0.1:{port}");

    let mut broker = BrokerProcess::start(&data, port, &log);
    {
        let admin: AdminClient<DefaultClientContext> = client_config(&bootstrap).create().expect("admin");
        let opts = AdminOptions::new().request_timeout(Some(WAIT));
        let t = NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(1));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let res = rt.block_on(admin.create_topics([&t], &opts)).expect("create_topics");
        assert!(res[0].is_ok(), "{:?}", res[0]);
    }

    let acks = Arc::new(Acks::default());
    let stop = Arc::new(AtomicBool::new(false));
    let pause = Arc::new(AtomicBool::new(false));
    let producer = {
        let (b, a, s, p) = (bootstrap.clone(), acks.clone(), stop.clone(), pause.clone());
        std::thread::spawn(move || produce_until(b, a, s, p))
    };

    for cycle in 1..=cycles {
        // Load is flowing: at least 200 more acks from this incarnation.
        let target = acks.count.load(Ordering::SeqCst) + 200;
        let deadline = Instant::now() + WAIT;
        while acks.count.load(Ordering::SeqCst) < target {
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: acks stalled at {} (want {target}); broker log:\n{}",
                acks.count.load(Ordering::SeqCst),
                broker.log_tail()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // Then a random moment within the next 0.5 s.
        std::thread::sleep(Duration::from_millis(rng.next() % 500));
        let at_kill = acks.count.load(Ordering::SeqCst);
        broker.kill9();
        eprintln!("cycle {cycle}: killed after {at_kill} acks");

        broker = BrokerProcess::start(&data, port, &log);
        pause.store(true, Ordering::Relaxed);
        let checked = verify(&bootstrap, &acks, cycle);
        pause.store(false, Ordering::Relaxed);
        assert!(checked as u64 >= at_kill);
        eprintln!("cycle {cycle}: {checked} acked records verified after restart");
    }

    // The producer carries on against the last incarnation, then stops.
    let target = acks.count.load(Ordering::SeqCst) + 100;
    let deadline = Instant::now() + WAIT;
    while acks.count.load(Ordering::SeqCst) < target {
        assert!(Instant::now() < deadline, "no acks after the last restart; broker log:\n{}", broker.log_tail());
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    producer.join().expect("producer thread");
    let checked = verify(&bootstrap, &acks, cycles + 1);
    eprintln!(
        "broker_crash: {checked} acked records verified, {} deliveries failed around kills",
        acks.failed.load(Ordering::SeqCst)
    );
    drop(broker);
}
