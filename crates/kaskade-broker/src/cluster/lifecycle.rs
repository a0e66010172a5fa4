//! This broker's life with the active controller, as Kafka's
//! BrokerLifecycleManager runs it: register (BrokerRegistration, fenced,
//! with a new incarnation), heartbeat (BrokerHeartbeat) every
//! `broker.heartbeat.interval.ms` with the metadata offset applied here,
//! serve once a heartbeat finds it unfenced, and on a controlled shutdown
//! heartbeat with `want_shut_down` until the controller has moved its
//! leaderships away and says it may stop.
//!
//! The requests go through the [`ControllerChannel`] (Kafka's protocol on
//! the active controller's controller listener; NOT_CONTROLLER makes it ask
//! another). The registration's answer gives the broker epoch every
//! heartbeat carries.
//!
//! A failed log directory (`kaskade_log::LogDirFailure`: an append's I/O
//! error, ENOSPC or EIO) is reported at once in a heartbeat with
//! `want_fence` and `offline_log_dirs`, and in every heartbeat after: the
//! controller fences the broker, so the partitions it led get new leaders
//! among the other ISR members, and keeps it fenced until it restarts
//! (Kafka's broker halts when its last log directory fails; this one stays
//! up, fenced, and still answers with KAFKA_STORAGE_ERROR or
//! NOT_LEADER_OR_FOLLOWER).
//!
//! Invariants: one incarnation per process; start-up waits until the
//! broker is unfenced; a controlled shutdown is bounded by
//! [`SHUTDOWN_LIMIT`], after which the broker stops anyway (the controller
//! then fences it when its session expires).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::broker_registration_request::Listener;
use kafka_protocol::messages::{BrokerHeartbeatRequest, BrokerId, BrokerRegistrationRequest};
use kafka_protocol::protocol::StrBytes;
use kaskade_log::LogDirFailure;
use kaskade_meta::quorum::{BrokerRefusal, HeartbeatAnswer};
use kaskade_meta::{BrokerEndpoint, BrokerProcess, Uuid};
use kaskade_types::NodeId;
use tokio::sync::watch;

use super::controller_channel::ControllerChannel;
use crate::api::broker_registration::{process_field, security_protocol_id, PROCESS_TAG};
use crate::server::StartError;

/// How long a controlled shutdown waits for the controller's word.
pub const SHUTDOWN_LIMIT: Duration = Duration::from_secs(30);

/// How often start-up says it is still waiting to be unfenced.
const WAIT_REPORT: Duration = Duration::from_secs(5);

/// How often a fenced broker heartbeats (at most; the interval if shorter).
const FENCED_RETRY: Duration = Duration::from_millis(100);

/// The id a failed log directory is reported by: Kafka's
/// `DirectoryId.LOST` (a directory that is offline or unknown), since a
/// Kaskade registration names no directories and has only one.
const OFFLINE_DIR: Uuid = Uuid::from_u128(1);

/// How often a controlled shutdown asks again.
const SHUTDOWN_RETRY: Duration = Duration::from_millis(100);

/// This broker's registration and its heartbeats.
pub struct Lifecycle {
    channel: ControllerChannel,
    node_id: NodeId,
    cluster_id: String,
    incarnation: Uuid,
    /// The broker epoch the registration answered (-1 before).
    epoch: AtomicI64,
    interval: Duration,
    session_timeout: Duration,
    /// Whether the last heartbeat's answer said fenced.
    fenced: watch::Sender<bool>,
    /// [`SHUTDOWN_LIMIT`] (shorter in tests).
    shutdown_limit: Duration,
    /// The log directory whose failure the heartbeats report.
    log_dir: std::sync::OnceLock<Arc<LogDirFailure>>,
}

