//! Bytes and records in and out per partition, as Kafka's
//! `kafka.server:type=BrokerTopicMetrics,name={BytesInPerSec,BytesOutPerSec,MessagesInPerSec},topic=*`
//! (Kaskade adds records out, counted from the returned batch headers'
//! record counts). Prometheus sums partitions into topics and the broker;
//! the broker-wide series also keep what deleted partitions counted, so
//! they never go backwards.
//!
//! Hot path: one call per produced batch ([`produced`]) and per partition
//! of a fetch response ([`fetched`]), each a few relaxed atomic adds on the
//! partition's own [`PartitionTraffic`], which its `Partition` holds: no
//! lock, no allocation, no lookup. The registry's mutex is taken only when
//! a partition replica is made and at scrape time.
//!
//! Invariants: one `PartitionTraffic` per topic-partition in the registry
//! while a `Log` of it is alive; a recreated topic gets its counters back if
//! they were not pruned yet (Prometheus sees no reset), else new ones.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use kaskade_log::{AppendInfo, Log};
use kaskade_types::TopicPartition;
use parking_lot::Mutex;

use super::text::{Exposition, Labels};

/// The four counters of one partition.
#[derive(Debug, Default)]
pub struct PartitionTraffic {
    bytes_in: AtomicU64,
    records_in: AtomicU64,
    bytes_out: AtomicU64,
    records_out: AtomicU64,
}

impl PartitionTraffic {
    fn totals(&self) -> [u64; 4] {
        [&self.bytes_in, &self.records_in, &self.bytes_out, &self.records_out].map(|c| c.load(Ordering::Relaxed))
    }
}

struct Entry {
    traffic: Arc<PartitionTraffic>,
    /// The newest `Log` of the partition; when no `Log` of it is alive, no
    /// request can add to the counters any more and the entry may go.
    log: Weak<Log>,
}

/// Every partition's counters, by name: taken on a thread's first request
/// for a partition and at scrape time.
struct Registry {
    partitions: HashMap<TopicPartition, Entry>,
    /// What pruned partitions counted, kept in the broker-wide totals.
    retired: [u64; 4],
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

/// The counters of `log`'s partition, registered on first sight (a
/// `Partition` takes them when it is made).
pub fn register(log: &Arc<Log>) -> Arc<PartitionTraffic> {
    let mut guard = REGISTRY.lock();
    let reg = guard.get_or_insert_with(|| Registry { partitions: HashMap::new(), retired: [0; 4] });
    let entry = reg
        .partitions
        .entry(log.topic_partition().clone())
        .or_insert_with(|| Entry { traffic: Arc::default(), log: Weak::new() });
    // A newer log of the partition (the topic was recreated) takes over.
    if !std::ptr::eq(entry.log.as_ptr(), Arc::as_ptr(log)) {
        entry.log = Arc::downgrade(log);
    }
    entry.traffic.clone()
}

/// Counts a batch a producer appended to `log` (also a duplicate
/// idempotent batch, acknowledged again, as Kafka counts it): its size as
/// stored and its record count.
pub fn produced(t: &PartitionTraffic, info: &AppendInfo) {
    let bytes = info.header.total_len() as u64;
    let records = u64::try_from(info.header.records_count).unwrap_or(0);
    t.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    t.records_in.fetch_add(records, Ordering::Relaxed);
}

/// Counts the records a fetch response returns from a partition: the
/// bytes of its range, and the record counts of the batch headers the
/// read scanned (records are not decoded).
pub fn fetched(t: Option<&PartitionTraffic>, records: Option<&kaskade_log::FileRange>) {
    let (Some(t), Some(records)) = (t, records) else { return };
    t.bytes_out.fetch_add(records.len() as u64, Ordering::Relaxed);
    t.records_out.fetch_add(records.records(), Ordering::Relaxed);
}

const FAMILIES: [(&str, &str); 4] = [
    ("bytes_in_total", "Bytes of record batches producers appended"),
    ("records_in_total", "Records producers appended"),
    ("bytes_out_total", "Bytes of record batches returned to fetches"),
    ("records_out_total", "Records returned to fetches (the batch headers' record counts)"),
];

/// Appends the per-partition counters of the live `logs` (0 for partitions
/// without traffic yet) and the broker-wide totals; prunes the counters of
/// partitions no `Log` holds any more. `labels[i]` are `logs[i]`'s topic and
/// partition labels.
pub(super) fn render(x: &mut Exposition<'_>, logs: &[Arc<Log>], labels: &[Labels]) {
    debug_assert_eq!(logs.len(), labels.len(), "one label set per log");
    let (per_log, broker) = {
        let mut guard = REGISTRY.lock();
        match guard.as_mut() {
            None => (vec![[0; 4]; logs.len()], [0; 4]),
            Some(reg) => {
                let Registry { partitions, retired } = reg;
                partitions.retain(|_, e| {
                    let alive = e.log.strong_count() > 0;
                    if !alive {
                        for (r, v) in retired.iter_mut().zip(e.traffic.totals()) {
                            *r += v;
                        }
                    }
                    alive
                });
                let mut broker = *retired;
                for e in partitions.values() {
                    for (b, v) in broker.iter_mut().zip(e.traffic.totals()) {
                        *b += v;
                    }
                }
                let per_log = logs
                    .iter()
                    .map(|l| partitions.get(l.topic_partition()).map_or([0; 4], |e| e.traffic.totals()))
                    .collect::<Vec<_>>();
                (per_log, broker)
            }
        }
    };
    for (i, (suffix, help)) in FAMILIES.iter().enumerate() {
        let name = format!("kaskade_partition_{suffix}");
        x.family(&name, "counter", &format!("{help}, per partition."));
        for (labels, totals) in labels.iter().zip(&per_log) {
            x.sample_labelled(&name, labels, totals[i] as f64);
        }
    }
    for (i, (suffix, help)) in FAMILIES.iter().enumerate() {
        let name = format!("kaskade_{suffix}");
        x.family(&name, "counter", &format!("{help}, all partitions of this broker."));
        x.sample(&name, &[], broker[i] as f64);
    }
}
