//! The cluster commands of the `kaskade` binary against a real 3-node
//! cluster of `kaskade serve` processes: `cluster status` (the quorum from
//! DescribeQuorum: the active controller, every voter's log end offset and
//! lag), `cluster brokers` (every registered broker from DescribeCluster
//! v2, fenced ones included), and `topic describe` showing each
//! partition's leader, replicas and ISR. A broker killed with SIGKILL is
//! shown fenced once its session expired, and leaves the ISR. Every CLI
//! run and every wait has a deadline.

mod process;

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use process::cluster::{start_cluster, wait_for};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_kaskade");
/// Longest a CLI command may run.
const CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `kaskade ARGS --bootstrap-server BOOTSTRAP`: (exit code, stdout, stderr).
fn kaskade(bootstrap: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("KAFKA_") || k.starts_with("KASKADE_") {
            c.env_remove(&*k);
        }
    }
    let mut child = c
        .args(args)
        .args(["--bootstrap-server", bootstrap])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kaskade");
    let deadline = Instant::now() + CMD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kaskade {args:?} ran longer than {CMD_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().expect("stdout").read_to_string(&mut out).expect("read stdout");
    child.stderr.take().expect("stderr").read_to_string(&mut err).expect("read stderr");
    (status.code(), out, err)
}

/// The JSON a successful command printed.
fn json(bootstrap: &str, args: &[&str]) -> Value {
    let (code, out, err) = kaskade(bootstrap, args);
    assert_eq!(code, Some(0), "kaskade {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("kaskade {args:?} printed no JSON ({e}): {out}"))
}

/// The JSON a command printed, or `None` while it fails (another node's
/// metadata may not hold a change the controller just committed, as with
/// Kafka): for polls.
fn try_json(bootstrap: &str, args: &[&str]) -> Option<Value> {
    let (code, out, _) = kaskade(bootstrap, args);
    if code != Some(0) {
        return None;
    }
    serde_json::from_str(&out).ok()
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array().expect("an array").iter().map(|i| i.as_i64().expect("an id")).collect()
}

#[test]
fn cluster_status_brokers_and_topic_describe_show_the_quorum_the_brokers_and_the_isr() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut nodes = start_cluster(root.path());
    let bootstrap = nodes[0].bootstrap();

    // The quorum: three voters, one of them the active controller, all
    // caught up once the metadata settles.
    let status = wait_for("every voter caught up", || {
        let s = try_json(&bootstrap, &["cluster", "status", "-o", "json"])?;
        let replicas = s["replicas"].as_array()?.clone();
        let voters: Vec<&Value> = replicas.iter().filter(|r| r["role"] != "Observer").collect();
        (voters.len() == 3 && voters.iter().all(|r| r["lag"] == 0)).then_some(s)
    });
    let active = status["active_controller"].as_i64().expect("an active controller");
    let roles: Vec<(i64, String)> = status["replicas"]
        .as_array()
        .expect("replicas")
        .iter()
        .map(|r| (r["node_id"].as_i64().expect("id"), r["role"].as_str().expect("role").to_string()))
        .collect();
    for (id, role) in &roles {
        assert_eq!(role, if *id == active { "Leader" } else { "Follower" }, "{roles:?}");
    }
    assert_eq!(status["cluster_id"], process::cluster::CLUSTER_ID);
    assert!(status["high_watermark"].as_i64().expect("hw") > 0);
    let (code, table, err) = kaskade(&bootstrap, &["cluster", "status"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(table.contains(&format!("ActiveController:  {active}")) && table.contains("LOG END OFFSET"), "{table}");

    // The brokers: all three unfenced, each at its client endpoint.
    let brokers = json(&bootstrap, &["cluster", "brokers", "-o", "json"]);
    let listed: Vec<(i64, String, i64)> = brokers["brokers"]
        .as_array()
        .expect("brokers")
        .iter()
        .map(|b| {
            (
                b["id"].as_i64().expect("id"),
                b["state"].as_str().expect("state").to_string(),
                b["port"].as_i64().expect("port"),
            )
        })
        .collect();
    let expected: Vec<(i64, String, i64)> =
        nodes.iter().map(|n| (i64::from(n.id), "unfenced".to_string(), i64::from(n.client_port))).collect();
    assert_eq!(listed, expected);

    // A replicated topic: every partition's leader, replicas and ISR.
    let (code, _, err) =
        kaskade(&bootstrap, &["topic", "create", "described", "--partitions", "3", "--replication-factor", "3"]);
    assert_eq!(code, Some(0), "{err}");
    let all: BTreeSet<i64> = [1, 2, 3].into_iter().collect();
    let described = wait_for("every ISR full", || {
        let d = try_json(&bootstrap, &["topic", "describe", "described", "-o", "json"])?;
        let parts = d[0]["partitions"].as_array()?.clone();
        parts.iter().all(|p| ids(&p["isr"]).into_iter().collect::<BTreeSet<_>>() == all).then_some(parts)
    });
    for p in &described {
        assert_eq!(ids(&p["replicas"]).into_iter().collect::<BTreeSet<_>>(), all, "{p}");
        assert!(all.contains(&p["leader"].as_i64().expect("a leader")), "{p}");
    }
    let (code, table, err) = kaskade(&bootstrap, &["topic", "describe", "described"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(table.contains("LEADER") && table.contains("REPLICAS") && table.contains("ISR"), "{table}");

    // A broker that is not the active controller dies: once its session
    // expired it is shown fenced and has left every ISR.
    let victim = nodes.iter().position(|n| i64::from(n.id) != active).expect("a follower");
    let victim_id = i64::from(nodes[victim].id);
    nodes[victim].kill9();
    let survivor = nodes.iter().find(|n| i64::from(n.id) != victim_id).expect("a survivor").bootstrap();
    wait_for("the killed broker shown fenced", || {
        let b = try_json(&survivor, &["cluster", "brokers", "-o", "json"])?;
        b["brokers"].as_array()?.iter().any(|b| b["id"] == victim_id && b["state"] == "fenced").then_some(())
    });
    wait_for("the killed broker out of every ISR", || {
        let d = try_json(&survivor, &["topic", "describe", "described", "-o", "json"])?;
        d[0]["partitions"].as_array()?.iter().all(|p| !ids(&p["isr"]).contains(&victim_id)).then_some(())
    });
}