impl Lifecycle {
    pub fn new(
        channel: ControllerChannel,
        node_id: NodeId,
        cluster_id: &str,
        interval_ms: i64,
        session_timeout_ms: i64,
    ) -> Lifecycle {
        let ms = |v: i64| Duration::from_millis(u64::try_from(v).unwrap_or(1).max(1));
        Lifecycle {
            channel,
            node_id,
            cluster_id: cluster_id.to_string(),
            incarnation: Uuid::new_v4(),
            epoch: AtomicI64::new(-1),
            interval: ms(interval_ms),
            session_timeout: ms(session_timeout_ms),
            fenced: watch::channel(true).0,
            shutdown_limit: SHUTDOWN_LIMIT,
            log_dir: std::sync::OnceLock::new(),
        }
    }

    /// Makes the heartbeats report `failure` once the directory fails (set
    /// once, before the heartbeats start).
    pub fn watch_log_dir(&self, failure: Arc<LogDirFailure>) {
        let _ = self.log_dir.set(failure);
    }

    fn log_dir_failed(&self) -> bool {
        self.log_dir.get().is_some_and(|f| f.failure().is_some())
    }

    /// Registers this broker. A registration refused because another
    /// process with this id is alive (DUPLICATE_BROKER_REGISTRATION) is
    /// tried again until a session has passed, since a process that was
    /// just killed is only known to be gone once its session expired; a
    /// refusal that outlasts that is a live duplicate, and start-up stops,
    /// as it does for another cluster's controllers (INCONSISTENT_CLUSTER_ID).
    /// A new active controller gives every registered incarnation a fresh
    /// session, the dead one's included, so the session is counted again
    /// from the first refusal under each active controller.
    pub async fn register(
        &self,
        endpoints: Vec<BrokerEndpoint>,
        rack: Option<String>,
        process: BrokerProcess,
    ) -> Result<(), StartError> {
        let mut req = BrokerRegistrationRequest::default()
            .with_broker_id(BrokerId(self.node_id.get()))
            .with_cluster_id(StrBytes::from_string(self.cluster_id.clone()))
            .with_incarnation_id(self.incarnation)
            .with_rack(rack.map(StrBytes::from_string))
            .with_previous_broker_epoch(-1)
            .with_listeners(
                endpoints
                    .into_iter()
                    .map(|e| {
                        Listener::default()
                            .with_name(StrBytes::from_string(e.listener))
                            .with_host(StrBytes::from_string(e.host))
                            .with_port(e.port)
                            .with_security_protocol(security_protocol_id(e.security_protocol.as_deref()))
                    })
                    .collect(),
            );
        req.unknown_tagged_fields.insert(PROCESS_TAG, process_field(&process));
        let mut patience = DuplicatePatience::new(self.session_timeout + 2 * self.interval);
        loop {
            let refusal = match self.channel.register(&req, self.session_timeout).await {
                Ok(answer) if answer.error_code == 0 => {
                    self.epoch.store(answer.broker_epoch, Ordering::Release);
                    break;
                }
                Ok(answer) => match ResponseError::try_from_code(answer.error_code) {
                    Some(ResponseError::DuplicateBrokerRegistration) => {
                        BrokerRefusal::DuplicateBrokerRegistration(self.node_id.get())
                    }
                    Some(ResponseError::InconsistentClusterId) => {
                        return Err(StartError::Invalid(format!(
                            "the active controller belongs to another cluster than cluster.id {} \
                             (INCONSISTENT_CLUSTER_ID)",
                            self.cluster_id
                        )))
                    }
                    code => BrokerRefusal::Failed(format!("{code:?} (error code {})", answer.error_code)),
                },
                Err(e) => e,
            };
            let duplicate = matches!(refusal, BrokerRefusal::DuplicateBrokerRegistration(_));
            let keep_waiting = duplicate && patience.refused(self.channel.link().leader(), tokio::time::Instant::now());
            match refusal {
                BrokerRefusal::DuplicateBrokerRegistration(id) if keep_waiting => {
                    tracing::warn!(
                        node = id,
                        "another process is registered with this node id; waiting for its session to expire"
                    );
                    tokio::time::sleep(self.interval).await;
                }
                BrokerRefusal::DuplicateBrokerRegistration(id) => {
                    return Err(StartError::Invalid(format!(
                        "node.id {id} is already registered by another broker process that is still heartbeating \
                         (DUPLICATE_BROKER_REGISTRATION); give this node another node.id or stop the other one"
                    )))
                }
                e @ (BrokerRefusal::NotController { .. } | BrokerRefusal::Unreachable(_)) => {
                    tracing::info!(error = %e, "registering with the controller quorum; trying again");
                }
                e => return Err(StartError::Invalid(format!("registering this broker failed: {e}"))),
            }
        }
        tracing::info!(
            node = self.node_id.get(),
            incarnation = %self.incarnation,
            epoch = self.epoch.load(Ordering::Acquire),
            "registered with the controller quorum"
        );
        Ok(())
    }

