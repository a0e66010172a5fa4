//! DescribeQuorum (what `kafka-metadata-quorum --bootstrap-server` sends)
//! through any node of a 3-node cluster of `kaskade serve` processes: every
//! node answers with the active controller's view (the others forward the
//! request there, as Kafka's brokers do), and a node that cannot ask the
//! leader answers NOT_LEADER_OR_FOLLOWER within the client's timeout
//! instead of hanging. Every wait is on a condition with a deadline.

mod process;

use std::collections::BTreeSet;
use std::time::Instant;

use kafka_protocol::ResponseError;
use process::cluster::{active_controller, describe_quorum, start_cluster, wait_for};
use process::WAIT;

#[test]
fn every_node_answers_the_leaders_view_and_refuses_when_the_leader_cannot_be_asked() {
    let root = tempfile::tempdir().expect("tempdir");
    let nodes = start_cluster(root.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let active = wait_for("an active controller", || active_controller(&runtime, &nodes[0].bootstrap()));
    for n in &nodes {
        let answer = describe_quorum(&runtime, &n.bootstrap()).expect("DescribeQuorum");
        assert_eq!(answer, (0, active, BTreeSet::from([1, 2, 3])), "node {}", n.id);
    }

    // The leader and one follower paused: the third node has no majority
    // to elect with and its connection to the leader hangs.
    let lone = nodes.iter().find(|n| n.id != active).expect("a follower");
    let paused: Vec<_> = nodes.iter().filter(|n| n.id != lone.id).collect();
    for n in &paused {
        n.signal("STOP");
    }
    let asked = Instant::now();
    let answer = describe_quorum(&runtime, &lone.bootstrap());
    for n in &paused {
        n.signal("CONT");
    }
    let (code, leader, voters) = answer.expect("an answer within the client's request timeout");
    assert!(asked.elapsed() < WAIT, "answered after {:?}", asked.elapsed());
    assert_eq!(code, ResponseError::NotLeaderOrFollower.code());
    assert!(leader == active || leader == -1, "names the leader it knows, or none: {leader}");
    assert!(voters.is_empty(), "{voters:?}");

    // Continued, the quorum answers through the lone node again.
    let (code, _, voters) = wait_for("the lone node relays the leader's view again", || {
        describe_quorum(&runtime, &lone.bootstrap()).filter(|(code, _, _)| *code == 0)
    });
    assert_eq!((code, voters), (0, BTreeSet::from([1, 2, 3])));
}
