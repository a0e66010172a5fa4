//! [`QuorumMetadataLog`]: one controller of the metadata quorum, and the
//! [`MetadataLog`] the rest of the node uses on top of it.
//!
//! `append` proposes through openraft's `client_write` and returns once the
//! proposal is committed (on a majority) and applied here. Only the leader
//! (the active controller) proposes: elsewhere `append` answers
//! [`MetaError::NotLeader`] naming the leader it knows (NOT_CONTROLLER at the
//! protocol edge), as a Kafka controller that is not active refuses a
//! change; every change decided off the active controller goes there in
//! Kafka's requests (AlterPartition, AllocateProducerIds, CreateTopics, an
//! Envelope), never in a frame of ours. While no leader is known it waits
//! for one, up to `append_timeout`. Staleness is checked twice: up front
//! here (cheap), and authoritatively by the state machine at apply time.
//!
//! The trait is synchronous and callers run it on blocking threads: the
//! async work is spawned on the runtime the quorum was started on and the
//! caller waits on a channel, bounded by `append_timeout` (so even a call
//! from an async worker cannot deadlock or panic, only wait).
//!
//! Its voters and the changes to them (AddRaftVoter / RemoveRaftVoter) are
//! in `voter_changes`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::LogIdOptionExt;
use tokio::runtime::Handle;
use tokio::sync::watch;

use super::brokers::Brokers;
use super::frame::Hello;
use super::log_store::{LogReader, LogStore};
use super::network::{Network, PeerClock};
use super::observers::Observers;
use super::state_machine::{Shared, StateMachine};
use super::status::{self, QuorumStatus};
use super::types::{to_node_id, ApplyOutcome, ControllerNode, Proposal, Raft, RaftNodeId};
use crate::metadata_log::{Committed, MetadataLog, MetadataVersion};
use crate::record::MetadataRecord;
use crate::MetaError;
use kaskade_types::{Clock, NodeId, SystemClock};

/// How long a controller that knows no leader waits for one to appear
/// before it looks again.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// When a proposal may be committed (always by this controller, as leader).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// In any term this controller leads: while no leader is known it
    /// waits for the election (a lone controller starting up).
    AnyTerm,
    /// Only by this controller, while it leads (the term it decided in).
    OwnTermOnly,
}

/// How a controller runs.
#[derive(Clone, Debug)]
pub struct QuorumConfig {
    /// This controller's `node.id`.
    pub node_id: NodeId,
    /// The cluster's id: controllers of another cluster are refused.
    pub cluster_id: String,
    /// The ids of `controller.quorum.voters` for a static quorum: a
    /// controller configured with other ids is refused. `None` (a dynamic
    /// quorum) checks nothing.
    pub static_voters: Option<BTreeSet<NodeId>>,
    /// This controller's `directory.id` (its `meta.properties`), stored
    /// with its id in the membership it forms (KIP-853's voter key).
    pub directory_id: Option<uuid::Uuid>,
    /// The metadata log directory: Raft's files go in
    /// `<dir>/kaskade-metadata/raft/`.
    pub dir: PathBuf,
    /// openraft's election timeout range and heartbeat interval, from
    /// Kafka's `controller.quorum.*` timing keys (`timing`): a follower
    /// campaigns after `election_timeout.end` (openraft's leader lease) plus
    /// a random time in `election_timeout` without hearing from a leader.
    pub election_timeout: std::ops::Range<Duration>,
    /// How often a leader sends heartbeats; also their timeout.
    pub heartbeat_interval: Duration,
    /// How long `append`, `snapshot` and membership changes wait for the
    /// quorum to commit.
    pub append_timeout: Duration,
    /// Entries kept after a snapshot (for lagging followers, before they
    /// need the snapshot instead).
    pub logs_kept_after_snapshot: u64,
    /// A snapshot is taken after this many entries since the last one.
    pub snapshot_every: u64,
    /// Kafka's `metadata.log.max.snapshot.interval.ms`: a snapshot at least
    /// this often while there are entries not in one (`None`: only by count).
    pub snapshot_interval: Option<Duration>,
    /// `broker.session.timeout.ms`: as the active controller, fence a
    /// broker that has not heartbeated for this long (`brokers`).
    pub broker_session_timeout: Duration,
    /// `leader.imbalance.check.interval.seconds` while
    /// `auto.leader.rebalance.enable` (`None`: off): as the active
    /// controller, move leaderships back to preferred replicas this often
    /// (`leadership`).
    pub leader_imbalance_check_interval: Option<Duration>,
    /// `unclean.leader.election.interval.ms` (KRaft's internal config): how
    /// often the active controller looks for offline partitions it may
    /// elect an out-of-sync leader for.
    pub unclean_leader_election_interval: Duration,
    /// This node's static `unclean.leader.election.enable`, the default of
    /// topics without their own value and no cluster-wide dynamic one.
    pub unclean_leader_election_enable: bool,
    pub clock: Arc<dyn Clock>,
}

