//! An observer of the metadata quorum: how a broker-only node
//! (`process.roles=broker`) follows the metadata log without voting, as
//! Kafka's brokers are observers of the KRaft quorum that fetch
//! `__cluster_metadata` from the leader.
//!
//! [`ObserverMetadataLog`] implements [`MetadataLog`] on a copy of the
//! committed log's state (`observer_state`). A background task fetches
//! with Kafka's Fetch (`metadata_client`) from the active controller once
//! an answer named it (its CurrentLeader and NodeEndpoints), else from the
//! configured controllers in turn (`controller.quorum.voters`, or
//! `controller.quorum.bootstrap.servers` of a dynamic quorum): the entries
//! answered are applied in order up to the answer's high watermark; an
//! answer with a snapshot id (the observer is below the leader's log start,
//! or has nothing) is followed by FetchSnapshot chunks by position until
//! the whole snapshot is loaded, then Fetch goes on after it. A leader
//! epoch refusal (FENCED_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER) names the
//! leader: the task moves there. An observer appends nothing: every change
//! a broker-only node needs goes to the active controller in Kafka's
//! requests (AlterPartition, AllocateProducerIds, CreateTopics, an
//! Envelope), so `append` is refused with [`MetaError::NotLeader`] (and
//! debug builds assert it is never asked); the controllers this copy's
//! membership names are where the node's broker sends its registration and
//! heartbeats (Kafka's APIs, kaskade-broker's `controller_channel`), and
//! DescribeQuorum's view comes from the leader in Kafka's DescribeQuorum
//! on its controller listener (`describe_quorum`).
//!
//! Invariants: only committed entries are applied (below the high
//! watermark, in order: `observer_state`), so this copy only moves forward
//! through the committed prefix of the log; it votes in nothing and stores
//! nothing (a restart fetches again, from a snapshot), so a broker can
//! never hold up or change the quorum's decisions.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use kaskade_types::NodeId;
use parking_lot::{Mutex, RwLock};
use tokio::runtime::Handle;
use tokio::sync::watch;

use super::describe_quorum;
use super::metadata_client::{FetchOutcome, LeaderInfo, MetadataConn};
use super::metadata_fetch::{FetchRefusal, SnapshotId};
use super::observer_state::ObserverState;
use super::state_machine::StoredSnapshot;
use super::status::QuorumStatus;
use super::types::BROKER_CLIENT_ID_PREFIX;
use crate::image::Image;
use crate::metadata_log::{Committed, MetadataLog, MetadataVersion};
use crate::record::MetadataRecord;
use crate::MetaError;

/// How long a controller may hold a fetch that has nothing new (Kafka's
/// raft client waits 500 ms).
pub const FETCH_WAIT: Duration = Duration::from_millis(500);

/// How long an observer waits for a fetch's answer beyond [`FETCH_WAIT`].
const FETCH_SLACK: Duration = Duration::from_secs(5);

/// Pause before asking another controller after one failed.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// The largest snapshot an observer takes.
const MAX_SNAPSHOT_BYTES: i64 = 1 << 30;

/// How an observer runs.
#[derive(Clone, Debug)]
pub struct ObserverConfig {
    pub node_id: NodeId,
    pub cluster_id: String,
    /// `controller.quorum.voters` of a static quorum: node id -> `host:port`
    /// of its controller listener (empty for a dynamic quorum).
    pub controllers: BTreeMap<NodeId, String>,
    /// `controller.quorum.bootstrap.servers` of a dynamic quorum: where to
    /// fetch until an answer names the leader.
    pub bootstrap_servers: Vec<String>,
    /// How long `append` and broker calls wait for the active controller.
    pub append_timeout: Duration,
}

/// The metadata log of a broker-only node; see the module docs.
#[derive(Clone)]
pub struct ObserverMetadataLog {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: NodeId,
    cluster_id: String,
    /// The configured controllers (static voters).
    configured: BTreeMap<NodeId, String>,
    /// Where to fetch while no leader is known.
    bootstrap: Vec<String>,
    /// Controllers' addresses named by answers' NodeEndpoints.
    endpoints: RwLock<BTreeMap<NodeId, String>>,
    follower: Mutex<ObserverState>,
    state: RwLock<Committed>,
    version: watch::Sender<MetadataVersion>,
    /// Whether this copy reached a high watermark an answer carried.
    fetched: watch::Sender<bool>,
    leader: watch::Sender<Option<NodeId>>,
    /// The leader epoch last named (0: none yet, as Kafka's fresh observer).
    epoch: Mutex<i32>,
    runtime: Handle,
    append_timeout: Duration,
    stopped: watch::Sender<bool>,
}

