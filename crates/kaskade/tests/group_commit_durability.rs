//! Offset commits across a coordinator whose `__consumer_offsets`
//! partition cannot replicate (issue 14): three nodes, the offsets topic
//! with replication factor 3 and `min.insync.replicas` 2. With both
//! followers of the coordinator paused (SIGSTOP), an OffsetCommit cannot
//! reach the ISR: it answers the coordinator's error
//! (COORDINATOR_NOT_AVAILABLE after `offsets.commit.timeout.ms`), and
//! OffsetFetch never shows its offset, neither while the commit waits nor
//! after it failed; OffsetFetch with `require_stable` waits for the commit
//! and answers the group NOT_COORDINATOR, as Kafka 4 does. Once the
//! followers are back, a later commit is answered and fetched.
//!
//! Before the group engine kept commits pending (`group::writes`), the
//! coordinator showed the unreplicated offset at once.

mod process;

use std::time::{Duration, Instant};

use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, OffsetFetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use rdkafka::admin::{NewTopic, TopicReplication};

use process::cluster::{create, wait_for, Node};
use process::coordinated::{self, runtime};
use process::{TestDir, WAIT};

const GROUP: &str = "durable-commits";
const TOPIC: &str = "t";

/// OffsetCommit v8 of `t-0` from outside any group, sent to `node`: the
/// partition's error code.
async fn commit(node: &Node, offset: i64) -> Result<i16, String> {
    let client = kaskade_client::cluster::Client::new(&node.bootstrap()).map_err(|e| e.to_string())?;
    let conn = client.any_connection().await.map_err(|e| e.to_string())?;
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    let mut t = OffsetCommitRequestTopic::default();
    t.name = TopicName(StrBytes::from_static_str(TOPIC));
    t.partitions.push(p);
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(StrBytes::from_static_str(GROUP));
    req.generation_id_or_member_epoch = -1;
    req.topics.push(t);
    let resp = conn.send(&req, 8).await.map_err(|e| e.to_string())?;
    Ok(resp.topics[0].partitions[0].error_code)
}

/// OffsetFetch v7 of `t-0` asked of `node`: (top-level error, partition
/// error, committed offset).
async fn fetch(node: &Node, require_stable: bool) -> Result<(i16, i16, i64), String> {
    let client = kaskade_client::cluster::Client::new(&node.bootstrap()).map_err(|e| e.to_string())?;
    let conn = client.any_connection().await.map_err(|e| e.to_string())?;
    let mut t = OffsetFetchRequestTopic::default();
    t.name = TopicName(StrBytes::from_static_str(TOPIC));
    t.partition_indexes = vec![0];
    let mut req = OffsetFetchRequest::default();
    req.group_id = GroupId(StrBytes::from_static_str(GROUP));
    req.topics = Some(vec![t]);
    req.require_stable = require_stable;
    let resp = conn.send(&req, 7).await.map_err(|e| e.to_string())?;
    let p = resp.topics.first().and_then(|t| t.partitions.first());
    Ok((resp.error_code, p.map_or(0, |p| p.error_code), p.map_or(-1, |p| p.committed_offset)))
}

#[test]
fn a_commit_the_isr_cannot_hold_is_never_fetched_and_a_later_one_is() {
    let dir = TestDir::new();
    let mut nodes = coordinated::start(dir.path(), &[]);
    let rt = runtime();
    create(&rt, &nodes[0].bootstrap(), NewTopic::new(TOPIC, 1, TopicReplication::Fixed(3))).expect("topic created");

    // The coordinator answers a first commit (this creates the offsets
    // topic, replicated on all three nodes).
    let (id, _) = wait_for("a first commit answered", || {
        let id = rt.block_on(coordinated::coordinator(&nodes[0], GROUP))?;
        let node = nodes.iter().find(|n| n.id == id)?;
        (rt.block_on(commit(node, 5)) == Ok(0)).then_some((id, ()))
    });
    let at = |nodes: &[Node]| nodes.iter().position(|n| n.id == id).expect("the coordinator");
    let c = at(&nodes);
    assert_eq!(rt.block_on(fetch(&nodes[c], false)), Ok((0, 0, 5)));

    // Both followers stop: the ISR cannot hold anything new.
    for n in nodes.iter().filter(|n| n.id != id) {
        n.signal("STOP");
    }
    let started = Instant::now();
    let coordinator_node = &nodes[c];
    let (answer, seen) = rt.block_on(async {
        let commit9 = commit(coordinator_node, 9);
        let watch = async {
            // While the commit waits: the last replicated offset only.
            let mut seen = Vec::new();
            tokio::time::sleep(Duration::from_millis(300)).await;
            for _ in 0..10 {
                seen.push(fetch(coordinator_node, false).await);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            seen
        };
        tokio::join!(commit9, watch)
    });
    let waited = started.elapsed();
    eprintln!("commit while the followers are stopped: {answer:?} after {waited:?}");
    assert_eq!(answer, Ok(ResponseError::CoordinatorNotAvailable.code()), "the coordinator's error");
    for s in &seen {
        assert_eq!(*s, Ok((0, 0, 5)), "an unreplicated commit is never fetched: {seen:?}");
    }
    assert_eq!(rt.block_on(fetch(coordinator_node, false)), Ok((0, 0, 5)), "the failed commit never shows");

    // require_stable waits for a pending commit, then hears its failure.
    let (answer, stable) = rt.block_on(async {
        let commit10 = commit(coordinator_node, 10);
        let stable = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            fetch(coordinator_node, true).await
        };
        tokio::join!(commit10, stable)
    });
    assert_eq!(answer, Ok(ResponseError::CoordinatorNotAvailable.code()));
    assert_eq!(stable.map(|s| s.0), Ok(ResponseError::NotCoordinator.code()), "require_stable: the write failed");
    assert_eq!(rt.block_on(fetch(coordinator_node, false)), Ok((0, 0, 5)));

    // The followers return: a later commit is answered and fetched (from
    // whichever node coordinates the group by then).
    for n in nodes.iter().filter(|n| n.id != id) {
        n.signal("CONT");
    }
    let deadline = Instant::now() + 3 * WAIT;
    let recovered = Instant::now();
    let (node_id, _) = loop {
        assert!(Instant::now() < deadline, "no commit answered after the followers returned");
        let answered = rt.block_on(async {
            let id = coordinated::coordinator(&nodes[c], GROUP).await?;
            let node = nodes.iter().find(|n| n.id == id)?;
            (commit(node, 11).await == Ok(0)).then_some(id)
        });
        if let Some(id) = answered {
            break (id, ());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("a commit answered {:?} after the followers returned (coordinator {node_id})", recovered.elapsed());
    let node = nodes.iter().find(|n| n.id == node_id).expect("coordinator");
    assert_eq!(rt.block_on(fetch(node, false)), Ok((0, 0, 11)));
    assert_eq!(rt.block_on(fetch(node, true)), Ok((0, 0, 11)));
    for n in &mut nodes {
        assert!(n.running(), "node {} is running", n.id);
    }
}
