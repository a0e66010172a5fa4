//! The console of a three-node cluster, through its JSON API (each node's
//! HTTP listener on port 0, its address read from the start-up line):
//! the overview shows every broker's version and uptime (each from its
//! registration in the metadata image); then a broker that is neither the
//! active controller nor the node serving the console is stopped with
//! SIGSTOP. With a long `broker.session.timeout.ms` it stays registered
//! and listed but answers nothing: the overview shows its log directories
//! as one row with BROKER_NOT_AVAILABLE and the rest as usual, and the
//! transactions page still answers, that broker's share left out. Every
//! wait is on a condition with a deadline.

mod process;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use process::cluster::{active_controller, start_cluster_with, wait_for, Node};

/// `GET path` on `node`'s HTTP listener: the JSON body of a 200, else None.
/// A request to a stopped broker is bounded by the console's request
/// timeout to other brokers (30 s), hence the read timeout.
fn get(node: &Node, path: &str) -> Option<Value> {
    let addr = node.http_addr()?;
    let mut s = TcpStream::connect(&addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(90))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    serde_json::from_str(body).ok()
}

#[test]
fn every_brokers_version_and_uptime_and_a_stopped_broker_listed_but_unreachable() {
    let root = tempfile::tempdir().expect("tempdir");
    let env: Vec<(String, String)> = [
        ("KAFKA_HTTP_LISTENER", "127.0.0.1:0"),
        // A stopped broker stays registered and unfenced for the whole test.
        ("KAFKA_BROKER_SESSION_TIMEOUT_MS", "600000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let nodes = start_cluster_with(root.path(), 3, &env);
    let console = &nodes[0];

    // Every broker registered with its version and start time.
    let overview = wait_for("the overview lists three brokers, each with a version and an uptime", || {
        let o = get(console, "/api/overview")?;
        let brokers = o["brokers"].as_array()?;
        let all = brokers.len() == 3
            && brokers
                .iter()
                .all(|b| b["version"].as_str() == Some(env!("CARGO_PKG_VERSION")) && b["uptime_ms"].as_u64().is_some());
        all.then_some(o)
    });
    let dirs = overview["log_dirs"].as_array().expect("log dirs");
    assert!(dirs.iter().all(|d| d["error"].is_null()), "every broker answers: {overview}");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let controller = wait_for("an active controller", || active_controller(&runtime, &console.bootstrap()));
    let stopped = nodes.iter().skip(1).find(|n| n.id != controller).expect("a node that is neither");
    stopped.signal("STOP");

    let overview = wait_for("the overview shows the stopped broker's log dirs as an error row", || {
        let o = get(console, "/api/overview")?;
        let rows: Vec<&Value> =
            o["log_dirs"].as_array()?.iter().filter(|d| d["broker"].as_i64() == Some(i64::from(stopped.id))).collect();
        let failed = rows.len() == 1 && rows[0]["error"].as_str().is_some_and(|e| e.contains("BrokerNotAvailable"));
        failed.then_some(o)
    });
    let brokers = overview["brokers"].as_array().expect("brokers");
    assert!(brokers.iter().any(|b| b["id"].as_i64() == Some(i64::from(stopped.id))), "still listed: {overview}");
    let answered: Vec<&Value> =
        overview["log_dirs"].as_array().expect("log dirs").iter().filter(|d| d["error"].is_null()).collect();
    assert!(
        nodes.iter().filter(|n| n.id != stopped.id).all(|n| answered.iter().any(|d| d["broker"].as_i64()
            == Some(i64::from(n.id))
            && d["path"].as_str().is_some_and(|p| !p.is_empty()))),
        "the others' directories as usual: {overview}"
    );

    // Transactions: the stopped broker's ListTransactions fails; the page
    // answers with the others' share (none here), not an error.
    let txns = get(console, "/api/transactions").expect("the transactions page answers");
    assert_eq!(txns, Value::Array(vec![]), "{txns}");

    stopped.signal("CONT");
}