impl std::fmt::Debug for ObserverMetadataLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserverMetadataLog")
            .field("node_id", &self.inner.node_id)
            .field("version", &self.inner.state.read().version)
            .finish()
    }
}

impl ObserverMetadataLog {
    /// Starts following the quorum (on the current runtime). The image is
    /// empty until the first fetch answers: see [`Self::wait_until_current`].
    pub fn start(config: ObserverConfig) -> ObserverMetadataLog {
        let mut bootstrap: Vec<String> = config.controllers.values().cloned().collect();
        bootstrap.extend(config.bootstrap_servers.iter().cloned());
        let inner = Inner {
            node_id: config.node_id,
            cluster_id: config.cluster_id,
            configured: config.controllers,
            bootstrap,
            endpoints: RwLock::new(BTreeMap::new()),
            follower: Mutex::new(ObserverState::default()),
            state: RwLock::new(Committed { image: Arc::new(Image::default()), version: MetadataVersion::default() }),
            version: watch::channel(MetadataVersion::default()).0,
            fetched: watch::channel(false).0,
            leader: watch::channel(None).0,
            epoch: Mutex::new(0),
            runtime: Handle::current(),
            append_timeout: config.append_timeout,
            stopped: watch::channel(false).0,
        };
        let log = ObserverMetadataLog { inner: Arc::new(inner) };
        tokio::spawn(log.clone().follow());
        log
    }

    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// The active controller, as the last fetch answer named it.
    pub fn leader(&self) -> Option<NodeId> {
        *self.inner.leader.borrow()
    }

    /// Waits up to `limit` until this copy reached a high watermark an
    /// answer carried and the active controller is known. `Ok(false)` if
    /// `limit` passed first.
    pub async fn wait_until_current(&self, limit: Duration) -> Result<bool, MetaError> {
        let mut fetched = self.inner.fetched.subscribe();
        let mut leader = self.inner.leader.subscribe();
        let both = async {
            let _ = fetched.wait_for(|f| *f).await;
            let _ = leader.wait_for(Option::is_some).await;
        };
        Ok(tokio::time::timeout(limit, both).await.is_ok())
    }

    /// The controllers (node id -> `host:port` of each one's controller
    /// listener): the voters of the membership this copy applied (so
    /// controllers added or removed later are found, and a dynamic quorum's
    /// are learned), else the configured ones, else those answers named.
    pub fn controllers(&self) -> BTreeMap<NodeId, String> {
        let voters = self.inner.follower.lock().voters();
        if !voters.is_empty() {
            return voters;
        }
        if !self.inner.configured.is_empty() {
            return self.inner.configured.clone();
        }
        self.inner.endpoints.read().clone()
    }

    /// Stops following.
    pub fn shutdown(&self) {
        self.inner.stopped.send_replace(true);
    }

    /// The address of controller `id`, as far as this copy knows.
    fn address_of(&self, id: NodeId) -> Option<String> {
        self.inner.endpoints.read().get(&id).cloned().or_else(|| self.controllers().get(&id).cloned())
    }

    /// The controller to ask next: the active one if known, else the
    /// configured and known controllers in turn.
    fn target(&self, turn: &mut usize) -> Option<String> {
        if let Some(addr) = self.leader().and_then(|id| self.address_of(id)) {
            return Some(addr);
        }
        let mut all: Vec<String> = self.inner.bootstrap.clone();
        for addr in self.controllers().into_values() {
            if !all.contains(&addr) {
                all.push(addr);
            }
        }
        if all.is_empty() {
            return None;
        }
        *turn = (*turn + 1) % all.len();
        all.get(*turn).cloned()
    }

