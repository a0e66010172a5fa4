//! This broker's channel to the active controller (Kafka's
//! `NodeToControllerChannelManager`): BrokerRegistration and
//! BrokerHeartbeat requests over Kafka's protocol on the controller
//! listener of the controller that leads the quorum, and admin requests
//! forwarded in an Envelope (`api::forwarding`).
//!
//! Which controller leads comes from this node's place in the quorum
//! (`QuorumLink::leader`: its Raft node, or its observer's last fetch); a
//! controller that answers NOT_CONTROLLER, or cannot be reached, is
//! followed by another: the leader known then, or the next controller
//! `QuorumLink::controllers` names, in turn, so a stale hint never pins the
//! broker to a controller that stepped down. Every other answer, error
//! code included, goes back to the caller.
//!
//! Invariants: one connection at a time (to the controller last asked),
//! replaced after a failure or when another controller is asked; every
//! attempt, and the whole call, is bounded by the caller's `within`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    BrokerHeartbeatRequest, BrokerHeartbeatResponse, BrokerRegistrationRequest, BrokerRegistrationResponse,
    EnvelopeRequest, EnvelopeResponse,
};
use kafka_protocol::protocol::Request;
use kaskade_client::connection::{Connection, ConnectionConfig};
use kaskade_meta::quorum::BrokerRefusal;
use kaskade_types::NodeId;

use super::link::QuorumLink;

/// Bound on connecting to a controller (TCP and ApiVersions).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Bound on one request (a registration waits for its record to commit).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause before asking again after NOT_CONTROLLER or a failure.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// How the requests reach the controller.
enum Transport {
    /// Kafka's protocol on the controllers' listeners (`QuorumLink::controllers`).
    Wire { config: ConnectionConfig },
    /// The handlers called in process (unit tests of the lifecycle).
    #[cfg(test)]
    InProcess { quorum: kaskade_meta::QuorumMetadataLog, cluster_id: String },
}

/// Requests to the active controller.
pub struct ControllerChannel {
    link: QuorumLink,
    transport: Transport,
    current: tokio::sync::Mutex<Option<(NodeId, Arc<Connection>)>>,
    /// The next voter to ask when the leader is not known (or failed).
    turn: AtomicUsize,
}

impl ControllerChannel {
    /// A channel to the controllers `link` knows, introducing this broker
    /// as `client_id`.
    pub fn new(link: QuorumLink, client_id: String) -> ControllerChannel {
        let config = ConnectionConfig { client_id, connect_timeout: CONNECT_TIMEOUT, request_timeout: REQUEST_TIMEOUT };
        ControllerChannel::with(link, Transport::Wire { config })
    }

    fn with(link: QuorumLink, transport: Transport) -> ControllerChannel {
        ControllerChannel { link, transport, current: tokio::sync::Mutex::new(None), turn: AtomicUsize::new(0) }
    }

    /// A channel calling the controller handlers of `quorum` in process.
    #[cfg(test)]
    pub fn in_process(quorum: kaskade_meta::QuorumMetadataLog, cluster_id: &str) -> ControllerChannel {
        let link = QuorumLink::Voter(quorum.clone());
        ControllerChannel::with(link, Transport::InProcess { quorum, cluster_id: cluster_id.to_string() })
    }

    /// The quorum this channel follows.
    pub fn link(&self) -> &QuorumLink {
        &self.link
    }

    /// Sends a registration to the active controller, for up to `within`.
    pub async fn register(
        &self,
        req: &BrokerRegistrationRequest,
        within: Duration,
    ) -> Result<BrokerRegistrationResponse, BrokerRefusal> {
        match &self.transport {
            Transport::Wire { config } => {
                self.send(config, req, within, |r: &BrokerRegistrationResponse| r.error_code).await
            }
            #[cfg(test)]
            Transport::InProcess { quorum, cluster_id } => {
                let quorum = quorum.clone();
                let (req, id) = (req.clone(), cluster_id.clone());
                self.call_in_process(
                    within,
                    |r: &BrokerRegistrationResponse| r.error_code,
                    move || {
                        let (quorum, req, id) = (quorum.clone(), req.clone(), id.clone());
                        async move { crate::api::broker_registration::register(&quorum, &id, req).await }
                    },
                )
                .await
            }
        }
    }

    /// Sends a heartbeat to the active controller, for up to `within`.
    pub async fn heartbeat(
        &self,
        req: &BrokerHeartbeatRequest,
        within: Duration,
    ) -> Result<BrokerHeartbeatResponse, BrokerRefusal> {
        match &self.transport {
            Transport::Wire { config } => {
                self.send(config, req, within, |r: &BrokerHeartbeatResponse| r.error_code).await
            }
            #[cfg(test)]
            Transport::InProcess { quorum, .. } => {
                let (quorum, req) = (quorum.clone(), req.clone());
                self.call_in_process(
                    within,
                    |r: &BrokerHeartbeatResponse| r.error_code,
                    move || {
                        let (quorum, req) = (quorum.clone(), req.clone());
                        async move { crate::api::broker_heartbeat::heartbeat(&quorum, req).await }
                    },
                )
                .await
            }
        }
    }

