//! Append and read throughput of the partition log against the raw limits
//! of the same disk.
//!
//! ```text
//! cargo run --release -p kaskade-log --example logbench -- [--volume-mib N] [--dir D]
//!     [--inflight N] [--workers N] [--flush-threads N] [--repeat N]
//!     [--only SUBSTRING] [--skip-raw]
//! cargo run --release -p kaskade-log --example logbench -- --idle-partitions 2000 [--dir D]
//! ```
//!
//! Every figure writes the same volume of 1 KiB records:
//!
//! - raw limits: sequential `write`s to one file, in 1 MiB chunks and in
//!   chunks of exactly the 16 KiB batch's size (16 KiB plus batch framing,
//!   not page aligned, as the log writes it), with a single `fdatasync` at
//!   the end, with an `fdatasync` after every 1 MiB, and with an
//!   `fdatasync` after every small chunk (the limit of one appender waiting
//!   for each 16 KiB batch to be durable);
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
//! workers (default: the number of CPUs), as in the broker; the log manager
//! has `--flush-threads` flusher threads (default 2, the manager's default).
//!
//! Each figure is the median of `--repeat` runs (default 3); the raw runs
//! are interleaved with the log runs (one warm-up write first), so drift of
//! the disk shows up in both. Besides, every log run is paired with a raw
//! single-sync write of the same chunk size done right before it (odd
//! rounds) or right after it (even rounds): the "paired" column is the
//! median of those per-run ratios, the figure least moved by the disk's
//! drift (its raw speed swings by tens of percent within minutes here).
//! For lazy runs, "paired write phase" compares the appends alone with the
//! partner's `write`s alone (both before their final flush): the log's own
//! cost, free of the disk's writeback speed.
//!
//! Prints a table (MiB/s and the ratio to the raw limits) and, as the last
//! line, the same figures as JSON.
//!
//! `--idle-partitions N` measures something else instead: what an idle
//! open partition costs. N partitions with one small segment each are
//! written and shut down cleanly; a fresh child process then opens them
//! with `LogManager::open` and reports its RSS and open descriptors before
//! and after, per partition.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
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
        let batch =
            if self.batch >= MIB { format!("{}MiB", self.batch / MIB) } else { format!("{}KiB", self.batch / 1024) };
        format!("{mode} {batch} {}app/{}part", self.appenders, self.partitions)
    }
}

struct Opts {
    volume: usize,
    dir: PathBuf,
    inflight: usize,
    workers: usize,
    flush_threads: usize,
    repeat: usize,
    only: Option<String>,
    skip_raw: bool,
    idle_partitions: Option<usize>,
}

