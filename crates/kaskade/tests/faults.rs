//! Workloads under a seeded schedule of faults, with the whole checker
//! (issue 14, item 5). Three `kaskade serve` nodes (combined roles, 3 s
//! broker sessions), in network namespaces when this machine allows it
//! (root and `ip netns`; else on loopback, without network cuts). Topics
//! `faults-a` and `faults-b`: 3 partitions, replication factor 3,
//! `min.insync.replicas=2`; `__consumer_offsets` and `__transaction_state`
//! too (replication factor 3, `min.insync.replicas` 2,
//! `transaction.state.log.min.isr` 2). Running together throughout:
//! - an idempotent acks=all producer writing numbered records to A;
//! - a consumer of A by `assign`, and one in a group committing
//!   synchronously every 300 ms;
//! - a consume-transform-produce loop: read_committed consumer of A,
//!   transactional producer to B, offsets sent to the transaction;
//! - watchers asking both groups' committed offsets every 250 ms.
//!
//! Faults, one at a time, each after every partition's ISR is whole again:
//! kill -9 of a partition leader (restarted after 4 s), kill -9 of the
//! active controller, SIGSTOP of a leader past its session then SIGCONT,
//! a two-way network cut of a leader (healed after 6 s), kill -9 and a
//! wiped data directory, a full disk under a leader (long mode; each node's
//! data directory is a tmpfs of its own, when this machine allows mounts: the
//! tmpfs is shrunk to what it holds and filled; the node's log directory
//! fails or its Raft log append stops it, its leaderships move; after 4 s
//! the filler goes, the tmpfs grows back and the node is restarted and
//! catches up). The schedule comes from `KASKADE_CRASH_SEED` (or
//! the clock) and is printed. After each fault the test waits until every
//! partition of A acknowledges again (the failover time, printed per kind)
//! and both the group and the transformer make progress.
//!
//! Then the checker: every acknowledged record read exactly once at its
//! offset and in order (`checker::check_records`); replicas of A, B and the
//! internal topics identical batch by batch up to the HW; no consumer read
//! a record that later disappeared; committed offsets never went backwards
//! and no acknowledged commit was lost; read_committed sees each
//! transaction whole or not at all, and B holds A's records up to the
//! committed offsets exactly once, in order.
//!
//! The transformer's steps and librdkafka's debug lines (`eos`, or the
//! contexts in `KASKADE_TXN_DEBUG`) go to `transformer.log`
//! (`process::trail`), kept with the nodes' logs by
//! `KASKADE_TEST_FAILED_LOGS=DIR`; a liveness failure prints its end.
//!
//! Short mode (CI): 4 faults, one of each kind but the network cut and the
//! full disk (its data dirs stay on the real disk).
//! Long mode: `KASKADE_FAULTS=N` (or `scripts/faults.sh N`) runs N faults
//! drawn from every kind and prints the figures.

mod process;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};

use process::checker::{check_records, read_back, read_ends, short_sessions, Producing, Workload};
use process::checker_groups::{
    commits_never_go_back, final_committed, read_output, reads_stay, transactions_whole_and_once,
};
use process::cluster::{active_controller, create, start_cluster_on, start_cluster_with, Node};
use process::netns::Network;
use process::replicas::same_batches;
use process::tmpfs::Tmpfs;
use process::workloads::{Mode, Reading, Transforming, Watching, TXN_GROUP};
use process::{client_config, Rng, TestDir};

const A: Workload = Workload { topic: "faults-a", partitions: 3 };
const B: Workload = Workload { topic: "faults-b", partitions: 3 };
const GROUP: &str = "faults-group";
/// How long the cluster gets to recover from one fault (loaded machine).
const RECOVER: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    KillLeader,
    KillController,
    Pause,
    Cut,
    Wipe,
    FullDisk,
}

/// The fault schedule: the short mode's kinds in a seeded order, or `n`
/// drawn from every kind available (cuts need network namespaces, full
/// disks the tmpfs data directories).
fn schedule(rng: &mut Rng, n: Option<usize>, cuts: bool, full_disks: bool) -> Vec<Fault> {
    let mut kinds = vec![Fault::KillLeader, Fault::KillController, Fault::Pause, Fault::Wipe];
    if full_disks {
        kinds.push(Fault::FullDisk);
    }
    match n {
        None => {
            for i in (1..kinds.len()).rev() {
                kinds.swap(i, (rng.next() % (i as u64 + 1)) as usize);
            }
            kinds
        }
        Some(n) => {
            if cuts {
                kinds.push(Fault::Cut);
            }
            (0..n).map(|_| kinds[(rng.next() % kinds.len() as u64) as usize]).collect()
        }
    }
}