    /// The fetch loop: until stopped, keeps this copy at the quorum's
    /// committed log.
    async fn follow(self) {
        let mut stopped = self.inner.stopped.subscribe();
        let mut turn = 0;
        loop {
            if *stopped.borrow() {
                return;
            }
            let Some(addr) = self.target(&mut turn) else { return };
            let session = self.fetch_from(&addr);
            let ended = tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                ended = session => ended,
            };
            if let Err(e) = ended {
                tracing::debug!(%addr, error = %e, "fetching the metadata failed; asking another controller");
                // Maybe gone: ask the controllers in turn until one names the leader.
                self.inner.leader.send_replace(None);
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    }

    /// Takes the leader and endpoints an answer named.
    fn learn(&self, info: &LeaderInfo) {
        {
            let mut endpoints = self.inner.endpoints.write();
            for (id, addr) in &info.endpoints {
                endpoints.insert(NodeId(*id), addr.clone());
            }
        }
        if let Some((id, epoch)) = info.leader {
            let mut known = self.inner.epoch.lock();
            if epoch >= *known {
                *known = epoch;
                self.inner.leader.send_replace(Some(NodeId(id)));
            }
        }
    }

    /// Whether the leader now known is somewhere else than `addr`.
    fn moved_from(&self, addr: &str) -> bool {
        self.leader().and_then(|id| self.address_of(id)).is_some_and(|leader| leader != addr)
    }

    /// Publishes the follower's state as this copy's image.
    fn publish(&self) {
        let committed = self.inner.follower.lock().committed();
        let version = committed.version;
        {
            let mut state = self.inner.state.write();
            if version < state.version {
                // Starting over after a divergence: keep the newer image
                // until the copy is past it again.
                return;
            }
            *state = committed;
        }
        self.inner.version.send_replace(version);
    }

    /// Fetches from the controller at `addr` until the connection fails
    /// (`Err`) or another controller is named the leader (`Ok`).
    async fn fetch_from(&self, addr: &str) -> io::Result<()> {
        let mut conn = MetadataConn::connect(addr, &self.inner.cluster_id, self.inner.node_id.get()).await?;
        loop {
            let (offset, last_epoch) = self.inner.follower.lock().next_fetch();
            let epoch = *self.inner.epoch.lock();
            let answer =
                tokio::time::timeout(FETCH_WAIT + FETCH_SLACK, conn.fetch(epoch, offset, last_epoch, FETCH_WAIT))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "a fetch was not answered"))??;
            let (info, outcome) = answer;
            self.learn(&info);
            match outcome {
                FetchOutcome::Records { high_watermark, entries } => {
                    let applied = self.inner.follower.lock().apply(entries, high_watermark);
                    match applied {
                        Ok(0) => {}
                        Ok(_) => self.publish(),
                        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}"))),
                    }
                    if self.inner.follower.lock().next_fetch().0 >= high_watermark {
                        self.inner.fetched.send_replace(true);
                    }
                }
                FetchOutcome::Snapshot(id) => self.load_snapshot(&mut conn, id).await?,
                FetchOutcome::Diverging(at) => {
                    // Committed entries never diverge: this copy came from
                    // elsewhere. Start over (the image is replaced only once
                    // the new one is past it).
                    tracing::warn!(?at, "the metadata log diverges from this observer's copy; fetching it again");
                    *self.inner.follower.lock() = ObserverState::default();
                }
                FetchOutcome::Refused(code) => {
                    // Go on only when the refusal named a leader of a newer
                    // epoch or elsewhere (now known); else ask again after a
                    // pause, so an election in progress is not polled in a
                    // tight loop.
                    let newer_leader = info.leader.is_some_and(|(_, e)| e > epoch) || self.moved_from(addr);
                    let redirect = matches!(
                        FetchRefusal::from_code(code),
                        Some(FetchRefusal::FencedLeaderEpoch | FetchRefusal::NotLeaderOrFollower)
                    );
                    if !(redirect && newer_leader) {
                        return Err(io::Error::other(format!(
                            "the controller at {addr} refused a fetch: error {code}"
                        )));
                    }
                }
            }
            if self.moved_from(addr) {
                return Ok(());
            }
        }
    }

    /// Fetches snapshot `id` chunk by chunk on `conn` and loads it. A
    /// snapshot the controller no longer has ends it quietly: the next
    /// Fetch names the current one.
    async fn load_snapshot(&self, conn: &mut MetadataConn, id: SnapshotId) -> io::Result<()> {
        let mut bytes: Vec<u8> = Vec::new();
        loop {
            let epoch = *self.inner.epoch.lock();
            let position = bytes.len() as i64;
            let (info, chunk) = tokio::time::timeout(FETCH_SLACK, conn.fetch_snapshot(epoch, id, position))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "a snapshot fetch was not answered"))??;
            self.learn(&info);
            if chunk.error_code != 0 {
                tracing::debug!(code = chunk.error_code, "a snapshot fetch was refused; fetching again");
                return Ok(());
            }
            if chunk.position != position || !(1..=MAX_SNAPSHOT_BYTES).contains(&chunk.size) || chunk.bytes.is_empty() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "a snapshot chunk out of place"));
            }
            bytes.extend_from_slice(&chunk.bytes);
            if bytes.len() as i64 >= chunk.size {
                break;
            }
        }
        let stored: StoredSnapshot =
            serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if !ObserverState::snapshot_matches(&stored, id) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "a snapshot other than the one asked for"));
        }
        if self.inner.follower.lock().load(&stored) {
            tracing::info!(end_offset = id.end_offset, epoch = id.epoch, "loaded a metadata snapshot");
            self.publish();
        }
        Ok(())
    }

    /// DescribeQuorum's view, asked of the active controller with Kafka's
    /// DescribeQuorum on its controller listener (as a broker, so it is not
    /// forwarded again); [`MetaError::NotLeader`] naming the leader known
    /// when no controller that leads answers within `within`.
    pub async fn status(&self, within: Duration) -> Result<QuorumStatus, MetaError> {
        let addr = self.leader().and_then(|id| self.address_of(id));
        let Some(addr) = addr else { return Err(MetaError::NotLeader { leader: None }) };
        let client_id = format!("{BROKER_CLIENT_ID_PREFIX}{}", self.inner.node_id.get());
        match tokio::time::timeout(within, describe_quorum::ask(&addr, &client_id)).await {
            Ok(Ok(answer)) => describe_quorum::read_answer(&answer),
            Ok(Err(_)) | Err(_) => Err(MetaError::NotLeader { leader: self.leader() }),
        }
    }

    /// Refuses `records` decided at `based_on` (a stale decision as
    /// [`MetaError::Stale`], as on every metadata log): a broker-only node
    /// never appends, it asks the active controller in Kafka's requests.
    /// [`MetaError::NotLeader`] names the active controller it knows.
    pub async fn append_async(
        &self,
        based_on: MetadataVersion,
        records: Vec<MetadataRecord>,
    ) -> Result<Committed, MetaError> {
        debug_assert!(
            records.is_empty(),
            "a broker-only node decided metadata records itself ({} records); they go to the active controller \
             in Kafka's requests",
            records.len()
        );
        let current = self.committed();
        if current.version != based_on {
            return Err(MetaError::Stale { based_on, actual: current.version });
        }
        if records.is_empty() {
            return Ok(current);
        }
        tracing::error!(records = records.len(), "a broker-only node may not append to the metadata log");
        Err(MetaError::NotLeader { leader: self.leader() })
    }

    /// Runs `fut` on the observer's runtime and waits for it on this thread
    /// (the trait is synchronous; callers run it on blocking threads).
    fn wait_for<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, MetaError>> + Send + 'static,
    ) -> Result<T, MetaError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.inner.runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        let limit = self.inner.append_timeout.saturating_mul(2);
        match rx.recv_timeout(limit) {
            Ok(result) => result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(MetaError::Timeout(limit)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err(MetaError::Quorum("the observer's runtime stopped".into()))
            }
        }
    }
}

impl MetadataLog for ObserverMetadataLog {
    fn committed(&self) -> Committed {
        self.inner.state.read().clone()
    }

    fn append(&self, based_on: MetadataVersion, records: Vec<MetadataRecord>) -> Result<Committed, MetaError> {
        let this = self.clone();
        self.wait_for(async move { this.append_async(based_on, records).await })
    }

    /// Nothing to compact: an observer keeps only the image in memory.
    fn snapshot(&self) -> Result<MetadataVersion, MetaError> {
        Ok(self.committed().version)
    }

    fn subscribe(&self) -> watch::Receiver<MetadataVersion> {
        self.inner.version.subscribe()
    }
}

#[cfg(test)]
#[path = "observer_tests.rs"]
mod tests;
