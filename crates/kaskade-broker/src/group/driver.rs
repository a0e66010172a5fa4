//! The async shell around the engine: one task owns the
//! [`GroupCoordinator`], runs the calls handlers send it, sleeps until the
//! engine's next deadline, and completes parked JoinGroup/SyncGroup
//! requests when the engine answers them. No decision is taken here.
//!
//! The task serves only the groups of the `__consumer_offsets` partitions
//! it leads ([`Leadership`]): [`GroupService::on_become_leader`] replays a
//! partition's records into the engine in the background (its groups answer
//! COORDINATOR_LOAD_IN_PROGRESS meanwhile), [`GroupService::on_resign`]
//! drops its groups (NOT_COORDINATOR from then on). The partitions led when
//! the task starts are loaded before any request runs, so that start-up
//! never shows a client a loading coordinator. Time comes from the injected
//! [`Clock`]; the task depends on [`InternalPartitions`], never on the
//! broker.
//!
//! Each step's records are appended at once; a task of its own awaits the
//! appends and reports them back as a `Resolution`, which settles the
//! writes the step opened in the engine (`writes`: commits become visible,
//! SyncGroup answers) before the waiting OffsetCommit is answered, so a
//! client that heard success reads its commit back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::records::Record;
use kaskade_types::{Clock, ProducerId, ProducerIdAndEpoch};
use tokio::sync::{mpsc, oneshot};

use super::coordinator::GroupCoordinator;
use super::records::partition_for;
use super::records::OFFSETS_TOPIC;
use super::store::{GroupRecord, OffsetsStore};
use super::types::{GroupConfig, JoinRequest, JoinResponse, Reply, SyncRequest, SyncResponse, Token};
use super::writes::WriteId;
use crate::coordinator::{Appended, CoordinatorError, FollowAction, InternalPartitions, Leadership};
use crate::error::BrokerError;

/// `offsets.retention.check.interval.ms` (Kafka's default).
const RETENTION_CHECK_INTERVAL_MS: i64 = 600_000;
/// Pause before reading a partition again after a failed load.
const LOAD_RETRY: Duration = Duration::from_secs(1);

type Command = Box<dyn FnOnce(&mut Core) + Send>;

/// A partition's records, read for load `generation`.
struct Load {
    partition: i32,
    generation: u64,
    records: Result<Vec<Record>, CoordinatorError>,
}

/// One step's appends resolved: each `__consumer_offsets` partition's
/// outcome, the writes the step opened (with their partition), and who
/// waits for the step (OffsetCommit, TxnOffsetCommit, deletions).
struct Resolution {
    outcomes: Outcomes,
    writes: Vec<(WriteId, i32)>,
    notify: Option<oneshot::Sender<Outcomes>>,
}

/// Each `__consumer_offsets` partition a step appended to, and whether the
/// ISR holds its appends.
pub type Outcomes = BTreeMap<i32, Result<(), CoordinatorError>>;

/// What one step appended: the writes it opened and each partition's
/// appends.
#[derive(Default)]
struct Persisted {
    writes: Vec<(WriteId, i32)>,
    appends: Vec<(i32, Appended)>,
}

/// An OffsetFetch with `require_stable` waiting for its groups' writes.
struct StableWaiter {
    remaining: HashMap<WriteId, String>,
    /// Groups one of whose writes failed.
    failed: HashSet<String>,
    tx: oneshot::Sender<HashSet<String>>,
}

/// Which groups the task may answer for (all of them without a store).
pub struct Gate<'a> {
    leadership: Option<&'a Leadership>,
    partitions: i32,
}

impl Gate<'_> {
    /// Whether `group_id` is served here; the error to answer otherwise
    /// (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS).
    pub fn check(&self, group_id: &str) -> Result<(), ResponseError> {
        match self.leadership {
            None => Ok(()),
            Some(l) => l.check(partition_for(group_id, self.partitions)).map_err(|e| e.response_error()),
        }
    }

    /// Whether some partition is still loading.
    pub fn any_loading(&self) -> bool {
        self.leadership.is_some_and(Leadership::any_loading)
    }
}

