//! Append and read throughput of the partition log against the raw limits
//! of the same disk.
//!
//! ```text
//! cargo run --release -p kaskade-log --example logbench -- [--volume-mib N] [--dir D]
//!     [--inflight N] [--workers N] [--only SUBSTRING]
//! ```
//!
//! Every figure writes the same volume of 1 KiB records:
//!
//! - raw limits: sequential 1 MiB `write`s to one file with a single
//!   `fdatasync` at the end, and with an `fdatasync` after every 1 MiB;
//! - appends in 16 KiB and 1 MiB batches, by 1 appender, 8 appenders on 8
//!   partitions (Kafka-like), and 8 appenders on one partition, in
//!   - durable mode, one outstanding append per appender (append, then
//!     `wait_durable`, then the next: acks=all with one request in flight),
//!   - durable mode pipelined, up to `--inflight` (default 5, Kafka's
//!     `max.in.flight.requests.per.connection`) unacknowledged appends per
//!     appender, as a real producer does,
//!   - lazy mode (`FlushPolicy::Lazy { messages: None, ms: None }`), timed
//!     up to and including one final flush of every partition, which makes
//!     it comparable with the raw single-sync write;
//! - reads of a 1-partition log back from the page cache with 1 MiB reads,
//!   against `pread`s of the raw file.
//!
//! Appenders are tokio tasks on a multi-thread runtime with `--workers`
//! workers (default: the number of CPUs), as in the broker.
//!
//! Prints a table (MiB/s and the ratio to each raw limit) and, as the last
//! line, the same figures as JSON.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kaskade_log::batch::build;
use kaskade_log::{FlushPolicy, LogConfig, LogManager, ManagerOptions, TopicPartition};

const MIB: usize = 1 << 20;
const RECORD: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Durable,
    Pipelined(usize),
    Lazy,
}

#[derive(Clone, Debug)]
struct Scenario {
    batch: usize,
    appenders: usize,
    partitions: usize,
    mode: Mode,
}

impl Scenario {
    fn name(&self) -> String {
        let mode = match self.mode {
            Mode::Durable => "durable".to_string(),
            Mode::Pipelined(n) => format!("durable-pipelined{n}"),
            Mode::Lazy => "lazy".to_string(),
        };
        let batch = if self.batch >= MIB { format!("{}MiB", self.batch / MIB) } else { format!("{}KiB", self.batch / 1024) };
        format!("{mode} {batch} {}app/{}part", self.appenders, self.partitions)
    }
}

struct Opts {
    volume: usize,
    dir: PathBuf,
    inflight: usize,
    workers: usize,
    only: Option<String>,
}

