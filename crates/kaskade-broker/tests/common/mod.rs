//! Helpers for the integration tests that drive an in-process broker with a
//! real client (librdkafka through the `rdkafka` crate).
//!
//! The broker runs on its own tokio runtime, so the tests themselves are
//! plain synchronous `#[test]`s using librdkafka's blocking calls; admin and
//! delivery futures are driven with [`TestBroker::block_on`] / [`block_on`].
//!
//! Every wait is on an event (a delivery report, a consumed message, a
//! metadata answer) and bounded by a timeout: a test that does not get what
//! it waits for fails with a message saying what was missing, it never hangs
//! and never sleeps in the hope that something happened.

#![allow(dead_code)]

pub mod wire;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use kaskade_broker::{BrokerConfig, Server};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// The bound on any single wait for an event in these tests.
pub const WAIT: Duration = Duration::from_secs(30);

/// An in-process broker on 127.0.0.1:0 over a temporary data directory,
/// on its own runtime. Dropping it shuts the broker down and removes the
/// directory.
pub struct TestBroker {
    server: Option<Server>,
    overrides: Vec<(String, String)>,
    dir: tempfile::TempDir,
    // Declared last: dropped after the server.
    rt: tokio::runtime::Runtime,
}

impl TestBroker {
    /// A broker with the default configuration.
    pub fn start() -> TestBroker {
        Self::start_with(&[])
    }

    /// A broker with `key=value` config overrides (Kafka key names).
    pub fn start_with(overrides: &[(&str, &str)]) -> TestBroker {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("test-broker")
            .enable_all()
            .build()
            .expect("broker runtime");
        let dir = tempfile::Builder::new().prefix("kaskade-it-").tempdir().expect("temp dir");
        let overrides: Vec<(String, String)> = overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut tb = TestBroker { server: None, overrides, dir, rt };
        tb.boot();
        tb
    }

    fn config(&self) -> BrokerConfig {
        let mut pairs = vec![("listeners".to_string(), "PLAINTEXT://127.0.0.1:0".to_string())];
        pairs.extend(self.overrides.iter().cloned());
        BrokerConfig::from_overrides(pairs).expect("test broker config")
    }

    fn boot(&mut self) {
        assert!(self.server.is_none(), "broker already running");
        let config = self.config();
        let dir = self.dir.path().to_path_buf();
        let server = self.rt.block_on(Server::start(config, dir)).expect("broker start");
        self.server = Some(server);
    }

    /// The running server.
    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("broker is running")
    }

    /// The address the broker listens on.
    pub fn addr(&self) -> SocketAddr {
        *self.server().listeners().first().expect("a listener")
    }

    /// `bootstrap.servers` for clients.
    pub fn bootstrap(&self) -> String {
        self.addr().to_string()
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Clean stop: `Server::shutdown` (flush, checkpoints, clean marker).
    pub fn shutdown(&mut self) {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.shutdown()).expect("clean shutdown");
        }
    }

    /// Clean stop, then start again on the same data directory (on a new
    /// ephemeral port: clients made before must be made again).
    pub fn restart(&mut self) {
        self.shutdown();
        self.boot();
    }

    /// Runs a future to completion on the broker's runtime.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = self.rt.block_on(async { tokio::time::timeout(Duration::from_secs(20), server.shutdown()).await });
        }
    }
}

/// Runs a future on a throwaway current-thread runtime.
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

/// A unique name (topic, group) per call within this test process.
pub fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// The base client config: this broker, IPv4, quiet logs.
pub fn client_config(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "30000")
        .set("log_level", "3");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

/// A producer with `acks=all` and a bounded delivery timeout.
pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut c = client_config(bootstrap, &[("acks", "all"), ("message.timeout.ms", "20000"), ("linger.ms", "5")]);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("producer")
}

/// A consumer for `assign` use: a group id is set (librdkafka needs one for
/// `assign`) but nothing is committed and no group is joined. Fetch waits
/// are short so tests move quickly.
pub fn consumer(bootstrap: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let group = unique("it-group");
    let mut c = client_config(
        bootstrap,
        &[
            ("group.id", group.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "error"),
            ("fetch.wait.max.ms", "100"),
        ],
    );
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("consumer")
}

pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    client_config(bootstrap, &[]).create().expect("admin client")
}

pub fn admin_opts() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(WAIT)).operation_timeout(Some(WAIT))
}

/// Creates a topic (rf 1) with topic configs; panics on any error.
pub fn create_topic(admin: &AdminClient<DefaultClientContext>, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        t = t.set(k, v);
    }
    let res = block_on(admin.create_topics([&t], &admin_opts())).expect("create_topics request");
    assert_eq!(res.len(), 1);
    if let Err((n, e)) = &res[0] {
        panic!("creating topic {n}: {e:?}");
    }
}