fn parse_args() -> Opts {
    let mut o = Opts {
        volume: 1024 * MIB,
        dir: std::env::temp_dir(),
        inflight: 5,
        workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        flush_threads: ManagerOptions::default().flush_threads,
        repeat: 3,
        only: None,
        skip_raw: false,
        idle_partitions: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--volume-mib" => o.volume = val().parse::<usize>().expect("--volume-mib N") * MIB,
            "--dir" => o.dir = PathBuf::from(val()),
            "--inflight" => o.inflight = val().parse().expect("--inflight N"),
            "--workers" => o.workers = val().parse().expect("--workers N"),
            "--flush-threads" => o.flush_threads = val().parse().expect("--flush-threads N"),
            "--repeat" => o.repeat = val().parse::<usize>().expect("--repeat N").max(1),
            "--only" => o.only = Some(val()),
            "--skip-raw" => o.skip_raw = true,
            "--idle-partitions" => o.idle_partitions = Some(val().parse().expect("--idle-partitions N")),
            "-h" | "--help" => {
                println!("logbench [--volume-mib N] [--dir D] [--inflight N] [--workers N] [--flush-threads N] [--repeat N] [--only SUBSTRING] [--skip-raw] | --idle-partitions N [--dir D]");
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

#[derive(Clone, Copy, Debug, PartialEq)]
enum RawSync {
    AtEnd,
    EveryMib,
    EveryChunk,
}

/// Throughput of a raw write: (whole run, write phase before the final
/// `fdatasync`).
fn raw_write(base: &Path, volume: usize, chunk: usize, sync: RawSync) -> (f64, f64) {
    let d = fresh_dir(base, "raw");
    let path = d.join("raw.bin");
    let buf = vec![0xa5u8; chunk];
    let start = Instant::now();
    let mut f = File::create(&path).expect("create");
    let mut written = 0usize;
    while written < volume {
        f.write_all(&buf).expect("write");
        written += chunk;
        let crossed_mib = written / MIB != (written - chunk) / MIB;
        if sync == RawSync::EveryChunk || (sync == RawSync::EveryMib && crossed_mib) {
            f.sync_data().expect("fdatasync");
        }
    }
    let write_phase = mibs(volume, start.elapsed());
    f.sync_data().expect("fdatasync");
    let r = mibs(volume, start.elapsed());
    drop(f);
    std::fs::remove_dir_all(&d).expect("cleanup");
    settle();
    (r, write_phase)
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
    /// Lazy mode: throughput of the appends alone, before the final flush
    /// (the log's own cost, without the disk's writeback).
    write_phase_mibs: Option<f64>,
    read_mibs: Option<f64>,
}

fn run_append(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    volume: usize,
    flush_threads: usize,
    sc: &Scenario,
    measure_read: bool,
) -> AppendResult {
    let d = fresh_dir(base, "log");
    let cfg = LogConfig {
        flush: if sc.mode == Mode::Lazy {
            FlushPolicy::Lazy { messages: None, ms: None }
        } else {
            FlushPolicy::Durable
        },
        max_message_bytes: 2 * MIB,
        ..LogConfig::default()
    };
    let c2 = cfg.clone();
    let opts = ManagerOptions { flush_threads, ..ManagerOptions::default() };
    let (mgr, _) = LogManager::open(&d, opts, move |_| c2.clone()).expect("open");
    let logs: Vec<_> = (0..sc.partitions)
        .map(|p| mgr.get_or_create(&TopicPartition::new("bench", p as i32), cfg.clone()).expect("create"))
        .collect();
    // Shared, as a produce request's bytes are: appends take it without a copy.
    let batch = bytes::Bytes::from(make_batch(sc.batch));
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
    let write_phase_mibs = (sc.mode == Mode::Lazy).then(|| mibs(total, start.elapsed()));
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
    AppendResult { mibs: write, write_phase_mibs, read_mibs }
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

fn range(v: &[f64]) -> (f64, f64) {
    (v.iter().copied().fold(f64::INFINITY, f64::min), v.iter().copied().fold(f64::NEG_INFINITY, f64::max))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// RSS in bytes and the number of open descriptors of this process.
fn rss_and_fds() -> (u64, usize) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    let fds = std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count();
    (kib * 1024, fds)
}

/// Child side of `--idle-partitions`: open the directory, report the cost.
fn idle_open(dir: &Path, n: usize) {
    let (rss0, fds0) = rss_and_fds();
    let t = Instant::now();
    let (mgr, report) = LogManager::open(dir, ManagerOptions::default(), |_| LogConfig::default()).expect("open");
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    assert!(report.clean && report.partitions == n, "{report:?}");
    let (rss1, fds1) = rss_and_fds();
    // A first read of every partition (an idle consumer's first fetch).
    for log in mgr.all() {
        log.read(0, MIB, None).expect("read");
    }
    let (rss2, fds2) = rss_and_fds();
    println!(
        "{{\"partitions\":{n},\"open_ms\":{open_ms:.1},\"rss_before_bytes\":{rss0},\"rss_after_open_bytes\":{rss1},\"rss_after_one_read_each_bytes\":{rss2},\"rss_per_partition_bytes\":{},\"rss_per_partition_after_read_bytes\":{},\"fds_before\":{fds0},\"fds_after_open\":{fds1},\"fds_after_read\":{fds2},\"fds_per_partition\":{:.2}}}",
        (rss1 - rss0) / n as u64,
        (rss2 - rss0) / n as u64,
        (fds1 - fds0) as f64 / n as f64
    );
    mgr.shutdown().expect("shutdown");
}

fn idle_partitions(base: &Path, n: usize) {
    let d = fresh_dir(base, "idle");
    {
        let (mgr, _) = LogManager::open(&d, ManagerOptions::default(), |_| LogConfig::default()).expect("open");
        let b = make_batch(RECORD);
        for p in 0..n {
            let log = mgr.get_or_create(&TopicPartition::new("idle", p as i32), LogConfig::default()).expect("create");
            log.append(&b, 0).expect("append");
        }
        mgr.shutdown().expect("shutdown");
    }
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--idle-open", d.to_str().expect("utf-8"), &n.to_string()])
        .output()
        .expect("child");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json = String::from_utf8_lossy(&out.stdout).trim().to_string();
    std::fs::remove_dir_all(&d).expect("cleanup");
    println!(
        "in-memory sizes: Log {} B, Segment {} B, SegmentFiles {} B (plus heap: segment map, flush state, watch channels)",
        std::mem::size_of::<kaskade_log::Log>(),
        std::mem::size_of::<kaskade_log::segment::Segment>(),
        std::mem::size_of::<kaskade_log::segment::SegmentFiles>()
    );
    println!("{json}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--idle-open") {
        idle_open(Path::new(&args[2]), args[3].parse().expect("n"));
        return;
    }
    let o = parse_args();
    if let Some(n) = o.idle_partitions {
        std::fs::create_dir_all(&o.dir).expect("--dir");
        idle_partitions(&o.dir, n);
        return;
    }
    std::fs::create_dir_all(&o.dir).expect("--dir");
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(o.workers).enable_all().build().expect("runtime");
    let vol_mib = o.volume / MIB;
    eprintln!(
        "logbench: {vol_mib} MiB per figure in {}, {} tokio workers, {} flusher threads, pipelined depth {}, median of {}",
        o.dir.display(),
        o.workers,
        o.flush_threads,
        o.inflight,
        o.repeat
    );
    // Raw references: (name, chunk, sync). The small chunk is exactly the
    // 16 KiB batch's size (not page aligned, like the log's writes).
    let small = make_batch(16 * 1024).len();
    let raw_kinds: [(&str, usize, RawSync); 5] = [
        ("raw 1MiB writes, 1 fdatasync", MIB, RawSync::AtEnd),
        ("raw 16KiB-batch writes, 1 fdatasync", small, RawSync::AtEnd),
        ("raw 1MiB writes, fdatasync/MiB", MIB, RawSync::EveryMib),
        ("raw 16KiB-batch writes, fdatasync/MiB", small, RawSync::EveryMib),
        ("raw 16KiB-batch writes, fdatasync each", small, RawSync::EveryChunk),
    ];
    let mut raw_runs: Vec<Vec<f64>> = vec![Vec::new(); raw_kinds.len()];
    let run_raw = |runs: &mut Vec<Vec<f64>>| {
        if o.skip_raw {
            for r in runs.iter_mut() {
                r.push(f64::NAN);
            }
            return;
        }
        for (k, (name, chunk, sync)) in raw_kinds.iter().enumerate() {
            let (v, _) = raw_write(&o.dir, o.volume, *chunk, *sync);
            eprintln!("{name:<40} {v:>8.0} MiB/s");
            runs[k].push(v);
        }
    };
    // Warm-up: the first write to fresh (discarded) blocks is slower.
    if !o.skip_raw {
        raw_write(&o.dir, o.volume, MIB, RawSync::AtEnd);
    }

    let mut scenarios = Vec::new();
    for mode in [Mode::Durable, Mode::Pipelined(o.inflight), Mode::Lazy] {
        for batch in [16 * 1024, MIB] {
            for (appenders, partitions) in [(1, 1), (8, 8), (8, 1)] {
                scenarios.push(Scenario { batch, appenders, partitions, mode });
            }
        }
    }
    scenarios.retain(|sc| o.only.as_ref().is_none_or(|f| sc.name().contains(f.as_str())));
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); scenarios.len()];
    // Per run, the ratio to a raw single-sync write of the same chunk done
    // right next to it: the disk's speed drifts by tens of percent within
    // minutes, far less between two neighbouring runs.
    let mut paired: Vec<Vec<f64>> = vec![Vec::new(); scenarios.len()];
    // Lazy runs: the same for the write phase alone (appends vs `write`s,
    // before the final flush), which the disk's writeback speed does not move.
    let mut paired_write: Vec<Vec<f64>> = vec![Vec::new(); scenarios.len()];
    let mut reads = Vec::new();
    for rep in 0..o.repeat {
        eprintln!("-- round {} of {}", rep + 1, o.repeat);
        run_raw(&mut raw_runs);
        for (i, sc) in scenarios.iter().enumerate() {
            let measure_read = sc.mode == Mode::Lazy && sc.batch == MIB && sc.appenders == 1;
            let chunk = if sc.batch == MIB { MIB } else { small };
            // Alternate which of the pair goes first, so neither always
            // meets the page cache as the other left it.
            let raw_first = rep % 2 == 0;
            let pair = |o: &Opts| (!o.skip_raw).then(|| raw_write(&o.dir, o.volume, chunk, RawSync::AtEnd));
            let before = if raw_first { pair(&o) } else { None };
            let r = run_append(&rt, &o.dir, o.volume, o.flush_threads, sc, measure_read);
            let partner = if raw_first { before } else { pair(&o) };
            match partner {
                Some((p, _)) => {
                    eprintln!(
                        "{:<40} {:>8.0} MiB/s  (raw partner {p:.0}: {:.0}%)",
                        sc.name(),
                        r.mibs,
                        100.0 * r.mibs / p
                    )
                }
                None => eprintln!("{:<40} {:>8.0} MiB/s", sc.name(), r.mibs),
            }
            paired[i].push(partner.map_or(f64::NAN, |(p, _)| r.mibs / p));
            if let (Some(w), Some((_, pw))) = (r.write_phase_mibs, partner) {
                paired_write[i].push(w / pw);
            }
            runs[i].push(r.mibs);
            if let Some(rm) = r.read_mibs {
                reads.push(rm);
            }
        }
    }
    run_raw(&mut raw_runs);
    let raw_range: Vec<(f64, f64)> = raw_runs.iter().map(|r| range(r)).collect();
    let raw: Vec<f64> = raw_runs.into_iter().map(median).collect();
    let raw_read_mibs = if o.skip_raw { f64::NAN } else { raw_read(&o.dir, o.volume) };
    let read = (!reads.is_empty()).then(|| median(reads));
    let (raw1_mib, raw1_16k, rawsync_mib, rawsync_mib_16k, rawsync_16k) = (raw[0], raw[1], raw[2], raw[3], raw[4]);

    println!();
    println!(
        "volume {vol_mib} MiB per figure, 1 KiB records, median of {} runs; {} tokio workers, {} flusher threads",
        o.repeat, o.workers, o.flush_threads
    );
    for (((name, _, _), v), (lo, hi)) in raw_kinds.iter().zip(&raw).zip(&raw_range) {
        println!("{name:<40} {v:>9.0} MiB/s   (runs {lo:.0}..{hi:.0})");
    }
    println!();
    println!(
        "{:<40} {:>9} {:>11} {:>11} {:>11} {:>11} {:>11}   runs",
        "append", "MiB/s", "paired", "paired", "/raw-1sync", "/raw-sync", "/raw-1sync"
    );
    println!(
        "{:<40} {:>9} {:>11} {:>11} {:>11} {:>11} {:>11}",
        "", "", "1sync same", "write phase", "same chunk", "per MiB same", "1MiB chunk"
    );
    let mut json_rows = Vec::new();
    for (((sc, r), p), pw) in scenarios.iter().zip(runs).zip(paired).zip(paired_write) {
        let (lo, hi) = range(&r);
        let v = median(r);
        let (plo, phi) = range(&p);
        let pv = median(p);
        let pwv = if pw.is_empty() { f64::NAN } else { median(pw) };
        let (same_chunk, sync_mib_same) =
            if sc.batch == MIB { (raw1_mib, rawsync_mib) } else { (raw1_16k, rawsync_mib_16k) };
        let name = sc.name();
        println!(
            "{name:<40} {v:>9.0} {:>10.0}% {:>10.0}% {:>10.0}% {:>10.0}% {:>10.0}%   {lo:.0}..{hi:.0} MiB/s, paired {:.0}..{:.0}%",
            100.0 * pv,
            100.0 * pwv,
            100.0 * v / same_chunk,
            100.0 * v / sync_mib_same,
            100.0 * v / raw1_mib,
            100.0 * plo,
            100.0 * phi
        );
        json_rows.push(format!(
            "{{\"name\":\"{name}\",\"mibs\":{v:.1},\"vs_paired_raw_single_sync\":{pv:.3},\"write_phase_vs_paired_raw\":{pwv:.3},\"vs_raw_single_sync_same_chunk\":{:.3},\"vs_raw_sync_per_mib_same_chunk\":{:.3},\"vs_raw_single_sync_1mib\":{:.3}}}",
            v / same_chunk,
            v / sync_mib_same,
            v / raw1_mib
        ));
    }
    if let Some(r) = read {
        println!(
            "{:<40} {r:>9.0} {:>10.0}% of raw 1 MiB preads ({raw_read_mibs:.0} MiB/s)",
            "read 1 MiB, page cache",
            100.0 * r / raw_read_mibs
        );
    }
    let json = format!(
        "{{\"volume_mib\":{vol_mib},\"repeat\":{},\"workers\":{},\"flush_threads\":{},\"inflight\":{},\"raw_write_1mib_single_sync_mibs\":{raw1_mib:.1},\"raw_write_16kib_batch_single_sync_mibs\":{raw1_16k:.1},\"raw_write_1mib_sync_per_mib_mibs\":{rawsync_mib:.1},\"raw_write_16kib_batch_sync_per_mib_mibs\":{:.1},\"raw_write_16kib_batch_sync_each_mibs\":{rawsync_16k:.1},\"raw_read_mibs\":{raw_read_mibs:.1},\"read_mibs\":{},\"append\":[{}]}}",
        o.repeat,
        o.workers,
        o.flush_threads,
        o.inflight,
        rawsync_mib_16k,
        read.map(|r| format!("{r:.1}")).unwrap_or_else(|| "null".into()),
        json_rows.join(",")
    )
    // Figures that were not measured (`--skip-raw`) print as NaN/inf.
    .replace(":NaN", ":null")
    .replace(":-inf", ":null")
    .replace(":inf", ":null");
    println!("{json}");
}
