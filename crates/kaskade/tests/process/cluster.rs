//! A cluster of `kaskade serve` processes for multi-node tests: node ids
//! 1..=n with combined roles and a static quorum on loopback ports; each
//! node can be killed with SIGKILL, signalled (SIGTERM, SIGSTOP, SIGCONT)
//! and restarted on its data directory. Helpers ask the cluster through
//! real clients (rdkafka, kaskade-client) and wait on conditions with
//! deadlines. The nodes' HTTP listeners are off unless a test's env sets
//! `KAFKA_HTTP_LISTENER` (e.g. `127.0.0.1:0`); the address each node bound
//! is then read from its `kaskade: http on http://...` line
//! ([`Node::http_addr`]). `start_cluster_on` runs each node as a host of
//! its own: at its address in a network namespace (`Hosts`, made by
//! `process::netns`), started there with `ip netns exec`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use super::{client_config, free_port, WAIT};

pub const CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qk";

/// A node of the test cluster; killed (SIGKILL) when dropped.
pub struct Node {
    pub id: i32,
    pub client_port: u16,
    /// Every node's controller port, by id.
    pub voters: BTreeMap<i32, u16>,
    /// Extra environment this node starts with (a test's overrides).
    pub env: Vec<(String, String)>,
    root: PathBuf,
    child: Child,
    ready: mpsc::Receiver<()>,
    /// The `host:port` of the HTTP listener, as the node printed it.
    http: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    /// Where each node runs when they are hosts in network namespaces
    /// (`None`: every node on 127.0.0.1 in this namespace).
    pub hosts: Option<Hosts>,
}

/// Each node's address and network namespace (`process::netns`).
#[derive(Clone, Debug)]
pub struct Hosts {
    pub addr: BTreeMap<i32, String>,
    pub netns: BTreeMap<i32, String>,
}

impl Hosts {
    fn addr_of(hosts: Option<&Hosts>, id: i32) -> String {
        hosts.and_then(|h| h.addr.get(&id).cloned()).unwrap_or_else(|| "127.0.0.1".to_string())
    }
}

impl Node {
    pub fn bootstrap(&self) -> String {
        format!("{}:{}", Hosts::addr_of(self.hosts.as_ref(), self.id), self.client_port)
    }

    /// This node's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join(format!("node-{}", self.id))
    }

    /// Whether the process is still running (not exited, not reaped).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// Sends `signal` (e.g. "TERM", "STOP", "CONT") to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status();
        assert!(status.map(|s| s.success()).unwrap_or(false), "kill -{signal} failed");
    }

    /// Waits until the process exits by itself, at most `within`; its exit status.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the node again on the same data directory and ports (after
    /// `kill9` or an exit) and waits until it is ready.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let again = spawn_on(&self.root, self.id, self.client_port, &self.voters, &self.env, self.hosts.as_ref());
        *self = again;
        wait_ready(self);
    }

    /// The `host:port` the node's HTTP listener is bound to (printed before
    /// it is ready), if the test turned the listener on.
    pub fn http_addr(&self) -> Option<String> {
        self.http.lock().ok().and_then(|a| a.clone())
    }

    /// This node's log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join(format!("node-{}.log", self.id))).unwrap_or_default()
    }
}

/// Lines of a node's log a failing test prints.
const LOG_TAIL_LINES: usize = 80;

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test's nodes say what they were doing: the temp dir with
        // their full logs is gone once the test returns.
        // KASKADE_TEST_KEEP_LOGS=DIR keeps every node's whole log there,
        // passing or not (to grep a run for a warning).
        if let Ok(dir) = std::env::var("KASKADE_TEST_KEEP_LOGS") {
            let test = self.root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let path = Path::new(&dir).join(format!("{}-{test}-node-{}.log", std::process::id(), self.id));
            let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(path, self.log()));
        }
        if thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            eprintln!("--- node {} (last {} lines of its log) ---\n{}", self.id, tail.len(), tail.join("\n"));
            // KASKADE_TEST_FAILED_LOGS=DIR keeps the whole log there.
            if let Ok(dir) = std::env::var("KASKADE_TEST_FAILED_LOGS") {
                let path = Path::new(&dir).join(format!("{}-node-{}.log", std::process::id(), self.id));
                let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, &log));
                eprintln!("--- node {} full log kept in {}", self.id, path.display());
            }
        }
    }
}