impl QuorumConfig {
    /// Kafka's defaults: a follower campaigns 1.5-2 s after the leader's
    /// last heartbeat (`controller.quorum.fetch.timeout.ms`, see `timing`).
    pub fn new(node_id: NodeId, cluster_id: impl Into<String>, dir: impl Into<PathBuf>) -> QuorumConfig {
        let timing = super::RaftTiming::from(super::KraftTimeouts::default());
        QuorumConfig {
            node_id,
            cluster_id: cluster_id.into(),
            static_voters: None,
            directory_id: None,
            dir: dir.into(),
            election_timeout: timing.election_timeout,
            heartbeat_interval: timing.heartbeat_interval,
            append_timeout: Duration::from_secs(30),
            logs_kept_after_snapshot: 1000,
            snapshot_every: 5000,
            snapshot_interval: Some(Duration::from_secs(3600)),
            broker_session_timeout: Duration::from_millis(9000),
            leader_imbalance_check_interval: Some(Duration::from_secs(300)),
            unclean_leader_election_interval: Duration::from_secs(300),
            unclean_leader_election_enable: false,
            clock: Arc::new(SystemClock),
        }
    }

    fn raft_config(&self) -> Result<openraft::Config, MetaError> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        openraft::Config {
            cluster_name: "kaskade-controllers".into(),
            election_timeout_min: ms(self.election_timeout.start),
            election_timeout_max: ms(self.election_timeout.end),
            heartbeat_interval: ms(self.heartbeat_interval),
            // A create of many partitions is one large entry: keep frames
            // well under the frame limit.
            max_payload_entries: 64,
            snapshot_max_chunk_size: 1024 * 1024,
            max_in_snapshot_log_to_keep: self.logs_kept_after_snapshot,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            ..Default::default()
        }
        .validate()
        .map_err(|e| MetaError::Quorum(format!("invalid quorum configuration: {e}")))
    }
}

/// A running controller of the metadata quorum.
#[derive(Clone)]
pub struct QuorumMetadataLog {
    pub(super) id: RaftNodeId,
    hello: Hello,
    pub(super) raft: Raft,
    pub(super) shared: Arc<Shared>,
    /// The Raft log as observers' Kafka Fetches read it (`metadata_serve`).
    pub(super) log_reader: LogReader,
    peers: Arc<PeerClock>,
    clock: Arc<dyn Clock>,
    runtime: Handle,
    pub(super) append_timeout: Duration,
    pub(super) directory_id: Option<uuid::Uuid>,
    /// Formed from `controller.quorum.voters`: its voters never change.
    pub(super) static_quorum: bool,
    /// Held while an AddRaftVoter / RemoveRaftVoter is carried out, so a
    /// second one is refused rather than queued (as Kafka refuses it).
    pub(super) voter_change: Arc<tokio::sync::Mutex<()>>,
    /// The brokers' sessions, kept while this controller is active.
    pub(super) brokers: Arc<Brokers>,
    /// The broker-only nodes fetching from this controller (DescribeQuorum's observers).
    pub(super) observers: Arc<parking_lot::Mutex<Observers>>,
}

impl std::fmt::Debug for QuorumMetadataLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumMetadataLog").field("id", &self.id).field("version", &self.committed().version).finish()
    }
}

pub(super) fn node_id(id: NodeId) -> Result<RaftNodeId, MetaError> {
    RaftNodeId::try_from(id.get()).map_err(|_| MetaError::Quorum(format!("node id {id} is negative")))
}

pub(super) fn quorum_error<E: std::fmt::Display>(e: E) -> MetaError {
    MetaError::Quorum(e.to_string())
}

/// A client write's failure as the metadata log's error.
pub(super) fn write_error(e: RaftError<RaftNodeId, ClientWriteError<RaftNodeId, ControllerNode>>) -> MetaError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            MetaError::NotLeader { leader: f.leader_id.map(to_node_id) }
        }
        other => quorum_error(other),
    }
}

