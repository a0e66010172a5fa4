//! The fault tests' consumer workloads (issue 14), each a thread with real
//! rdkafka clients recording what it saw for the checker
//! (`checker_groups`):
//! - [`Reading`]: a consumer that reads a topic and records every record it
//!   was handed (partition, offset, number), by `assign` from the start or
//!   in a group with synchronous commits (each acknowledged commit is
//!   recorded);
//! - [`Transforming`]: a consume-transform-produce loop: a read_committed
//!   consumer of topic A and a transactional producer writing each record's
//!   number to the same partition of topic B, with the consumer's offsets
//!   sent to the transaction; transaction K's records carry `txn-K` and
//!   the loop records how many it sent. On any error the incarnation is
//!   dropped and a new one starts (its `init_transactions` fences and ends
//!   the open transaction; it resumes at the group's committed offsets);
//! - [`Watching`]: reads a group's committed offsets (OffsetFetch) every
//!   few hundred milliseconds and records every answer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer, PurgeConfig, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use super::checker::Workload;
use super::client_config;
use super::trail::{kind, Trail, TrailContext};

/// One record a consumer was handed: partition, offset, the number in
/// its value (`record-N ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub number: u64,
}

/// The number of a `record-N ...` value.
pub fn number_of(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.split(' ').next()?.strip_prefix("record-")?.parse().ok()
}

/// What a reading consumer saw.
#[derive(Default)]
pub struct Seen {
    pub reads: Mutex<Vec<Read>>,
    /// Acknowledged commits, in order: partition -> committed offset.
    pub commits: Mutex<Vec<BTreeMap<i32, i64>>>,
    pub commit_errors: Mutex<usize>,
    pub errors: Mutex<usize>,
}

/// How a [`Reading`] consumer takes its partitions.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// Every partition by `assign`, from offset 0.
    Assign,
    /// Subscribed in `group`, committing its position synchronously
    /// every `commit_every`.
    Group { group: &'static str, commit_every: Duration },
}

pub struct Reading {
    pub seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<()>,
}

impl Reading {
    pub fn start(w: Workload, bootstrap: &str, mode: Mode) -> Reading {
        let seen = Arc::new(Seen::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (bootstrap, seen, stop) = (bootstrap.to_string(), seen.clone(), stop.clone());
            thread::spawn(move || read(w, &bootstrap, mode, &seen, &stop))
        };
        Reading { seen, stop, thread }
    }

    pub fn finish(self) -> Arc<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the reading thread");
        self.seen
    }
}

fn read(w: Workload, bootstrap: &str, mode: Mode, seen: &Seen, stop: &AtomicBool) {
    let mut cfg = client_config(bootstrap);
    cfg.set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000");
    match mode {
        Mode::Assign => cfg.set("group.id", "faults-assign"),
        Mode::Group { group, .. } => cfg.set("group.id", group),
    };
    let c: BaseConsumer = cfg.create().expect("consumer");
    match mode {
        Mode::Assign => {
            let mut tpl = TopicPartitionList::new();
            for p in 0..w.partitions {
                tpl.add_partition_offset(w.topic, p, Offset::Beginning).expect("partition");
            }
            c.assign(&tpl).expect("assign");
        }
        Mode::Group { .. } => c.subscribe(&[w.topic]).expect("subscribe"),
    }
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut last_commit = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let Some(number) = m.payload().and_then(number_of) else {
                    panic!("{}-{} offset {}: a record never sent", w.topic, m.partition(), m.offset())
                };
                seen.reads.lock().expect("reads").push(Read { partition: m.partition(), offset: m.offset(), number });
                next.insert(m.partition(), m.offset() + 1);
            }
            // Transient under faults (the coordinator or a leader moved).
            Some(Err(_)) => *seen.errors.lock().expect("errors") += 1,
            None => {}
        }
        if let Mode::Group { commit_every, .. } = mode {
            if last_commit.elapsed() >= commit_every && !next.is_empty() {
                last_commit = Instant::now();
                // Only the partitions this member holds now: a revoked one's
                // position belongs to its next owner.
                let owned: Vec<i32> =
                    c.assignment().map(|a| a.elements().iter().map(|e| e.partition()).collect()).unwrap_or_default();
                next.retain(|p, _| owned.contains(p));
                if next.is_empty() {
                    continue;
                }
                let mut tpl = TopicPartitionList::new();
                for (p, o) in &next {
                    tpl.add_partition_offset(w.topic, *p, Offset::Offset(*o)).expect("partition");
                }
                match c.commit(&tpl, CommitMode::Sync) {
                    Ok(()) => seen.commits.lock().expect("commits").push(next.clone()),
                    Err(_) => *seen.commit_errors.lock().expect("commit errors") += 1,
                }
            }
        }
    }
}

