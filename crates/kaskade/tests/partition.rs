//! Network partitions with no acknowledged record lost (issue 14). Three
//! `kaskade serve` processes run as separate hosts, each in a network
//! namespace of its own (`process::netns`: veth pairs into a bridge in
//! the root namespace, where the test's clients run and reach every
//! node). The same workload and checker as `failover.rs` (an idempotent
//! acks=all producer, topic of 3 partitions, replication factor 3,
//! `min.insync.replicas=2`). A partition leader is cut off from the other
//! two nodes (its followers and the quorum) while the clients still reach
//! it:
//! - two-way: packets from it to the others and from them to it dropped;
//! - one-way: only the packets it sends to the others dropped (TCP then
//!   breaks both ways, so this differs from two-way mainly in what the
//!   cut-off node still receives: connection attempts and Raft votes);
//! - the active controller (the Raft leader) cut off one way, with the
//!   partition it leads.
//!
//! As in Kafka, the cut-off leader cannot shrink its ISR through the
//! controller, so it acknowledges no acks=all write (a producer that only
//! knows it must see its record fail, and the record must never appear);
//! the majority fences it after its session and elects a new leader; the
//! producer goes on there. After the heal the old leader rejoins as a
//! follower and truncates its divergent tail; once every node's own
//! Metadata names the new leaders, every node's ListOffsets answer must
//! agree with it (the leader answers at its epoch, the others
//! NOT_LEADER_OR_FOLLOWER); the checker then requires every acknowledged
//! record read once at its offset, in order, and the replicas identical
//! batch by batch. Each round prints its failover time (the cut to the
//! first acknowledgement from the new leader) and how long the nodes took
//! to agree after the heal (which includes the extra Raft election the
//! healed node's higher term causes, see DIFFERENCES.md).
//!
//! Skipped, saying why, when the machine allows no network namespaces
//! (not root, no `ip netns`). One round per case (CI); long mode:
//! `KASKADE_FAILOVER_ROUNDS=N`.

mod process;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use process::checker::{agreed_leaders, finish_and_check, short_sessions, Producing, Workload};
use process::client_config;
use process::cluster::{active_controller, create, start_cluster_on, wait_for, Node};
use process::netns::Network;
use process::replicas::{batches, log_end, roots};

const W: Workload = Workload { topic: "partitioned", partitions: 3 };

/// A record only the cut-off leader is asked to take; it must never be
/// acknowledged nor read (the checker refuses numbers never sent by the
/// main producer).
const STRAY: &str = "record-999999999999";

/// Kafka's NOT_LEADER_OR_FOLLOWER.
const NOT_LEADER_OR_FOLLOWER: i16 = 6;

#[derive(Clone, Copy, Debug)]
enum Cut {
    TwoWay,
    OneWay,
}

/// Which node is cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Victim {
    /// A partition leader that is not the active controller.
    Leader,
    /// The active controller (the Raft leader), with the partition it leads.
    Controller,
}

/// The one delivery report of `produce_to_isolated`.
#[derive(Default)]
struct Report(Mutex<Option<Result<i64, String>>>);

impl ClientContext for Report {}

impl ProducerContext for Report {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let outcome = match result {
            Ok(m) => Ok(m.offset()),
            Err((e, _)) => Err(e.to_string()),
        };
        *self.0.lock().expect("report") = Some(outcome);
    }
}