impl QuorumMetadataLog {
    /// Opens this controller's files and starts its Raft node (it serves no
    /// RPCs until [`Self::serve`] runs on its listener, and forms no quorum
    /// until [`Self::initialize`] ran on some voter).
    pub async fn start(config: QuorumConfig) -> Result<QuorumMetadataLog, MetaError> {
        let id = node_id(config.node_id)?;
        let raft_config = Arc::new(config.raft_config()?);
        let dir = config.dir.join("kaskade-metadata").join("raft");
        let (mut log_store, (state_machine, shared)) =
            tokio::task::spawn_blocking(move || Ok::<_, MetaError>((LogStore::open(&dir)?, StateMachine::open(&dir)?)))
                .await
                .map_err(quorum_error)??;
        let log_reader = openraft::storage::RaftLogStorage::get_log_reader(&mut log_store).await;
        let peers = Arc::new(PeerClock::default());
        // The frame carries the plain ids.
        let static_voters = config.static_voters.as_ref().map(|v| v.iter().map(|id| id.get()).collect());
        let hello = Hello { cluster_id: config.cluster_id.clone(), static_voters };
        let network = Network::new(id, hello.clone(), config.clock.clone(), peers.clone());
        let raft = Raft::new(id, raft_config, network, log_store, state_machine).await.map_err(quorum_error)?;
        let brokers = Arc::new(Brokers::new(&config));
        let static_quorum = config.static_voters.is_some();
        let log = QuorumMetadataLog {
            id,
            hello,
            raft,
            shared,
            log_reader,
            peers,
            clock: config.clock,
            runtime: Handle::current(),
            append_timeout: config.append_timeout,
            directory_id: config.directory_id,
            static_quorum,
            voter_change: Arc::new(tokio::sync::Mutex::new(())),
            brokers,
            observers: Arc::new(parking_lot::Mutex::new(Observers::default())),
        };
        tokio::spawn(log.clone().run_liveness());
        if let Some(every) = config.snapshot_interval.filter(|d| !d.is_zero()) {
            tokio::spawn(log.clone().run_snapshot_timer(every));
        }
        Ok(log)
    }

