//! Crash test: a child process appends to a log from several tasks and
//! reports every batch `wait_durable` acknowledged; the parent SIGKILLs it
//! at a random moment, reopens the directory (an unclean start, so recovery
//! runs), and checks that
//!
//! - every acknowledged batch is present, byte-exact, at its offset;
//! - reads return only whole, CRC-valid batches with contiguous offsets;
//! - the log accepts appends at the right offset after recovery;
//!
//! then restarts the child on the same directory, again and again.
//!
//! The child is this test binary re-executed with `KASKADE_CRASH_CHILD_DIR`
//! set, running only the `crash_child` test (a no-op without the variable).
//! It prints `durable <offset> <crc32c of the batch after its 16-byte
//! prefix>` per acknowledged batch, flushing stdout after each line.
//!
//! A SIGKILL loses no page-cache data, so this tests recovery (torn writes
//! at the kill point, interrupted rolls, kills during recovery itself) and
//! that nothing is acknowledged before it is written, not the fsync itself.
//!
//! CI runs 8 kills. The full run is 50 or more:
//! `KASKADE_CRASH_KILLS=50 cargo test -p kaskade-log --test crash -- --nocapture`
//! (`KASKADE_CRASH_SEED=<n>` replays a run's kill timings.)

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kaskade_log::batch::{self, build};
use kaskade_log::{LogConfig, LogManager, ManagerOptions, TopicPartition};
use rand::{Rng, SeedableRng};

const CHILD_ENV: &str = "KASKADE_CRASH_CHILD_DIR";
const APPENDERS: usize = 4;

fn tp() -> TopicPartition {
    TopicPartition::new("crash", 0)
}

fn config() -> LogConfig {
    // Small segments so kills land around rolls too.
    LogConfig { segment_bytes: 1 << 20, index_interval_bytes: 4096, ..LogConfig::default() }
}

fn open(dir: &Path) -> (Arc<LogManager>, kaskade_log::OpenReport) {
    LogManager::open(dir, ManagerOptions::default(), |_| config()).expect("open log manager")
}

/// The child: append forever, print what became durable.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let (mgr, report) = open(Path::new(&dir));
    let log = mgr.get_or_create(&tp(), config()).expect("create log");
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready {} repairs={}", log.log_end_offset(), report.repairs.len()).expect("stdout");
        out.flush().expect("stdout");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for t in 0..APPENDERS {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::from_entropy();
                loop {
                    let count = rng.gen_range(1..=16);
                    // Mostly small batches, sometimes large ones that span pages.
                    let max_len = if rng.gen_ratio(1, 10) { 16_000 } else { 1_500 };
                    let values: Vec<Vec<u8>> = (0..count)
                        .map(|_| {
                            let len = rng.gen_range(0..max_len);
                            (0..len).map(|_| rng.gen()).collect()
                        })
                        .collect();
                    let recs: Vec<build::Record<'_>> = values
                        .iter()
                        .map(|v| build::Record { key: None, value: Some(v), timestamp_delta: 0 })
                        .collect();
                    let b = build::batch(&recs, 1_700_000_000_000, t as i64);
                    let info = log.append(&b, 0).expect("append");
                    log.wait_durable(info.last_offset + 1).await.expect("wait_durable");
                    let crc = kaskade_log::batch::crc32c(&b[16..]);
                    let mut out = std::io::stdout().lock();
                    if writeln!(out, "durable {} {crc}", info.first_offset).and_then(|_| out.flush()).is_err() {
                        // The parent is gone.
                        std::process::exit(1);
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("appender");
        }
    });
}

struct Run {
    lines: Vec<String>,
    exited_early: Option<std::process::ExitStatus>,
}