    /// Sends a forwarded request in `envelope` to the active controller,
    /// for up to `within` (`api::forwarding`). An envelope answered
    /// NOT_CONTROLLER, or one whose connection failed (perhaps after the
    /// controller took it, as in Kafka), is sent to the next controller.
    pub async fn envelope(
        &self,
        envelope: &EnvelopeRequest,
        within: Duration,
    ) -> Result<EnvelopeResponse, BrokerRefusal> {
        match &self.transport {
            Transport::Wire { config } => {
                self.send(config, envelope, within, |r: &EnvelopeResponse| r.error_code).await
            }
            #[cfg(test)]
            Transport::InProcess { .. } => Err(BrokerRefusal::Unreachable("no Envelope in process".into())),
        }
    }

    /// Sends `req` to the active controller, for up to `within` (requests a
    /// broker makes of the controller: AlterPartition, AllocateProducerIds,
    /// CreateTopics for the internal topics). `code` reads the answer's
    /// top-level error code: NOT_CONTROLLER there asks the next controller.
    pub async fn request<R: Request>(
        &self,
        req: &R,
        within: Duration,
        code: fn(&R::Response) -> i16,
    ) -> Result<R::Response, BrokerRefusal> {
        match &self.transport {
            Transport::Wire { config } => self.send(config, req, within, code).await,
            #[cfg(test)]
            Transport::InProcess { .. } => Err(BrokerRefusal::Unreachable("only registrations in process".into())),
        }
    }

    #[cfg(test)]
    async fn call_in_process<T, F>(
        &self,
        within: Duration,
        code: fn(&T) -> i16,
        call: impl Fn() -> F,
    ) -> Result<T, BrokerRefusal>
    where
        F: std::future::Future<Output = T>,
    {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let answer = call().await;
            if code(&answer) != ResponseError::NotController.code() {
                return Ok(answer);
            }
            if tokio::time::Instant::now() + RETRY_BACKOFF >= deadline {
                return Err(BrokerRefusal::NotController { leader: None });
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    }

    /// The controller to ask after `failures` failed attempts: the known
    /// leader, or (every other attempt after a failure, and while none is
    /// known) the next voter in turn.
    fn target(&self, controllers: &BTreeMap<NodeId, String>, failures: usize) -> Option<(NodeId, String)> {
        let hint = self.link.leader().filter(|l| controllers.contains_key(l));
        let id = match hint {
            Some(leader) if failures.is_multiple_of(2) => leader,
            _ => {
                let ids: Vec<NodeId> = controllers.keys().copied().collect();
                *ids.get(self.turn.fetch_add(1, Ordering::Relaxed) % ids.len().max(1))?
            }
        };
        controllers.get(&id).map(|addr| (id, addr.clone()))
    }

    /// A connection to `id` at `addr`: the open one if it goes there.
    async fn connection(
        &self,
        id: NodeId,
        addr: &str,
        config: &ConnectionConfig,
    ) -> Result<Arc<Connection>, BrokerRefusal> {
        let mut current = self.current.lock().await;
        if let Some((to, conn)) = current.as_ref() {
            if *to == id && !conn.is_closed() {
                return Ok(conn.clone());
            }
        }
        *current = None;
        let conn = Connection::connect(addr, config.clone())
            .await
            .map_err(|e| BrokerRefusal::Unreachable(format!("controller {id} at {addr}: {e}")))?;
        *current = Some((id, conn.clone()));
        Ok(conn)
    }

    async fn forget(&self, conn: &Arc<Connection>) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|(_, c)| Arc::ptr_eq(c, conn)) {
            *current = None;
        }
    }

    async fn send<R: Request>(
        &self,
        config: &ConnectionConfig,
        req: &R,
        within: Duration,
        code: fn(&R::Response) -> i16,
    ) -> Result<R::Response, BrokerRefusal> {
        let deadline = tokio::time::Instant::now() + within;
        let mut failures = 0;
        loop {
            let controllers = self.link.controllers();
            let Some((id, addr)) = self.target(&controllers, failures) else {
                // A voter's membership is empty only until its Raft core
                // published it, right after start.
                if tokio::time::Instant::now() + RETRY_BACKOFF >= deadline {
                    return Err(BrokerRefusal::Unreachable("the quorum names no controller".into()));
                }
                tokio::time::sleep(RETRY_BACKOFF).await;
                continue;
            };
            let attempt = async {
                let conn = self.connection(id, &addr, config).await?;
                let sent = async {
                    let version = conn.version::<R>()?;
                    conn.send(req, version).await
                };
                match sent.await {
                    Ok(answer) => Ok(answer),
                    Err(e) => {
                        self.forget(&conn).await;
                        Err(BrokerRefusal::Unreachable(format!("controller {id} at {addr}: {e}")))
                    }
                }
            };
            let error = match tokio::time::timeout_at(deadline, attempt).await {
                Ok(Ok(answer)) if code(&answer) == ResponseError::NotController.code() => {
                    BrokerRefusal::NotController { leader: self.link.leader() }
                }
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(e)) => e,
                Err(_) => BrokerRefusal::Unreachable(format!("no answer from controller {id} within {within:?}")),
            };
            failures += 1;
            if tokio::time::Instant::now() + RETRY_BACKOFF >= deadline {
                return Err(error);
            }
            tracing::debug!(controller = id.get(), error = %error, "asking another controller");
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    }
}
