//! Start-up time after a crash, against the log size and the unflushed tail.
//!
//! ```text
//! cargo run --release -p kaskade-log --example recovery_5g -- \
//!     [--sizes-mib 5120,512] [--tails-mib 16,256] [--dir D] [--drop-caches] [--keep]
//! ```
//!
//! For each log size S (default 5 GiB and 0.5 GiB), in a fresh directory:
//!
//! 1. for each tail T: a writer child process (this example re-executed)
//!    opens the log, appends 1 MiB batches of 1 KiB records until the log
//!    holds S bytes, flushes it and writes the checkpoints
//!    (`LogManager::write_checkpoints`), then appends T more bytes in lazy
//!    mode (`FlushPolicy::Lazy { messages: None, ms: None }`: nothing is
//!    flushed or checkpointed) and SIGKILLs itself. The parent then times
//!    `LogManager::open` (recovery of everything past the recovery point);
//! 2. the recovery-point checkpoint is deleted and the state left unclean
//!    again: the timed open is a full recovery (every batch's CRC checked);
//! 3. the log is shut down cleanly and the open is timed again (the
//!    clean-shutdown marker: no scan at all).
//!
//! With `--drop-caches` the page cache is dropped before each timed open
//! (needs root), which is what a power loss leaves; without it the data is
//! still cached, as after a process crash. The directories are deleted at
//! the end unless `--keep`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kaskade_log::batch::build;
use kaskade_log::checkpoint::RECOVERY_POINT_FILE;
use kaskade_log::{FlushPolicy, LogConfig, LogManager, ManagerOptions, OpenReport, TopicPartition};

const MIB: u64 = 1 << 20;

fn tp() -> TopicPartition {
    TopicPartition::new("recovery", 0)
}

fn config() -> LogConfig {
    LogConfig {
        flush: FlushPolicy::Lazy { messages: None, ms: None },
        max_message_bytes: 2 << 20,
        ..LogConfig::default()
    }
}

fn batch() -> Vec<u8> {
    let value: Vec<u8> = (0..1015).map(|i| (i * 7) as u8).collect();
    let recs: Vec<build::Record<'_>> =
        (0..1024).map(|_| build::Record { key: None, value: Some(&value), timestamp_delta: 0 }).collect();
    build::batch(&recs, 1_700_000_000_000, -1)
}

/// The writer: grow the log to `size`, make it durable and checkpointed,
/// append an unflushed `tail`, die without shutting down.
fn child(dir: &Path, size: u64, tail: u64) -> ! {
    let (mgr, _) = LogManager::open(dir, ManagerOptions::default(), |_| config()).expect("open");
    let log = mgr.get_or_create(&tp(), config()).expect("create");
    let b = batch();
    while log.size_bytes() < size {
        log.append(&b, 0).expect("append");
    }
    log.flush_blocking().expect("flush");
    mgr.write_checkpoints().expect("checkpoints");
    let durable = log.size_bytes();
    let mut written = 0;
    while written < tail {
        log.append(&b, 0).expect("append");
        written += b.len() as u64;
    }
    println!("log {durable} bytes checkpointed, {written} bytes of unflushed tail; crashing");
    // SAFETY: kill(2) on our own pid; SIGKILL ends the process at once,
    // without destructors, like a crash.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    unreachable!("SIGKILL")
}

fn drop_caches() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    if let Err(e) = std::fs::write("/proc/sys/vm/drop_caches", "3\n") {
        eprintln!("cannot drop caches ({e}); timings are with a warm page cache");
    }
}

fn timed_open(dir: &Path, cold: bool) -> (Duration, OpenReport, std::sync::Arc<LogManager>) {
    if cold {
        drop_caches();
    }
    let t = Instant::now();
    let (mgr, report) = LogManager::open(dir, ManagerOptions::default(), |_| config()).expect("open");
    (t.elapsed(), report, mgr)
}

