//! The checker's properties over consumers, groups and transactions
//! (issue 14), beside `checker`'s over acknowledged records and replicas.
//! Each returns the violations it found (empty: the property holds), so a
//! run reports all of them at once:
//! - no consumer ever reads a record that later disappears: every record a
//!   consumer was handed is in the final log at the same offset;
//! - committed offsets never go backwards: every OffsetFetch answer over
//!   the run is at or past the one before, and the final committed offset
//!   is at or past every acknowledged commit;
//! - read_committed sees each transaction whole or not at all, and exactly
//!   once: the transformer's output read read_committed holds, per
//!   partition, the input's numbers up to the group's committed offset in
//!   order, each once; a transaction seen is seen with all the records it
//!   sent; every acknowledged commit is seen.

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::checker::Workload;
use super::client_config;
use super::workloads::{committed, number_of, Read, Transformed, Watched};

/// Every record `who` read is in `log` (partition -> [(offset, number)],
/// the final read back) at its offset with its number.
pub fn reads_stay(who: &str, w: Workload, reads: &[Read], log: &BTreeMap<i32, Vec<(i64, u64)>>) -> Vec<String> {
    let at: BTreeMap<(i32, i64), u64> =
        log.iter().flat_map(|(p, records)| records.iter().map(move |(o, n)| ((*p, *o), *n))).collect();
    reads
        .iter()
        .filter(|r| at.get(&(r.partition, r.offset)) != Some(&r.number))
        .take(10)
        .map(|r| {
            format!(
                "{who} read record {} at {}-{} offset {}, which later disappeared (now {:?})",
                r.number,
                w.topic,
                r.partition,
                r.offset,
                at.get(&(r.partition, r.offset))
            )
        })
        .collect()
}

/// `group`'s committed offsets never went backwards over `watched`, and
/// `last` (partition -> offset, the final committed offsets) is at or
/// past every commit in `acked`.
pub fn commits_never_go_back(
    group: &str,
    watched: &Watched,
    acked: &[BTreeMap<i32, i64>],
    last: &BTreeMap<i32, i64>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut high: BTreeMap<i32, i64> = BTreeMap::new();
    let answers = watched.answers.lock().expect("answers");
    let first = answers.first().map(|(t, _)| *t);
    for (when, offsets) in answers.iter() {
        for (p, o) in offsets {
            let before = high.entry(*p).or_insert(*o);
            if o < before {
                out.push(format!(
                    "{group}: the committed offset of partition {p} went back from {before} to {o} ({:?} into the run)",
                    first.map(|f| when.duration_since(f))
                ));
            }
            *before = (*before).max(*o);
        }
    }
    for (i, commit) in acked.iter().enumerate() {
        for (p, o) in commit {
            let now = last.get(p).copied().unwrap_or(-1);
            if now < *o {
                out.push(format!(
                    "{group}: acknowledged commit #{i} of offset {o} on partition {p} is lost (now {now})"
                ));
            }
        }
    }
    out.truncate(20);
    out
}

/// One record of the transformer's output: offset, input number,
/// transaction.
pub type OutRecord = (i64, u64, u64);

/// The group's committed offsets of `w` as a read_committed member sees
/// them once stable (retried until answered).
pub fn final_committed(bootstrap: &str, group: &str, w: Workload, within: Duration) -> BTreeMap<i32, i64> {
    let c: BaseConsumer = client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let deadline = Instant::now() + within;
    loop {
        if let Some(offsets) = committed(&c, w) {
            return offsets;
        }
        assert!(Instant::now() < deadline, "{group}'s committed offsets: no answer within {within:?}");
        thread::sleep(Duration::from_millis(200));
    }
}

/// The transformer's output read read_committed from the start: until
/// partition p holds `expected[p]` records (the last transaction's markers
/// may still be on their way), then to the end. partition -> records.
pub fn read_output(
    bootstrap: &str,
    w: Workload,
    expected: &BTreeMap<i32, i64>,
    within: Duration,
) -> BTreeMap<i32, Vec<OutRecord>> {
    let c: BaseConsumer = client_config(bootstrap)
        .set("group.id", "faults-output-checker")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..w.partitions {
        tpl.add_partition_offset(w.topic, p, Offset::Beginning).expect("partition");
    }
    c.assign(&tpl).expect("assign");
    let mut out: BTreeMap<i32, Vec<OutRecord>> = (0..w.partitions).map(|p| (p, Vec::new())).collect();
    let mut at_end: BTreeSet<i32> = BTreeSet::new();
    let deadline = Instant::now() + within;
    let enough =
        |out: &BTreeMap<i32, Vec<OutRecord>>, p: i32| out[&p].len() as i64 >= expected.get(&p).copied().unwrap_or(0);
    while !(0..w.partitions).all(|p| at_end.contains(&p) && enough(&out, p)) {
        assert!(
            Instant::now() < deadline,
            "{}: read_committed did not reach {expected:?} within {within:?} (read {:?})",
            w.topic,
            out.iter().map(|(p, r)| (*p, r.len())).collect::<BTreeMap<_, _>>()
        );
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                let number = number_of(value.as_bytes());
                let txn = value.split(' ').nth(1).and_then(|t| t.strip_prefix("txn-")).and_then(|k| k.parse().ok());
                let (Some(number), Some(txn)) = (number, txn) else {
                    panic!("{}-{} offset {}: a record never sent: {value:?}", w.topic, m.partition(), m.offset())
                };
                at_end.remove(&m.partition());
                out.get_mut(&m.partition()).expect("partition").push((m.offset(), number, txn));
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => panic!("reading {}: {e}", w.topic),
            None => {}
        }
    }
    out
}

/// The transformer's output against its input and what it did.
pub fn transactions_whole_and_once(
    output: &BTreeMap<i32, Vec<OutRecord>>,
    input: &BTreeMap<i32, Vec<(i64, u64)>>,
    committed: &BTreeMap<i32, i64>,
    done: &Transformed,
) -> Vec<String> {
    let mut out = Vec::new();
    let sent = done.sent.lock().expect("sent");
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for records in output.values() {
        for (_, _, k) in records {
            *seen.entry(*k).or_default() += 1;
        }
    }
    for (k, n) in &seen {
        let s = sent.get(k).copied().unwrap_or(0);
        if *n != s {
            out.push(format!("transaction {k}: read_committed sees {n} of its {s} records (not whole)"));
        }
    }
    for k in done.committed.lock().expect("committed").iter() {
        if sent.get(k).copied().unwrap_or(0) > 0 && !seen.contains_key(k) {
            out.push(format!("transaction {k}: its commit was acknowledged, read_committed does not see it"));
        }
    }
    for (p, records) in output {
        let upto = committed.get(p).copied().unwrap_or(0);
        let want: Vec<u64> =
            input.get(p).map(|r| r.iter().filter(|(o, _)| *o < upto).map(|(_, n)| *n).collect()).unwrap_or_default();
        let got: Vec<u64> = records.iter().map(|(_, n, _)| *n).collect();
        if got != want {
            let first = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
            out.push(format!(
                "partition {p}: the output holds {} records, the input up to the committed offset {upto} {}; \
                 first difference at #{first}: {:?} vs {:?} (exactly once broken)",
                got.len(),
                want.len(),
                got.get(first),
                want.get(first)
            ));
        }
    }
    out.truncate(20);
    out
}
