//! A controller whose Raft core stops exits instead of serving frozen
//! metadata (issue 14). Three combined nodes; node 3's data directory is a
//! small tmpfs mounted by the test (unmounted on drop, also when the test
//! panics; skipped, saying why, when `mount` is not allowed), filled up
//! once the cluster runs. Metadata changes made through node 1 are
//! replicated to node 3, whose Raft log append then fails with ENOSPC:
//! openraft's core stops on that storage error, and the node must exit
//! with status 1 and say why (so a supervisor restarts it), while the
//! other two go on committing. Before, the process kept running with the
//! image it had when its core stopped.

mod process;

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use process::checker::short_sessions;
use process::cluster::{create, start_cluster_with};
use process::tmpfs::Tmpfs;
use process::{client_config, TestDir, WAIT};

/// Creates a topic of `partitions` partitions with `replicas` replicas
/// through `bootstrap` (the admin request may go to a controller that just
/// exited: the caller tries again; an earlier try may have created it).
fn try_create(
    runtime: &tokio::runtime::Runtime,
    bootstrap: &str,
    name: &str,
    partitions: i32,
    replicas: i32,
) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create().map_err(|e| e.to_string())?;
    let timeout = Some(Duration::from_secs(5));
    let options = AdminOptions::new().operation_timeout(timeout).request_timeout(timeout);
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replicas));
    let results = runtime.block_on(admin.create_topics(&[topic], &options)).map_err(|e| e.to_string())?;
    match results.into_iter().next() {
        Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(()),
        Some(Err((_, code))) => Err(format!("{code:?}")),
        None => Err("no result".into()),
    }
}

#[test]
fn a_voter_whose_raft_log_cannot_be_written_exits_with_an_error() {
    let root = TestDir::new();
    let disk = match Tmpfs::mount(&root.path().join("node-3"), "64m") {
        Ok(t) => t,
        Err(why) => {
            eprintln!("SKIPPED: a full metadata disk needs a tmpfs mounted by the test (root): {why}");
            return;
        }
    };
    let mut nodes = start_cluster_with(root.path(), 3, &short_sessions());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    create(&runtime, &nodes[0].bootstrap(), NewTopic::new("before", 1, TopicReplication::Fixed(3)))
        .expect("a topic while every disk has room");
    disk.fill();

    // Each creation is a Raft entry of some KiB (a record per partition),
    // which node 3 cannot append once its file's last page is full.
    let deadline = Instant::now() + WAIT;
    let mut created = 0;
    let status = loop {
        if let Some(status) = nodes[2].wait_exit(Duration::from_millis(200)) {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "node 3 still runs {WAIT:?} after its disk filled ({created} topics created since)"
        );
        if try_create(&runtime, &nodes[0].bootstrap(), &format!("after-{created}"), 40, 1).is_ok() {
            created += 1;
        }
    };
    let log = nodes[2].log();
    assert_eq!(status.code(), Some(1), "exit status of node 3: {status:?}; its log:\n{log}");
    assert!(
        log.contains("Raft core stopped") && log.contains("exiting so that a supervisor restarts this node"),
        "node 3 says why it exits; its log:\n{log}"
    );
    eprintln!("node 3 exited with {status:?} after {created} topics were created on a full disk");

    // The other two still commit metadata (after electing a controller of
    // their own if node 3 was the active one).
    let deadline = Instant::now() + WAIT;
    while let Err(e) = try_create(&runtime, &nodes[0].bootstrap(), "after-exit", 1, 2) {
        assert!(Instant::now() < deadline, "the remaining majority creates no topic within {WAIT:?}: {e}");
    }
    for n in &mut nodes[..2] {
        assert!(n.running(), "node {} still runs", n.id);
    }
}