fn env() -> Vec<(String, String)> {
    let mut env = short_sessions();
    for (k, v) in [
        ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "3"),
        ("KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS", "3"),
        ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "3"),
        ("KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS", "3"),
        ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "2"),
        ("KAFKA_MIN_INSYNC_REPLICAS", "2"),
        ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0"),
        ("KAFKA_AUTO_LEADER_REBALANCE_ENABLE", "false"),
    ] {
        env.push((k.to_string(), v.to_string()));
    }
    env
}

/// Partition -> (leader, ISR) of `topic` as the node at `bootstrap` answers.
fn leaders_and_isrs(bootstrap: &str, topic: &str) -> Option<Vec<(i32, Vec<i32>)>> {
    let c: BaseConsumer = client_config(bootstrap).create().ok()?;
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(5)).ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    if t.error().is_some() || t.partitions().is_empty() {
        return None;
    }
    Some(t.partitions().iter().map(|p| (p.leader(), p.isr().to_vec())).collect())
}

/// Waits until every node answers every partition of every topic with a
/// leader and all three replicas in sync.
fn wait_whole(nodes: &[Node], what: &str) {
    let deadline = Instant::now() + RECOVER;
    let topics = [A.topic, B.topic, "__consumer_offsets", "__transaction_state"];
    loop {
        let whole = nodes.iter().all(|n| {
            topics.iter().all(|t| {
                leaders_and_isrs(&n.bootstrap(), t)
                    .is_some_and(|ps| ps.iter().all(|(leader, isr)| *leader > 0 && isr.len() == nodes.len()))
            })
        });
        if whole {
            return;
        }
        if Instant::now() >= deadline {
            // Say which node sees what, and keep the nodes' stacks: a node
            // whose image stopped moving shows where it waits.
            for n in nodes {
                for t in topics {
                    eprintln!("node {} sees {t}: {:?}", n.id, leaders_and_isrs(&n.bootstrap(), t));
                }
            }
            if let Ok(dir) = std::env::var("KASKADE_TEST_FAILED_LOGS") {
                for n in nodes {
                    let out = std::process::Command::new("gdb")
                        .args(["-p", &n.pid().to_string(), "-batch", "-ex", "thread apply all bt"])
                        .output();
                    if let Ok(out) = out {
                        let _ = std::fs::write(format!("{dir}/node-{}-stacks.txt", n.id), out.stdout);
                    }
                }
            }
            panic!("{what}: ISRs not whole within {RECOVER:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until `probe` (a count) grows past `from`; how long it took.
fn wait_progress(what: &str, from: usize, probe: impl Fn() -> usize) -> Duration {
    let started = Instant::now();
    while probe() <= from {
        assert!(started.elapsed() < RECOVER, "{what}: no progress within {RECOVER:?} (still {from})");
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

/// Whether the transformer commits no transaction past `from` within
/// `RECOVER`.
fn transforming_stalled(t: &Transforming, from: usize) -> bool {
    let started = Instant::now();
    while t.done.committed.lock().expect("committed").len() <= from {
        if started.elapsed() > RECOVER {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Each node's tmpfs data directory: room enough for a long run (a tmpfs
/// takes memory only for what is written).
const DISK: &str = "2g";
/// The file `Tmpfs::fill` writes.
const FILLER: &str = "filler";

/// Fills `disk`: first shrunk to what it holds plus a little, so filling
/// writes a few MiB, not the whole size.
fn fill(disk: &Tmpfs) {
    let (used, _) = disk.usage();
    disk.resize(&format!("{}k", used / 1024 + 4096));
    disk.fill();
}

/// Removes everything in `dir` (a mount point: the directory itself stays).
fn wipe(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).expect("read the data dir") {
        let path = entry.expect("a data dir entry").path();
        let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        removed.expect("wipe the data dir");
    }
}

/// Keeps the internal topics' logs of every node (small, and on a tmpfs
/// that is unmounted at the end) with the nodes' logs when the test fails,
/// so a coordinator's state can be read afterwards.
struct KeepInternalLogs(std::path::PathBuf);

impl Drop for KeepInternalLogs {
    fn drop(&mut self) {
        let Ok(dir) = std::env::var("KASKADE_TEST_FAILED_LOGS") else { return };
        if !std::thread::panicking() {
            return;
        }
        for id in 1..=3 {
            let to = std::path::Path::new(&dir).join(format!("{}-node-{id}-internal", std::process::id()));
            let _ = std::fs::create_dir_all(&to);
            let from = self.0.join(format!("node-{id}"));
            for entry in std::fs::read_dir(&from).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("__") {
                    let _ = std::process::Command::new("cp").arg("-a").arg(entry.path()).arg(&to).status();
                }
            }
            eprintln!("--- node {id}'s internal topics kept in {}", to.display());
        }
    }
}

/// Keeps the transformer's trail with the nodes' logs when the test fails.
struct KeepOnPanic(std::sync::Arc<process::trail::Trail>);

impl Drop for KeepOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.keep();
        }
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[test]
fn workloads_under_faults_keep_every_property() {
    let n: Option<usize> = std::env::var("KASKADE_FAULTS").ok().and_then(|v| v.parse().ok());
    let mut rng = Rng::from_env("faults");
    let network = match Network::create(3) {
        Ok(net) => Some(net),
        Err(why) => {
            eprintln!("no network namespaces ({why}): nodes on loopback, no network cuts");
            None
        }
    };
    let root = TestDir::new();
    // In the long mode each node's data directory is a tmpfs of its own, so
    // that one can be filled. Not in the short mode: CI keeps the real
    // disk's fsync path (and its time budget); nor with KASKADE_FAULT_KEEP,
    // which keeps the data dirs (a tmpfs is unmounted at the end).
    let tmpfs = n.is_some() && std::env::var_os("KASKADE_FAULT_KEEP").is_none();
    let disks: Vec<Option<Tmpfs>> = (1..=3)
        .map(|id| {
            if !tmpfs {
                return None;
            }
            Tmpfs::mount(&root.path().join(format!("node-{id}")), DISK)
                .map_err(|why| eprintln!("no tmpfs for node {id} ({why}): no full-disk faults"))
                .ok()
        })
        .collect();
    let full_disks = disks.iter().all(Option::is_some);
    let plan = schedule(&mut rng, n, network.is_some(), full_disks);
    eprintln!("fault schedule ({} faults): {plan:?}", plan.len());

    let mut nodes = match &network {
        Some(net) => start_cluster_on(root.path(), 3, &env(), &net.hosts()),
        None => start_cluster_with(root.path(), 3, &env()),
    };
    // Dropped before the nodes and the tmpfs mounts.
    let _keep_internal = KeepInternalLogs(root.path().to_path_buf());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    for w in [A, B] {
        let topic = NewTopic::new(w.topic, w.partitions, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
        create(&runtime, &nodes[0].bootstrap(), topic).expect("create RF 3");
    }
    let bootstrap: String = nodes.iter().map(|n| n.bootstrap()).collect::<Vec<_>>().join(",");

    let producing = Producing::start(A, &bootstrap, 0);
    let deliveries = producing.deliveries.clone();
    let assigned = Reading::start(A, &bootstrap, Mode::Assign);
    let grouped = Reading::start(A, &bootstrap, Mode::Group { group: GROUP, commit_every: Duration::from_millis(300) });
    let transforming = Transforming::start(A, B, &bootstrap, &root.path().join("transformer.log"));
    let _keep_trail = KeepOnPanic(transforming.trail.clone());
    let watch_group = Watching::start(A, &bootstrap, GROUP);
    let watch_txn = Watching::start(A, &bootstrap, TXN_GROUP);
    let commits = |r: &Reading| r.seen.commits.lock().expect("commits").len();
    let txns = |t: &Transforming| t.done.committed.lock().expect("committed").len();
    wait_progress("first acknowledgements", 0, || deliveries.count());
    wait_progress("the group's first commit", 0, || commits(&grouped));
    wait_progress("the first transaction", 0, || txns(&transforming));

    let mut failovers: BTreeMap<Fault, Vec<Duration>> = BTreeMap::new();
    let started = Instant::now();
    for (i, fault) in plan.iter().enumerate() {
        wait_whole(&nodes, &format!("before fault {i}"));
        let any = nodes[0].bootstrap();
        let controller = process::cluster::wait_for("an active controller", || active_controller(&runtime, &any));
        let leaders: Vec<i32> = leaders_and_isrs(&any, A.topic).expect("metadata").iter().map(|(l, _)| *l).collect();
        let pick = (rng.next() % leaders.len() as u64) as usize;
        let leader = leaders.iter().cycle().skip(pick).take(leaders.len()).find(|l| **l != controller);
        let victim_id = match fault {
            Fault::KillController => controller,
            Fault::Wipe => 1 + (rng.next() % 3) as i32,
            _ => *leader.unwrap_or(&leaders[pick]),
        };
        let v = nodes.iter().position(|n| n.id == victim_id).expect("victim");
        let others: Vec<i32> = nodes.iter().map(|n| n.id).filter(|id| *id != victim_id).collect();
        let (acked, committed, transacted) = (deliveries.count(), commits(&grouped), txns(&transforming));
        eprintln!("fault {i}: {fault:?} of node {victim_id} (controller {controller}, leaders {leaders:?})");
        let log_before = nodes[v].log().len();
        match fault {
            Fault::KillLeader | Fault::KillController | Fault::Wipe => nodes[v].kill9(),
            Fault::Pause => nodes[v].signal("STOP"),
            Fault::FullDisk => fill(disks[v].as_ref().expect("full disks only on tmpfs")),
            Fault::Cut => {
                let net = network.as_ref().expect("cuts only with namespaces");
                net.drop_from(victim_id, &others);
                for o in &others {
                    net.drop_from(*o, &[victim_id]);
                }
            }
        }
        // Taken once the fault is in place (installing a cut's rules takes
        // a few hundred ms, during which records still flow).
        let t0 = Instant::now();
        if *fault == Fault::FullDisk {
            // A full disk refuses appends only once the pages its files
            // already hold are used up: the failover counts from the fill
            // until the victim leads nothing and the new leaders answer.
            let other = nodes.iter().find(|n| n.id != victim_id).expect("another node").bootstrap();
            let moved = |ps: &Vec<(i32, Vec<i32>)>| ps.iter().all(|(l, _)| *l > 0 && *l != victim_id);
            while !leaders_and_isrs(&other, A.topic).is_some_and(|ps| moved(&ps)) {
                assert!(t0.elapsed() < RECOVER, "fault {i}: node {victim_id} still leads after {RECOVER:?}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let n0 = producing.next.load(std::sync::atomic::Ordering::Relaxed);
        // Every partition of A acknowledges a record sent after the fault
        // (on the victim's partitions only a new leader can).
        let failover = {
            let deadline = t0 + RECOVER;
            loop {
                let acks = deliveries.acks();
                let back = (0..A.partitions).all(|p| acks.iter().rev().any(|a| a.partition == p && a.number >= n0));
                if back {
                    break t0.elapsed();
                }
                assert!(Instant::now() < deadline, "fault {i} ({fault:?}): A not acknowledged on every partition");
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        eprintln!("fault {i}: every partition acknowledged again after {failover:?}");
        failovers.entry(*fault).or_default().push(failover);
        let hold = Duration::from_secs(if *fault == Fault::Cut { 6 } else { 4 });
        std::thread::sleep(hold.saturating_sub(t0.elapsed()));
        match fault {
            Fault::KillLeader | Fault::KillController => nodes[v].restart(),
            Fault::Wipe => {
                wipe(&nodes[v].data_dir());
                nodes[v].restart();
            }
            Fault::FullDisk => {
                // Room again, and a restart (a failed log directory comes
                // back only with one, as in Kafka): the node catches up.
                let disk = disks[v].as_ref().expect("tmpfs");
                std::fs::remove_file(nodes[v].data_dir().join(FILLER)).expect("remove the filler");
                disk.resize(DISK);
                let up = nodes[v].running();
                let log = nodes[v].log();
                let since = log.get(log_before..).unwrap_or_default();
                let what = [
                    ("the controller's Raft core stopped", "its Raft log append failed"),
                    ("the log directory failed: it takes", "its log directory failed"),
                ]
                .iter()
                .filter(|(line, _)| since.contains(line))
                .map(|(_, what)| *what)
                .collect::<Vec<_>>();
                eprintln!(
                    "fault {i}: node {victim_id} {} on its full disk: {what:?}",
                    if up { "stayed up (fenced)" } else { "exited" }
                );
                nodes[v].restart();
            }
            Fault::Pause => nodes[v].signal("CONT"),
            Fault::Cut => {
                let net = network.as_ref().expect("namespaces");
                net.heal(victim_id);
                for o in &others {
                    net.heal(*o);
                }
            }
        }
        wait_progress(&format!("fault {i}: acknowledgements"), acked, || deliveries.count());
        wait_progress(&format!("fault {i}: the group's commits"), committed, || commits(&grouped));
        if transforming_stalled(&transforming, transacted) {
            panic!(
                "fault {i}: transactions: no progress within {RECOVER:?}; the transformer's last failures: {:#?}\n{}",
                transforming.done.failures.lock().expect("failures"),
                transforming.trail.report()
            );
        }
    }
    let faulted = started.elapsed();
    wait_whole(&nodes, "after the last fault");

    // Stop every workload, then check.
    let sent = producing.finish();
    let transformed = transforming.finish();
    let assigned = assigned.finish();
    let grouped = grouped.finish();
    let watched_group = watch_group.finish();
    let watched_txn = watch_txn.finish();
    let acks = deliveries.acks();
    let errors = deliveries.errors();
    let read = read_back(A, &bootstrap);
    check_records(A, &read, &acks, sent);

    let mut violations: Vec<String> = Vec::new();
    violations.extend(reads_stay("the assign consumer", A, &assigned.reads.lock().expect("reads"), &read));
    violations.extend(reads_stay("the group consumer", A, &grouped.reads.lock().expect("reads"), &read));
    violations.extend(reads_stay("the transformer", A, &transformed.reads.lock().expect("reads"), &read));
    let group_final = final_committed(&bootstrap, GROUP, A, RECOVER);
    let group_commits = grouped.commits.lock().expect("commits").clone();
    violations.extend(commits_never_go_back(GROUP, &watched_group, &group_commits, &group_final));
    let txn_final = final_committed(&bootstrap, TXN_GROUP, A, RECOVER);
    violations.extend(commits_never_go_back(TXN_GROUP, &watched_txn, &[], &txn_final));
    let output = read_output(&bootstrap, B, &txn_final, RECOVER);
    violations.extend(transactions_whole_and_once(&output, &read, &txn_final, &transformed));

    // Replicas batch by batch: A up to the HW read, B, the internal topics.
    let roots = process::replicas::roots(root.path(), &nodes);
    let ends = read_ends(&read);
    let replicas_deadline = Instant::now() + RECOVER;
    let topics = [(A.topic, 3), (B.topic, 3), ("__consumer_offsets", 3), ("__transaction_state", 3)];
    let diverging = loop {
        let diverging: Vec<String> = topics
            .iter()
            .flat_map(|(t, n)| (0..*n).map(move |p| (*t, p)))
            .filter_map(|(t, p)| match same_batches(&roots, t, p) {
                Ok(end) if t == A.topic && end < ends[&p] => Some(format!("{t}-{p}: replicas end at {end} < HW")),
                Ok(_) => None,
                Err(e) => Some(e),
            })
            .collect();
        if diverging.is_empty() || Instant::now() >= replicas_deadline {
            break diverging;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    violations.extend(diverging);

    let reads = |s: &process::workloads::Seen| s.reads.lock().expect("reads").len();
    eprintln!("=== faults: {} injected in {faulted:?}", plan.len());
    for (kind, times) in &mut failovers {
        times.sort();
        eprintln!(
            "  {kind:?}: {} faults; every partition acknowledged again after p50 {:?}, p99 {:?}, max {:?}",
            times.len(),
            percentile(times, 0.5),
            percentile(times, 0.99),
            times.last().copied().unwrap_or_default()
        );
    }
    eprintln!(
        "  records: {} sent, {} acknowledged, {} delivery errors; read back {}",
        sent,
        acks.len(),
        errors.len(),
        read.values().map(Vec::len).sum::<usize>()
    );
    eprintln!(
        "  consumers: assign read {}, group read {} with {} commits acknowledged ({} failed, final {group_final:?})",
        reads(&assigned),
        reads(&grouped),
        group_commits.len(),
        grouped.commit_errors.lock().expect("errors")
    );
    eprintln!(
        "  transformer: {} transactions committed, {} incarnations, {} records read, output {} records (committed offsets {txn_final:?})",
        transformed.committed.lock().expect("committed").len(),
        transformed.incarnations.lock().expect("incarnations"),
        transformed.reads.lock().expect("reads").len(),
        output.values().map(Vec::len).sum::<usize>()
    );
    eprintln!("  violations: {}", violations.len());
    assert!(violations.is_empty(), "violations:\n{}", violations.join("\n"));
}