/// A group's committed offsets as OffsetFetch answered them over time.
#[derive(Default)]
pub struct Watched {
    /// (when, partition -> committed offset) for every answer.
    pub answers: Mutex<Vec<(Instant, BTreeMap<i32, i64>)>>,
}

pub struct Watching {
    pub watched: Arc<Watched>,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<()>,
}

impl Watching {
    pub fn start(w: Workload, bootstrap: &str, group: &'static str) -> Watching {
        let watched = Arc::new(Watched::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (bootstrap, watched, stop) = (bootstrap.to_string(), watched.clone(), stop.clone());
            thread::spawn(move || {
                // Never joins: a consumer with the group's id only asks.
                let c: BaseConsumer = client_config(&bootstrap)
                    .set("group.id", group)
                    .set("enable.auto.commit", "false")
                    .set("isolation.level", "read_committed")
                    .create()
                    .expect("consumer");
                while !stop.load(Ordering::Relaxed) {
                    if let Some(offsets) = committed(&c, w) {
                        watched.answers.lock().expect("answers").push((Instant::now(), offsets));
                    }
                    thread::sleep(Duration::from_millis(250));
                }
            })
        };
        Watching { watched, stop, thread }
    }

    pub fn finish(self) -> Arc<Watched> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the watching thread");
        self.watched
    }
}

/// The group of `c`'s committed offsets of `w` (partitions without one
/// left out); `None` on an error.
pub fn committed(c: &BaseConsumer, w: Workload) -> Option<BTreeMap<i32, i64>> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..w.partitions {
        tpl.add_partition(w.topic, p);
    }
    let answer = c.committed_offsets(tpl, Duration::from_secs(5)).ok()?;
    Some(
        answer
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect(),
    )
}

/// What the transforming loop did.
#[derive(Default)]
pub struct Transformed {
    /// Transaction number -> records it sent (whatever its outcome).
    pub sent: Mutex<BTreeMap<u64, usize>>,
    /// Transactions whose commit was acknowledged.
    pub committed: Mutex<Vec<u64>>,
    /// Records the loop's consumer was handed (of topic A).
    pub reads: Mutex<Vec<Read>>,
    /// Incarnations started (1 + the ones an error ended).
    pub incarnations: Mutex<usize>,
    /// Why each ended incarnation ended (the last ones, for a failing run).
    pub failures: Mutex<Vec<String>>,
}

impl Transformed {
    fn failed(&self, why: String) -> bool {
        let mut f = self.failures.lock().expect("failures");
        f.push(why);
        let excess = f.len().saturating_sub(20);
        f.drain(..excess);
        false
    }
}

pub struct Transforming {
    pub done: Arc<Transformed>,
    /// Its steps and librdkafka's debug lines (`process::trail`).
    pub trail: Arc<Trail>,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<()>,
}

/// The transactional id and group of the loop.
pub const TXN_ID: &str = "faults-transformer";
pub const TXN_GROUP: &str = "faults-transform";

impl Transforming {
    /// Starts the loop; its trail is written to `trail`.
    pub fn start(input: Workload, output: Workload, bootstrap: &str, trail: &std::path::Path) -> Transforming {
        let done = Arc::new(Transformed::default());
        let stop = Arc::new(AtomicBool::new(false));
        let trail = Trail::new(trail);
        let thread = {
            let (bootstrap, done, stop, trail) = (bootstrap.to_string(), done.clone(), stop.clone(), trail.clone());
            thread::spawn(move || {
                let mut txn = 0u64;
                loop {
                    *done.incarnations.lock().expect("incarnations") += 1;
                    // Ends only once an incarnation started cleanly after the
                    // stop: its init_transactions ended any open transaction.
                    if transform(input, output, &bootstrap, &done, &trail, &stop, &mut txn) {
                        return;
                    }
                    thread::sleep(Duration::from_millis(200));
                }
            })
        };
        Transforming { done, trail, stop, thread }
    }

    pub fn finish(self) -> Arc<Transformed> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the transforming thread");
        self.done
    }
}

type TxnProducer = ThreadedProducer<TrailContext>;