    /// Forms a static quorum of `voters` (node id -> `host:port` of its
    /// controller listener), Kafka's `controller.quorum.voters`. Every voter
    /// may call it with the same set at its first start; a node that already
    /// has a quorum (a restart) ignores it.
    pub async fn initialize(&self, voters: &BTreeMap<NodeId, String>) -> Result<(), MetaError> {
        let mut members = BTreeMap::new();
        for (id, addr) in voters {
            // Every static voter initializes with the same entries (whichever
            // lands is the membership), so they carry no directory ids.
            let own = node_id(*id)? == self.id && !self.static_quorum;
            let directory_id = if own { self.directory_id } else { None };
            members.insert(node_id(*id)?, ControllerNode { addr: addr.clone(), directory_id });
        }
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(quorum_error(e)),
        }
    }

    /// The Raft node (for openraft's metrics and waits).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Resolves, saying why, once this controller's Raft core is gone: it
    /// panicked, or stopped on a fatal error (a storage failure). From then
    /// on this node neither follows nor decides metadata, so a process that
    /// went on serving its last image would serve frozen metadata; the node
    /// exits instead (`kaskade serve`), for a supervisor to restart it. Also
    /// resolves after [`Self::shutdown`], which a caller waiting on this
    /// stops waiting for first.
    pub async fn core_stopped(&self) -> String {
        let mut metrics = self.raft.metrics();
        loop {
            if let Err(fatal) = &metrics.borrow_and_update().running_state {
                return format!("the controller's Raft core stopped: {fatal}");
            }
            if metrics.changed().await.is_err() {
                // The core dropped its metrics: ask it why.
                return match self.raft.with_raft_state(|_| ()).await {
                    Err(fatal) => format!("the controller's Raft core stopped: {fatal}"),
                    Ok(()) => "the controller's Raft core stopped".to_string(),
                };
            }
        }
    }

    /// Serves the other controllers' RPCs on `listener` (the CONTROLLER
    /// listener), and hands connections speaking Kafka's protocol to
    /// `kafka` (closed when `None`), until the future is dropped.
    pub fn serve(
        &self,
        listener: tokio::net::TcpListener,
        kafka: Option<super::server::KafkaConnections>,
    ) -> impl Future<Output = ()> + Send + 'static {
        super::serve(listener, self.clone(), self.hello.clone(), kafka)
    }

    pub fn node_id(&self) -> NodeId {
        to_node_id(self.id)
    }

    pub(super) fn raft_id(&self) -> RaftNodeId {
        self.id
    }

    pub(super) fn hello(&self) -> &Hello {
        &self.hello
    }

    pub(super) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The address of controller `id` in the applied membership.
    pub(super) fn address_of(&self, id: RaftNodeId) -> Option<String> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        m.membership_config.membership().get_node(&id).map(|n| n.addr.clone())
    }

    /// Waits up to `limit` until the quorum has a leader, this controller
    /// applied an entry of the leader's term (its blank entry, committed
    /// with its election: the image holds everything committed before it)
    /// and everything in its own log (so a restarted node's image holds
    /// what it had stored, before its broker reconciles its partition logs
    /// with it). `Ok(false)` if `limit` passed first.
    pub async fn wait_until_current(&self, limit: Duration) -> Result<bool, MetaError> {
        let wait = self.raft.wait(Some(limit));
        let current = |m: &openraft::RaftMetrics<RaftNodeId, ControllerNode>| {
            m.current_leader.is_some()
                && m.last_applied.is_some_and(|l| l.leader_id.get_term() >= m.current_term)
                && m.last_applied.index() == m.last_log_index
        };
        match wait.metrics(current, "a leader's entry applied").await {
            Ok(_) => Ok(true),
            Err(openraft::metrics::WaitError::Timeout(..)) => Ok(false),
            Err(e) => Err(quorum_error(e)),
        }
    }

    /// The active controller, if this controller knows one.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader.map(to_node_id)
    }

    /// Proposes `records` decided at `based_on`; see [`MetadataLog::append`].
    /// On the leader it proposes them and returns once this controller's
    /// own image holds the change; elsewhere [`MetaError::NotLeader`] naming
    /// the leader, once one is known (it waits up to `append_timeout` for an
    /// election).
    pub async fn append_async(
        &self,
        based_on: MetadataVersion,
        records: Vec<MetadataRecord>,
    ) -> Result<Committed, MetaError> {
        self.propose(based_on, records, Route::AnyTerm).await
    }

    /// Proposes records the active controller decided (fencing, elections,
    /// broker registrations: `brokers`, `leadership`) only as the leader of
    /// this term: a deposed controller's decision, made from its own broker
    /// sessions, dies with its term instead of being retried once it leads
    /// again (seen when decisions were still forwarded: a controller cut
    /// off from the others fenced every other broker from its stale
    /// sessions, and once healed its decision reached the new leader, which
    /// committed it and left every partition leaderless). NOT_CONTROLLER
    /// elsewhere or once deposed, without waiting for an election.
    pub(super) async fn append_as_active(
        &self,
        based_on: MetadataVersion,
        records: Vec<MetadataRecord>,
    ) -> Result<Committed, MetaError> {
        self.propose(based_on, records, Route::OwnTermOnly).await
    }

    async fn propose(
        &self,
        based_on: MetadataVersion,
        records: Vec<MetadataRecord>,
        route: Route,
    ) -> Result<Committed, MetaError> {
        let current = self.shared.committed();
        if current.version != based_on {
            return Err(MetaError::Stale { based_on, actual: current.version });
        }
        if records.is_empty() {
            return Ok(current);
        }
        let deadline = tokio::time::Instant::now() + self.append_timeout;
        let proposal = Proposal { based_on, records };
        let outcome = loop {
            let leader = self.raft.metrics().borrow().current_leader;
            let tried = match leader {
                Some(id) if id == self.id => {
                    let write = self.raft.client_write(proposal.clone());
                    match tokio::time::timeout_at(deadline, write).await {
                        Err(_) => return Err(MetaError::Timeout(self.append_timeout)),
                        Ok(Ok(response)) => break response.data,
                        // Lost the leadership meanwhile: the new leader is
                        // named below once known (or this one again).
                        Ok(Err(e)) => match write_error(e) {
                            MetaError::NotLeader { .. } if route == Route::AnyTerm => leader,
                            other => return Err(other),
                        },
                    }
                }
                // Another controller leads: the change is not ours to
                // make (never sent there in a frame of ours).
                Some(_) => return Err(MetaError::NotLeader { leader: self.leader() }),
                _ if route == Route::OwnTermOnly => return Err(MetaError::NotLeader { leader: self.leader() }),
                None => None,
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(MetaError::NotLeader { leader: self.leader() });
            }
            // Wait for another leader to be known, or retry the same one a
            // little later (it may be starting, or not yet replaced).
            let wait = self.raft.wait(Some(RETRY_BACKOFF));
            let _ = wait.metrics(|m| m.current_leader.is_some() && m.current_leader != tried, "a leader").await;
        };
        match outcome {
            ApplyOutcome::Applied(version) => {
                self.applied_here(version, deadline).await?;
                let committed = self.shared.committed();
                debug_assert!(committed.version.end_offset >= version.end_offset);
                Ok(committed)
            }
            ApplyOutcome::Stale { actual } => {
                // Decide again only once this image has what beat us.
                self.applied_here(actual, deadline).await?;
                Err(MetaError::Stale { based_on, actual })
            }
            ApplyOutcome::Raft(_) => Err(MetaError::Quorum("a proposal was applied as a Raft entry".into())),
        }
    }

    /// Waits until this controller's image is at `version` or past it.
    async fn applied_here(&self, version: MetadataVersion, deadline: tokio::time::Instant) -> Result<(), MetaError> {
        let mut applied = self.shared.subscribe();
        let reached = applied.wait_for(|v| v.end_offset >= version.end_offset);
        let result = match tokio::time::timeout_at(deadline, reached).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(MetaError::Quorum("the state machine stopped".into())),
            Err(_) => Err(MetaError::Timeout(self.append_timeout)),
        };
        result
    }

    /// Takes a snapshot of the applied image now and waits until it is
    /// stored (openraft then purges the log it covers, keeping
    /// `logs_kept_after_snapshot` entries).
    pub async fn snapshot_async(&self) -> Result<MetadataVersion, MetaError> {
        let version = self.shared.committed().version;
        let applied = self.raft.metrics().borrow().last_applied;
        self.raft.trigger().snapshot().await.map_err(quorum_error)?;
        self.raft
            .wait(Some(self.append_timeout))
            .metrics(|m| m.snapshot.index() >= applied.index(), "snapshot taken")
            .await
            .map_err(quorum_error)?;
        Ok(version)
    }

    /// What DescribeQuorum answers; [`MetaError::NotLeader`] off the leader
    /// (as Kafka answers NOT_LEADER_OR_FOLLOWER there).
    pub fn status(&self) -> Result<QuorumStatus, MetaError> {
        let metrics = self.raft.metrics().borrow().clone();
        let now = self.clock.now_ms();
        let mut status = status::from_metrics(&metrics, &self.peers, now)
            .ok_or(MetaError::NotLeader { leader: metrics.current_leader.map(to_node_id) })?;
        status.observers.extend(self.observers.lock().list(now));
        Ok(status)
    }

    /// Stops the Raft node (its RPC server is stopped by dropping [`super::serve`]).
    pub async fn shutdown(&self) -> Result<(), MetaError> {
        self.brokers.stop();
        self.raft.shutdown().await.map_err(quorum_error)
    }

    /// Runs `fut` on the quorum's runtime and waits for it on this thread.
    fn wait_for<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, MetaError>> + Send + 'static,
    ) -> Result<T, MetaError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            // The receiver only goes away if the caller did.
            let _ = tx.send(fut.await);
        });
        // The future bounds itself by `append_timeout`; waiting longer only
        // happens if it never ran (called from the only worker of a
        // current-thread runtime), which becomes a timeout, not a hang.
        let limit = self.append_timeout.saturating_mul(2);
        match rx.recv_timeout(limit) {
            Ok(result) => result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(MetaError::Timeout(limit)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err(MetaError::Quorum("the quorum's runtime stopped".into()))
            }
        }
    }
}

