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

use kafka_protocol::ResponseError;
use rdkafka::admin::{NewTopic, TopicReplication};

use process::cluster::{create, wait_for, Node};
use process::coordinated::{self, runtime, TOPIC};
use process::{TestDir, WAIT};

const GROUP: &str = "durable-commits";

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
        (rt.block_on(coordinated::commit(node, GROUP, 5)) == Ok(0)).then_some((id, ()))
    });
    let at = |nodes: &[Node]| nodes.iter().position(|n| n.id == id).expect("the coordinator");
    let c = at(&nodes);
    assert_eq!(rt.block_on(coordinated::fetch(&nodes[c], GROUP, false)), Ok((0, 0, 5)));

    // Both followers stop: the ISR cannot hold anything new.
    for n in nodes.iter().filter(|n| n.id != id) {
        n.signal("STOP");
    }
    let started = Instant::now();
    let coordinator_node = &nodes[c];
    let (answer, seen) = rt.block_on(async {
        let commit9 = coordinated::commit(coordinator_node, GROUP, 9);
        let watch = async {
            // While the commit waits: the last replicated offset only.
            let mut seen = Vec::new();
            tokio::time::sleep(Duration::from_millis(300)).await;
            for _ in 0..10 {
                seen.push(coordinated::fetch(coordinator_node, GROUP, false).await);
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
    assert_eq!(
        rt.block_on(coordinated::fetch(coordinator_node, GROUP, false)),
        Ok((0, 0, 5)),
        "the failed commit never shows"
    );

    // require_stable waits for a pending commit, then hears its failure.
    let (answer, stable) = rt.block_on(async {
        let commit10 = coordinated::commit(coordinator_node, GROUP, 10);
        let stable = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            coordinated::fetch(coordinator_node, GROUP, true).await
        };
        tokio::join!(commit10, stable)
    });
    assert_eq!(answer, Ok(ResponseError::CoordinatorNotAvailable.code()));
    assert_eq!(stable.map(|s| s.0), Ok(ResponseError::NotCoordinator.code()), "require_stable: the write failed");
    assert_eq!(rt.block_on(coordinated::fetch(coordinator_node, GROUP, false)), Ok((0, 0, 5)));

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
            (coordinated::commit(node, GROUP, 11).await == Ok(0)).then_some(id)
        });
        if let Some(id) = answered {
            break (id, ());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("a commit answered {:?} after the followers returned (coordinator {node_id})", recovered.elapsed());
    let node = nodes.iter().find(|n| n.id == node_id).expect("coordinator");
    assert_eq!(rt.block_on(coordinated::fetch(node, GROUP, false)), Ok((0, 0, 11)));
    assert_eq!(rt.block_on(coordinated::fetch(node, GROUP, true)), Ok((0, 0, 11)));
    for n in &mut nodes {
        assert!(n.running(), "node {} is running", n.id);
    }
}
