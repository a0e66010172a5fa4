//! An observer of the metadata quorum: how a broker-only node
//! (`process.roles=broker`) follows the metadata log without voting, as
//! Kafka's brokers are observers of the KRaft quorum that fetch the log
//! from the controllers.
//!
//! [`ObserverMetadataLog`] implements [`MetadataLog`] on a copy of the
//! committed image. A background task asks a controller of
//! `controller.quorum.voters` (the active one once known) over the
//! controller listener, after the usual `Hello`, with [`RpcKind::Fetch`]
//! frames: "my image is at version v". The controller answers, as soon as
//! its applied image is past `v` (at most [`FETCH_WAIT`] later), with that
//! image as records (what a snapshot holds) and the leader it knows; an
//! answer with nothing new just names the leader. Appends are forwarded to
//! the active controller exactly as a follower controller forwards them
//! (`forward`), and return once this copy holds the change; the leader it
//! names is where the node's broker sends its registration and heartbeats
//! (Kafka's APIs, kaskade-broker's `controller_channel`), and
//! DescribeQuorum's view comes from it in a [`RpcKind::Status`] frame.
//!
//! Invariants: a controller's applied image is committed, and versions only
//! grow, so this copy only ever moves forward to committed images (an
//! answer not past this copy is ignored, and a controller only answers one
//! that is past `v`); it votes in nothing and stores nothing (a restart
//! fetches the image again), so a broker can never hold up or change the
//! quorum's decisions.
//!
//! What it costs: every change sends the whole image to every broker (a
//! full snapshot per fetch answer); fine for thousands of partitions, and
//! the place to send deltas when images grow.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use kaskade_types::NodeId;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::watch;

use super::forward::{self, ForwardError, ForwardRefusal};
use super::frame::{self, Hello, RpcKind};
use super::node::QuorumMetadataLog;
use super::observers::Applied;
use super::state_machine::SnapshotData;
use super::status::QuorumStatus;
use super::types::{ApplyOutcome, Proposal};
use crate::image::Image;
use crate::metadata_log::{Committed, MetadataLog, MetadataVersion};
use crate::record::MetadataRecord;
use crate::MetaError;

/// How long a controller holds a fetch that has nothing new.
pub const FETCH_WAIT: Duration = Duration::from_millis(500);

/// How long an observer waits for a fetch's answer beyond [`FETCH_WAIT`].
const FETCH_SLACK: Duration = Duration::from_secs(5);

/// Pause before asking another controller after one failed.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// An observer's fetch: where its copy of the image stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    /// `None`: it has no image yet.
    pub known: Option<MetadataVersion>,
    /// The observer's node id, so the leader lists it among DescribeQuorum's
    /// observers (`observers`); absent from observers that predate it.
    #[serde(default)]
    pub replica_id: Option<i32>,
}

/// A controller's answer to a [`FetchRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchAnswer {
    /// The active controller as the answering controller knows it.
    pub leader: Option<i32>,
    /// Its applied image, when past the observer's.
    pub image: Option<SnapshotData>,
}

impl QuorumMetadataLog {
    /// A controller's side of a fetch: waits up to [`FETCH_WAIT`] for the
    /// applied image to move past the observer's, then answers.
    pub(super) async fn answer_fetch(&self, req: FetchRequest) -> FetchAnswer {
        let past = |v: &MetadataVersion| req.known.is_none_or(|k| *v > k);
        if let Some(id) = req.replica_id {
            let applied = self.applied_position();
            self.observers.lock().fetched(id, req.known, applied, self.now_ms());
        }
        let mut applied = self.subscribe();
        let _ = tokio::time::timeout(FETCH_WAIT, applied.wait_for(past)).await;
        let position = self.applied_position();
        let committed = self.committed();
        let image = past(&committed.version)
            .then(|| SnapshotData { version: committed.version, records: committed.image.to_records() });
        if let (Some(id), Some(sent)) = (req.replica_id, &image) {
            // The Raft end offset read just before the image: equal unless
            // an entry was applied in between, then one entry early.
            self.observers.lock().sent(id, Applied { version: sent.version, end_offset: position.end_offset });
        }
        FetchAnswer { leader: self.leader().map(NodeId::get), image }
    }

    /// A controller's side of a `Status` call: DescribeQuorum's view on the
    /// leader, else the leader it knows.
    pub(super) fn answer_status(&self) -> Result<QuorumStatus, ForwardRefusal> {
        self.status().map_err(|e| match e {
            MetaError::NotLeader { leader } => ForwardRefusal::NotLeader { leader },
            other => ForwardRefusal::Failed(other.to_string()),
        })
    }
}

