//! Benchmark: end-to-end latency through a consumer group (issue #4), with
//! librdkafka. `kbench e2e` reads with `assign`; this reads as a group
//! member (`subscribe`, committed offsets, heartbeats), which is what the
//! issue asks for. A producer sends 1 KiB records at a fixed rate, each
//! carrying its send time; the member records receive time minus send time.
//!
//! ```text
//! kaskade serve &
//! cargo run --release -p kaskade --example group_e2e -- 127.0.0.1:9092 20000 20
//! ```

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message};

const RECORD: usize = 1024;

fn micros_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

fn config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap).set("broker.address.family", "v4");
    c
}

/// What the member received: latencies of timed records, warm-up records
/// (counted, not timed) and consumer errors.
#[derive(Default)]
struct Timings {
    timed_from: u64,
    latencies: Vec<u64>,
    warmup: u64,
    errors: u64,
}

impl Timings {
    fn received(&self) -> u64 {
        self.latencies.len() as u64 + self.warmup
    }

    /// Polls once and records what arrived.
    fn receive(&mut self, consumer: &BaseConsumer, wait: Duration) {
        match consumer.poll(wait) {
            Some(Ok(m)) => {
                if let Some(p) = m.payload().filter(|p| p.len() >= 8) {
                    let mut ts = [0u8; 8];
                    ts.copy_from_slice(&p[..8]);
                    let sent_at = u64::from_be_bytes(ts);
                    if sent_at < self.timed_from {
                        self.warmup += 1;
                    } else {
                        self.latencies.push(micros_now().saturating_sub(sent_at));
                    }
                }
            }
            Some(Err(e)) => {
                self.errors += 1;
                eprintln!("consumer: {e}");
            }
            None => {}
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bootstrap = args.get(1).cloned().unwrap_or_else(|| "127.0.0.1:9092".into());
    let rate: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let seconds: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20);
    let run = std::process::id();
    let topic = format!("group-e2e-{run}");

    let producer: BaseProducer = config(&bootstrap)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .create()
        .expect("producer");
    // Create the topic (auto-creation, 6 partitions by the broker default)
    // and wait until it has leaders.
    producer.client().fetch_metadata(Some(&topic), Duration::from_secs(10)).expect("metadata");

    let consumer: BaseConsumer = config(&bootstrap)
        .set("group.id", format!("group-e2e-{run}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let joined = Instant::now();
    while consumer.assignment().map_or(true, |a| a.count() == 0) {
        consumer.poll(Duration::from_millis(50));
        assert!(joined.elapsed() < Duration::from_secs(30), "no assignment within 30 s");
    }
    println!("member assigned after {:.2} s (group.initial.rebalance.delay.ms)", joined.elapsed().as_secs_f64());

    let total = rate * seconds;
    let mut payload = vec![b'x'; RECORD];
    let started = Instant::now();
    // The first second is warm-up (the member's first fetches, position
    // lookups): its records are received and counted, not timed.
    let mut timings = Timings { timed_from: micros_now() + 1_000_000, ..Timings::default() };
    let mut sent = 0u64;
    let give_up = started + Duration::from_secs(seconds + 30);
    while sent < total && Instant::now() < give_up {
        // Send what the schedule says is due by now.
        let due = ((started.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while sent < due {
            payload[..8].copy_from_slice(&micros_now().to_be_bytes());
            match producer.send(BaseRecord::<[u8], [u8]>::to(&topic).payload(&payload)) {
                Ok(()) => sent += 1,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => break,
                Err((e, _)) => panic!("send: {e}"),
            }
        }
        producer.poll(Duration::ZERO);
        timings.receive(&consumer, Duration::from_millis(1));
    }
    let _ = producer.flush(Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(10);
    while timings.received() < sent && Instant::now() < deadline {
        timings.receive(&consumer, Duration::from_millis(100));
    }
    let Timings { mut latencies, warmup, errors, .. } = timings;
    let received = latencies.len() as u64 + warmup;
    if errors > 0 || received < sent {
        eprintln!("{} of {sent} sent records not received, {errors} consumer errors", sent - received);
    }
    latencies.sort_unstable();
    println!(
        "{received} of {total} records at {rate}/s through a group member ({} timed, after a 1 s warm-up): end-to-end p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999),
        percentile(&latencies, 1.0),
    );
}
