//! `/metrics` of a three-node cluster while a follower dies and comes back:
//! each node's HTTP listener is on (port 0, its address read from the
//! node's start-up line). A topic with replication factor 3 and
//! `min.insync.replicas=2` gets records from a real client (rdkafka,
//! acks=all); the followers report their fetcher lag; a follower that is
//! not the active controller is killed with SIGKILL, and the leader's
//! scrape shows the partition under-replicated, at min ISR and one ISR
//! shrink more; restarted, the follower catches up, the leader counts an
//! expand and under-replicated goes back to 0. Every wait is on a condition
//! with a deadline.

mod process;

use std::time::Duration;

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use process::cluster::{active_controller, create, metadata, start_cluster_with, wait_for, Node};
use process::scrape::scrape;
use process::{client_config, WAIT};

const TOPIC: &str = "watched";

fn value(node: &Node, series: &str) -> Option<f64> {
    scrape(node)?.get(series).copied()
}

fn partition_series(name: &str) -> String {
    format!("{name}{{topic=\"{TOPIC}\",partition=\"0\"}}")
}

#[test]
fn a_killed_follower_shows_in_the_leaders_replication_metrics_until_it_is_back() {
    let root = tempfile::tempdir().expect("tempdir");
    let env: Vec<(String, String)> = [
        ("KAFKA_HTTP_LISTENER", "127.0.0.1:0"),
        // A silent follower leaves the ISR after 1 s (checked every 0.5 s),
        // long before its session would expire.
        ("KAFKA_REPLICA_LAG_TIME_MAX_MS", "1000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut nodes = start_cluster_with(root.path(), 3, &env);
    for n in &nodes {
        assert!(n.http_addr().is_some(), "node {} printed no http address", n.id);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    create(&runtime, &nodes[0].bootstrap(), topic).expect("create RF 3");
    let leader = wait_for("every node knows the leader", || {
        let leaders: Vec<i32> = nodes
            .iter()
            .filter_map(|n| metadata(&n.bootstrap(), TOPIC))
            .filter_map(|(_, l)| l.first().copied())
            .collect();
        (leaders.len() == 3 && leaders.iter().all(|l| *l == leaders[0] && *l > 0)).then(|| leaders[0])
    });

    let producer: BaseProducer = client_config(&nodes[0].bootstrap()).set("acks", "all").create().expect("producer");
    const N: usize = 200;
    for i in 0..N {
        let v = format!("value-{i}");
        producer.send(BaseRecord::<(), _>::to(TOPIC).payload(&v)).expect("enqueue");
        producer.poll(Duration::ZERO);
    }
    producer.flush(WAIT).expect("acks=all");

    let li = nodes.iter().position(|n| n.id == leader).expect("the leader");
    let lag = format!("kaskade_replica_fetcher_lag{{topic=\"{TOPIC}\",partition=\"0\",leader=\"{leader}\"}}");
    // Both followers report the partition they follow, caught up: lag 0.
    for n in nodes.iter().filter(|n| n.id != leader) {
        wait_for(&format!("node {}'s fetcher lag reaches 0", n.id), || {
            let m = scrape(n)?;
            (m.get(&lag) == Some(&0.0) && m.get("kaskade_replica_fetcher_max_lag") == Some(&0.0)).then_some(())
        });
    }
    // The leader reports the partition in sync (a follower slow to start
    // may have left the ISR and come back meanwhile).
    let m = wait_for("the leader reports the partition in sync", || {
        let m = scrape(&nodes[li])?;
        (m.get(&partition_series("kaskade_partition_under_replicated")) == Some(&0.0)
            && m.get(&partition_series("kaskade_partition_at_min_isr")) == Some(&0.0)
            && m.get("kaskade_under_replicated_partitions") == Some(&0.0))
        .then_some(m)
    });
    assert_eq!(m.get(&lag), None, "a leader reports no fetcher lag for what it leads");
    assert!(m.get("kaskade_leader_partitions").copied().unwrap_or(0.0) >= 1.0, "the leader counts what it leads");
    assert!(m.get("kaskade_partitions").copied().unwrap_or(0.0) >= 1.0, "and what it hosts");
    let shrinks = m.get("kaskade_isr_shrinks_total").copied().expect("the shrink counter");
    let expands = m.get("kaskade_isr_expands_total").copied().expect("the expand counter");

    // The victim: a follower that is not the active controller, so the
    // quorum keeps its leader and the partition its leader.
    let controller = wait_for("an active controller", || active_controller(&runtime, &nodes[li].bootstrap()));
    let vi = nodes.iter().position(|n| n.id != leader && n.id != controller).expect("a follower");
    nodes[vi].kill9();
    wait_for("the leader counts the shrink and reports the partition under-replicated, at min ISR", || {
        let m = scrape(&nodes[li])?;
        (m.get("kaskade_isr_shrinks_total").copied()? >= shrinks + 1.0
            && m.get("kaskade_under_replicated_partitions") == Some(&1.0)
            && m.get(&partition_series("kaskade_partition_under_replicated")) == Some(&1.0)
            && m.get(&partition_series("kaskade_partition_at_min_isr")) == Some(&1.0)
            && m.get(&partition_series("kaskade_partition_under_min_isr")) == Some(&0.0)
            && m.get("kaskade_at_min_isr_partitions") == Some(&1.0))
        .then_some(())
    });
    // Other nodes do not report what the leader reports.
    let other = nodes.iter().find(|n| n.id != leader && n.id != nodes[vi].id).expect("the live follower");
    assert_eq!(value(other, &partition_series("kaskade_partition_under_replicated")), None);

    nodes[vi].restart();
    wait_for("the leader counts the expand and under-replicated is back to 0", || {
        let m = scrape(&nodes[li])?;
        (m.get("kaskade_isr_expands_total").copied()? >= expands + 1.0
            && m.get("kaskade_under_replicated_partitions") == Some(&0.0)
            && m.get(&partition_series("kaskade_partition_at_min_isr")) == Some(&0.0))
        .then_some(())
    });
    wait_for("the restarted follower reports its lag, caught up", || (value(&nodes[vi], &lag)? == 0.0).then_some(()));
}