impl MetadataLog for QuorumMetadataLog {
    fn committed(&self) -> Committed {
        self.shared.committed()
    }

    fn append(&self, based_on: MetadataVersion, records: Vec<MetadataRecord>) -> Result<Committed, MetaError> {
        let this = self.clone();
        self.wait_for(async move { this.append_async(based_on, records).await })
    }

    fn append_as_active(
        &self,
        based_on: MetadataVersion,
        records: Vec<MetadataRecord>,
    ) -> Result<Committed, MetaError> {
        let this = self.clone();
        self.wait_for(async move { QuorumMetadataLog::append_as_active(&this, based_on, records).await })
    }

    fn snapshot(&self) -> Result<MetadataVersion, MetaError> {
        let this = self.clone();
        self.wait_for(async move { this.snapshot_async().await })
    }

    fn subscribe(&self) -> watch::Receiver<MetadataVersion> {
        self.shared.subscribe()
    }
}

#[cfg(test)]
mod core_stop_tests {
    use std::sync::atomic::Ordering;

    use super::super::tests::{cluster, leader, static_3, WAIT};
    use super::*;

    /// Commits a new topic `name` through `log` (as the broker does, from a
    /// blocking thread).
    async fn write(log: &QuorumMetadataLog, name: &str) -> Result<Committed, MetaError> {
        let (log, name) = (log.clone(), name.to_string());
        let task = tokio::task::spawn_blocking(move || {
            let version = log.committed().version;
            log.append(version, vec![MetadataRecord::Topic { name, id: uuid::Uuid::new_v4() }])
        });
        task.await.map_err(|e| MetaError::Quorum(e.to_string()))?
    }

