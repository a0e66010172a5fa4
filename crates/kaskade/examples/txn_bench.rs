//! Benchmark: transactional production (issue #5) against a running
//! broker, with librdkafka. For each transaction size it produces the same
//! number of 1 KiB records to one topic in transactions of that size
//! (begin, send, commit), and, as the baseline in the same run, with a
//! plain idempotent producer (no transactions, same acks=all and linger).
//! It waits for deliveries itself before each commit: rust-rdkafka's flush
//! (run by `commit_transaction`) polls in 100 ms steps, which paced every
//! transaction at 100 ms (Python's confluent-kafka, same librdkafka, does
//! not have this).
//!
//! ```text
//! kaskade serve &
//! cargo run --release -p kaskade --example txn_bench -- 127.0.0.1:9092 200000
//! ```

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

const RECORD: usize = 1024;
const PARTITIONS: i32 = 6;
const WAIT: Duration = Duration::from_secs(60);

fn config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "200000");
    if let Ok(debug) = std::env::var("TXN_BENCH_DEBUG") {
        c.set("debug", debug);
    }
    c
}

fn send_all(p: &BaseProducer, topic: &str, n: usize, payload: &[u8]) {
    let mut i = 0;
    while i < n {
        let record = BaseRecord::<[u8], [u8]>::to(topic).partition((i % PARTITIONS as usize) as i32).payload(payload);
        match p.send(record) {
            Ok(()) => {
                i += 1;
                // Serve delivery reports as we go (no polling thread: its
                // 100 ms poll interval would pace commits).
                p.poll(Duration::ZERO);
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                p.poll(Duration::from_millis(1));
            }
            Err((e, _)) => panic!("send: {e}"),
        }
    }
}

/// Records per second for `total` records in transactions of `per_txn`
/// (0: no transactions, the idempotent baseline).
fn run(bootstrap: &str, topic: &str, total: usize, per_txn: usize) -> f64 {
    let payload = vec![b'x'; RECORD];
    let mut c = config(bootstrap);
    if per_txn > 0 {
        c.set("transactional.id", format!("txn-bench-{}-{per_txn}", std::process::id()));
    }
    let p: BaseProducer = c.create().expect("producer");
    if per_txn > 0 {
        p.init_transactions(WAIT).expect("init_transactions");
    }
    let started = Instant::now();
    if per_txn == 0 {
        send_all(&p, topic, total, &payload);
        p.flush(WAIT).expect("flush");
    } else {
        let mut done = 0;
        while done < total {
            let n = per_txn.min(total - done);
            p.begin_transaction().expect("begin");
            send_all(&p, topic, n, &payload);
            // Wait for the deliveries ourselves: rust-rdkafka's own flush
            // (which commit_transaction runs first) polls in 100 ms steps
            // and would pace every commit at 100 ms.
            while p.in_flight_count() > 0 {
                p.poll(Duration::from_millis(1));
            }
            p.commit_transaction(WAIT).expect("commit");
            done += n;
        }
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bootstrap = args.get(1).cloned().unwrap_or_else(|| "127.0.0.1:9092".into());
    let total: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let topic = format!("txn-bench-{}", std::process::id());
    let admin: AdminClient<DefaultClientContext> = config(&bootstrap).create().expect("admin");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let created = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(&topic, PARTITIONS, TopicReplication::Fixed(1))],
            &AdminOptions::new().request_timeout(Some(WAIT)),
        ))
        .expect("create topic");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    println!("{total} records of {RECORD} B, {PARTITIONS} partitions, acks=all, linger 5 ms");
    // Alternate so drift on a noisy machine hits every mode alike.
    let modes = [0usize, 100, 1000];
    let mut rates = vec![Vec::new(); modes.len()];
    for _ in 0..2 {
        for (i, per_txn) in modes.iter().enumerate() {
            rates[i].push(run(&bootstrap, &topic, total, *per_txn));
        }
    }
    let best = |v: &Vec<f64>| v.iter().cloned().fold(0.0, f64::max);
    let baseline = best(&rates[0]);
    for (i, per_txn) in modes.iter().enumerate() {
        let rate = best(&rates[i]);
        let label = if *per_txn == 0 {
            "idempotent, no transactions".to_string()
        } else {
            format!("{per_txn}-record transactions")
        };
        println!(
            "{label:>30}: {:>9.0} rec/s {:>7.1} MiB/s  ({:.0}% of the idempotent baseline; runs {:?})",
            rate,
            rate * RECORD as f64 / (1 << 20) as f64,
            100.0 * rate / baseline,
            rates[i].iter().map(|r| r.round()).collect::<Vec<_>>()
        );
    }
}
