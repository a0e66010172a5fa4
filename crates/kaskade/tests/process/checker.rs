//! The fault tests' workload and checker (issue 14), shared by every fault
//! case: an idempotent acks=all rdkafka producer that sends numbered
//! records (`record-N` to partition `N % partitions`) and records every
//! acknowledgement and delivery error; a fresh consumer that reads every
//! partition back up to its high watermark; and the checks, which fail
//! unless every acknowledged record is read exactly once at its
//! acknowledged offset, numbers rise within a partition (the producer's
//! order), nothing never sent appears, and every replica's log is the same
//! batch by batch up to the high watermark.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::cluster::{metadata, wait_for, Node};
use super::replicas::same_batches;
use super::{client_config, WAIT};

/// The topic a workload writes: its name and partition count.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub topic: &'static str,
    pub partitions: i32,
}

/// One acknowledged record.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    pub partition: i32,
    pub offset: i64,
    pub number: u64,
    pub at: Instant,
}

/// What the producer's delivery reports said, shared with the test.
#[derive(Default)]
pub struct Deliveries {
    acks: Mutex<Vec<Ack>>,
    errors: Mutex<Vec<String>>,
}

impl Deliveries {
    pub fn acks(&self) -> Vec<Ack> {
        self.acks.lock().expect("acks").clone()
    }

    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().expect("errors").clone()
    }

    /// Waits until `more` acknowledgements arrived after the `from`th.
    pub fn wait_acks(&self, what: &str, from: usize, more: usize) {
        wait_for(what, || (self.acks.lock().expect("acks").len() >= from + more).then_some(()));
    }

    pub fn count(&self) -> usize {
        self.acks.lock().expect("acks").len()
    }
}

struct Recorder(Arc<Deliveries>);

impl ClientContext for Recorder {}

impl ProducerContext for Recorder {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, number: Box<u64>) {
        match result {
            Ok(m) => self.0.acks.lock().expect("acks").push(Ack {
                partition: m.partition(),
                offset: m.offset(),
                number: *number,
                at: Instant::now(),
            }),
            Err((e, _)) => self.0.errors.lock().expect("errors").push(format!("record {number}: {e}")),
        }
    }
}

/// A producer thread sending records numbered from `first` until stopped.
pub struct Producing {
    pub deliveries: Arc<Deliveries>,
    /// The number of the next record to send (a record numbered at or
    /// above it when read was sent after that moment).
    pub next: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<u64>,
}

impl Producing {
    pub fn start(w: Workload, bootstrap: &str, first: u64) -> Producing {
        Producing::start_padded(w, bootstrap, first, 0)
    }

    /// `start` with each value padded by `pad` bytes after `record-N ` (a
    /// load of bytes rather than records; the checker reads the number).
    pub fn start_padded(w: Workload, bootstrap: &str, first: u64, pad: usize) -> Producing {
        let deliveries = Arc::new(Deliveries::default());
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicU64::new(first));
        let thread = {
            let (bootstrap, deliveries, stop, sent) =
                (bootstrap.to_string(), deliveries.clone(), stop.clone(), next.clone());
            thread::spawn(move || produce(w, bootstrap, first, pad, deliveries, stop, sent))
        };
        Producing { deliveries, next, stop, thread }
    }

    /// Stops sending, flushes; the number of the next record it would
    /// have sent.
    pub fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the producer thread")
    }
}