fn parse_args() -> Opts {
    let mut o = Opts {
        volume: 1024 * MIB,
        dir: std::env::temp_dir(),
        inflight: 5,
        workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--volume-mib" => o.volume = val().parse::<usize>().expect("--volume-mib N") * MIB,
            "--dir" => o.dir = PathBuf::from(val()),
            "--inflight" => o.inflight = val().parse().expect("--inflight N"),
            "--workers" => o.workers = val().parse().expect("--workers N"),
            "--only" => o.only = Some(val()),
            "-h" | "--help" => {
                println!("logbench [--volume-mib N] [--dir D] [--inflight N] [--workers N] [--only SUBSTRING]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

/// A batch of 1 KiB records (record framing included) of about `target` bytes.
fn make_batch(target: usize) -> Vec<u8> {
    // Each record is RECORD bytes on the wire: value + ~9 bytes of framing.
    let count = (target / RECORD).max(1);
    let value: Vec<u8> = (0..RECORD - 9).map(|i| (i * 31) as u8).collect();
    let recs: Vec<build::Record<'_>> =
        (0..count).map(|_| build::Record { key: None, value: Some(&value), timestamp_delta: 0 }).collect();
    build::batch(&recs, 1_700_000_000_000, -1)
}

fn mibs(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / MIB as f64 / d.as_secs_f64()
}

fn fresh_dir(base: &Path, name: &str) -> PathBuf {
    let d = base.join(format!("kaskade-logbench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("bench dir");
    d
}

/// Lets the previous run's writeback settle so runs do not bleed into each other.
fn settle() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    std::thread::sleep(Duration::from_millis(200));
}

fn raw_write(base: &Path, volume: usize, sync_every_mib: bool) -> f64 {
    let d = fresh_dir(base, "raw");
    let path = d.join("raw.bin");
    let buf = vec![0xa5u8; MIB];
    let start = Instant::now();
    let mut f = File::create(&path).expect("create");
    for _ in 0..volume / MIB {
        f.write_all(&buf).expect("write");
        if sync_every_mib {
            f.sync_data().expect("fdatasync");
        }
    }
    f.sync_data().expect("fdatasync");
    let r = mibs(volume, start.elapsed());
    drop(f);
    std::fs::remove_dir_all(&d).expect("cleanup");
    settle();
    r
}

/// Reads a raw file of `volume` bytes back from the page cache, 1 MiB preads.
fn raw_read(base: &Path, volume: usize) -> f64 {
    let d = fresh_dir(base, "rawread");
    let path = d.join("raw.bin");
    {
        let mut f = File::create(&path).expect("create");
        let buf = vec![0x5au8; MIB];
        for _ in 0..volume / MIB {
            f.write_all(&buf).expect("write");
        }
        f.sync_data().expect("fdatasync");
    }
    let f = File::open(&path).expect("open");
    let mut buf = vec![0u8; MIB];
    // Warm pass, then the timed one.
    for pass in 0..2 {
        let start = Instant::now();
        let mut pos = 0u64;
        while pos < volume as u64 {
            let n = f.read_at(&mut buf, pos).expect("pread");
            if n == 0 {
                break;
            }
            pos += n as u64;
        }
        if pass == 1 {
            let r = mibs(volume, start.elapsed());
            std::fs::remove_dir_all(&d).expect("cleanup");
            return r;
        }
    }
    unreachable!()
}

struct AppendResult {
    mibs: f64,
    read_mibs: Option<f64>,
}

fn run_append(rt: &tokio::runtime::Runtime, base: &Path, volume: usize, sc: &Scenario, measure_read: bool) -> AppendResult {
    let d = fresh_dir(base, "log");
    let cfg = LogConfig {
        flush: if sc.mode == Mode::Lazy { FlushPolicy::Lazy { messages: None, ms: None } } else { FlushPolicy::Durable },
        max_message_bytes: 2 * MIB,
        ..LogConfig::default()
    };
    let c2 = cfg.clone();
    let (mgr, _) = LogManager::open(&d, ManagerOptions::default(), move |_| c2.clone()).expect("open");
    let logs: Vec<_> = (0..sc.partitions)
        .map(|p| mgr.get_or_create(&TopicPartition::new("bench", p as i32), cfg.clone()).expect("create"))
        .collect();
    let batch = Arc::new(make_batch(sc.batch));
    let per_appender = (volume / sc.appenders / batch.len()).max(1);
    let total = per_appender * sc.appenders * batch.len();
    let start = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for a in 0..sc.appenders {
            let log = logs[a % sc.partitions].clone();
            let batch = batch.clone();
            let mode = sc.mode;
            tasks.push(tokio::spawn(async move {
                let mut outstanding = VecDeque::new();
                for _ in 0..per_appender {
                    let info = log.append(&batch, 0).expect("append");
                    match mode {
                        Mode::Durable => log.wait_durable(info.last_offset + 1).await.expect("durable"),
                        Mode::Pipelined(n) => {
                            outstanding.push_back(info.last_offset + 1);
                            if outstanding.len() >= n {
                                let end = outstanding.pop_front().expect("outstanding");
                                log.wait_durable(end).await.expect("durable");
                            }
                        }
                        Mode::Lazy => {}
                    }
                }
                if let Some(end) = outstanding.pop_back() {
                    log.wait_durable(end).await.expect("durable");
                }
            }));
        }
        for t in tasks {
            t.await.expect("appender");
        }
    });
    if sc.mode == Mode::Lazy {
        for l in &logs {
            l.flush_blocking().expect("flush");
        }
    }
    let write = mibs(total, start.elapsed());
    let read_mibs = measure_read.then(|| {
        let log = &logs[0];
        let end = log.log_end_offset();
        let mut best = 0f64;
        // Warm pass, then the timed one.
        for _ in 0..2 {
            let t = Instant::now();
            let (mut off, mut bytes) = (0i64, 0usize);
            while off < end {
                let r = log.read(off, MIB, None).expect("read");
                let b = r.records.expect("data");
                bytes += b.len();
                let last = last_next_offset(&b);
                off = last;
            }
            best = mibs(bytes, t.elapsed());
        }
        best
    });
    mgr.shutdown().expect("shutdown");
    drop(logs);
    drop(mgr);
    std::fs::remove_dir_all(&d).expect("cleanup");
    settle();
    AppendResult { mibs: write, read_mibs }
}

/// The offset after the last batch in a read result.
fn last_next_offset(mut b: &[u8]) -> i64 {
    let mut next = 0;
    while !b.is_empty() {
        let h = kaskade_log::batch::BatchHeader::parse(b).expect("header");
        next = h.next_offset();
        b = &b[h.total_len()..];
    }
    next
}

fn main() {
    let o = parse_args();
    std::fs::create_dir_all(&o.dir).expect("--dir");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(o.workers).enable_all().build().expect("runtime");
    let vol_mib = o.volume / MIB;
    eprintln!("logbench: {vol_mib} MiB per figure in {}, {} tokio workers, pipelined depth {}", o.dir.display(), o.workers, o.inflight);

    let raw_single = raw_write(&o.dir, o.volume, false);
    let raw_per_mib = raw_write(&o.dir, o.volume, true);
    eprintln!("raw write, one fdatasync at the end: {raw_single:.0} MiB/s; fdatasync per MiB: {raw_per_mib:.0} MiB/s");

    let mut scenarios = Vec::new();
    for mode in [Mode::Durable, Mode::Pipelined(o.inflight), Mode::Lazy] {
        for batch in [16 * 1024, MIB] {
            for (appenders, partitions) in [(1, 1), (8, 8), (8, 1)] {
                scenarios.push(Scenario { batch, appenders, partitions, mode });
            }
        }
    }
    let mut rows: Vec<(String, f64)> = Vec::new();
    let mut read = None;
    for sc in &scenarios {
        let name = sc.name();
        if o.only.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let measure_read = sc.mode == Mode::Lazy && sc.batch == MIB && sc.appenders == 1;
        let r = run_append(&rt, &o.dir, o.volume, sc, measure_read);
        eprintln!("{name:<40} {:>8.0} MiB/s", r.mibs);
        rows.push((name, r.mibs));
        if let Some(rm) = r.read_mibs {
            read = Some(rm);
        }
    }
    let raw_read_mibs = raw_read(&o.dir, o.volume);
    // The raw figure after the runs too, to see drift.
    let raw_single_after = raw_write(&o.dir, o.volume, false);

    println!();
    println!("volume {vol_mib} MiB per figure, 1 KiB records; raw write: single fdatasync {raw_single:.0} MiB/s (again after the runs: {raw_single_after:.0}), fdatasync per MiB {raw_per_mib:.0} MiB/s");
    println!("{:<40} {:>9} {:>12} {:>12}", "append", "MiB/s", "/raw-1sync", "/raw-sync-MiB");
    for (name, v) in &rows {
        println!("{name:<40} {v:>9.0} {:>11.0}% {:>11.0}%", 100.0 * v / raw_single, 100.0 * v / raw_per_mib);
    }
    if let Some(r) = read {
        println!("{:<40} {r:>9.0} {:>11.0}%   (of raw pread {raw_read_mibs:.0} MiB/s)", "read 1 MiB from page cache", 100.0 * r / raw_read_mibs);
    }
    let mut json = format!(
        "{{\"volume_mib\":{vol_mib},\"workers\":{},\"inflight\":{},\"raw_write_single_sync_mibs\":{raw_single:.1},\"raw_write_single_sync_after_mibs\":{raw_single_after:.1},\"raw_write_sync_per_mib_mibs\":{raw_per_mib:.1},\"raw_read_mibs\":{raw_read_mibs:.1},\"read_mibs\":{},\"append\":[",
        o.workers,
        o.inflight,
        read.map(|r| format!("{r:.1}")).unwrap_or_else(|| "null".into())
    );
    for (i, (name, v)) in rows.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!(
            "{{\"name\":\"{name}\",\"mibs\":{v:.1},\"vs_raw_single_sync\":{:.3},\"vs_raw_sync_per_mib\":{:.3}}}",
            v / raw_single,
            v / raw_per_mib
        ));
    }
    json.push_str("]}");
    println!("{json}");
}
