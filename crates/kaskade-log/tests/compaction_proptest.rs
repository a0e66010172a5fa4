//! Model-based property test of log compaction: random keyed appends
//! (tombstones, every codec, an idempotent producer), rolls, clock moves,
//! cleaner passes and clean or crash-style reopens, checked after every
//! step against a model that remembers every record ever appended:
//!
//! - the log reads back as valid batches, offsets strictly increasing, and
//!   every record left is the original record at its offset (nothing is
//!   invented, nothing moves);
//! - the log end offset (and start) never change because of cleaning;
//! - every key's latest record is there, unless it is a tombstone that a
//!   pass at least `delete.retention.ms` after the first pass following its
//!   append could drop, and then nothing of that key is left;
//! - below the cleaner checkpoint every key appears at most once;
//! - the idempotent producer always continues in sequence (its last batch
//!   survives cleaning and restarts);
//! - the checkpoint survives restarts.
//!
//! `PROPTEST_CASES=500 cargo test -p kaskade-log --test compaction_proptest`
//! for a longer run (default 48 cases).

mod compaction_util;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use compaction_util::{keyed_batch, read_all, Producer, CODECS};
use kaskade_log::{CleanupPolicy, FlushPolicy, LogConfig, LogManager, ManagerOptions, ManualClock, TopicPartition};
use proptest::prelude::*;

const START_MS: i64 = 1_700_000_000_000;
const PID: i64 = 77;

#[derive(Clone, Debug)]
enum Op {
    Append { records: Vec<(u8, bool)>, codec: usize, idempotent: bool },
    Roll,
    Advance(u32),
    Clean,
    Reopen { clean: bool },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (prop::collection::vec((0u8..6, prop::bool::weighted(0.15)), 1..5), 0usize..5, prop::bool::weighted(0.3))
            .prop_map(|(records, codec, idempotent)| Op::Append { records, codec, idempotent }),
        2 => Just(Op::Roll),
        2 => (0u32..40_000).prop_map(Op::Advance),
        3 => Just(Op::Clean),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

fn config_strategy() -> impl Strategy<Value = LogConfig> {
    (
        prop_oneof![Just(300u64), Just(900), Just(4_000)],
        prop_oneof![Just(0u64), Just(150)],
        prop_oneof![Just(0i64), Just(1_000), Just(60_000)],
        prop_oneof![Just(0.0f64), Just(0.4)],
        prop_oneof![3 => Just(0i64), 1 => Just(20_000)],
        any::<bool>(),
    )
        .prop_map(|(segment_bytes, index_interval_bytes, delete_retention_ms, ratio, min_lag, both)| LogConfig {
            segment_bytes,
            index_interval_bytes,
            delete_retention_ms,
            min_cleanable_dirty_ratio: ratio,
            min_compaction_lag_ms: min_lag,
            cleanup_policy: if both { CleanupPolicy::CompactDelete } else { CleanupPolicy::Compact },
            retention_ms: -1,
            retention_bytes: -1,
            flush: FlushPolicy::Durable,
            ..LogConfig::default()
        })
}

#[derive(Clone, Debug)]
struct MRec {
    key: u8,
    value: Option<Bytes>,
    /// How many cleaner passes had run when it was appended.
    cleans_before: usize,
}

struct Model {
    records: BTreeMap<i64, MRec>,
    end: i64,
    clean_times: Vec<i64>,
    next_seq: i32,
}

fn key_bytes(k: u8) -> Vec<u8> {
    format!("key-{k}").into_bytes()
}

fn tp() -> TopicPartition {
    TopicPartition::new("c", 0)
}

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>, cfg: &LogConfig) -> Arc<LogManager> {
    let opts = ManagerOptions { clock: clock.clone(), ..ManagerOptions::default() };
    let c = cfg.clone();
    let (mgr, _) = LogManager::open(dir, opts, move |_| c.clone()).expect("open");
    compaction_util::follow_local(mgr.get_or_create(&tp(), cfg.clone()).expect("log"));
    mgr
}

fn check(mgr: &LogManager, model: &Model, cfg: &LogConfig) -> Result<(), TestCaseError> {
    let log = mgr.get(&tp()).expect("log");
    prop_assert_eq!(log.log_end_offset(), model.end, "the log end never moves");
    prop_assert_eq!(log.log_start_offset(), 0);
    let (got, _) = read_all(&log);
    let mut present: HashMap<u8, Vec<i64>> = HashMap::new();
    for (off, k, v) in &got {
        let m = model.records.get(off);
        prop_assert!(m.is_some(), "offset {} was never appended", off);
        let m = m.expect("checked");
        let want = key_bytes(m.key);
        prop_assert_eq!(k.as_deref(), Some(want.as_slice()), "key at {}", off);
        prop_assert_eq!(v, &m.value, "value at {}", off);
        present.entry(m.key).or_default().push(*off);
    }
    let mut latest: HashMap<u8, i64> = HashMap::new();
    for (off, r) in &model.records {
        latest.insert(r.key, *off);
    }
    for (k, off) in &latest {
        let r = &model.records[off];
        let there = present.get(k).is_some_and(|v| v.contains(off));
        if there {
            continue;
        }
        prop_assert!(r.value.is_none(), "the latest value of key {} at {} is gone", k, off);
        let t0 = model.clean_times.get(r.cleans_before).copied();
        let allowed = t0.is_some_and(|t0| {
            model.clean_times[r.cleans_before + 1..].iter().any(|t| *t >= t0.saturating_add(cfg.delete_retention_ms))
        });
        prop_assert!(allowed, "tombstone of key {} at {} went before delete.retention.ms", k, off);
        prop_assert!(!present.contains_key(k), "key {} came back after its tombstone went: {:?}", k, present.get(k));
    }
    if let Some(ckpt) = mgr.cleaner_checkpoint(&tp()) {
        for (k, offs) in &present {
            let below = offs.iter().filter(|o| **o < ckpt).count();
            prop_assert!(below <= 1, "key {} appears {} times below the checkpoint {}: {:?}", k, below, ckpt, offs);
        }
    }
    Ok(())
}