/// One incarnation; `true` once stopped cleanly, `false` on an error.
fn transform(
    input: Workload,
    output: Workload,
    bootstrap: &str,
    done: &Transformed,
    trail: &Arc<Trail>,
    stop: &AtomicBool,
    txn: &mut u64,
) -> bool {
    let mut cfg = client_config(bootstrap);
    cfg.set("transactional.id", TXN_ID)
        .set("linger.ms", "5")
        .set("transaction.timeout.ms", "20000")
        .set("message.timeout.ms", "20000")
        .set("request.timeout.ms", "10000")
        // librdkafka's debug contexts for the trail: `eos` by default (cheap);
        // KASKADE_TXN_DEBUG=eos,protocol,broker when chasing a stall (the
        // broker context shows connections and decommissioned brokers).
        .set("debug", std::env::var("KASKADE_TXN_DEBUG").unwrap_or_else(|_| "eos".into()))
        .set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
    let p = match TxnProducer::from_config_and_context(&cfg, TrailContext(trail.clone())) {
        Ok(p) => p,
        Err(e) => return done.failed(format!("producer: {e}")),
    };
    trail.step(&format!("incarnation {} starts", *done.incarnations.lock().expect("incarnations")));
    let started = Instant::now();
    let clean = run_incarnation(&p, input, output, bootstrap, done, trail, stop, txn);
    if !clean {
        // Dropping a transactional producer waits for the records it still
        // holds (up to message.timeout.ms): drop them, the next
        // incarnation's init_transactions ends the transaction anyway.
        p.purge(PurgeConfig::default().queue().inflight());
        done.failed(format!("(the incarnation ran {:?})", started.elapsed()));
    }
    trail.enter("dropping the producer");
    drop(p);
    trail.leave("dropped");
    clean
}

/// The timeout the loop gives each transactional call.
const TXN_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// `send_offsets_to_transaction`'s timeout: shorter, since a blocked call
/// (see [`bounded`]) costs this plus [`STUCK_AFTER`] before the loop starts
/// over.
const SEND_OFFSETS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long past its timeout a call may block before [`bounded`] gives up.
const STUCK_AFTER: Duration = Duration::from_secs(5);

/// A transactional call's failure: librdkafka's error, or the call
/// blocked past its timeout.
enum Failed {
    Kafka(KafkaError),
    Stuck(Duration),
}

impl From<KafkaError> for Failed {
    fn from(e: KafkaError) -> Failed {
        Failed::Kafka(e)
    }
}

/// Runs `f` (a transactional call given `timeout`) on a thread of its own
/// and waits at most `timeout` + [`STUCK_AFTER`]; past that it fails and
/// the thread is left blocked (it holds its own producer handle; the next
/// incarnation's InitProducerId fences that producer).
///
/// Why: librdkafka 2.10 to 2.14 can block in `send_offsets_to_transaction`
/// forever, past its timeout. Its request to the group coordinator waits,
/// without a timeout (`creq_ts_timeout` is never checked: librdkafka issue
/// #5456), for the cached coordinator's broker to change state; a broker
/// that a Metadata answer no longer lists is decommissioned (its thread
/// ends), so when the coordinator's node dies and is fenced nothing wakes
/// the request (issue #5511, fix proposed in PR #5512). Kafka's Metadata
/// lists only unfenced brokers too: a Kafka cluster stalls this client the
/// same way. Seen here as "transactions: no progress" after kill -9 of the
/// group coordinator's node, the trail showing the call blocked, a
/// "Handle is terminating" for that broker and no FindCoordinator after.
fn bounded<T: Send + 'static>(
    timeout: Duration,
    f: impl FnOnce() -> KafkaResult<T> + Send + 'static,
) -> Result<T, Failed> {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(timeout + STUCK_AFTER) {
        Ok(result) => Ok(result?),
        Err(_) => Err(Failed::Stuck(timeout + STUCK_AFTER)),
    }
}

