//! A static member's rejoin across a coordinator whose `__consumer_offsets`
//! partition cannot replicate (issue 14): three nodes, the offsets topic
//! with replication factor 3 and `min.insync.replicas` 2. A static member
//! restarting (JoinGroup with its `group.instance.id` and no member id) in
//! a Stable group takes its old id's place without a rebalance, and the
//! group record naming the new id is written; as in Kafka 4, the JoinGroup
//! is answered only once that record is replicated. With both followers of
//! the coordinator paused (SIGSTOP) it answers COORDINATOR_NOT_AVAILABLE
//! after `offsets.commit.timeout.ms` with no member id, and the old member
//! id is the group's again (its heartbeats go on). Once the followers are
//! back the rejoin succeeds.
//!
//! Before the rejoin awaited its record (`group::static_join`), it was
//! answered at once and the old member was fenced, whatever the log held.

mod process;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, SyncGroupRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use process::cluster::{wait_for, Node};
use process::coordinated::{self, runtime, send};
use process::{TestDir, WAIT};

const GROUP: &str = "static-rejoin";
const INSTANCE: &str = "instance-1";

/// JoinGroup v5 of the static member with no member id (a restart).
async fn join(node: &Node) -> Result<JoinGroupResponse, String> {
    let mut p = JoinGroupRequestProtocol::default();
    p.name = StrBytes::from_static_str("range");
    p.metadata = Bytes::from_static(b"subscription");
    let mut req = JoinGroupRequest::default();
    req.group_id = GroupId(StrBytes::from_static_str(GROUP));
    req.session_timeout_ms = 60_000;
    req.rebalance_timeout_ms = 30_000;
    req.group_instance_id = Some(StrBytes::from_static_str(INSTANCE));
    req.protocol_type = StrBytes::from_static_str("consumer");
    req.protocols.push(p);
    send(node, &req, 5).await
}

/// SyncGroup v3 of the (only) member, the leader: its error.
async fn sync(node: &Node, generation: i32, member: &str) -> Result<i16, String> {
    let mut a = SyncGroupRequestAssignment::default();
    a.member_id = StrBytes::from_string(member.to_string());
    a.assignment = Bytes::from_static(b"assignment");
    let mut req = SyncGroupRequest::default();
    req.group_id = GroupId(StrBytes::from_static_str(GROUP));
    req.generation_id = generation;
    req.member_id = StrBytes::from_string(member.to_string());
    req.group_instance_id = Some(StrBytes::from_static_str(INSTANCE));
    req.assignments.push(a);
    Ok(send(node, &req, 3).await?.error_code)
}

/// Heartbeat v3 of `member`: its error.
async fn heartbeat(node: &Node, generation: i32, member: &str) -> Result<i16, String> {
    let mut req = HeartbeatRequest::default();
    req.group_id = GroupId(StrBytes::from_static_str(GROUP));
    req.generation_id = generation;
    req.member_id = StrBytes::from_string(member.to_string());
    req.group_instance_id = Some(StrBytes::from_static_str(INSTANCE));
    Ok(send(node, &req, 3).await?.error_code)
}

#[test]
fn a_static_rejoin_whose_record_the_isr_cannot_hold_fails_and_keeps_the_old_member() {
    let dir = TestDir::new();
    let mut nodes = coordinated::start(dir.path(), &[("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")]);
    let rt = runtime();

    // The member joins and gets its assignment: the group is Stable.
    let (id, joined) = wait_for("the first join answered", || {
        let id = rt.block_on(coordinated::coordinator(&nodes[0], GROUP))?;
        let node = nodes.iter().find(|n| n.id == id)?;
        let r = rt.block_on(join(node)).ok().filter(|r| r.error_code == 0)?;
        Some((id, r))
    });
    let c = nodes.iter().position(|n| n.id == id).expect("the coordinator");
    let (generation, old) = (joined.generation_id, joined.member_id.to_string());
    assert_eq!(joined.leader.as_str(), old, "the only member leads");
    assert_eq!(rt.block_on(sync(&nodes[c], generation, &old)), Ok(0), "the assignment is stored");

    // Both followers stop: the restarted member's record cannot reach the ISR.
    for n in nodes.iter().filter(|n| n.id != id) {
        n.signal("STOP");
    }
    let started = Instant::now();
    let rejoined = rt.block_on(join(&nodes[c]));
    eprintln!("rejoin while the followers are stopped: {rejoined:?} after {:?}", started.elapsed());
    let rejoined = rejoined.expect("answered");
    assert_eq!(rejoined.error_code, ResponseError::CoordinatorNotAvailable.code(), "the coordinator's error");
    assert_eq!(rejoined.member_id.as_str(), "", "no member id");
    assert!(started.elapsed() >= Duration::from_secs(1), "answered only once the write failed");
    assert_eq!(rt.block_on(heartbeat(&nodes[c], generation, &old)), Ok(0), "the old member id is the group's again");

    // The followers return: the rejoin succeeds, without a rebalance, and
    // fences the old id.
    for n in nodes.iter().filter(|n| n.id != id) {
        n.signal("CONT");
    }
    let deadline = Instant::now() + 3 * WAIT;
    let (node_id, r) = loop {
        assert!(Instant::now() < deadline, "no rejoin answered after the followers returned");
        let answered = rt.block_on(async {
            let id = coordinated::coordinator(&nodes[c], GROUP).await?;
            let node = nodes.iter().find(|n| n.id == id)?;
            let r = join(node).await.ok().filter(|r| r.error_code == 0)?;
            Some((id, r))
        });
        if let Some(a) = answered {
            break a;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("rejoined on {node_id}: generation {} member {}", r.generation_id, r.member_id.as_str());
    assert_ne!(r.member_id.as_str(), old);
    let node = nodes.iter().find(|n| n.id == node_id).expect("coordinator");
    assert_eq!(rt.block_on(heartbeat(node, r.generation_id, r.member_id.as_str())), Ok(0));
    assert_eq!(
        rt.block_on(heartbeat(node, r.generation_id, &old)),
        Ok(ResponseError::FencedInstanceId.code()),
        "the old incarnation is fenced"
    );
    for n in &mut nodes {
        assert!(n.running(), "node {} is running", n.id);
    }
}