/// Spawns node `id` of a quorum whose controller ports are `voters`
/// (id -> port), with `env` added to its environment (after the defaults,
/// so it may override them); it is ready once it prints its last start-up
/// line. A node that is not a voter (a broker-only node, whose `env` sets
/// its roles and listeners) gets no controller listener by default.
pub fn spawn_with(
    root: &Path,
    id: i32,
    client_port: u16,
    voters: &BTreeMap<i32, u16>,
    env: &[(String, String)],
) -> Node {
    spawn_on(root, id, client_port, voters, env, None)
}

/// `spawn_with`, each node at its address in `hosts` and started inside
/// its network namespace (`ip netns exec`, which execs the binary, so the
/// child is the broker itself and signals reach it).
pub fn spawn_on(
    root: &Path,
    id: i32,
    client_port: u16,
    voters: &BTreeMap<i32, u16>,
    env: &[(String, String)],
    hosts: Option<&Hosts>,
) -> Node {
    let host = Hosts::addr_of(hosts, id);
    let voter_list: Vec<String> =
        voters.iter().map(|(v, port)| format!("{v}@{}:{port}", Hosts::addr_of(hosts, *v))).collect();
    let listeners = match voters.get(&id) {
        Some(port) => format!("PLAINTEXT://{host}:{client_port},CONTROLLER://{host}:{port}"),
        None => format!("PLAINTEXT://{host}:{client_port}"),
    };
    let mut cmd = match hosts.and_then(|h| h.netns.get(&id)) {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns.as_str(), env!("CARGO_BIN_EXE_kaskade")]);
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_kaskade")),
    };
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("KAFKA_") || k.starts_with("KASKADE_") || k == "CLUSTER_ID" {
            cmd.env_remove(&*k);
        }
    }
    // Appended, so a restarted node's log keeps what it wrote before.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join(format!("node-{id}.log")))
        .expect("log file");
    cmd.arg("serve").arg("--data-dir").arg(root.join(format!("node-{id}")));
    // Off unless the test asks for it (an --override would beat its env).
    if !env.iter().any(|(k, _)| k == "KAFKA_HTTP_LISTENER") {
        cmd.args(["--override", "http.listener="]);
    }
    cmd.env("KAFKA_NODE_ID", id.to_string())
        .env("KAFKA_PROCESS_ROLES", "broker,controller")
        .env("KAFKA_LISTENERS", listeners)
        .env("KAFKA_ADVERTISED_LISTENERS", format!("PLAINTEXT://{host}:{client_port}"))
        .env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .env("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT")
        .env("KAFKA_CONTROLLER_QUORUM_VOTERS", voter_list.join(","))
        .env("KAFKA_BROKER_RACK", format!("rack-{id}"))
        .env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .env("CLUSTER_ID", CLUSTER_ID)
        // KASKADE_TEST_NODE_LOG widens the nodes' log filter when chasing a
        // failure (e.g. `info,kaskade_broker::network=debug`).
        .env("KASKADE_LOG", std::env::var("KASKADE_TEST_NODE_LOG").unwrap_or_else(|_| "info".into()))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    let mut child = cmd.spawn().expect("spawn kaskade serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, ready) = mpsc::channel();
    let http = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = http.clone();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix("kaskade: http on http://") {
                if let Ok(mut a) = seen.lock() {
                    *a = Some(addr.trim_end_matches('/').to_string());
                }
            }
            if line.starts_with("kaskade: data in ") {
                let _ = tx.send(());
            }
        }
    });
    Node {
        id,
        client_port,
        voters: voters.clone(),
        env: env.to_vec(),
        root: root.to_path_buf(),
        child,
        ready,
        http,
        hosts: hosts.cloned(),
    }
}

pub fn wait_ready(node: &Node) {
    if node.ready.recv_timeout(WAIT).is_err() {
        panic!("node {} did not start within {WAIT:?}; its log:\n{}", node.id, node.log());
    }
}

/// Retries `probe` until it answers `Some`, or fails after `WAIT` with `what`.
pub fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// (broker ids, leaders by partition) of `topic` as the node at `bootstrap` answers Metadata.
pub fn metadata(bootstrap: &str, topic: &str) -> Option<(BTreeSet<i32>, Vec<i32>)> {
    let consumer: BaseConsumer = client_config(bootstrap).create().ok()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)).ok()?;
    let brokers = md.brokers().iter().map(|b| b.id()).collect();
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    if t.error().is_some() {
        return None;
    }
    Some((brokers, t.partitions().iter().map(|p| p.leader()).collect()))
}

