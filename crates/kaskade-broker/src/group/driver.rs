//! The async shell around the engine: one task owns the
//! [`GroupCoordinator`], runs the calls handlers send it, sleeps until the
//! engine's next deadline, and completes parked JoinGroup/SyncGroup
//! requests when the engine answers them. No decision is taken here.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::coordinator::GroupCoordinator;
use super::store::OffsetsStore;
use super::types::{GroupConfig, JoinRequest, JoinResponse, Reply, SyncRequest, SyncResponse, Token};
use crate::error::BrokerError;
use crate::topic::TopicManager;
use kaskade_log::Log;

/// `offsets.retention.check.interval.ms` (Kafka's default).
const RETENTION_CHECK_INTERVAL_MS: i64 = 600_000;

type Command = Box<dyn FnOnce(&mut Core) + Send>;

/// What the coordinator task owns.
struct Core {
    engine: GroupCoordinator,
    store: Option<Arc<OffsetsStore>>,
    parked: HashMap<Token, oneshot::Sender<Reply>>,
    next_token: Token,
}

impl Core {
    /// Appends the engine's offset changes; what to wait on for
    /// durability.
    fn persist(&mut self) -> Result<Vec<(Arc<Log>, i64)>, BrokerError> {
        let mut records: Vec<(String, Bytes, Option<Bytes>)> = self
            .engine
            .take_offset_changes()
            .iter()
            .map(|c| {
                let (key, value) = super::records::encode_change(c);
                (c.group_id.clone(), key, value)
            })
            .collect();
        for id in self.engine.take_dirty_groups() {
            let value = self.engine.group(&id).map(super::records::group_value);
            records.push((id.clone(), super::records::group_key(&id), value));
        }
        let txn_changes = self.engine.take_txn_offset_changes();
        let Some(store) = &self.store else { return Ok(Vec::new()) };
        let mut waits = Vec::new();
        if !records.is_empty() {
            waits.extend(store.append(&records, now_ms(), None)?);
        }
        // One batch per producer: each is its transaction's.
        type Records = Vec<(String, Bytes, Option<Bytes>)>;
        let mut by_producer: HashMap<(i64, i16), Records> = HashMap::new();
        for (pid, epoch, c) in txn_changes {
            let (key, value) = super::records::encode_change(&c);
            by_producer.entry((pid, epoch)).or_default().push((c.group_id.clone(), key, value));
        }
        for (producer, records) in by_producer {
            waits.extend(store.append(&records, now_ms(), Some(producer))?);
        }
        Ok(waits)
    }

    /// Sends the engine's answers to parked requests. When the same step
    /// changed persisted state (a SyncGroup storing the leader's
    /// assignment), the answers wait until it is durable, as Kafka answers
    /// only after the group is stored.
    fn deliver(&mut self) {
        let waits = self.persist().unwrap_or_else(|e| {
            tracing::error!("persisting group state: {e}");
            Vec::new()
        });
        let ready: Vec<(oneshot::Sender<Reply>, Reply)> = self
            .engine
            .take_completions()
            .into_iter()
            .filter_map(|c| self.parked.remove(&c.token).map(|tx| (tx, c.reply)))
            .collect();
        let send = |ready: Vec<(oneshot::Sender<Reply>, Reply)>| {
            for (tx, reply) in ready {
                // The requester may be gone (connection closed): nothing to do.
                let _ = tx.send(reply);
            }
        };
        if waits.is_empty() || ready.is_empty() {
            return send(ready);
        }
        tokio::spawn(async move {
            for (log, end) in waits {
                if let Err(e) = log.wait_durable(end).await {
                    tracing::error!("group state not durable: {e}");
                }
            }
            send(ready);
        });
    }

    fn park(&mut self) -> (Token, oneshot::Receiver<Reply>) {
        self.next_token += 1;
        let (tx, rx) = oneshot::channel();
        self.parked.insert(self.next_token, tx);
        (self.next_token, rx)
    }
}

/// Wall-clock milliseconds (commit timestamps are wall-clock, as Kafka's).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Handle to the coordinator task, started on first use (inside the
/// runtime).
pub struct GroupService {
    config: GroupConfig,
    retention_ms: i64,
    store: Option<Arc<OffsetsStore>>,
    tx: OnceLock<mpsc::UnboundedSender<Command>>,
}

impl std::fmt::Debug for GroupService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupService").finish_non_exhaustive()
    }
}

impl GroupService {
    /// The service the broker's configuration describes.
    pub fn from_config(config: &crate::config::BrokerConfig, topics: Arc<TopicManager>) -> Self {
        let groups = GroupConfig {
            min_session_timeout_ms: config.group_min_session_timeout_ms,
            max_session_timeout_ms: config.group_max_session_timeout_ms,
            initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
            max_size: usize::try_from(config.group_max_size).unwrap_or(usize::MAX),
            ..GroupConfig::default()
        };
        let store = OffsetsStore::new(topics, config.offsets_topic_num_partitions);
        let mut service = Self::new(groups, i64::from(config.offsets_retention_minutes) * 60_000);
        service.store = Some(Arc::new(store));
        service
    }

    /// A service; `retention_ms` is `offsets.retention.minutes` in ms.
    pub fn new(config: GroupConfig, retention_ms: i64) -> Self {
        GroupService { config, retention_ms, store: None, tx: OnceLock::new() }
    }