struct Row {
    size_mib: u64,
    case: String,
    ms: f64,
    repairs: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let dir = PathBuf::from(&args[2]);
        child(&dir, args[3].parse().expect("size"), args[4].parse().expect("tail"));
    }
    let mut sizes = vec![5120u64, 512];
    let mut tails = vec![16u64, 256];
    let mut base = std::env::temp_dir();
    let (mut cold, mut keep) = (false, false);
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let list = |v: Option<&String>| -> Vec<u64> {
            v.expect("a value").split(',').map(|x| x.trim().parse().expect("a number")).collect()
        };
        match a.as_str() {
            "--sizes-mib" => sizes = list(it.next()),
            "--tails-mib" => tails = list(it.next()),
            "--dir" => base = PathBuf::from(it.next().expect("--dir D")),
            "--drop-caches" => cold = true,
            "--keep" => keep = true,
            other => panic!("unknown argument {other}"),
        }
    }
    let exe = std::env::current_exe().expect("exe");
    let mut rows = Vec::new();
    for &size_mib in &sizes {
        let dir = base.join(format!("kaskade-recovery-{}-{size_mib}mib", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        for &tail_mib in &tails {
            let t = Instant::now();
            let out = Command::new(&exe)
                .args([
                    "--child",
                    dir.to_str().expect("utf-8 dir"),
                    &(size_mib * MIB).to_string(),
                    &(tail_mib * MIB).to_string(),
                ])
                .output()
                .expect("run writer");
            eprint!("{}", String::from_utf8_lossy(&out.stdout));
            assert!(!out.status.success(), "the writer must die by SIGKILL: {:?}", out.status);
            eprintln!("writer for {size_mib} MiB + {tail_mib} MiB tail took {:.1}s", t.elapsed().as_secs_f64());
            let (d, report, mgr) = timed_open(&dir, cold);
            assert!(!report.clean);
            eprintln!(
                "  crash, {tail_mib} MiB unflushed tail: open {:.1} ms, repairs {:?}",
                d.as_secs_f64() * 1e3,
                report.repairs
            );
            rows.push(Row {
                size_mib,
                case: format!("crash, {tail_mib} MiB unflushed tail"),
                ms: d.as_secs_f64() * 1e3,
                repairs: report.repairs.len(),
            });
            // Leave it unclean for the next writer (it recovers, quickly).
            drop(mgr);
        }
        // Full recovery: no usable recovery point.
        std::fs::remove_file(dir.join(RECOVERY_POINT_FILE)).expect("remove checkpoint");
        let (d, report, mgr) = timed_open(&dir, cold);
        assert!(!report.clean);
        let size = mgr.get(&tp()).expect("log").size_bytes();
        eprintln!("  crash, no recovery checkpoint ({} MiB scanned): open {:.1} ms", size / MIB, d.as_secs_f64() * 1e3);
        rows.push(Row {
            size_mib,
            case: "crash, no recovery checkpoint (full scan)".into(),
            ms: d.as_secs_f64() * 1e3,
            repairs: report.repairs.len(),
        });
        mgr.shutdown().expect("shutdown");
        drop(mgr);
        let (d, report, mgr) = timed_open(&dir, cold);
        assert!(report.clean);
        eprintln!("  clean shutdown: open {:.1} ms", d.as_secs_f64() * 1e3);
        rows.push(Row {
            size_mib,
            case: "clean shutdown".into(),
            ms: d.as_secs_f64() * 1e3,
            repairs: report.repairs.len(),
        });
        mgr.shutdown().expect("shutdown");
        drop(mgr);
        if !keep {
            std::fs::remove_dir_all(&dir).expect("cleanup");
        }
    }
    println!();
    println!("page cache: {}", if cold { "dropped before each open" } else { "warm" });
    println!("{:>10}  {:<44} {:>10} {:>8}", "log MiB", "start-up after", "open ms", "repairs");
    for r in &rows {
        println!("{:>10}  {:<44} {:>10.1} {:>8}", r.size_mib, r.case, r.ms, r.repairs);
    }
    let json: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{{\"log_mib\":{},\"case\":\"{}\",\"open_ms\":{:.1},\"repairs\":{}}}",
                r.size_mib, r.case, r.ms, r.repairs
            )
        })
        .collect();
    println!("{{\"cold_cache\":{cold},\"results\":[{}]}}", json.join(","));
}