/// How an observer runs.
#[derive(Clone, Debug)]
pub struct ObserverConfig {
    pub node_id: NodeId,
    pub cluster_id: String,
    /// `controller.quorum.voters`: node id -> `host:port` of its controller
    /// listener.
    pub controllers: BTreeMap<NodeId, String>,
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
    hello: Hello,
    controllers: BTreeMap<NodeId, String>,
    state: RwLock<Committed>,
    version: watch::Sender<MetadataVersion>,
    /// Whether an image was fetched yet.
    fetched: watch::Sender<bool>,
    leader: watch::Sender<Option<NodeId>>,
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
        let static_voters: BTreeSet<i32> = config.controllers.keys().map(|id| id.get()).collect();
        let inner = Inner {
            node_id: config.node_id,
            hello: Hello { cluster_id: config.cluster_id, static_voters: Some(static_voters) },
            controllers: config.controllers,
            state: RwLock::new(Committed { image: Arc::new(Image::default()), version: MetadataVersion::default() }),
            version: watch::channel(MetadataVersion::default()).0,
            fetched: watch::channel(false).0,
            leader: watch::channel(None).0,
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

    /// Waits up to `limit` until an image was fetched and the active
    /// controller is known. `Ok(false)` if `limit` passed first.
    pub async fn wait_until_current(&self, limit: Duration) -> Result<bool, MetaError> {
        let mut fetched = self.inner.fetched.subscribe();
        let mut leader = self.inner.leader.subscribe();
        let both = async {
            let _ = fetched.wait_for(|f| *f).await;
            let _ = leader.wait_for(Option::is_some).await;
        };
        Ok(tokio::time::timeout(limit, both).await.is_ok())
    }

    /// The controllers it follows (node id -> `host:port` of each one's
    /// controller listener), as configured.
    pub fn controllers(&self) -> &BTreeMap<NodeId, String> {
        &self.inner.controllers
    }

    /// Stops following.
    pub fn shutdown(&self) {
        self.inner.stopped.send_replace(true);
    }

    /// The controller to ask next: the active one if known, else the
    /// voters in turn.
    fn target(&self, turn: &mut usize) -> Option<(NodeId, String)> {
        if let Some(id) = self.leader() {
            if let Some(addr) = self.inner.controllers.get(&id) {
                return Some((id, addr.clone()));
            }
        }
        let n = self.inner.controllers.len();
        if n == 0 {
            return None;
        }
        *turn = (*turn + 1) % n;
        self.inner.controllers.iter().nth(*turn).map(|(id, addr)| (*id, addr.clone()))
    }

    /// The fetch loop: until stopped, keeps this copy at the quorum's
    /// committed image.
    async fn follow(self) {
        let mut stopped = self.inner.stopped.subscribe();
        let mut turn = 0;
        loop {
            if *stopped.borrow() {
                return;
            }
            let Some((id, addr)) = self.target(&mut turn) else { return };
            let session = self.fetch_from(id, &addr);
            let ended = tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                ended = session => ended,
            };
            if let Err(e) = ended {
                tracing::debug!(controller = id.get(), %addr, error = %e, "fetching the metadata failed; asking another");
                // Maybe gone: ask the voters in turn until one names the leader.
                self.inner.leader.send_replace(None);
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    }

    /// Fetches from controller `id` at `addr` until the connection fails
    /// (`Err`) or another controller is named the leader (`Ok`).
    async fn fetch_from(&self, id: NodeId, addr: &str) -> io::Result<()> {
        let mut conn: BufStream<TcpStream> = forward::connect(addr, &self.inner.hello).await?;
        loop {
            let known = (*self.inner.fetched.borrow()).then(|| self.inner.state.read().version);
            let request = FetchRequest { known, replica_id: Some(self.inner.node_id.get()) };
            let body = serde_json::to_vec(&request).map_err(io::Error::other)?;
            frame::write_frame(&mut conn, RpcKind::Fetch, &body).await?;
            let answer = match tokio::time::timeout(FETCH_WAIT + FETCH_SLACK, frame::read_frame(&mut conn)).await {
                Ok(Ok(Some((RpcKind::Response, body)))) => body,
                Ok(Ok(_)) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no answer to a fetch")),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "a fetch was not answered")),
            };
            let answer: FetchAnswer =
                serde_json::from_slice(&answer).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if let Some(data) = answer.image {
                self.install(data);
            }
            let leader = answer.leader.map(NodeId);
            self.inner.leader.send_replace(leader);
            if leader.is_some_and(|l| l != id) {
                // Follow the active controller: its image is the newest.
                return Ok(());
            }
        }
    }

    /// Takes a fetched image if it is past this copy.
    fn install(&self, data: SnapshotData) {
        let fetched = *self.inner.fetched.borrow();
        {
            let mut state = self.inner.state.write();
            if fetched && data.version <= state.version {
                return;
            }
            *state = Committed { image: Arc::new(data.to_image()), version: data.version };
        }
        self.inner.fetched.send_replace(true);
        self.inner.version.send_replace(data.version);
    }

    /// DescribeQuorum's view, asked of the active controller in a `Status`
    /// frame; [`MetaError::NotLeader`] naming the leader known when no
    /// controller that leads answers within `within`.
    pub async fn status(&self, within: Duration) -> Result<QuorumStatus, MetaError> {
        let addr = self.leader().and_then(|id| self.inner.controllers.get(&id).cloned());
        let Some(addr) = addr else { return Err(MetaError::NotLeader { leader: None }) };
        let ask = async {
            let mut conn = forward::connect(&addr, &self.inner.hello).await?;
            frame::write_frame(&mut conn, RpcKind::Status, b"null").await?;
            match frame::read_frame(&mut conn).await? {
                Some((RpcKind::Response, body)) => {
                    serde_json::from_slice::<Result<QuorumStatus, ForwardRefusal>>(&body)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
                }
                _ => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no answer to a status call")),
            }
        };
        match tokio::time::timeout(within, ask).await {
            Ok(Ok(Ok(status))) => Ok(status),
            Ok(Ok(Err(ForwardRefusal::NotLeader { leader }))) => Err(MetaError::NotLeader { leader }),
            Ok(Ok(Err(ForwardRefusal::Failed(e)))) => Err(MetaError::Quorum(e)),
            Ok(Err(_)) | Err(_) => Err(MetaError::NotLeader { leader: self.leader() }),
        }
    }

    /// Forwards `records` decided at `based_on` to the active controller;
    /// see [`MetadataLog::append`]. Returns once this copy holds the change.
    pub async fn append_async(
        &self,
        based_on: MetadataVersion,
        records: Vec<MetadataRecord>,
    ) -> Result<Committed, MetaError> {
        let current = self.committed();
        if current.version != based_on {
            return Err(MetaError::Stale { based_on, actual: current.version });
        }
        if records.is_empty() {
            return Ok(current);
        }
        let deadline = tokio::time::Instant::now() + self.inner.append_timeout;
        let proposal = Proposal { based_on, records };
        let mut turn = 0;
        let outcome = loop {
            let Some((_, addr)) = self.target(&mut turn) else {
                return Err(MetaError::NotLeader { leader: None });
            };
            let sent = tokio::time::timeout_at(deadline, forward::forward(&addr, &self.inner.hello, &proposal)).await;
            match sent {
                Err(_) => return Err(MetaError::Timeout(self.inner.append_timeout)),
                Ok(Ok(outcome)) => break outcome,
                Ok(Err(ForwardError::Unreachable(_))) => {
                    self.inner.leader.send_replace(None);
                }
                Ok(Err(ForwardError::Refused(ForwardRefusal::NotLeader { leader }))) => {
                    self.inner.leader.send_replace(leader);
                }
                Ok(Err(ForwardError::Refused(ForwardRefusal::Failed(e)))) => return Err(MetaError::Quorum(e)),
                Ok(Err(ForwardError::Lost(e))) => {
                    return Err(MetaError::Unconfirmed(format!(
                        "the connection to the active controller broke while it took a change (it may have been \
                         made): {e}"
                    )))
                }
            }
            if tokio::time::Instant::now() + RETRY_BACKOFF >= deadline {
                return Err(MetaError::NotLeader { leader: self.leader() });
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
        };
        match outcome {
            ApplyOutcome::Applied(version) => {
                self.reached(version, deadline).await?;
                Ok(self.committed())
            }
            ApplyOutcome::Stale { actual } => {
                // Decide again only once this copy has what beat us.
                self.reached(actual, deadline).await?;
                Err(MetaError::Stale { based_on, actual })
            }
            ApplyOutcome::Raft(_) => Err(MetaError::Quorum("a proposal was applied as a Raft entry".into())),
        }
    }

    /// Waits until this copy is at `version` or past it.
    async fn reached(&self, version: MetadataVersion, deadline: tokio::time::Instant) -> Result<(), MetaError> {
        let mut applied = self.inner.version.subscribe();
        let reached = applied.wait_for(|v| v.end_offset >= version.end_offset);
        let result = match tokio::time::timeout_at(deadline, reached).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(MetaError::Quorum("the observer stopped".into())),
            Err(_) => Err(MetaError::Timeout(self.inner.append_timeout)),
        };
        result
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