    fn sender(&self) -> &mpsc::UnboundedSender<Command> {
        self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let engine = GroupCoordinator::new(self.config.clone(), now_ms() as u64 ^ u64::from(std::process::id()));
            tokio::spawn(run(engine, self.store.clone(), rx, self.retention_ms));
            tx
        })
    }

    /// Runs `f` on the engine with the current time; its result.
    pub async fn call<R, F>(&self, f: F) -> Result<R, BrokerError>
    where
        R: Send + 'static,
        F: FnOnce(&mut GroupCoordinator, i64) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let command: Command = Box::new(move |core: &mut Core| {
            let _ = tx.send(f(&mut core.engine, now_ms()));
        });
        self.sender().send(command).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }

    /// A transaction's markers are durable on these `__consumer_offsets`
    /// partitions: the producer's pending offsets stored there become the
    /// committed ones (`commit`) or are dropped. Both the transaction
    /// coordinator and WriteTxnMarkers end transactions through here.
    pub async fn complete_txn(&self, producer_id: i64, commit: bool, partitions: Vec<i32>) -> Result<(), BrokerError> {
        let count = self.store.as_ref().map_or(0, |s| s.partition_count());
        self.call(move |engine, now| {
            for p in partitions {
                engine.complete_txn(now, producer_id, commit, p, count);
            }
        })
        .await
    }

    /// Runs `f` on the engine, persists the offset changes it made and
    /// resolves once they are durable (OffsetCommit, deletions).
    pub async fn call_durable<R, F>(&self, f: F) -> Result<R, BrokerError>
    where
        R: Send + 'static,
        F: FnOnce(&mut GroupCoordinator, i64) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let command: Command = Box::new(move |core: &mut Core| {
            let result = f(&mut core.engine, now_ms());
            let _ = tx.send(core.persist().map(|waits| (result, waits)));
        });
        self.sender().send(command).map_err(|_| gone())?;
        let (result, waits) = rx.await.map_err(|_| gone())??;
        for (log, end) in waits {
            log.wait_durable(end).await.map_err(|e| BrokerError::internal(format!("offsets not durable: {e}")))?;
        }
        Ok(result)
    }

    /// JoinGroup: resolves when the engine answers (possibly after the
    /// join phase ends).
    pub async fn join(&self, req: JoinRequest) -> Result<JoinResponse, BrokerError> {
        match self.parked(move |engine, now, token| engine.join(now, token, req)).await? {
            Reply::Join(r) => Ok(r),
            Reply::Sync(_) => Err(BrokerError::internal("a SyncGroup answer to a JoinGroup")),
        }
    }

    /// SyncGroup: resolves when the engine answers (possibly when the
    /// leader's assignment arrives).
    pub async fn sync(&self, req: SyncRequest) -> Result<SyncResponse, BrokerError> {
        match self.parked(move |engine, now, token| engine.sync(now, token, req)).await? {
            Reply::Sync(r) => Ok(r),
            Reply::Join(_) => Err(BrokerError::internal("a JoinGroup answer to a SyncGroup")),
        }
    }

    async fn parked<F>(&self, f: F) -> Result<Reply, BrokerError>
    where
        F: FnOnce(&mut GroupCoordinator, i64, Token) + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let command: Command = Box::new(move |core: &mut Core| {
            let (token, reply) = core.park();
            f(&mut core.engine, now_ms(), token);
            let _ = tx.send(reply);
        });
        self.sender().send(command).map_err(|_| gone())?;
        let reply = rx.await.map_err(|_| gone())?;
        reply.await.map_err(|_| gone())
    }
}

fn gone() -> BrokerError {
    BrokerError::internal("the group coordinator stopped")
}

async fn run(
    mut engine: GroupCoordinator,
    store: Option<Arc<OffsetsStore>>,
    mut rx: mpsc::UnboundedReceiver<Command>,
    retention_ms: i64,
) {
    if let Some(store) = store.clone() {
        // Requests queue up until the committed offsets are loaded.
        let loaded = tokio::task::spawn_blocking(move || {
            let result = store.ensure_topic().and_then(|()| store.load(&mut engine, now_ms()));
            (engine, result)
        })
        .await;
        match loaded {
            Ok((e, result)) => {
                engine = e;
                match result {
                    Ok(n) => tracing::info!(records = n, "loaded committed offsets"),
                    Err(e) => tracing::error!("loading committed offsets: {e}"),
                }
            }
            Err(e) => {
                tracing::error!("loading committed offsets panicked: {e}");
                return;
            }
        }
    }
    let mut core = Core { engine, store, parked: HashMap::new(), next_token: 0 };
    let mut next_retention_check = now_ms() + RETENTION_CHECK_INTERVAL_MS;
    loop {
        let now = now_ms();
        let deadline = core.engine.next_deadline().map_or(next_retention_check, |d| d.min(next_retention_check));
        let sleep = Duration::from_millis(u64::try_from(deadline - now).unwrap_or(0));
        tokio::select! {
            command = rx.recv() => match command {
                Some(command) => command(&mut core),
                None => return,
            },
            () = tokio::time::sleep(sleep) => {
                let now = now_ms();
                core.engine.tick(now);
                if now >= next_retention_check {
                    core.engine.expire_offsets(now, retention_ms);
                    next_retention_check = now + RETENTION_CHECK_INTERVAL_MS;
                }
            }
        }
        core.deliver();
    }
}