    /// Heartbeats every interval until `stopping` resolves.
    pub fn spawn_heartbeats(self: &Arc<Self>, stopping: impl std::future::Future<Output = ()> + Send + 'static) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::pin!(stopping);
            let mut pause = Duration::ZERO;
            let mut failures = this.log_dir.get().map(|f| f.subscribe());
            loop {
                // A failed log directory is reported at once, not at the next beat.
                let failed = async {
                    let changed = match failures.as_mut() {
                        Some(f) => f.changed().await.is_ok(),
                        None => false,
                    };
                    if !changed {
                        std::future::pending::<()>().await
                    }
                };
                tokio::select! {
                    _ = &mut stopping => return,
                    _ = tokio::time::sleep(pause) => {}
                    _ = failed => tracing::error!(
                        node = this.node_id.get(),
                        "the log directory failed: asking the active controller to fence this broker"
                    ),
                }
                match this.heartbeat(false, this.interval).await {
                    Ok(answer) => {
                        let was = this.fenced.send_replace(answer.is_fenced);
                        if answer.is_fenced && !was {
                            tracing::warn!(node = this.node_id.get(), "the active controller fenced this broker");
                        } else if was && !answer.is_fenced {
                            tracing::info!(node = this.node_id.get(), "unfenced by the active controller");
                        }
                    }
                    Err(BrokerRefusal::StaleBrokerEpoch) => tracing::error!(
                        node = this.node_id.get(),
                        "the controller no longer knows this broker's registration (another process registered its \
                         node id?)"
                    ),
                    Err(e) => tracing::warn!(error = %e, "a heartbeat to the active controller failed"),
                }
                // A fenced broker asks again soon (it is unfenced as soon as
                // it caught up), as Kafka's lifecycle manager does while starting.
                pause = if *this.fenced.borrow() { this.interval.min(FENCED_RETRY) } else { this.interval };
            }
        });
    }

    /// Waits until a heartbeat found this broker unfenced.
    pub async fn wait_unfenced(&self) {
        let mut fenced = self.fenced.subscribe();
        loop {
            match tokio::time::timeout(WAIT_REPORT, fenced.wait_for(|f| !*f)).await {
                Ok(Ok(_)) => return,
                // The sender lives as long as `self`.
                Ok(Err(_)) => return,
                Err(_) => {
                    tracing::info!(
                        node = self.node_id.get(),
                        "waiting for the active controller to unfence this broker"
                    )
                }
            }
        }
    }

    async fn heartbeat(&self, want_shut_down: bool, within: Duration) -> Result<HeartbeatAnswer, BrokerRefusal> {
        let req = BrokerHeartbeatRequest::default()
            .with_broker_id(BrokerId(self.node_id.get()))
            .with_broker_epoch(self.epoch.load(Ordering::Acquire))
            .with_current_metadata_offset(self.channel.link().committed().version.end_offset)
            .with_want_fence(self.log_dir_failed())
            .with_offline_log_dirs(if self.log_dir_failed() { vec![OFFLINE_DIR] } else { Vec::new() })
            .with_want_shut_down(want_shut_down);
        let answer = self.channel.heartbeat(&req, within).await?;
        match ResponseError::try_from_code(answer.error_code) {
            None if answer.error_code == 0 => Ok(HeartbeatAnswer {
                is_caught_up: answer.is_caught_up,
                is_fenced: answer.is_fenced,
                should_shut_down: answer.should_shut_down,
            }),
            Some(ResponseError::StaleBrokerEpoch) => Err(BrokerRefusal::StaleBrokerEpoch),
            code => Err(BrokerRefusal::Failed(format!("{code:?} (error code {})", answer.error_code))),
        }
    }

    /// Kafka's controlled shutdown: asks the active controller to move this
    /// broker's leaderships away and fence it, and returns once it says the
    /// broker may stop, or after [`SHUTDOWN_LIMIT`] (logged).
    pub async fn controlled_shutdown(&self) {
        let limit = self.shutdown_limit;
        let deadline = tokio::time::Instant::now() + limit;
        let mut last_error = None;
        while tokio::time::Instant::now() < deadline {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.heartbeat(true, left).await {
                Ok(answer) if answer.should_shut_down => {
                    tracing::info!(
                        node = self.node_id.get(),
                        "controlled shutdown: leaderships moved, the controller lets this broker stop"
                    );
                    return;
                }
                Ok(_) => last_error = None,
                Err(e) => last_error = Some(e),
            }
            tokio::time::sleep(SHUTDOWN_RETRY).await;
        }
        match last_error {
            Some(e) => tracing::warn!(
                error = %e,
                "controlled shutdown: no answer from the active controller within {limit:?}; stopping anyway"
            ),
            None => tracing::warn!(
                "controlled shutdown: the controller did not let this broker stop within {limit:?}; stopping anyway"
            ),
        }
    }
}

