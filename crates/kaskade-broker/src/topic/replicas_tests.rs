//! `discard_prepared`: a creation that lost the race to another node's
//! creation of the same topic keeps the prepared logs the winner's image
//! placed here, and removes the others.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use kaskade_log::{LogConfig, LogManager, ManagerOptions};
use kaskade_meta::{Image, LocalMetadataLog, MetadataLog, Uuid};
use kaskade_types::NodeId;

use super::LocalReplicas;
use crate::topic::controller::{NewTopic, TopicController};
use crate::topic::placement::UsableBroker;

const TOPIC: &str = "__consumer_offsets";

struct Node {
    _dir: tempfile::TempDir,
    meta: LocalMetadataLog,
    replicas: LocalReplicas,
}

/// Node 2 of a two-broker cluster, with an empty metadata log.
fn node_two() -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = LocalMetadataLog::open(&dir.path().join("meta")).expect("metadata log");
    let (logs, _) =
        LogManager::open(&dir.path().join("logs"), ManagerOptions::default(), |_| LogConfig::default()).expect("logs");
    let replicas = LocalReplicas::new(NodeId(2), logs, BTreeMap::new(), Arc::new(Image::default()));
    Node { _dir: dir, meta, replicas }
}

/// Another node's creation of TOPIC, committed: partition 0 on node 2
/// (this node), partition 1 on node 1.
fn commit_winner(meta: &LocalMetadataLog) {
    let controller = TopicController {
        brokers: vec![UsableBroker::new(1, None), UsableBroker::new(2, None)],
        fenced: Vec::new(),
        default_partitions: 1,
        default_replication: 1,
        delete_enabled: true,
    };
    let none = BTreeMap::new();
    let assignments = [(0, vec![2]), (1, vec![1])];
    let t = NewTopic { name: TOPIC, partitions: -1, replication: -1, assignments: &assignments, configs: &none };
    let parts = controller.check_new_topic(&t).expect("valid");
    let before = meta.committed();
    let made = controller.create(&before.image, &t, parts, Uuid::new_v4()).expect("create");
    meta.append(before.version, made.records).expect("commit");
}

/// The log of `p` is hosted, the same log the partition replica has, and
/// takes appends (not closed).
fn assert_serving(replicas: &LocalReplicas, p: i32) {
    let log = replicas.log(TOPIC, p).expect("the partition keeps its log");
    let partition = replicas.partition(TOPIC, p).expect("the partition is hosted");
    assert!(Arc::ptr_eq(partition.log(), &log), "the replica's log is the hosted log");
    log.append(Bytes::from(kaskade_log::batch::build::filled(1, 10, 0, 1)), 0).expect("an open log takes appends");
}

/// The race of two brokers creating `__consumer_offsets` at start-up: this
/// node prepared logs for its own decision (partitions 0 and 1 here), the
/// other node committed first, this node's metadata watch applied that
/// image (taking over the prepared log of partition 0), then this node's
/// commit failed as stale. Partition 0 must keep serving; partition 1 is
/// node 1's, so its prepared log goes.
#[test]
fn a_lost_creation_keeps_the_logs_the_winner_placed_here() {
    let node = node_two();
    node.replicas.prepare(TOPIC, [0, 1], &LogConfig::default()).expect("prepare");
    commit_winner(&node.meta);
    node.replicas.catch_up(&node.meta).expect("the watch applies the winner's image");
    assert_serving(&node.replicas, 0);

    node.replicas.discard_prepared(&node.meta, TOPIC, &[0, 1]);
    assert_serving(&node.replicas, 0);
    assert!(node.replicas.log(TOPIC, 1).is_none(), "partition 1 is node 1's: its prepared log is gone");
    assert!(node.replicas.partition(TOPIC, 1).is_none());
}

/// The same race with the watch not yet run: discarding applies the
/// committed image first, so partition 0's log is kept and hosted.
#[test]
fn a_lost_creation_applies_the_winner_before_discarding() {
    let node = node_two();
    node.replicas.prepare(TOPIC, [0, 1], &LogConfig::default()).expect("prepare");
    commit_winner(&node.meta);

    node.replicas.discard_prepared(&node.meta, TOPIC, &[0, 1]);
    assert_serving(&node.replicas, 0);
    assert!(node.replicas.log(TOPIC, 1).is_none(), "partition 1 is node 1's: its prepared log is gone");
    assert_eq!(
        node.replicas.visible().topic(TOPIC).map(|t| t.partitions.len()),
        Some(2),
        "the winner's image is served"
    );
}

/// Nothing committed the topic (the commit failed for another reason):
/// every prepared log goes, and a later creation starts from empty logs.
#[test]
fn a_creation_nobody_committed_removes_its_prepared_logs() {
    let node = node_two();
    node.replicas.prepare(TOPIC, [0, 1], &LogConfig::default()).expect("prepare");
    node.replicas.discard_prepared(&node.meta, TOPIC, &[0, 1]);
    assert!(node.replicas.log(TOPIC, 0).is_none() && node.replicas.log(TOPIC, 1).is_none());
    assert!(node.replicas.logs().partitions().is_empty(), "no directory left: {:?}", node.replicas.logs().partitions());
}
