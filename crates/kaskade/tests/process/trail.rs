//! The transactional workload's trail (issue 14): every step the
//! consume-transform-produce loop takes (begin, send_offsets, commit, each
//! error with librdkafka's kind: fatal, abortable, retriable) and
//! librdkafka's own debug lines (`eos`; more with `KASKADE_TXN_DEBUG`),
//! timestamped in UTC so they line up with the nodes' logs. Written to a file next to the nodes' logs
//! (kept with them by `KASKADE_TEST_FAILED_LOGS`); the last steps and the
//! step in progress are kept in memory for a liveness failure's message.
//!
//! Invariant: a step in progress is recorded before the call that may
//! block and cleared after it returns, so a loop stuck inside librdkafka
//! shows which call and since when.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

/// Steps kept in memory.
const RECENT: usize = 60;

pub struct Trail {
    path: PathBuf,
    file: Mutex<Option<BufWriter<File>>>,
    recent: Mutex<VecDeque<String>>,
    /// The call in progress, if any: (what, since).
    current: Mutex<Option<(String, Instant)>>,
}

/// UTC time of day with microseconds, as the nodes' logs print it.
fn now_utc() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!("{:02}:{:02}:{:02}.{:06}Z", s / 3600, s / 60 % 60, s % 60, d.subsec_micros())
}

impl Trail {
    /// A trail written to `path` (a trail that cannot create its file
    /// still keeps its steps in memory).
    pub fn new(path: &Path) -> Arc<Trail> {
        Arc::new(Trail {
            path: path.to_path_buf(),
            file: Mutex::new(File::create(path).ok().map(BufWriter::new)),
            recent: Mutex::new(VecDeque::new()),
            current: Mutex::new(None),
        })
    }

    fn write(&self, line: &str) {
        if let Some(f) = self.file.lock().expect("trail file").as_mut() {
            let _ = writeln!(f, "{line}");
        }
    }

    /// One step of the loop (also kept in memory).
    pub fn step(&self, what: &str) {
        let line = format!("{} STEP {what}", now_utc());
        self.write(&line);
        let mut recent = self.recent.lock().expect("recent");
        recent.push_back(line);
        while recent.len() > RECENT {
            recent.pop_front();
        }
    }

    /// A call that may block starts.
    pub fn enter(&self, what: &str) {
        self.step(&format!("{what} ..."));
        *self.current.lock().expect("current") = Some((what.to_string(), Instant::now()));
    }

    /// The call `enter` named returned with `outcome`.
    pub fn leave(&self, outcome: &str) {
        let what = self.current.lock().expect("current").take();
        let (what, took) = what.map(|(w, t)| (w, t.elapsed())).unwrap_or_default();
        self.step(&format!("{what} -> {outcome} ({took:?})"));
    }

    /// For a liveness failure: the call in progress and the last steps.
    pub fn report(&self) -> String {
        let current = match &*self.current.lock().expect("current") {
            Some((what, since)) => format!("in progress: {what} for {:?}", since.elapsed()),
            None => "no call in progress".to_string(),
        };
        let recent = self.recent.lock().expect("recent");
        let steps: Vec<&str> = recent.iter().map(String::as_str).collect();
        format!("{current}; trail {} ends:\n{}", self.path.display(), steps.join("\n"))
    }

    /// Copies the trail into `KASKADE_TEST_FAILED_LOGS` (if set).
    pub fn keep(&self) {
        if let Ok(dir) = std::env::var("KASKADE_TEST_FAILED_LOGS") {
            let to = Path::new(&dir).join(format!("{}-transformer.log", std::process::id()));
            if let Some(f) = self.file.lock().expect("trail file").as_mut() {
                let _ = f.flush();
            }
            let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::copy(&self.path, &to));
            eprintln!("--- the transformer's trail kept in {}", to.display());
        }
    }
}

/// How librdkafka classifies a transactional API error.
pub fn kind(e: &KafkaError) -> &'static str {
    match e {
        KafkaError::Transaction(err) if err.is_fatal() => "fatal",
        KafkaError::Transaction(err) if err.txn_requires_abort() => "abortable",
        KafkaError::Transaction(err) if err.is_retriable() => "retriable",
        KafkaError::Transaction(_) => "transaction error, none of fatal/abortable/retriable",
        _ => "not a transaction error",
    }
}

/// The transformer producer's context: librdkafka's log lines, global
/// errors and failed deliveries go to the trail.
pub struct TrailContext(pub Arc<Trail>);

impl ClientContext for TrailContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.0.write(&format!("{} rdkafka {level:?} {fac} {log_message}", now_utc()));
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let line = format!("librdkafka error: {error}: {reason}");
        // Lost connections are routine under faults: in the file only, so
        // they do not push the loop's steps out of the report.
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::BrokerTransportFailure) {
            self.0.write(&format!("{} {line}", now_utc()));
        } else {
            self.0.step(&line);
        }
    }
}

impl ProducerContext for TrailContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.0.step(&format!("delivery failed: {e}"));
        }
    }
}