fn run(cfg: LogConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let d = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(START_MS));
    let mut mgr = open(d.path(), &clock, &cfg);
    let mut model = Model { records: BTreeMap::new(), end: 0, clean_times: Vec::new(), next_seq: 0 };
    for op in ops {
        match op {
            Op::Append { records, codec, idempotent } => {
                let log = mgr.get(&tp()).expect("log");
                let base = log.log_end_offset();
                let keys: Vec<Vec<u8>> = records.iter().map(|(k, _)| key_bytes(*k)).collect();
                let values: Vec<Option<Vec<u8>>> = records
                    .iter()
                    .enumerate()
                    .map(|(i, (_, tomb))| (!tomb).then(|| format!("v{}", base + i as i64).into_bytes()))
                    .collect();
                let recs: Vec<compaction_util::KV<'_>> =
                    keys.iter().zip(&values).map(|(k, v)| (Some(k.as_slice()), v.as_deref())).collect();
                let producer = idempotent.then_some(Producer {
                    id: PID,
                    epoch: 0,
                    base_sequence: model.next_seq,
                    transactional: false,
                });
                let b = keyed_batch(&recs, clock.now_ms_for_test(), CODECS[codec], producer);
                let info = log.append_client(&b, 0);
                prop_assert!(info.is_ok(), "append failed: {:?}", info.err());
                let info = info.expect("checked");
                prop_assert!(!info.duplicate);
                prop_assert_eq!(info.first_offset, base);
                if idempotent {
                    model.next_seq += records.len() as i32;
                }
                for (i, ((k, _), v)) in records.iter().zip(values).enumerate() {
                    model.records.insert(
                        base + i as i64,
                        MRec { key: *k, value: v.map(Bytes::from), cleans_before: model.clean_times.len() },
                    );
                }
                model.end = base + records.len() as i64;
            }
            Op::Roll => mgr.get(&tp()).expect("log").roll().expect("roll"),
            Op::Advance(ms) => clock.advance(i64::from(ms)),
            Op::Clean => {
                mgr.get(&tp()).expect("log").flush_blocking().expect("flush");
                let before = mgr.cleaner_checkpoint(&tp());
                mgr.run_cleaner();
                model.clean_times.push(clock.now_ms_for_test());
                let after = mgr.cleaner_checkpoint(&tp());
                prop_assert!(after >= before, "the checkpoint only moves forward: {:?} -> {:?}", before, after);
            }
            Op::Reopen { clean } => {
                let ckpt = mgr.cleaner_checkpoint(&tp());
                if clean {
                    mgr.shutdown().expect("shutdown");
                }
                drop(mgr);
                mgr = open(d.path(), &clock, &cfg);
                prop_assert_eq!(mgr.cleaner_checkpoint(&tp()), ckpt, "the checkpoint survives a restart");
                let log = mgr.get(&tp()).expect("log");
                if model.next_seq > 0 {
                    let last = log.producer_entry(PID).map(|e| e.last_seq());
                    prop_assert_eq!(last, Some(model.next_seq - 1), "the producer's state survives");
                }
            }
        }
        check(&mgr, &model, &cfg)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn compaction_agrees_with_the_model(cfg in config_strategy(), ops in prop::collection::vec(op_strategy(), 1..120)) {
        run(cfg, ops)?;
    }
}

/// A long fixed scenario: many passes over a log of few keys.
#[test]
fn many_passes_over_few_keys() {
    let cfg = LogConfig {
        segment_bytes: 600,
        cleanup_policy: CleanupPolicy::Compact,
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: 5_000,
        ..LogConfig::default()
    };
    let mut ops = Vec::new();
    for i in 0..400u32 {
        ops.push(Op::Append {
            records: vec![((i % 4) as u8, i % 11 == 0), ((i % 3) as u8, false)],
            codec: (i % 5) as usize,
            idempotent: i % 7 == 0,
        });
        if i % 25 == 24 {
            ops.push(Op::Roll);
            ops.push(Op::Advance(2_000));
            ops.push(Op::Clean);
        }
        if i % 120 == 119 {
            ops.push(Op::Reopen { clean: i % 240 == 239 });
        }
    }
    run(cfg, ops).expect("the model holds");
}
