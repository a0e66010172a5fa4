#![allow(dead_code)]
use std::path::Path;
use std::sync::Arc;

use kaskade_log::batch::build;
use kaskade_log::{Clock, LogConfig, LogManager, ManagerOptions, ManualClock, TopicPartition};

pub fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

pub fn open(dir: &Path, config: LogConfig, clock: Arc<dyn Clock>) -> (Arc<LogManager>, kaskade_log::OpenReport) {
    let opts = ManagerOptions { clock, ..ManagerOptions::default() };
    LogManager::open(dir, opts, move |_| config.clone()).expect("open log manager")
}

pub fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_700_000_000_000))
}

/// A batch of `n` records whose values encode `tag`, so content is checkable.
pub fn batch(n: usize, value_len: usize, ts: i64, tag: u8) -> Vec<u8> {
    build::filled(n, value_len, ts, tag)
}

/// Splits a read result into (base offset, last offset, bytes after the
/// 16 patched bytes) per batch.
pub fn split(mut b: &[u8]) -> Vec<(i64, i64, Vec<u8>)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let h = kaskade_log::batch::BatchHeader::parse(b).expect("header");
        let len = h.total_len();
        kaskade_log::batch::validate_structure(&b[..len]).expect("read returned a valid batch");
        out.push((h.base_offset, h.last_offset(), b[16..len].to_vec()));
        b = &b[len..];
    }
    out
}

/// Drives `log`'s high watermark by the single-node rule (HW = durable end
/// in durable mode, log end in lazy mode), as the broker's partition layer
/// does for a one-replica ISR: the log itself only takes the HW as input.
pub fn follow_local(log: Arc<kaskade_log::Log>) -> Arc<kaskade_log::Log> {
    log.set_position_listener(Arc::new(|p: kaskade_log::Positions| {
        Some(if p.durable_mode { p.durable_end.min(p.log_end) } else { p.log_end })
    }));
    log
}