/// What the coordinator task owns.
struct Core {
    engine: GroupCoordinator,
    store: Option<Arc<OffsetsStore>>,
    clock: Arc<dyn Clock>,
    parked: HashMap<Token, oneshot::Sender<Reply>>,
    next_token: Token,
    leadership: Leadership,
    /// `__consumer_offsets`' partition count.
    partitions: i32,
    /// Loads started when the task started: requests wait for them.
    initial: HashSet<i32>,
    /// Callers of `on_become_leader` waiting for their partition's load.
    load_waiters: HashMap<i32, Vec<oneshot::Sender<Result<(), CoordinatorError>>>>,
    loads: mpsc::UnboundedSender<Load>,
    /// Where a step's appends report back once resolved.
    resolutions: mpsc::UnboundedSender<Resolution>,
    stable_waiters: Vec<StableWaiter>,
}

impl Core {
    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    fn gate(&self) -> Gate<'_> {
        Gate { leadership: self.store.as_ref().map(|_| &self.leadership), partitions: self.partitions }
    }

    /// This node became the leader of `partition` in leader `epoch`: it is
    /// Loading until its records are replayed.
    fn begin_load(&mut self, partition: i32, epoch: i32) {
        let generation = self.leadership.begin_load(partition, epoch);
        tracing::info!(partition, epoch, generation, "{OFFSETS_TOPIC}: loading");
        self.read(partition, generation, Duration::ZERO);
    }

    /// Reads the partition on the blocking pool (after `delay`) and hands
    /// the records back to the task.
    fn read(&self, partition: i32, generation: u64, delay: Duration) {
        let (Some(store), loads) = (self.store.clone(), self.loads.clone()) else { return };
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let records = tokio::task::spawn_blocking(move || store.read(partition))
                .await
                .unwrap_or_else(|e| Err(CoordinatorError::Unavailable(format!("load task failed: {e}"))));
            // The task is gone only when the service is.
            let _ = loads.send(Load { partition, generation, records });
        });
    }

    /// A read finished: replays it if it is still the partition's current
    /// load; a failed read is retried while it is.
    fn finish_load(&mut self, load: Load) {
        let Load { partition, generation, records } = load;
        self.initial.remove(&partition);
        if !self.leadership.is_current(partition, generation) {
            return;
        }
        match records {
            Ok(records) => {
                let now = self.now();
                let n = OffsetsStore::replay(&mut self.engine, now, partition, self.partitions, &records);
                let loaded = self.leadership.finish_load(partition, generation);
                debug_assert!(loaded, "the current load finishes");
                let epoch = self.leadership.epoch(partition);
                tracing::info!(partition, ?epoch, generation, records = n, "{OFFSETS_TOPIC}: loaded");
                self.notify_loaded(partition, Ok(()));
            }
            Err(e) => {
                tracing::error!(partition, "loading committed offsets, retrying: {e}");
                self.read(partition, generation, LOAD_RETRY);
            }
        }
    }

    fn notify_loaded(&mut self, partition: i32, result: Result<(), CoordinatorError>) {
        for tx in self.load_waiters.remove(&partition).unwrap_or_default() {
            let _ = tx.send(result.clone());
        }
    }

    /// Serves exactly the partitions in `leaders` (with their leader
    /// epochs): loads the newly led ones, drops the ones led elsewhere now
    /// (Kafka's onElection / onResignation), and loads again one led in
    /// another epoch than the one loaded or loading: this node lost it and
    /// got it back, maybe without an image in between that said so, and
    /// another coordinator may have written meanwhile.
    fn follow(&mut self, leaders: &BTreeMap<i32, i32>) {
        for partition in 0..self.partitions {
            match self.leadership.follow(partition, leaders.get(&partition).copied()) {
                FollowAction::Keep => {}
                FollowAction::Load { epoch } => self.begin_load(partition, epoch),
                FollowAction::Reload { was, epoch } => {
                    tracing::info!(
                        partition,
                        was,
                        epoch,
                        "{OFFSETS_TOPIC} led under a new leader epoch: loading again"
                    );
                    self.resign(partition);
                    self.begin_load(partition, epoch);
                }
                FollowAction::Resign => self.resign(partition),
            }
        }
    }

    /// This node no longer leads `partition`: its groups go.
    fn resign(&mut self, partition: i32) {
        let epoch = self.leadership.epoch(partition);
        self.leadership.resign(partition);
        let dropped = self.engine.unload_partition(partition, self.partitions);
        tracing::info!(partition, ?epoch, groups = dropped.len(), "{OFFSETS_TOPIC}: unloading");
        self.notify_loaded(partition, Err(CoordinatorError::NotCoordinator));
    }

    /// Appends the changes of the engine's last step (offsets, groups,
    /// transactional offsets) and takes the writes it opened.
    fn persist(&mut self) -> Persisted {
        let mut records: Vec<GroupRecord> = self
            .engine
            .take_offset_changes()
            .iter()
            .map(|c| {
                let (key, value) = super::records::encode_change(c);
                GroupRecord { group_id: c.group_id.clone(), key, value }
            })
            .collect();
        for id in self.engine.take_dirty_groups() {
            let value = self.engine.group(&id).map(super::records::group_value);
            records.push(GroupRecord { group_id: id.clone(), key: super::records::group_key(&id), value });
        }
        for id in self.engine.take_group_tombstones() {
            records.push(GroupRecord { group_id: id.clone(), key: super::records::group_key(&id), value: None });
        }
        let txn_changes = self.engine.take_txn_offset_changes();
        let writes = self.engine.take_opened_writes();
        let partitions = self.partitions;
        let writes = writes.into_iter().map(|(id, group)| (id, partition_for(&group, partitions))).collect();
        let Some(store) = &self.store else { return Persisted { writes, appends: Vec::new() } };
        let now = self.clock.now_ms();
        let mut appends = Vec::new();
        let leadership = &self.leadership;
        let epoch_of = |p: i32| leadership.epoch(p);
        if !records.is_empty() {
            appends.extend(store.append(&records, now, None, epoch_of));
        }
        // One batch per producer: each is its transaction's.
        let mut by_producer: HashMap<ProducerIdAndEpoch, Vec<GroupRecord>> = HashMap::new();
        for super::TxnOffsetChange { producer, change: c } in txn_changes {
            let (key, value) = super::records::encode_change(&c);
            by_producer.entry(producer).or_default().push(GroupRecord { group_id: c.group_id.clone(), key, value });
        }
        for (producer, records) in by_producer {
            appends.extend(store.append(&records, now, Some(producer), epoch_of));
        }
        Persisted { writes, appends }
    }

    /// Waits (in a task of its own) for a step's appends and reports them
    /// back to the engine as a [`Resolution`]; without appends (no store)
    /// the step resolves at once.
    fn await_appends(&mut self, persisted: Persisted, notify: Option<oneshot::Sender<Outcomes>>) {
        let Persisted { writes, appends } = persisted;
        if appends.is_empty() {
            return self.resolve(Resolution { outcomes: BTreeMap::new(), writes, notify });
        }
        let resolutions = self.resolutions.clone();
        tokio::spawn(async move {
            let mut by_partition: BTreeMap<i32, Vec<Appended>> = BTreeMap::new();
            for (partition, appended) in appends {
                by_partition.entry(partition).or_default().push(appended);
            }
            let waits = by_partition.into_iter().map(|(p, a)| async move { (p, Appended::all(a).await) });
            let outcomes = futures::future::join_all(waits).await.into_iter().collect();
            // The task is gone only when the service is.
            let _ = resolutions.send(Resolution { outcomes, writes, notify });
        });
    }

    /// A step's appends resolved: each write it opened settles in the
    /// engine (visible, or dropped with its error), then whoever waits
    /// hears the step's first failure.
    fn resolve(&mut self, r: Resolution) {
        let now = self.now();
        for (id, partition) in &r.writes {
            let outcome = r.outcomes.get(partition).cloned().unwrap_or(Ok(()));
            if let Err(e) = &outcome {
                tracing::warn!(partition, "a group coordinator write was not replicated: {e}");
            }
            self.engine.write_resolved(now, *id, outcome.as_ref().map(|_| ()).map_err(|e| e.response_error()));
            for w in &mut self.stable_waiters {
                if let Some(group) = w.remaining.remove(id) {
                    if outcome.is_err() {
                        w.failed.insert(group);
                    }
                }
            }
        }
        let (done, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.stable_waiters).into_iter().partition(|w| w.remaining.is_empty());
        self.stable_waiters = waiting;
        for w in done {
            let _ = w.tx.send(w.failed);
        }
        if let Some(tx) = r.notify {
            let _ = tx.send(r.outcomes);
        }
    }

    /// Persists what the last step changed and sends the engine's answers
    /// to parked requests. SyncGroup's answers come only once the group's
    /// assignment is stored (`writes`), so nothing here waits.
    fn deliver(&mut self) {
        let persisted = self.persist();
        if !persisted.writes.is_empty() || !persisted.appends.is_empty() {
            self.await_appends(persisted, None);
        }
        let ready: Vec<(oneshot::Sender<Reply>, Reply)> = self
            .engine
            .take_completions()
            .into_iter()
            .filter_map(|c| self.parked.remove(&c.token).map(|tx| (tx, c.reply)))
            .collect();
        for (tx, reply) in ready {
            // The requester may be gone (connection closed): nothing to do.
            let _ = tx.send(reply);
        }
    }

    fn park(&mut self) -> (Token, oneshot::Receiver<Reply>) {
        self.next_token += 1;
        let (tx, rx) = oneshot::channel();
        self.parked.insert(self.next_token, tx);
        (self.next_token, rx)
    }
}