/// The active controller (the metadata quorum's leader): DescribeQuorum's
/// leader, asked of the node at `bootstrap` (a broker forwards it to the
/// active controller, as Kafka's do), once an answer comes back without an
/// error. Not Metadata's controller_id: that names a live broker, which is
/// the quorum's leader only when the leader is a listed broker.
pub fn active_controller(runtime: &tokio::runtime::Runtime, bootstrap: &str) -> Option<i32> {
    quorum(runtime, bootstrap).filter(|q| q.code == 0 && q.leader >= 0).map(|q| q.leader)
}

/// Metadata (no topics) asked of the node at `bootstrap`: the controller
/// its answer names (controller_id, `None` for -1) and the brokers it
/// lists; `None` if no answer came.
pub fn metadata_controller(runtime: &tokio::runtime::Runtime, bootstrap: &str) -> Option<(Option<i32>, BTreeSet<i32>)> {
    let client = kaskade_client::cluster::Client::new(bootstrap).ok()?;
    let md = runtime.block_on(client.metadata(Some(&[]))).ok()?;
    let listed = md.brokers.keys().map(|id| id.get()).collect();
    Some((md.controller.map(|c| c.get()), listed))
}

/// What DescribeQuorum (v2) answered: its error code, the leader, the
/// voters with their directory ids (the nil UUID for none), and the port of
/// each node's first listener in `nodes` (a voter's controller listener).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumAnswer {
    pub code: i16,
    pub leader: i32,
    pub voters: BTreeMap<i32, uuid::Uuid>,
    pub ports: BTreeMap<i32, u16>,
    /// The metadata log's high watermark.
    pub high_watermark: i64,
    /// Observer id -> its log end offset (its fetch offset).
    pub observers: BTreeMap<i32, i64>,
}

impl QuorumAnswer {
    pub fn voter_ids(&self) -> BTreeSet<i32> {
        self.voters.keys().copied().collect()
    }
}

/// DescribeQuorum asked of the node at `bootstrap` (a client or a
/// controller listener).
pub fn quorum(runtime: &tokio::runtime::Runtime, bootstrap: &str) -> Option<QuorumAnswer> {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    use kafka_protocol::messages::{DescribeQuorumRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let client = kaskade_client::cluster::Client::new(bootstrap).ok()?;
    runtime.block_on(async {
        let conn = client.any_connection().await.ok()?;
        let version = conn.version::<DescribeQuorumRequest>().ok()?;
        let mut partition = PartitionData::default();
        partition.partition_index = 0;
        let mut topic = TopicData::default();
        topic.topic_name = TopicName(StrBytes::from_static_str("__cluster_metadata"));
        topic.partitions.push(partition);
        let mut req = DescribeQuorumRequest::default();
        req.topics.push(topic);
        let resp = conn.send(&req, version).await.ok()?;
        let p = resp.topics.first()?.partitions.first()?;
        let voters = p.current_voters.iter().map(|v| (v.replica_id.0, v.replica_directory_id)).collect();
        let ports = resp.nodes.iter().filter_map(|n| Some((n.node_id.0, n.listeners.first()?.port))).collect();
        let observers = p.observers.iter().map(|o| (o.replica_id.0, o.log_end_offset)).collect();
        Some(QuorumAnswer {
            code: p.error_code,
            leader: p.leader_id.0,
            voters,
            ports,
            high_watermark: p.high_watermark,
            observers,
        })
    })
}

/// [`quorum`] as (error code, leader id, voter ids).
pub fn describe_quorum(runtime: &tokio::runtime::Runtime, bootstrap: &str) -> Option<(i16, i32, BTreeSet<i32>)> {
    quorum(runtime, bootstrap).map(|q| (q.code, q.leader, q.voter_ids()))
}

/// ListOffsets (latest, read_uncommitted, no leader epoch) asked of the
/// node at `bootstrap` itself for `topic`-`partition`: (error code, offset,
/// leader epoch) as that node answers, leader or not.
pub fn list_latest_on(
    runtime: &tokio::runtime::Runtime,
    bootstrap: &str,
    topic: &str,
    partition: i32,
) -> Option<(i16, i64, i32)> {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let client = kaskade_client::cluster::Client::new(bootstrap).ok()?;
    runtime.block_on(async {
        let conn = client.any_connection().await.ok()?;
        let version = conn.version::<ListOffsetsRequest>().ok()?;
        let mut p = ListOffsetsPartition::default();
        p.partition_index = partition;
        p.timestamp = -1;
        p.current_leader_epoch = -1;
        let mut t = ListOffsetsTopic::default();
        t.name = TopicName(StrBytes::from_string(topic.to_string()));
        t.partitions.push(p);
        let mut req = ListOffsetsRequest::default();
        req.replica_id = BrokerId(-1);
        req.topics.push(t);
        let resp = conn.send(&req, version).await.ok()?;
        let p = resp.topics.first()?.partitions.first()?;
        Some((p.error_code, p.offset, p.leader_epoch))
    })
}

pub fn create(
    runtime: &tokio::runtime::Runtime,
    bootstrap: &str,
    topic: NewTopic<'_>,
) -> Result<(), (String, RDKafkaErrorCode)> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create().expect("admin");
    let options = AdminOptions::new().operation_timeout(Some(WAIT)).request_timeout(Some(WAIT));
    let results = runtime.block_on(admin.create_topics(&[topic], &options)).expect("CreateTopics");
    results.into_iter().next().expect("one result").map(|_| ())
}

