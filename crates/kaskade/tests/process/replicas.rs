//! The replica checker: reads every replica's segment files of one
//! partition straight from each node's data directory and compares them
//! batch by batch (same offsets, same bytes, leader epochs included),
//! naming the first divergent offset. Reading while a node runs is safe:
//! a batch cut short at the end of a file is left out.

use std::path::{Path, PathBuf};

use super::cluster::{wait_for, Node};

/// One stored batch: its base offset, last offset and whole bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Batch {
    pub base: i64,
    pub last: i64,
    pub bytes: Vec<u8>,
}

/// (node id, data directory) of every node, the form the checker takes.
pub fn roots(root: &Path, nodes: &[Node]) -> Vec<(i32, PathBuf)> {
    nodes.iter().map(|n| (n.id, root.join(format!("node-{}", n.id)))).collect()
}

/// The directory of `topic`-`partition` under a node's data directory.
fn partition_dir(root: &Path, topic: &str, partition: i32) -> Option<PathBuf> {
    let wanted = format!("{topic}-{partition}");
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n.to_string_lossy() == wanted) {
                    return Some(path);
                }
                stack.push(path);
            }
        }
    }
    None
}

/// Every whole batch in a node's segment files of `topic`-`partition`, in
/// offset order.
pub fn batches(root: &Path, topic: &str, partition: i32) -> Vec<Batch> {
    let Some(dir) = partition_dir(root, topic, partition) else { return Vec::new() };
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "log")).collect())
        .unwrap_or_default();
    logs.sort();
    let mut out = Vec::new();
    for log in logs {
        let data = std::fs::read(&log).unwrap_or_default();
        let mut at = 0;
        // Batch header: base offset (8), length (4), partition leader
        // epoch (4), magic (1), crc (4), attributes (2), last offset delta (4).
        while at + 61 <= data.len() {
            let base = i64::from_be_bytes(data[at..at + 8].try_into().expect("8 bytes"));
            let len = i32::from_be_bytes(data[at + 8..at + 12].try_into().expect("4 bytes"));
            if len < 49 || at + 12 + len as usize > data.len() {
                break;
            }
            let delta = i32::from_be_bytes(data[at + 23..at + 27].try_into().expect("4 bytes"));
            let end = at + 12 + len as usize;
            out.push(Batch { base, last: base + delta as i64, bytes: data[at..end].to_vec() });
            at = end;
        }
    }
    out
}

pub fn log_end(batches: &[Batch]) -> i64 {
    batches.last().map_or(0, |b| b.last + 1)
}

/// Every node's batches of `topic`-`partition` equal the first node's,
/// batch by batch: `Ok` with their log end, `Err` naming the first
/// divergent offset.
pub fn same_batches(roots: &[(i32, PathBuf)], topic: &str, partition: i32) -> Result<i64, String> {
    let all: Vec<(i32, Vec<Batch>)> = roots.iter().map(|(id, r)| (*id, batches(r, topic, partition))).collect();
    let (first_id, first) = &all[0];
    for (id, other) in &all[1..] {
        for (a, b) in first.iter().zip(other) {
            if a != b {
                return Err(format!(
                    "{topic}-{partition}: node {id} diverges from node {first_id} at offset {} (batches at {} and {})",
                    a.base.min(b.base),
                    a.base,
                    b.base
                ));
            }
        }
        if other.len() != first.len() {
            return Err(format!(
                "{topic}-{partition}: node {id} holds {} batches (end {}), node {first_id} {} (end {})",
                other.len(),
                log_end(other),
                first.len(),
                log_end(first)
            ));
        }
    }
    Ok(log_end(first))
}

/// Waits until every node's log of `topic`-`partition` ends at `end`,
/// then checks the replicas hold the same batches.
pub fn check_replicas(roots: &[(i32, PathBuf)], topic: &str, partition: i32, end: i64) {
    wait_for(&format!("every replica's log of {topic}-{partition} reaches offset {end}"), || {
        roots.iter().all(|(_, r)| log_end(&batches(r, topic, partition)) == end).then_some(())
    });
    let checked = same_batches(roots, topic, partition).unwrap_or_else(|e| panic!("replicas diverge: {e}"));
    assert_eq!(checked, end);
}