/// Handle to the coordinator task, started on first use (inside the
/// runtime).
pub struct GroupService {
    config: GroupConfig,
    retention_ms: i64,
    store: Option<Arc<OffsetsStore>>,
    clock: Arc<dyn Clock>,
    tx: OnceLock<mpsc::UnboundedSender<Command>>,
}

impl std::fmt::Debug for GroupService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupService").finish_non_exhaustive()
    }
}

impl GroupService {
    /// The service the broker's configuration describes, storing groups in
    /// `offsets_topic`.
    pub fn from_config(
        config: &crate::config::BrokerConfig,
        offsets_topic: Arc<dyn InternalPartitions>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let groups = GroupConfig {
            min_session_timeout_ms: config.group_min_session_timeout_ms,
            max_session_timeout_ms: config.group_max_session_timeout_ms,
            initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
            max_size: usize::try_from(config.group_max_size).unwrap_or(usize::MAX),
            ..GroupConfig::default()
        };
        let retention_ms = i64::from(config.offsets_retention_minutes) * 60_000;
        let store = OffsetsStore::new(offsets_topic, config.offsets_topic_num_partitions);
        Self::with_store(groups, retention_ms, Some(Arc::new(store)), clock)
    }

    /// A service without persistence (every group is served here);
    /// `retention_ms` is `offsets.retention.minutes` in ms.
    pub fn new(config: GroupConfig, retention_ms: i64) -> Self {
        Self::with_store(config, retention_ms, None, Arc::new(kaskade_types::SystemClock))
    }