/// Three nodes of one quorum, started together and ready.
pub fn start_cluster(root: &Path) -> Vec<Node> {
    start_cluster_with(root, 3, &[])
}

/// `n` nodes (ids 1..=n) of one quorum with `env` added to each node's
/// environment, started together and ready.
pub fn start_cluster_with(root: &Path, n: i32, env: &[(String, String)]) -> Vec<Node> {
    let voters: BTreeMap<i32, u16> = (1..=n).map(|id| (id, free_port())).collect();
    let nodes: Vec<Node> = (1..=n).map(|id| spawn_with(root, id, free_port(), &voters, env)).collect();
    for node in &nodes {
        wait_ready(node);
    }
    nodes
}

/// `start_cluster_with`, each node a host of its own at its address in
/// `hosts`, inside its network namespace.
pub fn start_cluster_on(root: &Path, n: i32, env: &[(String, String)], hosts: &Hosts) -> Vec<Node> {
    let voters: BTreeMap<i32, u16> = (1..=n).map(|id| (id, free_port())).collect();
    let nodes: Vec<Node> = (1..=n).map(|id| spawn_on(root, id, free_port(), &voters, env, Some(hosts))).collect();
    for node in &nodes {
        wait_ready(node);
    }
    nodes
}

/// `n` nodes of one quorum, node `id`'s environment made by
/// `env_of(id, client_port, controller_port)` (added after the defaults,
/// so it may replace the listeners), started together and ready.
pub fn start_cluster_each(root: &Path, n: i32, env_of: impl Fn(i32, u16, u16) -> Vec<(String, String)>) -> Vec<Node> {
    let voters: BTreeMap<i32, u16> = (1..=n).map(|id| (id, free_port())).collect();
    let nodes: Vec<Node> = (1..=n)
        .map(|id| {
            let client_port = free_port();
            spawn_with(root, id, client_port, &voters, &env_of(id, client_port, voters[&id]))
        })
        .collect();
    for node in &nodes {
        wait_ready(node);
    }
    nodes
}

fn env_of(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// Kafka's isolated mode, as its docker-compose example configures it:
/// nodes 1..=n controller-only (`controller_env` added to theirs), the
/// next two broker-only, started together and ready.
pub fn start_dedicated(root: &Path, n: i32, controller_env: &[(String, String)]) -> Vec<Node> {
    let voters: BTreeMap<i32, u16> = (1..=n).map(|id| (id, free_port())).collect();
    let quorum: Vec<String> = voters.iter().map(|(id, port)| format!("{id}@127.0.0.1:{port}")).collect();
    let quorum = quorum.join(",");
    let mut nodes = Vec::new();
    for (id, port) in &voters {
        let mut env = env_of(&[
            ("KAFKA_PROCESS_ROLES", "controller".into()),
            ("KAFKA_LISTENERS", format!("CONTROLLER://127.0.0.1:{port}")),
            ("KAFKA_ADVERTISED_LISTENERS", format!("CONTROLLER://127.0.0.1:{port}")),
            ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT".into()),
        ]);
        env.extend(controller_env.iter().cloned());
        nodes.push(spawn_with(root, *id, free_port(), &voters, &env));
    }
    for id in [n + 1, n + 2] {
        let port = free_port();
        let env = env_of(&[
            ("KAFKA_PROCESS_ROLES", "broker".into()),
            ("KAFKA_LISTENERS", format!("PLAINTEXT://127.0.0.1:{port}")),
            ("KAFKA_ADVERTISED_LISTENERS", format!("PLAINTEXT://127.0.0.1:{port}")),
            ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT".into()),
            ("KAFKA_CONTROLLER_QUORUM_VOTERS", quorum.clone()),
        ]);
        nodes.push(spawn_with(root, id, port, &voters, &env));
    }
    for n in &nodes {
        wait_ready(n);
    }
    nodes
}