/// The leader and leader epoch of each partition of the topic as the node
/// at `bootstrap` itself answers Metadata (over a connection to that node:
/// rdkafka may send a Metadata request to any broker it knows, so a node
/// whose image is stale could seem to agree).
fn own_leaders(runtime: &tokio::runtime::Runtime, bootstrap: &str) -> Option<Vec<(i32, i32)>> {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{MetadataRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let client = kaskade_client::cluster::Client::new(bootstrap).ok()?;
    runtime.block_on(async {
        let conn = client.any_connection().await.ok()?;
        let version = conn.version::<MetadataRequest>().ok()?;
        let mut topic = MetadataRequestTopic::default();
        topic.name = Some(TopicName(StrBytes::from_static_str(W.topic)));
        let mut req = MetadataRequest::default();
        req.topics = Some(vec![topic]);
        let resp = conn.send(&req, version).await.ok()?;
        let t = resp.topics.first().filter(|t| t.error_code == 0)?;
        let mut by_index: Vec<(i32, i32, i32)> =
            t.partitions.iter().map(|p| (p.partition_index, p.leader_id.0, p.leader_epoch)).collect();
        by_index.sort_unstable();
        Some(by_index.into_iter().map(|(_, leader, epoch)| (leader, epoch)).collect())
    })
}

/// The leaders (and leader epochs) every node's own Metadata names, if
/// they all name the same ones and those are among `live`: each node has
/// applied the image that elected them.
fn agreed_by_each(runtime: &tokio::runtime::Runtime, nodes: &[Node], live: &[i32]) -> Option<Vec<(i32, i32)>> {
    let answers: Vec<Vec<(i32, i32)>> = nodes.iter().filter_map(|n| own_leaders(runtime, &n.bootstrap())).collect();
    let first = answers.first()?.clone();
    (answers.len() == nodes.len()
        && first.len() == W.partitions as usize
        && first.iter().all(|(l, _)| live.contains(l))
        && answers.iter().all(|a| *a == first))
    .then_some(first)
}

/// The Raft term of the quorum's leader (DescribeQuorum's leader epoch),
/// as the node at `bootstrap` answers (a controller that does not lead
/// asks the leader); `None` while no leader is known.
fn quorum_term(runtime: &tokio::runtime::Runtime, bootstrap: &str) -> Option<i32> {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    use kafka_protocol::messages::{DescribeQuorumRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let client = kaskade_client::cluster::Client::new(bootstrap).ok()?;
    runtime.block_on(async {
        let conn = client.any_connection().await.ok()?;
        let version = conn.version::<DescribeQuorumRequest>().ok()?;
        let mut topic = TopicData::default();
        topic.topic_name = TopicName(StrBytes::from_static_str("__cluster_metadata"));
        topic.partitions.push(PartitionData::default());
        let mut req = DescribeQuorumRequest::default();
        req.topics.push(topic);
        let resp = tokio::time::timeout(Duration::from_secs(2), conn.send(&req, version)).await.ok()?.ok()?;
        let p = resp.topics.first()?.partitions.first()?;
        (p.error_code == 0 && p.leader_id.0 >= 0).then_some(p.leader_epoch)
    })
}

/// Sends one acks=all record to `partition` through `bootstrap` only (the
/// cut-off leader, whose stale Metadata names itself): its delivery
/// report (the offset or the error), which must come within `within`.
fn produce_to_isolated(bootstrap: &str, partition: i32, within: Duration) -> Result<i64, String> {
    let producer: BaseProducer<Report> = client_config(bootstrap)
        .set("acks", "all")
        .set("request.timeout.ms", "2000")
        .set("message.timeout.ms", "4000")
        .create_with_context(Report::default())
        .expect("producer");
    if let Err((e, _)) = producer.send(BaseRecord::<(), _>::to(W.topic).partition(partition).payload(STRAY)) {
        panic!("enqueue the record for the cut-off leader: {e}");
    }
    let deadline = Instant::now() + within;
    loop {
        producer.poll(Duration::from_millis(50));
        if let Some(outcome) = producer.context().0.lock().expect("report").take() {
            return outcome;
        }
        assert!(
            Instant::now() < deadline,
            "no delivery report for the record sent to the cut-off leader in {within:?}"
        );
    }
}

fn partition(cut: Cut, victim: Victim) {
    let network = match Network::create(3) {
        Ok(n) => n,
        Err(why) => {
            eprintln!("SKIPPED: network partitions need network namespaces (root and `ip netns`): {why}");
            return;
        }
    };
    let rounds: usize = std::env::var("KASKADE_FAILOVER_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let root = process::TestDir::new();
    let mut nodes = start_cluster_on(root.path(), 3, &short_sessions(), &network.hosts());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let topic = NewTopic::new(W.topic, W.partitions, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    create(&runtime, &nodes[0].bootstrap(), topic).expect("create RF 3");
    let bootstrap: String = nodes.iter().map(|n| n.bootstrap()).collect::<Vec<_>>().join(",");

    let mut next = 0u64;
    for round in 0..rounds {
        let leaders = agreed_leaders(W, &nodes.iter().collect::<Vec<_>>());
        let controller = wait_for("an active controller", || active_controller(&runtime, &nodes[0].bootstrap()));
        let (partition, victim_id) = (0..W.partitions)
            .map(|p| (p, leaders[p as usize]))
            .find(|(_, l)| (*l == controller) == (victim == Victim::Controller))
            .unwrap_or_else(|| {
                if victim == Victim::Controller {
                    eprintln!("{cut:?} round {round}: the controller {controller} leads no partition; cutting it off");
                    return (0, controller);
                }
                eprintln!("{cut:?} round {round}: every partition led by the controller {controller}; cutting partition 0's leader");
                (0, leaders[0])
            });
        let others: Vec<i32> = nodes.iter().map(|n| n.id).filter(|id| *id != victim_id).collect();

        let producing = Producing::start(W, &bootstrap, next);
        let deliveries = producing.deliveries.clone();
        wait_for("the producer is acknowledged on every partition", || {
            let acks = deliveries.acks();
            (0..W.partitions).all(|p| acks.iter().filter(|a| a.partition == p).count() >= 100).then_some(())
        });

        let victim_root = root.path().join(format!("node-{victim_id}"));
        let cut_at = Instant::now();
        network.drop_from(victim_id, &others);
        if let Cut::TwoWay = cut {
            for o in &others {
                network.drop_from(*o, &[victim_id]);
            }
        }
        let old_end = log_end(&batches(&victim_root, W.topic, partition));

        // The cut-off leader answers its clients but acknowledges nothing.
        let victim_bootstrap = nodes.iter().find(|n| n.id == victim_id).expect("victim").bootstrap();
        let stray = produce_to_isolated(&victim_bootstrap, partition, Duration::from_secs(30));
        match stray {
            Ok(offset) => panic!("the cut-off leader acknowledged an acks=all record at offset {offset}"),
            Err(e) => eprintln!("round {round}: the cut-off leader's answer to an acks=all record: {e}"),
        }
        let first = wait_for(&format!("an acknowledgement of {}-{partition} from a new leader", W.topic), || {
            deliveries.acks().iter().filter(|a| a.partition == partition && a.offset >= old_end).map(|a| a.at).min()
        });
        eprintln!(
            "partition {cut:?} round {round}: node {victim_id} cut off (leader of {}-{partition}, controller {controller}); \
             failover time {:?}",
            W.topic,
            first - cut_at
        );
        let majority: Vec<&Node> = nodes.iter().filter(|n| n.id != victim_id).collect();
        let after = agreed_leaders(W, &majority);
        assert!(!after.contains(&victim_id), "the cut-off node still leads on the majority side: {after:?}");
        deliveries.wait_acks("more acknowledgements on the majority side", deliveries.count(), 300);

        // What the cut-off leader holds that the majority never got: its
        // divergent tail, which it must truncate once healed.
        let before_heal = batches(&victim_root, W.topic, partition);
        let majority_node = nodes.iter().find(|n| n.id != victim_id).expect("a majority node").bootstrap();
        let term_before = wait_for("the majority's Raft term", || quorum_term(&runtime, &majority_node));
        for id in nodes.iter().map(|n| n.id) {
            if id == victim_id || matches!(cut, Cut::TwoWay) {
                network.heal(id);
            }
        }
        let healed = Instant::now();
        let all: Vec<i32> = nodes.iter().map(|n| n.id).collect();
        // Raft terms the quorum's leaders had since the heal: the healed
        // node's higher term may depose the leader once (openraft 0.9 has
        // no pre-vote, see DIFFERENCES.md), never more.
        let mut terms = std::collections::BTreeSet::from([term_before]);
        let leaders = wait_for("every node's own Metadata names the same live leaders", || {
            terms.extend(quorum_term(&runtime, &majority_node));
            agreed_by_each(&runtime, &nodes, &all)
        });
        let elections = terms.iter().filter(|t| **t > term_before).count();
        eprintln!(
            "round {round}: every node agrees on the leaders {leaders:?} {:?} after the heal; Raft terms {terms:?} \
             ({elections} elections after the heal)",
            healed.elapsed()
        );
        assert!(elections <= 1, "round {round}: more than one Raft election after the heal: terms {terms:?}");
        deliveries.wait_acks("acknowledgements after the heal", deliveries.count(), 300);
        // What each node answers ListOffsets(latest) with, now that its
        // image names the leaders: only the leader answers as leader, at
        // the epoch its image gives (a healed old leader once answered at
        // its old epoch with a HW far below what was acknowledged); the
        // others NOT_LEADER_OR_FOLLOWER at the epoch they know.
        // The image may move on meanwhile (an ISR change): each node's
        // answers are checked against its own Metadata read just before
        // and just after them, asked again until the two agree.
        for n in &nodes {
            let (answers, leaders) = wait_for("ListOffsets answers between two equal Metadata answers", || {
                let before = own_leaders(&runtime, &n.bootstrap())?;
                let answers: Vec<_> = (0..W.partitions)
                    .map(|p| process::cluster::list_latest_on(&runtime, &n.bootstrap(), W.topic, p))
                    .collect();
                (own_leaders(&runtime, &n.bootstrap())? == before).then_some((answers, before))
            });
            eprintln!("round {round}: node {} answers ListOffsets(latest) (code, offset, epoch): {answers:?}", n.id);
            for (p, answer) in answers.iter().enumerate() {
                let (leader, epoch) = leaders[p];
                let code = if leader == n.id { 0 } else { NOT_LEADER_OR_FOLLOWER };
                assert!(
                    answer.is_some_and(|(c, _, e)| c == code && e == epoch),
                    "round {round}: node {} answered ListOffsets for {}-{p} with {answer:?} while its Metadata names \
                     node {leader} the leader at epoch {epoch}",
                    n.id,
                    W.topic,
                );
            }
        }
        let sent = finish_and_check(W, producing, &nodes[0].bootstrap(), next, &roots(root.path(), &nodes));
        let now = batches(&victim_root, W.topic, partition);
        let truncated: Vec<(i64, i64)> =
            before_heal.iter().filter(|b| !now.contains(b)).map(|b| (b.base, b.last)).collect();
        eprintln!(
            "round {round}: node {victim_id} truncated {} divergent batches of {}-{partition}: {truncated:?}",
            truncated.len(),
            W.topic
        );
        for n in nodes.iter_mut() {
            assert!(n.running(), "node {} exited during the partition", n.id);
        }
        next = sent;
    }
}

#[test]
fn a_leader_cut_off_both_ways_loses_no_acknowledged_record() {
    partition(Cut::TwoWay, Victim::Leader);
}

#[test]
fn a_leader_whose_packets_to_the_others_are_dropped_loses_no_acknowledged_record() {
    partition(Cut::OneWay, Victim::Leader);
}

/// The active controller (Raft leader) leading a partition, its packets to
/// the others dropped: the other two elect a new Raft leader, which fences
/// the cut-off broker after its session and moves its leadership.
#[test]
fn the_active_controller_whose_packets_to_the_others_are_dropped_loses_no_acknowledged_record() {
    partition(Cut::OneWay, Victim::Controller);
}