/// Runs one transactional call with the trail around it; its error (with
/// librdkafka's kind) ends the incarnation.
fn call<T, E: Into<Failed>>(
    trail: &Trail,
    done: &Transformed,
    what: &str,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, ()> {
    trail.enter(what);
    match f().map_err(Into::into) {
        Ok(v) => {
            trail.leave("ok");
            Ok(v)
        }
        Err(failed) => {
            let why = match failed {
                Failed::Kafka(e) => format!("{what}: {e} ({})", kind(&e)),
                Failed::Stuck(after) => {
                    format!(
                        "{what}: still blocked after {after:?}, past its timeout (librdkafka #5456/#5511): abandoned"
                    )
                }
            };
            trail.leave(&why);
            done.failed(why);
            Err(())
        }
    }
}

/// The body of [`transform`] once its producer exists.
#[allow(clippy::too_many_arguments)]
fn run_incarnation(
    p: &TxnProducer,
    input: Workload,
    output: Workload,
    bootstrap: &str,
    done: &Transformed,
    trail: &Trail,
    stop: &AtomicBool,
    txn: &mut u64,
) -> bool {
    if call(trail, done, "init_transactions", || p.init_transactions(TXN_CALL_TIMEOUT)).is_err() {
        return false;
    }
    if stop.load(Ordering::Relaxed) {
        return true;
    }
    let c: BaseConsumer = match client_config(bootstrap)
        .set("group.id", TXN_GROUP)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "100")
        .create()
    {
        Ok(c) => c,
        Err(e) => return done.failed(format!("consumer: {e}")),
    };
    // Resume where the last committed transaction left off (OffsetFetch
    // with require_stable: waits out a transaction still being completed).
    trail.enter("committed offsets");
    let Some(committed) = committed(&c, input) else {
        trail.leave("failed");
        return done.failed("committed offsets".into());
    };
    trail.leave(&format!("{committed:?}"));
    let mut tpl = TopicPartitionList::new();
    for part in 0..input.partitions {
        let at = committed.get(&part).copied().unwrap_or(0);
        tpl.add_partition_offset(input.topic, part, Offset::Offset(at)).expect("partition");
    }
    if let Err(e) = c.assign(&tpl) {
        return done.failed(format!("assign: {e}"));
    }
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    while !stop.load(Ordering::Relaxed) {
        if call(trail, done, "begin_transaction", || p.begin_transaction()).is_err() {
            return false;
        }
        *txn += 1;
        let k = *txn;
        let mut count = 0usize;
        let deadline = Instant::now() + Duration::from_millis(500);
        trail.enter(&format!("txn {k}: consume and send"));
        while count < 200 && Instant::now() < deadline {
            match c.poll(Duration::from_millis(50)) {
                Some(Ok(m)) => {
                    let Some(number) = m.payload().and_then(number_of) else {
                        panic!("{}-{} offset {}: a record never sent", input.topic, m.partition(), m.offset())
                    };
                    done.reads.lock().expect("reads").push(Read {
                        partition: m.partition(),
                        offset: m.offset(),
                        number,
                    });
                    let value = format!("record-{number} txn-{k}");
                    let record = BaseRecord::<(), _>::to(output.topic).partition(m.partition()).payload(&value);
                    if let Err((e, _)) = p.send(record) {
                        trail.leave(&format!("send: {e}"));
                        return done.failed(format!("send: {e}"));
                    }
                    count += 1;
                    *done.sent.lock().expect("sent").entry(k).or_default() += 1;
                    next.insert(m.partition(), m.offset() + 1);
                }
                // librdkafka reports a lost connection and goes on
                // (it reconnects): not a reason to start over.
                Some(Err(rdkafka::error::KafkaError::MessageConsumption(
                    rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure,
                ))) => {}
                Some(Err(e)) => {
                    trail.leave(&format!("poll: {e}"));
                    return done.failed(format!("poll: {e}"));
                }
                None => {}
            }
        }
        trail.leave(&format!("{count} records"));
        let mut offsets = TopicPartitionList::new();
        for (part, o) in &next {
            offsets.add_partition_offset(input.topic, *part, Offset::Offset(*o)).expect("partition");
        }
        let Some(meta) = c.group_metadata() else { return done.failed("group metadata".into()) };
        if !next.is_empty() {
            let what = format!("txn {k}: send_offsets_to_transaction {next:?}");
            let producer = p.clone();
            let sent = call(trail, done, &what, || {
                bounded(SEND_OFFSETS_TIMEOUT, move || {
                    producer.send_offsets_to_transaction(&offsets, &meta, SEND_OFFSETS_TIMEOUT)
                })
            });
            if sent.is_err() {
                return false;
            }
        }
        if call(trail, done, &format!("txn {k}: commit_transaction"), || p.commit_transaction(TXN_CALL_TIMEOUT))
            .is_err()
        {
            return false;
        }
        done.committed.lock().expect("committed").push(k);
    }
    true
}