/// How long a registration refused with DUPLICATE_BROKER_REGISTRATION is
/// tried again: one session (plus two heartbeat intervals) from the first
/// refusal under each active controller, since a controller that becomes
/// active gives every registered incarnation, a dead one too, a fresh
/// session.
struct DuplicatePatience {
    window: Duration,
    give_up: Option<tokio::time::Instant>,
    refused_by: Option<NodeId>,
}

impl DuplicatePatience {
    fn new(window: Duration) -> DuplicatePatience {
        DuplicatePatience { window, give_up: None, refused_by: None }
    }

    /// A refusal at `now` while `active` led: whether to try again.
    fn refused(&mut self, active: Option<NodeId>, now: tokio::time::Instant) -> bool {
        if self.give_up.is_none() || active != self.refused_by {
            self.refused_by = active;
            self.give_up = Some(now + self.window);
        }
        self.give_up.is_some_and(|g| now < g)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kaskade_meta::{MetadataLog, QuorumConfig, QuorumMetadataLog};
    use kaskade_types::NodeId;

    use super::*;

    const WAIT: Duration = Duration::from_secs(20);
    const CLUSTER: &str = "lifecycle-test";

    fn test_process() -> BrokerProcess {
        BrokerProcess { version: "0.0.0".into(), start_time_ms: 0 }
    }

    /// A one-controller quorum serving on a loopback port, with short broker sessions.
    async fn quorum(dir: &std::path::Path, session_ms: u64) -> QuorumMetadataLog {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let mut config = QuorumConfig::new(NodeId(1), CLUSTER, dir);
        config.election_timeout = Duration::from_millis(300)..Duration::from_millis(600);
        config.heartbeat_interval = Duration::from_millis(50);
        config.broker_session_timeout = Duration::from_millis(session_ms);
        let log = QuorumMetadataLog::start(config).await.expect("start");
        tokio::spawn(log.serve(listener, None));
        log.initialize(&BTreeMap::from([(NodeId(1), addr)])).await.expect("initialize");
        assert!(log.wait_until_current(WAIT).await.expect("wait"), "no leader within {WAIT:?}");
        log
    }

    #[test]
    fn a_duplicate_is_waited_out_for_a_session_under_each_active_controller() {
        let start = tokio::time::Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut p = DuplicatePatience::new(Duration::from_millis(1_000));
        assert!(p.refused(Some(NodeId(2)), at(0)));
        assert!(p.refused(Some(NodeId(2)), at(999)));
        // Controller 1 became active and gave the dead incarnation a fresh
        // session: a session is waited out again from its first refusal.
        assert!(p.refused(Some(NodeId(1)), at(900)));
        assert!(p.refused(Some(NodeId(1)), at(1_899)));
        assert!(!p.refused(Some(NodeId(1)), at(1_900)), "a live duplicate: start-up stops");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_live_process_with_the_id_is_refused_and_a_controlled_shutdown_fences_the_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = quorum(dir.path(), 600).await;
        let first =
            Arc::new(Lifecycle::new(ControllerChannel::in_process(log.clone(), CLUSTER), NodeId(7), CLUSTER, 100, 600));
        let process = BrokerProcess { version: "9.8.7".into(), start_time_ms: 1_700_000_000_000 };
        first.register(vec![], None, process.clone()).await.expect("the first registers");
        let registered = log.committed().image.brokers().get(&NodeId(7)).and_then(|b| b.process.clone());
        assert_eq!(registered, Some(process), "the registration carries the process's version and start time");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        first.spawn_heartbeats(async move {
            let _ = stopped.await;
        });
        tokio::time::timeout(WAIT, first.wait_unfenced()).await.expect("unfenced in time");
        assert!(log.committed().image.is_unfenced(NodeId(7)));

        // Another process with node id 7 tries for a session and more, then gives up.
        let second = Lifecycle::new(ControllerChannel::in_process(log.clone(), CLUSTER), NodeId(7), CLUSTER, 100, 600);
        let refused =
            tokio::time::timeout(WAIT, second.register(vec![], None, test_process())).await.expect("gave up in time");
        let message = refused.expect_err("a live duplicate").to_string();
        assert!(message.contains("DUPLICATE_BROKER_REGISTRATION") && message.contains("node.id 7"), "{message}");
        assert!(log.committed().image.is_unfenced(NodeId(7)), "the live registration is untouched");

        // The first shuts down under control: fenced by the controller, not by expiry.
        tokio::time::timeout(WAIT, first.controlled_shutdown()).await.expect("within its bound");
        assert!(!log.committed().image.is_unfenced(NodeId(7)));
        let _ = stop.send(());
        log.shutdown().await.expect("shutdown");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_clusters_broker_is_refused_and_start_up_stops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = quorum(dir.path(), 600).await;
        let stranger =
            Lifecycle::new(ControllerChannel::in_process(log.clone(), CLUSTER), NodeId(8), "other", 100, 600);
        let refused =
            tokio::time::timeout(WAIT, stranger.register(vec![], None, test_process())).await.expect("bounded");
        let message = refused.expect_err("another cluster").to_string();
        assert!(message.contains("INCONSISTENT_CLUSTER_ID") && message.contains("other"), "{message}");
        assert!(!log.committed().image.brokers().contains_key(&NodeId(8)), "nothing registered");
        log.shutdown().await.expect("shutdown");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_controlled_shutdown_without_a_controller_stops_anyway_after_its_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = quorum(dir.path(), 600).await;
        let mut lifecycle =
            Lifecycle::new(ControllerChannel::in_process(log.clone(), CLUSTER), NodeId(7), CLUSTER, 100, 600);
        lifecycle.shutdown_limit = Duration::from_millis(300);
        let lifecycle = Arc::new(lifecycle);
        lifecycle.register(vec![], None, test_process()).await.expect("registers");
        // Unfenced first: a fenced broker leads nothing and may stop at once.
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        lifecycle.spawn_heartbeats(async move {
            let _ = stopped.await;
        });
        tokio::time::timeout(WAIT, lifecycle.wait_unfenced()).await.expect("unfenced in time");
        let _ = stop.send(());
        log.shutdown().await.expect("the controller stops");
        let started = tokio::time::Instant::now();
        tokio::time::timeout(WAIT, lifecycle.controlled_shutdown()).await.expect("bounded");
        assert!(started.elapsed() >= Duration::from_millis(300), "gave up before its bound: {:?}", started.elapsed());
    }
}
