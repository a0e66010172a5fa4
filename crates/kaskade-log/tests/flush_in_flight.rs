//! A regression test that inspects this process's flusher threads, so it
//! lives alone in its own test binary: other tests' flushers would be
//! counted too.

use std::sync::Arc;

use kaskade_log::batch::build;
use kaskade_log::{Log, LogConfig, LogManager, ManagerOptions, ManualClock, TopicPartition};

fn open_plain(dir: &std::path::Path, config: LogConfig) -> (Arc<LogManager>, Arc<Log>) {
    let opts = ManagerOptions { clock: Arc::new(ManualClock::new(1_700_000_000_000)), ..ManagerOptions::default() };
    let cfg = config.clone();
    let (mgr, _) = LogManager::open(dir, opts, move |_| cfg.clone()).expect("open");
    let log = mgr.get_or_create(&TopicPartition::new("t", 0), config).expect("create");
    (mgr, log)
}

/// `flush_blocking` (shutdown, tests) while a flusher thread is inside its
/// fdatasync for the same log must wait for it: before the fix it found
/// nothing left to sync, published the end as durable and returned while
/// the flusher's fdatasync was still running.
#[cfg(target_os = "linux")]
#[test]
fn regression_flush_blocking_waits_for_the_flusher_in_flight_sync() {
    fn flushers_in_disk_wait() -> Vec<String> {
        let mut out = Vec::new();
        for t in std::fs::read_dir("/proc/self/task").expect("tasks").flatten() {
            let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else { continue };
            // `pid (comm) S ...`
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
            let comm = &stat[open + 1..close];
            let state = stat[close + 1..].trim_start().chars().next().unwrap_or('?');
            if comm.starts_with("kaskade-flush") && state == 'D' {
                out.push(comm.to_string());
            }
        }
        out
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = LogConfig { max_message_bytes: 300 << 20, ..LogConfig::default() };
    let (mgr, log) = open_plain(dir.path(), cfg);
    let mut caught = 0;
    for round in 0..3 {
        // 128 MiB of dirty pages: the flusher's fdatasync takes a while.
        let b = build::filled(128, 1 << 20, 0, round);
        log.append(&b, 0).expect("append");
        std::thread::sleep(std::time::Duration::from_millis(10));
        log.flush_blocking().expect("flush");
        let busy = flushers_in_disk_wait();
        if !busy.is_empty() {
            caught += 1;
        }
        assert_eq!(log.durable_end(), log.log_end_offset());
        // Let any straggler finish before the next round.
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    assert_eq!(caught, 0, "flush_blocking returned while a flusher was still in fdatasync");
    mgr.shutdown().expect("shutdown");
}
