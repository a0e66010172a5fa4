//! ElectLeaders v0 (no top-level error code) on a three-node cluster: a v0
//! request with a null partition list, sent to a node that is not the
//! active controller, is forwarded (as v1, whose top-level code lets a
//! NOT_CONTROLLER answer be retried on the next controller) and elects
//! the restarted preferred leader back, answered at v0; on the controller
//! listener of a controller that is not the active one, v1 with a null
//! list gets the top-level NOT_CONTROLLER and v0 an empty answer, as
//! Kafka's `ElectLeadersRequest.getErrorResponse` gives it (v0 cannot
//! carry the code).

mod process;

use std::time::Duration;

use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use kafka_protocol::ResponseError;
use kaskade_client::connection::{Connection, ConnectionConfig};
use rdkafka::consumer::{BaseConsumer, Consumer};

use process::cluster::{active_controller, start_cluster_with, wait_for};
use process::{client_config, WAIT};

const TOPIC: &str = "v0";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// (leader, replicas, isr) of each partition.
type Placement = Vec<(i32, Vec<i32>, Vec<i32>)>;

/// The placement of TOPIC, as `bootstrap` answers Metadata.
fn partitions(bootstrap: &str) -> Option<Placement> {
    let consumer: BaseConsumer = client_config(bootstrap).create().ok()?;
    let md = consumer.fetch_metadata(Some(TOPIC), Duration::from_secs(5)).ok()?;
    let t = md.topics().iter().find(|t| t.name() == TOPIC).filter(|t| t.error().is_none())?;
    let mut ps: Vec<_> = t.partitions().iter().map(|p| (p.id(), p)).collect();
    ps.sort_by_key(|(id, _)| *id);
    Some(ps.iter().map(|(_, p)| (p.leader(), p.replicas().to_vec(), p.isr().to_vec())).collect())
}

/// The brokers the node at `bootstrap` lists (the unfenced ones).
fn listed_brokers(bootstrap: &str) -> Option<Vec<i32>> {
    let consumer: BaseConsumer = client_config(bootstrap).create().ok()?;
    let md = consumer.fetch_metadata(None, Duration::from_secs(5)).ok()?;
    Some(md.brokers().iter().map(|b| b.id()).collect())
}

/// ElectLeaders PREFERRED for every partition (null list) at `version`.
fn elect_all(rt: &tokio::runtime::Runtime, addr: &str, version: i16) -> ElectLeadersResponse {
    let req = ElectLeadersRequest::default().with_timeout_ms(WAIT.as_millis() as i32).with_topic_partitions(None);
    let config = ConnectionConfig {
        client_id: "elect-v0".into(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: WAIT,
    };
    rt.block_on(async {
        let conn = Connection::connect(addr, config).await.expect("connect");
        conn.send(&req, version).await.expect("ElectLeaders answered")
    })
}

#[test]
fn a_null_list_at_v0_is_forwarded_and_elects_and_a_standby_controller_answers_as_kafka() {
    let root = tempfile::tempdir().expect("tempdir");
    let env: Vec<(String, String)> = [
        ("KAFKA_BROKER_SESSION_TIMEOUT_MS", "3000"),
        ("KAFKA_BROKER_HEARTBEAT_INTERVAL_MS", "300"),
        ("KAFKA_REPLICA_LAG_TIME_MAX_MS", "2000"),
        ("KAFKA_AUTO_LEADER_REBALANCE_ENABLE", "false"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut nodes = start_cluster_with(root.path(), 3, &env);
    let rt = runtime();
    let first = nodes[0].bootstrap();
    process::cluster::create(
        &rt,
        &first,
        rdkafka::admin::NewTopic::new(TOPIC, 3, rdkafka::admin::TopicReplication::Fixed(3)),
    )
    .expect("create");
    let before = wait_for("every partition led by its preferred replica", || {
        partitions(&first).filter(|ps| ps.iter().all(|(l, r, _)| Some(l) == r.first()))
    });

    // A node that is not the active controller loses its leaderships
    // (killed, fenced) and comes back into every ISR.
    let active = wait_for("an active controller", || active_controller(&rt, &first));
    let victim = nodes.iter().position(|n| n.id != active).expect("a non-controller");
    let victim_id = nodes[victim].id;
    let other = nodes.iter().find(|n| n.id != victim_id).expect("another node").bootstrap();
    nodes[victim].kill9();
    wait_for("the victim's leaderships move", || {
        partitions(&other).filter(|ps| ps.iter().all(|(l, _, _)| *l != victim_id && *l >= 0))
    });
    nodes[victim].restart();
    // Unfenced (listed again) as well: a fenced preferred replica would be
    // PREFERRED_LEADER_NOT_AVAILABLE.
    wait_for("the victim listed and back in every ISR", || {
        let listed = listed_brokers(&other)?.contains(&victim_id);
        partitions(&other).filter(|ps| listed && ps.iter().all(|(_, _, isr)| isr.contains(&victim_id)))
    });

    // v0, null list, through the victim (not the active controller): the
    // partitions it prefers are elected back, answered at v0.
    let led: Vec<i32> =
        before.iter().enumerate().filter(|(_, (l, _, _))| *l == victim_id).map(|(i, _)| i as i32).collect();
    assert!(!led.is_empty(), "RF 3 over 3 nodes: every node prefers a partition");
    let resp = elect_all(&rt, &nodes[victim].bootstrap(), 0);
    assert_eq!(resp.error_code, 0, "v0 has no top-level code");
    let elected: Vec<(i32, i16)> = resp
        .replica_election_results
        .iter()
        .filter(|t| t.topic.0.as_str() == TOPIC)
        .flat_map(|t| t.partition_result.iter().map(|p| (p.partition_id, p.error_code)))
        .collect();
    assert_eq!(elected, led.iter().map(|p| (*p, 0)).collect::<Vec<_>>(), "the victim's preferred partitions: {resp:?}");
    for n in &nodes {
        wait_for("the preferred leaders back", || {
            partitions(&n.bootstrap()).filter(|ps| ps.iter().all(|(l, r, _)| Some(l) == r.first()))
        });
    }

    // A standby controller's listener: v1 says NOT_CONTROLLER at the top;
    // v0 cannot carry it (Kafka answers an empty v0 response).
    let active = wait_for("an active controller", || active_controller(&rt, &other));
    let standby = nodes.iter().find(|n| n.id != active).expect("a standby");
    let standby_addr = format!("127.0.0.1:{}", standby.voters[&standby.id]);
    let v1 = elect_all(&rt, &standby_addr, 1);
    assert_eq!(v1.error_code, ResponseError::NotController.code());
    let v0 = elect_all(&rt, &standby_addr, 0);
    assert_eq!((v0.error_code, v0.replica_election_results.len()), (0, 0));
}