    /// A panic in the Raft core (here in the state machine, through a test
    /// fault hook) ends the core: `core_stopped` says so on that node
    /// (which `kaskade serve` turns into a non-zero exit), and not on the
    /// others, which elect a leader among themselves if needed.
    /// Only the leader appends: on a controller that does not lead both the
    /// active controller's own decisions and ordinary proposals are refused
    /// (NOT_CONTROLLER) naming the leader, nothing sent anywhere, while the
    /// leader commits both.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_controller_decision_is_committed_only_by_the_leader_that_made_it() {
        let root = tempfile::tempdir().expect("tempdir");
        let (nodes, _) = cluster(root.path(), 3, &static_3()).await;
        let first = leader(&nodes).await;
        let follower = nodes[(first + 1) % 3].as_ref().expect("live").log.clone();
        let topic = |name: &str| vec![MetadataRecord::Topic { name: name.into(), id: uuid::Uuid::new_v4() }];
        let version = follower.committed().version;
        let refused = follower.append_as_active(version, topic("decided-by-a-follower")).await;
        assert!(matches!(refused, Err(MetaError::NotLeader { leader: Some(_) })), "{refused:?}");
        assert!(follower.committed().image.topic("decided-by-a-follower").is_none());
        let before = follower.committed().version;
        let refused = follower.append_async(before, topic("not-forwarded")).await;
        assert!(matches!(refused, Err(MetaError::NotLeader { leader: Some(_) })), "{refused:?}");
        let leading = nodes[first].as_ref().expect("live").log.clone();
        let version = leading.committed().version;
        let own = leading.append_as_active(version, topic("decided-by-the-leader")).await.expect("the leader's own");
        assert!(own.image.topic("decided-by-the-leader").is_some());
        let version = leading.committed().version;
        let any = leading.append_async(version, topic("appended-by-the-leader")).await.expect("the leader appends");
        assert!(any.image.topic("appended-by-the-leader").is_some());
        // Neither refused change was made anywhere.
        let mut applied = follower.subscribe();
        let end = any.version.end_offset;
        tokio::time::timeout(WAIT, applied.wait_for(|v| v.end_offset >= end)).await.expect("caught up").expect("watch");
        for log in [&follower, &leading] {
            let image = log.committed().image;
            assert!(image.topic("not-forwarded").is_none() && image.topic("decided-by-a-follower").is_none());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicked_raft_core_is_reported_and_the_others_go_on() {
        let root = tempfile::tempdir().expect("tempdir");
        let (nodes, _) = cluster(root.path(), 3, &static_3()).await;
        let first = leader(&nodes).await;
        let victim = (first + 1) % 3;
        let log = nodes[victim].as_ref().expect("live").log.clone();
        let stopped = tokio::spawn({
            let log = log.clone();
            async move { log.core_stopped().await }
        });
        tokio::task::yield_now().await;
        assert!(!stopped.is_finished(), "a running core is not reported stopped");
        log.shared.panic_on_apply.store(true, Ordering::Relaxed);
        // The next committed entry reaches the victim's state machine.
        let writer = nodes[first].as_ref().expect("live").log.clone();
        // Committed by the other two; the victim's apply panics.
        write(&writer, "first").await.expect("committed");
        let why = tokio::time::timeout(WAIT, stopped).await.expect("reported within the wait").expect("task");
        assert!(why.contains("Raft core stopped"), "{why}");
        assert!(why.contains("panicked"), "says that it panicked: {why}");
        // The survivors still have a leader that commits.
        let other = (victim + 1) % 3;
        let survivor = nodes[other].as_ref().expect("live").log.clone();
        let still = tokio::spawn(async move { survivor.core_stopped().await });
        let written = write(&writer, "second").await;
        assert!(written.is_ok(), "the majority commits on: {written:?}");
        assert!(!still.is_finished(), "a healthy core is not reported stopped");
        still.abort();
    }
}