    fn with_store(
        config: GroupConfig,
        retention_ms: i64,
        store: Option<Arc<OffsetsStore>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        GroupService { config, retention_ms, store, clock, tx: OnceLock::new() }
    }

    /// Starts the task now when `__consumer_offsets` exists (start-up), so
    /// its partitions load before the first group request.
    pub fn start(&self) {
        if self.store.as_ref().is_some_and(|s| s.exists()) {
            self.sender();
        }
    }

    fn sender(&self) -> &mpsc::UnboundedSender<Command> {
        self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let (loads, loads_rx) = mpsc::unbounded_channel();
            let (resolutions, resolutions_rx) = mpsc::unbounded_channel();
            let now = self.clock.now_ms();
            let core = Core {
                engine: GroupCoordinator::new(self.config.clone(), now as u64 ^ u64::from(std::process::id())),
                store: self.store.clone(),
                clock: self.clock.clone(),
                parked: HashMap::new(),
                next_token: 0,
                leadership: Leadership::new(),
                partitions: self.store.as_ref().map_or(1, |s| s.partition_count()),
                initial: HashSet::new(),
                load_waiters: HashMap::new(),
                loads,
                resolutions,
                stable_waiters: Vec::new(),
            };
            tokio::spawn(run(core, rx, loads_rx, resolutions_rx, self.retention_ms));
            tx
        })
    }

    async fn command<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Core) -> R + Send + 'static,
    ) -> Result<R, BrokerError> {
        let (tx, rx) = oneshot::channel();
        let command: Command = Box::new(move |core: &mut Core| {
            let _ = tx.send(f(core));
        });
        self.sender().send(command).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }

    /// This node became the leader of `__consumer_offsets` partition
    /// `partition`: loads its groups; resolves once they are loaded (or the
    /// node resigned meanwhile: NOT_COORDINATOR).
    pub async fn on_become_leader(&self, partition: i32) -> Result<(), CoordinatorError> {
        let epoch = self.store.as_ref().and_then(|s| s.leaders().get(&partition).copied());
        let Some(epoch) = epoch else { return Err(CoordinatorError::NotCoordinator) };
        let rx = self
            .command(move |core| {
                let (tx, rx) = oneshot::channel();
                core.begin_load(partition, epoch);
                core.load_waiters.entry(partition).or_default().push(tx);
                rx
            })
            .await
            .map_err(|_| CoordinatorError::Stopped)?;
        rx.await.map_err(|_| CoordinatorError::Stopped)?
    }

    /// The metadata image changed: serves the `__consumer_offsets`
    /// partitions it names this node the leader of, loading new ones and
    /// dropping the others. Starts the task if the topic exists.
    pub async fn on_metadata_change(&self) -> Result<(), BrokerError> {
        let Some(store) = self.store.clone() else { return Ok(()) };
        if !store.exists() {
            return Ok(());
        }
        let leaders = store.leaders();
        self.command(move |core| core.follow(&leaders)).await
    }

    /// This node no longer leads `partition`: its groups are dropped.
    pub async fn on_resign(&self, partition: i32) -> Result<(), BrokerError> {
        self.command(move |core| core.resign(partition)).await
    }

    /// Runs `f` on the engine with the current time; its result. Not
    /// gated: for operations on every group served here.
    pub async fn call<R, F>(&self, f: F) -> Result<R, BrokerError>
    where
        R: Send + 'static,
        F: FnOnce(&mut GroupCoordinator, i64) -> R + Send + 'static,
    {
        self.command(move |core| {
            let now = core.now();
            f(&mut core.engine, now)
        })
        .await
    }

    /// Runs `f` on the engine with the current time and the [`Gate`] that
    /// says which groups are served here.
    pub async fn call_gated<R, F>(&self, f: F) -> Result<R, BrokerError>
    where
        R: Send + 'static,
        F: FnOnce(&mut GroupCoordinator, i64, &Gate<'_>) -> R + Send + 'static,
    {
        self.command(move |core| {
            let now = core.now();
            let gate = Gate { leadership: core.store.as_ref().map(|_| &core.leadership), partitions: core.partitions };
            f(&mut core.engine, now, &gate)
        })
        .await
    }

    /// A transaction's markers are durable on these `__consumer_offsets`
    /// partitions: the producer's pending offsets stored there become the
    /// committed ones (`commit`) or are dropped. Partitions not led here
    /// are not this coordinator's to settle.
    pub async fn complete_txn(
        &self,
        producer_id: ProducerId,
        commit: bool,
        partitions: Vec<i32>,
    ) -> Result<(), BrokerError> {
        self.command(move |core| {
            let (now, count) = (core.now(), core.partitions);
            for p in partitions {
                if core.store.is_none() || core.leadership.check(p).is_ok() {
                    core.engine.complete_txn(now, producer_id, commit, p, count);
                }
            }
        })
        .await
    }

    /// Runs `f` on the engine, persists the changes it made and resolves
    /// once they are durable (OffsetCommit, deletions). Not gated.
    pub async fn call_durable<R, F>(&self, f: F) -> Result<R, BrokerError>
    where
        R: Send + 'static,
        F: FnOnce(&mut GroupCoordinator, i64) -> R + Send + 'static,
    {
        self.call_durable_gated(move |engine, now, _| f(engine, now)).await
    }

    /// [`GroupService::call_durable`] with the [`Gate`].
    pub async fn call_durable_gated<R, F>(&self, f: F) -> Result<R, BrokerError>
    where
        R: Send + 'static,
        F: FnOnce(&mut GroupCoordinator, i64, &Gate<'_>) -> R + Send + 'static,
    {
        let (result, outcomes, _) = self.call_durable_by_partition(f).await?;
        // Not held by the ISR: the coordinator's error (NOT_COORDINATOR,
        // COORDINATOR_NOT_AVAILABLE), which the handlers answer per item;
        // the engine dropped what the step wrote before this resolves.
        if let Some(e) = outcomes.into_values().find_map(Result::err) {
            return Err(BrokerError::kafka(e.response_error(), format!("offsets not replicated: {e}")));
        }
        Ok(result)
    }

    /// [`GroupService::call_durable_gated`] for a step that writes to
    /// several partitions (DeleteGroups): its result once every append
    /// resolved, each partition's outcome, and the partition count (for
    /// `partition_for`). The engine settled every write before this
    /// returns.
    pub async fn call_durable_by_partition<R, F>(&self, f: F) -> Result<(R, Outcomes, i32), BrokerError>
    where
        R: Send + 'static,
        F: FnOnce(&mut GroupCoordinator, i64, &Gate<'_>) -> R + Send + 'static,
    {
        let (result, replicated, partitions) = self
            .command(move |core| {
                let now = core.now();
                let gate =
                    Gate { leadership: core.store.as_ref().map(|_| &core.leadership), partitions: core.partitions };
                let result = f(&mut core.engine, now, &gate);
                let persisted = core.persist();
                let (tx, rx) = oneshot::channel();
                core.await_appends(persisted, Some(tx));
                (result, rx, core.partitions)
            })
            .await?;
        let outcomes = replicated.await.map_err(|_| gone())?;
        Ok((result, outcomes, partitions))
    }

    /// Waits until the writes of `groups` pending now have resolved
    /// (OffsetFetch with `require_stable`, Kafka's write operation that
    /// waits for the pending writes); the groups one of whose writes
    /// failed.
    pub async fn wait_stable(&self, groups: Vec<String>) -> Result<HashSet<String>, BrokerError> {
        let rx = self
            .command(move |core| {
                let remaining: HashMap<WriteId, String> = groups
                    .iter()
                    .flat_map(|g| core.engine.pending_writes_of(g).into_iter().map(move |id| (id, g.clone())))
                    .collect();
                let (tx, rx) = oneshot::channel();
                if remaining.is_empty() {
                    let _ = tx.send(HashSet::new());
                } else {
                    core.stable_waiters.push(StableWaiter { remaining, failed: HashSet::new(), tx });
                }
                rx
            })
            .await?;
        rx.await.map_err(|_| gone())
    }

    /// JoinGroup: resolves when the engine answers (possibly after the
    /// join phase ends).
    pub async fn join(&self, req: JoinRequest) -> Result<JoinResponse, BrokerError> {
        let member_id = req.member_id.clone();
        let reply = self
            .parked(&req.group_id.clone(), move |engine, now, token| engine.join(now, token, req))
            .await?
            .unwrap_or_else(|e| Reply::Join(JoinResponse::error(e, &member_id)));
        match reply {
            Reply::Join(r) => Ok(r),
            Reply::Sync(_) => Err(BrokerError::internal("a SyncGroup answer to a JoinGroup")),
        }
    }

    /// SyncGroup: resolves when the engine answers (possibly when the
    /// leader's assignment arrives).
    pub async fn sync(&self, req: SyncRequest) -> Result<SyncResponse, BrokerError> {
        let reply = self
            .parked(&req.group_id.clone(), move |engine, now, token| engine.sync(now, token, req))
            .await?
            .unwrap_or_else(|e| Reply::Sync(SyncResponse::error(e)));
        match reply {
            Reply::Sync(r) => Ok(r),
            Reply::Join(_) => Err(BrokerError::internal("a JoinGroup answer to a SyncGroup")),
        }
    }

    /// Parks a request of `group_id` (if served here) and waits for its
    /// answer.
    async fn parked<F>(&self, group_id: &str, f: F) -> Result<Result<Reply, ResponseError>, BrokerError>
    where
        F: FnOnce(&mut GroupCoordinator, i64, Token) + Send + 'static,
    {
        let group_id = group_id.to_string();
        let reply = self
            .command(move |core| {
                core.gate().check(&group_id)?;
                let (token, reply) = core.park();
                let now = core.now();
                f(&mut core.engine, now, token);
                Ok(reply)
            })
            .await?;
        match reply {
            Ok(reply) => reply.await.map(Ok).map_err(|_| gone()),
            Err(e) => Ok(Err(e)),
        }
    }
}

fn gone() -> BrokerError {
    BrokerError::internal("the group coordinator stopped")
}

async fn run(
    mut core: Core,
    mut rx: mpsc::UnboundedReceiver<Command>,
    mut loads: mpsc::UnboundedReceiver<Load>,
    mut resolutions: mpsc::UnboundedReceiver<Resolution>,
    retention_ms: i64,
) {
    if let Some(store) = core.store.clone() {
        // The partitions led at start load before any request runs.
        match tokio::task::spawn_blocking(move || store.ensure_topic().map(|led| (led, store.partition_count()))).await
        {
            Ok(Ok((led, partitions))) => {
                core.partitions = partitions;
                for (p, epoch) in led {
                    core.initial.insert(p);
                    core.begin_load(p, epoch);
                }
            }
            Ok(Err(e)) => tracing::error!("creating the offsets topic: {e}"),
            Err(e) => tracing::error!("creating the offsets topic panicked: {e}"),
        }
    }
    let mut next_retention_check = core.now() + RETENTION_CHECK_INTERVAL_MS;
    loop {
        let now = core.now();
        let deadline = core.engine.next_deadline().map_or(next_retention_check, |d| d.min(next_retention_check));
        let sleep = Duration::from_millis(u64::try_from(deadline - now).unwrap_or(0));
        let starting = !core.initial.is_empty();
        tokio::select! {
            Some(load) = loads.recv() => core.finish_load(load),
            Some(resolution) = resolutions.recv() => core.resolve(resolution),
            command = rx.recv(), if !starting => match command {
                Some(command) => command(&mut core),
                None => return,
            },
            () = tokio::time::sleep(sleep) => {
                let now = core.now();
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