/// Sends one record and waits for its delivery report: (partition, offset).
pub fn send(p: &FutureProducer, record: FutureRecord<'_, [u8], [u8]>) -> Result<(i32, i64), KafkaError> {
    let fut = p.send_result(record).map_err(|(e, _)| e)?;
    match block_on(async { tokio::time::timeout(WAIT, fut).await }) {
        Ok(Ok(Ok(d))) => Ok((d.partition, d.offset)),
        Ok(Ok(Err((e, _)))) => Err(e),
        Ok(Err(_canceled)) => panic!("delivery future canceled (producer dropped?)"),
        Err(_) => panic!("no delivery report within {WAIT:?}"),
    }
}

/// Assigns explicit (topic, partition, offset) positions: no committed
/// offsets are looked up, so no group coordinator is needed.
pub fn assign<C: ConsumerContext>(c: &BaseConsumer<C>, positions: &[(&str, i32, Offset)]) {
    let mut tpl = TopicPartitionList::new();
    for (t, p, o) in positions {
        tpl.add_partition_offset(t, *p, *o).expect("tpl offset");
    }
    c.assign(&tpl).expect("assign");
}

/// Polls until `n` messages arrived or `timeout` passed; panics with what
/// was received (and any consumer errors) if fewer came.
pub fn consume<C: ConsumerContext>(c: &BaseConsumer<C>, n: usize, timeout: Duration) -> Vec<OwnedMessage> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let got: Vec<_> =
                out.iter().map(|m: &OwnedMessage| (m.topic().to_string(), m.partition(), m.offset())).collect();
            panic!("wanted {n} messages within {timeout:?}, got {}: {got:?}; consumer errors: {errors:?}", out.len());
        }
        match c.poll(left.min(Duration::from_millis(200))) {
            Some(Ok(m)) => out.push(m.detach()),
            Some(Err(e)) => errors.push(e.to_string()),
            None => {}
        }
    }
    out
}

/// Polls for `window`: every message and error that arrived in it.
pub fn drain<C: ConsumerContext>(c: &BaseConsumer<C>, window: Duration) -> (Vec<OwnedMessage>, Vec<KafkaError>) {
    let deadline = Instant::now() + window;
    let mut msgs = Vec::new();
    let mut errs = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (msgs, errs);
        }
        match c.poll(left) {
            Some(Ok(m)) => msgs.push(m.detach()),
            Some(Err(e)) => errs.push(e),
            None => {}
        }
    }
}

/// Reads every partition of `topic` from its low to its high watermark;
/// returns (partition, offset) -> (key, value).
#[allow(clippy::type_complexity)]
pub fn read_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<(i32, i64), (Option<Vec<u8>>, Option<Vec<u8>>)> {
    let c = consumer(bootstrap, &[]);
    let mut positions = Vec::new();
    let mut expected = 0usize;
    for p in 0..partitions {
        let (lo, hi) = c.fetch_watermarks(topic, p, WAIT).expect("watermarks");
        expected += (hi - lo) as usize;
        if hi > lo {
            positions.push((topic, p, Offset::Offset(lo)));
        }
    }
    assign(&c, &positions);
    consume(&c, expected, WAIT)
        .into_iter()
        .map(|m| ((m.partition(), m.offset()), (m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec))))
        .collect()
}

/// Waits (bounded) until `check` gives `Some`, re-checking after each
/// short pause; for conditions that are observable only by asking.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a blocking client call that has no timeout of its own (librdkafka's
/// synchronous commit; a group consumer's close on drop, which polls until
/// its LeaveGroup is done) on a thread of its own, and panics naming `what`
/// if it has not returned within [`WAIT`]: the test fails saying what it
/// waited for instead of hanging. A stuck call's thread is left behind.
pub fn bounded<T: Send + 'static>(what: &str, call: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("bounded-call".to_string())
        .spawn(move || {
            // The receiver is gone only if we already panicked on timeout.
            let _ = tx.send(call());
        })
        .expect("spawn a thread for a bounded call");
    match rx.recv_timeout(WAIT) {
        Ok(v) => v,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("{what}: no answer within {WAIT:?}"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the call panicked"),
    }
}

/// Kafka's default partitioner (Java `Utils.murmur2`, and the partition
/// the Java producer picks for a key), as the CLI's client implements it.
// Not every test file uses it.
#[allow(unused_imports)]
pub use kaskade_client::partitioner::{murmur2, partition_for_key};
