//! Deletions across a coordinator whose `__consumer_offsets` partition
//! cannot replicate (issue 14): three nodes, the offsets topic with
//! replication factor 3 and `min.insync.replicas` 2. With both followers of
//! the coordinator paused (SIGSTOP), OffsetDelete and DeleteGroups cannot
//! get their tombstones to the ISR: they answer the coordinator's error
//! (COORDINATOR_NOT_AVAILABLE after `offsets.commit.timeout.ms`) and
//! OffsetFetch shows the offsets throughout, as Kafka 4 reads at the last
//! committed offset. Once the followers are back the deletions succeed, and
//! after a kill -9 of the coordinator the new one, replaying the log, still
//! shows them deleted.
//!
//! Before deletions were writes (`group::deletes`), the offsets vanished
//! from memory at once, the error was answered anyway, and a failover
//! after a successful answer could bring them back.

mod process;

use std::time::{Duration, Instant};

use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
use kafka_protocol::messages::{DeleteGroupsRequest, GroupId, OffsetDeleteRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use rdkafka::admin::{NewTopic, TopicReplication};

use process::cluster::{create, wait_for, Node};
use process::coordinated::{self, runtime, send, TOPIC};
use process::{TestDir, WAIT};

/// Its offset is deleted with OffsetDelete.
const OFFSETS: &str = "delete-offsets";
/// Deleted with DeleteGroups.
const GROUP: &str = "delete-group";

/// OffsetDelete v0 of `OFFSETS`' `t-0`: (top-level error, partition error).
async fn delete_offset(node: &Node) -> Result<(i16, i16), String> {
    let mut p = OffsetDeleteRequestPartition::default();
    p.partition_index = 0;
    let mut t = OffsetDeleteRequestTopic::default();
    t.name = TopicName(StrBytes::from_static_str(TOPIC));
    t.partitions.push(p);
    let mut req = OffsetDeleteRequest::default();
    req.group_id = GroupId(StrBytes::from_static_str(OFFSETS));
    req.topics.push(t);
    let resp = send(node, &req, 0).await?;
    let p = resp.topics.first().and_then(|t| t.partitions.first());
    Ok((resp.error_code, p.map_or(0, |p| p.error_code)))
}

/// DeleteGroups v2 of `GROUP`: its error.
async fn delete_group(node: &Node) -> Result<i16, String> {
    let mut req = DeleteGroupsRequest::default();
    req.groups_names = vec![GroupId(StrBytes::from_static_str(GROUP))];
    let resp = send(node, &req, 2).await?;
    resp.results.first().map(|r| r.error_code).ok_or_else(|| "no result".to_string())
}

/// Retries `op` on whichever node coordinates the groups (asked of the
/// nodes in `ask`) until it answers `Some`, within `3 * WAIT`.
fn on_coordinator<T>(
    rt: &tokio::runtime::Runtime,
    nodes: &[Node],
    ask: &[usize],
    what: &str,
    mut op: impl FnMut(&Node) -> Option<T>,
) -> (i32, T) {
    let deadline = Instant::now() + 3 * WAIT;
    loop {
        assert!(Instant::now() < deadline, "{what}: not done in time");
        for &i in ask {
            let Some(id) = rt.block_on(coordinated::coordinator(&nodes[i], GROUP)) else { continue };
            let Some(node) = nodes.iter().find(|n| n.id == id) else { continue };
            if let Some(t) = op(node) {
                return (id, t);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_deletion_the_isr_cannot_hold_deletes_nothing_and_a_replicated_one_survives_failover() {
    let dir = TestDir::new();
    let mut nodes = coordinated::start(dir.path(), &[]);
    let rt = runtime();
    create(&rt, &nodes[0].bootstrap(), NewTopic::new(TOPIC, 1, TopicReplication::Fixed(3))).expect("topic created");

    // Both groups hold offset 5 (the first commit creates the offsets
    // topic, replicated on all three nodes).
    let (id, _) = wait_for("the first commits answered", || {
        let id = rt.block_on(coordinated::coordinator(&nodes[0], GROUP))?;
        let node = nodes.iter().find(|n| n.id == id)?;
        let ok = rt.block_on(coordinated::commit(node, OFFSETS, 5)) == Ok(0)
            && rt.block_on(coordinated::commit(node, GROUP, 5)) == Ok(0);
        ok.then_some((id, ()))
    });
    let c = nodes.iter().position(|n| n.id == id).expect("the coordinator");
    assert_eq!(rt.block_on(coordinated::fetch(&nodes[c], OFFSETS, false)), Ok((0, 0, 5)));
    assert_eq!(rt.block_on(coordinated::fetch(&nodes[c], GROUP, false)), Ok((0, 0, 5)));

    // Both followers stop: no tombstone can reach the ISR.
    for n in nodes.iter().filter(|n| n.id != id) {
        n.signal("STOP");
    }
    let started = Instant::now();
    let coordinator_node = &nodes[c];
    let (offset_deleted, group_deleted, seen) = rt.block_on(async {
        let watch = async {
            // While the deletions wait: the offsets as they were.
            let mut seen = Vec::new();
            tokio::time::sleep(Duration::from_millis(300)).await;
            for _ in 0..8 {
                seen.push((
                    coordinated::fetch(coordinator_node, OFFSETS, false).await,
                    coordinated::fetch(coordinator_node, GROUP, false).await,
                ));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            seen
        };
        tokio::join!(delete_offset(coordinator_node), delete_group(coordinator_node), watch)
    });
    eprintln!(
        "deletions while the followers are stopped: {offset_deleted:?} {group_deleted:?} after {:?}",
        started.elapsed()
    );
    let unavailable = ResponseError::CoordinatorNotAvailable.code();
    assert_eq!(offset_deleted, Ok((unavailable, 0)), "OffsetDelete: the coordinator's error");
    assert_eq!(group_deleted, Ok(unavailable), "DeleteGroups: the coordinator's error");
    for s in &seen {
        assert_eq!(*s, (Ok((0, 0, 5)), Ok((0, 0, 5))), "nothing deleted before it is replicated: {seen:?}");
    }
    assert_eq!(
        rt.block_on(coordinated::fetch(coordinator_node, OFFSETS, false)),
        Ok((0, 0, 5)),
        "the failed OffsetDelete deleted nothing"
    );
    assert_eq!(
        rt.block_on(coordinated::fetch(coordinator_node, GROUP, false)),
        Ok((0, 0, 5)),
        "the failed DeleteGroups deleted nothing"
    );

    // The followers return: the deletions succeed (on whichever node
    // coordinates the groups by then).
    for n in nodes.iter().filter(|n| n.id != id) {
        n.signal("CONT");
    }
    let recovered = Instant::now();
    let all: Vec<usize> = (0..nodes.len()).collect();
    on_coordinator(&rt, &nodes, &all, "OffsetDelete after the followers returned", |node| {
        (rt.block_on(delete_offset(node)) == Ok((0, 0))).then_some(())
    });
    let (id, _) = on_coordinator(&rt, &nodes, &all, "DeleteGroups after the followers returned", |node| {
        (rt.block_on(delete_group(node)) == Ok(0)).then_some(())
    });
    eprintln!("deletions answered {:?} after the followers returned (coordinator {id})", recovered.elapsed());
    let node = nodes.iter().find(|n| n.id == id).expect("coordinator");
    assert_eq!(rt.block_on(coordinated::fetch(node, OFFSETS, false)), Ok((0, 0, -1)));
    assert_eq!(rt.block_on(coordinated::fetch(node, GROUP, false)), Ok((0, 0, -1)));
    assert_eq!(rt.block_on(delete_group(node)), Ok(ResponseError::GroupIdNotFound.code()), "the group is gone");

    // The coordinator dies: the new one replays the log, tombstones
    // included, and shows nothing of either group.
    let c = nodes.iter().position(|n| n.id == id).expect("the coordinator");
    nodes[c].kill9();
    let others: Vec<usize> = (0..nodes.len()).filter(|&i| i != c).collect();
    let (new_id, fetched) = on_coordinator(&rt, &nodes, &others, "a fetch from the new coordinator", |node| {
        if node.id == id {
            return None;
        }
        let a = rt.block_on(coordinated::fetch(node, OFFSETS, false)).ok().filter(|f| f.0 == 0)?;
        let b = rt.block_on(coordinated::fetch(node, GROUP, false)).ok().filter(|f| f.0 == 0)?;
        Some((a, b))
    });
    eprintln!("the new coordinator {new_id} answered {fetched:?}");
    assert_eq!(fetched, ((0, 0, -1), (0, 0, -1)), "deleted offsets stay deleted after a failover");
    let node = nodes.iter().find(|n| n.id == new_id).expect("the new coordinator");
    assert_eq!(rt.block_on(delete_group(node)), Ok(ResponseError::GroupIdNotFound.code()), "the group stays gone");
    for i in others {
        assert!(nodes[i].running(), "node {} is running", nodes[i].id);
    }
}