/// Sends records numbered from `first` until `stop`, then flushes; the
/// number of the next record it would have sent.
fn produce(
    w: Workload,
    bootstrap: String,
    first: u64,
    pad: usize,
    deliveries: Arc<Deliveries>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> u64 {
    let padding = "x".repeat(pad);
    let producer: BaseProducer<Recorder> = client_config(&bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.num.messages", "20")
        // Long enough to retry through any failover; an expiry is recorded.
        .set("message.timeout.ms", "60000")
        .set("topic.metadata.refresh.interval.ms", "1000")
        // A paused or cut-off leader answers nothing: give up on it after
        // 10 s and retry on the new leader (Kafka's default is 30 s).
        .set("request.timeout.ms", "10000")
        .create_with_context(Recorder(deliveries))
        .expect("producer");
    let mut next = first;
    while !stop.load(Ordering::Relaxed) {
        let value = if pad == 0 { format!("record-{next}") } else { format!("record-{next} {padding}") };
        let partition = (next % w.partitions as u64) as i32;
        match producer
            .send(BaseRecord::<(), _, _>::with_opaque_to(w.topic, Box::new(next)).partition(partition).payload(&value))
        {
            Ok(()) => {
                next += 1;
                sent.store(next, Ordering::Relaxed);
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {}
            Err((e, _)) => panic!("enqueue record {next}: {e}"),
        }
        // Paces the producer (about a record a millisecond) and serves callbacks.
        producer.poll(Duration::from_millis(1));
    }
    if let Err(e) = producer.flush(Duration::from_secs(90)) {
        panic!("flush after the fault: {e}");
    }
    next
}

/// Short broker sessions (3 s, heartbeat 300 ms) and ISR lag (2 s), so a
/// fault is detected in seconds.
pub fn short_sessions() -> Vec<(String, String)> {
    [
        ("KAFKA_BROKER_SESSION_TIMEOUT_MS", "3000"),
        ("KAFKA_BROKER_HEARTBEAT_INTERVAL_MS", "300"),
        ("KAFKA_REPLICA_LAG_TIME_MAX_MS", "2000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Leaders by partition, once every live node answers the same ones, all
/// of them live nodes.
pub fn agreed_leaders(w: Workload, nodes: &[&Node]) -> Vec<i32> {
    let live: Vec<i32> = nodes.iter().map(|n| n.id).collect();
    wait_for("every live node names the same live leaders", || {
        let answers: Vec<Vec<i32>> =
            nodes.iter().filter_map(|n| metadata(&n.bootstrap(), w.topic)).map(|(_, l)| l).collect();
        let first = answers.first()?.clone();
        (answers.len() == nodes.len()
            && first.len() == w.partitions as usize
            && first.iter().all(|l| live.contains(l))
            && answers.iter().all(|a| *a == first))
        .then_some(first)
    })
}

/// Every record of the topic up to each partition's HW, read from
/// offset 0 by a fresh consumer: partition -> [(offset, number)].
pub fn read_back(w: Workload, bootstrap: &str) -> BTreeMap<i32, Vec<(i64, u64)>> {
    // rdkafka wants a group id even to assign; nothing is committed.
    let c: BaseConsumer = client_config(bootstrap)
        .set("group.id", "fault-checker")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in 0..w.partitions {
        // A node that just rejoined may answer Metadata before it applied
        // the whole image: retry, as a client does.
        let mut last_error: String;
        let deadline = Instant::now() + WAIT;
        let (_, hw) = loop {
            match c.fetch_watermarks(w.topic, p, Duration::from_secs(5)) {
                Ok(marks) => break marks,
                Err(e) => last_error = e.to_string(),
            }
            assert!(Instant::now() < deadline, "the watermarks of {}-{p}: not within {WAIT:?}: {last_error}", w.topic);
            thread::sleep(Duration::from_millis(100));
        };
        tpl.add_partition_offset(w.topic, p, Offset::Beginning).expect("partition");
        ends.insert(p, hw);
    }
    c.assign(&tpl).expect("assign");
    let mut out: BTreeMap<i32, Vec<(i64, u64)>> = (0..w.partitions).map(|p| (p, Vec::new())).collect();
    let done = |out: &BTreeMap<i32, Vec<(i64, u64)>>| {
        ends.iter().all(|(p, hw)| out[p].last().map_or(0, |(o, _)| o + 1) >= *hw)
    };
    let deadline = Instant::now() + WAIT;
    while !done(&out) {
        assert!(Instant::now() < deadline, "read back up to the HWs {ends:?}: not within {WAIT:?}");
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                let number = value
                    .split(' ')
                    .next()
                    .and_then(|v| v.strip_prefix("record-"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| {
                        panic!("partition {} offset {}: a record never sent: {value:?}", m.partition(), m.offset())
                    });
                if m.offset() < ends[&m.partition()] {
                    out.get_mut(&m.partition()).expect("partition").push((m.offset(), number));
                }
            }
            Some(Err(e)) => panic!("read back: {e}"),
            None => {}
        }
    }
    out
}

/// The checker over what was read back: every acknowledged record at its
/// offset exactly once, order per partition, nothing never sent.
pub fn check_records(w: Workload, read: &BTreeMap<i32, Vec<(i64, u64)>>, acks: &[Ack], sent: u64) {
    let topic = w.topic;
    let mut seen: BTreeMap<u64, (i32, i64)> = BTreeMap::new();
    for (p, records) in read {
        let mut last: Option<u64> = None;
        for (offset, number) in records {
            assert!(*number < sent, "{topic}-{p} offset {offset}: record {number} was never sent ({sent} sent)");
            assert_eq!(
                *number % w.partitions as u64,
                *p as u64,
                "{topic}-{p} offset {offset}: record {number} was sent to another partition"
            );
            if let Some(before) = seen.insert(*number, (*p, *offset)) {
                panic!("record {number} appears twice: at {before:?} and at ({p}, {offset})");
            }
            if let Some(l) = last {
                assert!(*number > l, "{topic}-{p} offset {offset}: record {number} after record {l} (order lost)");
            }
            last = Some(*number);
        }
    }
    for ack in acks {
        match seen.get(&ack.number) {
            Some(at) if *at == (ack.partition, ack.offset) => {}
            Some(at) => {
                panic!("record {} acknowledged at ({}, {}) but read at {at:?}", ack.number, ack.partition, ack.offset)
            }
            None => panic!("acknowledged record {} at ({}, {}) is lost", ack.number, ack.partition, ack.offset),
        }
    }
}

/// Each partition's HW as ListOffsets answers a fresh client now.
pub fn high_watermarks(w: Workload, bootstrap: &str) -> BTreeMap<i32, Result<i64, String>> {
    let c: BaseConsumer = client_config(bootstrap).create().expect("consumer");
    (0..w.partitions)
        .map(|p| {
            (p, c.fetch_watermarks(w.topic, p, Duration::from_secs(5)).map(|(_, hw)| hw).map_err(|e| e.to_string()))
        })
        .collect()
}

/// The HW of each partition as the read back saw it.
pub fn read_ends(read: &BTreeMap<i32, Vec<(i64, u64)>>) -> BTreeMap<i32, i64> {
    read.iter().map(|(p, r)| (*p, r.last().map_or(0, |(o, _)| o + 1))).collect()
}

/// Waits until every replica of every partition holds the same batches,
/// at least up to `hws` (a restarted or healed node caught up and
/// truncated), within `within`.
pub fn check_replicas_converge_within(
    w: Workload,
    roots: &[(i32, PathBuf)],
    hws: &BTreeMap<i32, i64>,
    within: Duration,
) {
    check_assigned_replicas_converge(w, roots, None, hws, within)
}

/// `check_replicas_converge_within` over the nodes `assignment[p]` names
/// for partition `p` (every node of `roots` when `None`).
pub fn check_assigned_replicas_converge(
    w: Workload,
    roots: &[(i32, PathBuf)],
    assignment: Option<&[&[i32]]>,
    hws: &BTreeMap<i32, i64>,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let verdict: Result<(), String> = (0..w.partitions).try_for_each(|p| {
            let replicas: Vec<(i32, PathBuf)> =
                roots.iter().filter(|(id, _)| assignment.is_none_or(|a| a[p as usize].contains(id))).cloned().collect();
            let end = same_batches(&replicas, w.topic, p)?;
            if end < hws[&p] {
                return Err(format!("{}-{p}: the replicas end at {end}, below the HW {}", w.topic, hws[&p]));
            }
            Ok(())
        });
        match verdict {
            Ok(()) => return,
            Err(e) => assert!(Instant::now() < deadline, "replicas do not converge within {within:?}: {e}"),
        }
        thread::sleep(Duration::from_millis(100));
    }
}

pub fn check_replicas_converge(w: Workload, roots: &[(i32, PathBuf)], hws: &BTreeMap<i32, i64>) {
    check_replicas_converge_within(w, roots, hws, WAIT)
}

/// Stops the producer, reads everything back through `bootstrap` and runs
/// every check: records against the acknowledgements, then the replicas
/// under `roots`. The number of the next record to send.
pub fn finish_and_check(
    w: Workload,
    producing: Producing,
    bootstrap: &str,
    first: u64,
    roots: &[(i32, PathBuf)],
) -> u64 {
    finish_and_check_assigned(w, producing, bootstrap, first, roots, None)
}

/// `finish_and_check` comparing, for partition `p`, only the nodes
/// `assignment[p]` names as its replicas.
pub fn finish_and_check_assigned(
    w: Workload,
    producing: Producing,
    bootstrap: &str,
    first: u64,
    roots: &[(i32, PathBuf)],
    assignment: Option<&[&[i32]]>,
) -> u64 {
    let deliveries = producing.deliveries.clone();
    let sent = producing.finish();
    let acks = deliveries.acks();
    let errors = deliveries.errors();
    eprintln!(
        "{}: sent {} records, {} acknowledged, {} delivery errors {:?}",
        w.topic,
        sent - first,
        acks.len(),
        errors.len(),
        errors.iter().take(5).collect::<Vec<_>>()
    );
    let read = read_back(w, bootstrap);
    let ends = read_ends(&read);
    eprintln!("{}: read back up to the high watermarks {ends:?}", w.topic);
    let above = acks.iter().filter(|a| a.offset >= ends[&a.partition]).count();
    if above > 0 {
        // Diagnosis for the failure check_records is about to report: was
        // the HW answer stale, or is it still that low?
        eprintln!(
            "{above} acknowledged records lie at or above the HWs read; the HWs asked again: {:?}",
            high_watermarks(w, bootstrap)
        );
    }
    check_records(w, &read, &acks, sent);
    check_assigned_replicas_converge(w, roots, assignment, &read_ends(&read), WAIT);
    sent
}
