//! Per-partition gauges read from the logs at scrape time (Kafka's
//! `kafka.log:type=Log` MBeans), and the broker-wide open transactions.

use std::collections::HashSet;
use std::sync::Arc;

use kaskade_log::Log;

use super::text::{Exposition, Labels};

/// One family at a time: the format wants a family's samples together.
/// `labels[i]` are `logs[i]`'s topic and partition labels.
pub(super) fn render(x: &mut Exposition<'_>, logs: &[Arc<Log>], labels: &[Labels]) {
    debug_assert_eq!(logs.len(), labels.len(), "one label set per log");
    type Read = fn(&Log) -> f64;
    let families: [(&str, &str, Read); 5] = [
        ("kaskade_log_size_bytes", "Bytes of the partition's log on disk.", |l| l.size_bytes() as f64),
        ("kaskade_log_segments", "Segments of the partition's log.", |l| l.segment_count() as f64),
        ("kaskade_log_start_offset", "The partition's log start offset.", |l| l.log_start_offset() as f64),
        ("kaskade_log_end_offset", "The partition's log end offset.", |l| l.log_end_offset() as f64),
        ("kaskade_log_high_watermark", "The partition's high watermark.", |l| l.high_watermark() as f64),
    ];
    for (name, help, read) in families {
        x.family(name, "gauge", help);
        for (log, labels) in logs.iter().zip(labels) {
            x.sample_labelled(name, labels, read(log));
        }
    }
    // A transaction spans partitions: count its producer once.
    let mut producers = HashSet::new();
    for log in logs {
        producers.extend(log.open_transactions().into_iter().map(|t| t.producer_id));
    }
    x.family(
        "kaskade_transactions_open",
        "gauge",
        "Transactions with records written and not yet committed or aborted (producers with an open transaction on some partition).",
    );
    x.sample("kaskade_transactions_open", &[], producers.len() as f64);
}