fn run_child(dir: &Path, rng: &mut impl Rng) -> Run {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    // One kill in four lands early, usually inside open/recovery.
    let early = rng.gen_ratio(1, 4);
    let delay = Duration::from_millis(if early { rng.gen_range(0..20) } else { rng.gen_range(20..=300) });
    if !early {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(l) => {
                    // libtest prints `test crash_child ... ` before the
                    // test runs, on the same line.
                    let ready = l.contains("ready ");
                    lines.push(l);
                    if ready {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(st)) = child.try_wait() {
                        drop(rx);
                        let _ = reader.join();
                        return Run { lines, exited_early: Some(st) };
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        panic!("child never became ready; output: {lines:?}");
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
    }
    std::thread::sleep(delay);
    let exited_early = child.try_wait().expect("try_wait");
    if exited_early.is_none() {
        child.kill().expect("SIGKILL child"); // std's kill sends SIGKILL
    }
    child.wait().expect("wait child");
    reader.join().expect("reader");
    lines.extend(rx.try_iter());
    Run { lines, exited_early }
}

struct Verified {
    end: i64,
    batches: usize,
}

/// Reads the whole log: only whole valid batches, contiguous offsets; every
/// durable claim present byte-exact.
fn verify(log: &kaskade_log::Log, claims: &BTreeMap<i64, u32>) -> Verified {
    let start = log.log_start_offset();
    let end = log.log_end_offset();
    let mut found: BTreeMap<i64, u32> = BTreeMap::new();
    let mut next = start;
    let mut batches = 0;
    while next < end {
        let r = log.read(next, 1 << 20, None).expect("read");
        let bytes = r.records.unwrap_or_else(|| panic!("no data at {next} below the end {end}"));
        let mut b = &bytes[..];
        while !b.is_empty() {
            let h = batch::validate_structure(&b[..batch::BatchHeader::parse(b).expect("header").total_len()])
                .unwrap_or_else(|e| panic!("read at {next} returned an invalid batch: {e}"));
            assert_eq!(h.base_offset, next, "offsets are contiguous");
            let len = h.total_len();
            found.insert(h.base_offset, kaskade_log::batch::crc32c(&b[16..len]));
            next = h.next_offset();
            b = &b[len..];
            batches += 1;
        }
    }
    assert_eq!(next, end, "batches end at the log end");
    for (off, crc) in claims {
        match found.get(off) {
            Some(c) => assert_eq!(c, crc, "acknowledged batch at {off} changed"),
            None => panic!("acknowledged batch at {off} is gone (log {start}..{end})"),
        }
    }
    Verified { end, batches }
}

#[test]
fn sigkill_loop() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let kills: usize = std::env::var("KASKADE_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let seed: u64 = std::env::var("KASKADE_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("crash test: {kills} kills, KASKADE_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut claims: BTreeMap<i64, u32> = BTreeMap::new();
    let (mut repaired_opens, mut early_kills_with_no_claims) = (0, 0);
    for round in 0..kills {
        let run = run_child(dir.path(), &mut rng);
        if let Some(st) = run.exited_early {
            panic!("child exited by itself ({st}) in round {round}; output: {:?}", run.lines);
        }
        let before = claims.len();
        for l in &run.lines {
            let mut it = l.split(' ');
            if it.next() != Some("durable") {
                continue;
            }
            // A line cut by the kill does not parse and is simply not a claim.
            let (Some(Ok(off)), Some(Ok(crc)), None) =
                (it.next().map(str::parse::<i64>), it.next().map(str::parse::<u32>), it.next())
            else {
                continue;
            };
            if let Some(prev) = claims.insert(off, crc) {
                assert_eq!(prev, crc, "offset {off} acknowledged twice with different contents");
            }
        }
        if claims.len() == before {
            early_kills_with_no_claims += 1;
        }
        let (mgr, report) = open(dir.path());
        // The marker of a clean parent shutdown survives a child killed
        // before its open got that far (before it printed `ready`).
        let child_opened = run.lines.iter().any(|l| l.contains("ready "));
        assert!(!(report.clean && child_opened), "a child killed after opening leaves no clean-shutdown marker");
        if !report.repairs.is_empty() {
            repaired_opens += 1;
            eprintln!("round {round}: recovery repairs: {:?}", report.repairs);
        }
        // A child killed before it created the log (the very first round,
        // before `ready`) leaves no log and cannot have claimed anything.
        let Some(log) = mgr.get(&tp()) else {
            assert!(!child_opened && claims.is_empty(), "a log that was opened and written survives");
            mgr.shutdown().expect("shutdown");
            continue;
        };
        let v = verify(&log, &claims);
        // Appendable after recovery, at the end.
        let info = log.append(build::filled(3, 100, 1_700_000_000_000, round as u8), 0).expect("append after recovery");
        assert_eq!(info.first_offset, v.end);
        log.flush_blocking().expect("flush");
        eprintln!(
            "round {round}: {} new acks, {} acknowledged in all, log end {}, {} batches, {} segments",
            claims.len() - before,
            claims.len(),
            log.log_end_offset(),
            v.batches + 1,
            log.segment_count()
        );
        // Alternate how the parent leaves: crash (drop) or clean shutdown.
        if rng.gen_bool(0.5) {
            mgr.shutdown().expect("shutdown");
        }
        drop(log);
        drop(mgr);
    }
    eprintln!(
        "crash test done: {kills} kills, {} batches acknowledged and verified, {repaired_opens} recoveries cut a torn tail, {early_kills_with_no_claims} runs acknowledged nothing",
        claims.len()
    );
    assert!(!claims.is_empty(), "the children acknowledged nothing: the test tested nothing");
}
