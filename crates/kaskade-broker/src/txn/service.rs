//! The async shell around the transaction engine: loads the
//! `__transaction_state` partitions this node leads, persists what the
//! engine decides (durably, before answering), writes the markers of ending
//! transactions, and aborts transactions that time out. No decision is
//! taken here; the engine's lock is never held across an `.await`.
//!
//! The service depends only on its seams (`crate::coordinator`): the state
//! topic ([`InternalPartitions`]), a [`MarkerWriter`], a
//! [`ProducerIdSource`] and a [`Clock`]. It answers for a transactional id
//! only when the id's partition is Loaded here ([`Leadership`]):
//! COORDINATOR_LOAD_IN_PROGRESS while it loads, NOT_COORDINATOR when it is
//! not led here, as Kafka's `TransactionStateManager` does. Its markers
//! carry the coordinator epoch: the leader epoch of the id's partition when
//! it was loaded here, so a partition refuses the markers of a coordinator
//! deposed since (TRANSACTION_COORDINATOR_FENCED).
//!
//! Invariant: the engine holds a partition's ids only as read from the
//! partition's log once it led in the epoch the image names, and every
//! state append carries that epoch: a partition led in another epoch
//! refuses it (NOT_COORDINATOR). A partition the image names under a new
//! epoch is loaded again, also mid-load (`Leadership::follow`), so a
//! coordinator that lost a partition and got it back never serves, nor
//! writes from, what it read before another coordinator wrote.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kaskade_types::{Clock, ProducerIdAndEpoch, TopicPartition};
use parking_lot::Mutex;
use tokio::sync::{watch, OnceCell};

use super::coordinator::{EndDecision, EndPlan, InitDecision, StateWrite, TxnCoordinator};
use super::records::{self, StateValue, TXN_TOPIC};
use super::state::TxnMetadata;
use crate::coordinator::{
    Appended, CoordinatorError, FollowAction, InternalPartitions, Leadership, MarkerDisposition, MarkerWriter,
    ProducerIdSource, TxnMarker,
};

/// Longest pause of the timeout task between checks.
const EXPIRY_CHECK_MS: i64 = 1000;
/// Pause before reading a partition again after a failed load.
const LOAD_RETRY: Duration = Duration::from_secs(1);

/// What the transaction coordinator runs on.
pub struct TxnSeams {
    /// `__transaction_state`.
    pub state_log: Arc<dyn InternalPartitions>,
    pub markers: Arc<dyn MarkerWriter>,
    pub producer_ids: Arc<dyn ProducerIdSource>,
    pub clock: Arc<dyn Clock>,
    /// Turns true when the node stops: retries end.
    pub stopping: watch::Receiver<bool>,
}

/// Handle to the transaction coordinator (cheap to clone).
#[derive(Clone)]
pub struct TxnService(Arc<Inner>);

struct Inner {
    engine: Mutex<TxnCoordinator>,
    leadership: Mutex<Leadership>,
    /// Partition -> its leader epoch when last loaded here (the coordinator
    /// epoch on markers). Kept after a resignation: a deposed coordinator's
    /// markers still carry its old epoch, and are fenced by it.
    coordinator_epochs: Mutex<BTreeMap<i32, i32>>,
    /// The state topic exists and the partitions led at start are loaded.
    started: OnceCell<()>,
    /// `transaction.state.log.num.partitions` (the topic's own count once
    /// it exists).
    partitions: AtomicI32,
    /// `transactional.id.expiration.ms`
    id_expiration_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`
    id_expiration_check_ms: i64,
    seams: TxnSeams,
}

impl std::fmt::Debug for TxnService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnService").finish_non_exhaustive()
    }
}

impl TxnService {
    /// The service the broker's configuration describes, on `seams`.
    pub fn from_config(config: &crate::config::BrokerConfig, seams: TxnSeams) -> Self {
        TxnService(Arc::new(Inner {
            engine: Mutex::new(TxnCoordinator::new(config.transaction_max_timeout_ms)),
            leadership: Mutex::new(Leadership::new()),
            coordinator_epochs: Mutex::new(BTreeMap::new()),
            started: OnceCell::new(),
            partitions: AtomicI32::new(config.transaction_state_log_num_partitions.max(1)),
            id_expiration_ms: i64::from(config.transactional_id_expiration_ms),
            id_expiration_check_ms: config.transaction_remove_expired_interval_ms.max(1),
            seams,
        }))
    }

    fn now(&self) -> i64 {
        self.0.seams.clock.now_ms()
    }

    fn partition_count(&self) -> i32 {
        self.0.partitions.load(Ordering::Relaxed)
    }

    fn partition_of(&self, id: &str) -> i32 {
        records::partition_for(id, self.partition_count())
    }

    fn stopping(&self) -> bool {
        *self.0.seams.stopping.borrow()
    }

    /// Whether `id` is served here; the error to answer otherwise.
    fn check(&self, id: &str) -> Result<(), ResponseError> {
        self.0.leadership.lock().check(self.partition_of(id)).map_err(|e| e.response_error())
    }

    /// Loads the coordinator at start-up when `__transaction_state` exists,
    /// so open transactions time out and prepared ones are finished even if
    /// no client asks.
    pub async fn start(&self) {
        if self.0.seams.state_log.partition_count().is_some() {
            if let Err(e) = self.ready().await {
                tracing::error!("loading the transaction coordinator: {e:?}");
            }
        }
    }

    /// Creates `__transaction_state` once, becomes the leader of the
    /// partitions this node leads (requests wait for those first loads),
    /// and starts the timeout task.
    pub(crate) async fn ready(&self) -> Result<(), ResponseError> {
        self.0
            .started
            .get_or_try_init(|| async {
                let log = self.0.seams.state_log.clone();
                let ensured = tokio::task::spawn_blocking(move || log.ensure_topic().map(|n| (n, log.leaders())))
                    .await
                    .unwrap_or_else(|e| Err(CoordinatorError::Unavailable(format!("start-up task failed: {e}"))));
                let (partitions, led) = ensured.map_err(|e| {
                    tracing::error!("creating {TXN_TOPIC}: {e}");
                    ResponseError::CoordinatorLoadInProgress
                })?;
                self.0.partitions.store(partitions, Ordering::Relaxed);
                for (partition, epoch) in led {
                    if let Err(e) = self.on_become_leader(partition, epoch).await {
                        tracing::error!(partition, "loading {TXN_TOPIC}: {e}");
                    }
                }
                tokio::spawn(expire_loop(Arc::downgrade(&self.0)));
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// This node became the leader of `__transaction_state` partition
    /// `partition` in leader `epoch`: replays its records into the engine
    /// and starts finishing the transactions it left prepared. A failed
    /// read is retried in the background (the partition stays Loading) and
    /// reported.
    pub async fn on_become_leader(&self, partition: i32, epoch: i32) -> Result<(), CoordinatorError> {
        let generation = self.begin_load(partition, epoch);
        self.run_load(partition, epoch, generation).await
    }

    fn begin_load(&self, partition: i32, epoch: i32) -> u64 {
        let generation = self.0.leadership.lock().begin_load(partition, epoch);
        tracing::info!(partition, epoch, generation, "{TXN_TOPIC}: loading");
        generation
    }

    /// Load `generation` of `partition`, retried in the background while
    /// its read fails and it is current; the first attempt's outcome.
    async fn run_load(&self, partition: i32, epoch: i32, generation: u64) -> Result<(), CoordinatorError> {
        let result = self.load(partition, epoch, generation).await;
        if let Err(CoordinatorError::Unavailable(_)) = &result {
            let me = self.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(LOAD_RETRY).await;
                    match me.load(partition, epoch, generation).await {
                        Err(CoordinatorError::Unavailable(e)) if !me.stopping() => {
                            tracing::error!(partition, epoch, "loading {TXN_TOPIC}, retrying: {e}")
                        }
                        _ => return,
                    }
                }
            });
        }
        result
    }

    /// One attempt at load `generation` of `partition`, for leader `epoch`.
    async fn load(&self, partition: i32, epoch: i32, generation: u64) -> Result<(), CoordinatorError> {
        // The log is read only once the partition leads in the load's
        // epoch: from then on no other node writes to it, and what this
        // node fetched as a follower is all there is (Kafka loads up to the
        // log end as of becoming leader). A newer epoch there means a newer
        // image, which supersedes this load.
        let leads_in = self.0.seams.state_log.leader_epoch(partition);
        if leads_in != Some(epoch) {
            if !self.0.leadership.lock().is_current(partition, generation) {
                return Err(CoordinatorError::NotCoordinator);
            }
            return Err(CoordinatorError::Unavailable(format!(
                "{TXN_TOPIC}-{partition} leads in epoch {leads_in:?} here, not yet in {epoch}"
            )));
        }
        let log = self.0.seams.state_log.clone();
        let states = tokio::task::spawn_blocking(move || read_states(&*log, partition))
            .await
            .unwrap_or_else(|e| Err(CoordinatorError::Unavailable(format!("load task failed: {e}"))))?;
        let plans = {
            let mut leadership = self.0.leadership.lock();
            if !leadership.is_current(partition, generation) {
                tracing::info!(partition, epoch, generation, "{TXN_TOPIC}: a superseded load is discarded");
                return Err(CoordinatorError::NotCoordinator);
            }
            let ids = states.len();
            let mut engine = self.0.engine.lock();
            for (id, state) in states {
                match state {
                    StateValue::Metadata(meta) => engine.load(meta),
                    StateValue::Removed => engine.unload(&id),
                }
            }
            let loaded = leadership.finish_load(partition, generation);
            debug_assert!(loaded, "the current load finishes");
            debug_assert_eq!(leadership.epoch(partition), Some(epoch), "loaded under the epoch it was begun for");
            self.0.coordinator_epochs.lock().insert(partition, epoch);
            tracing::info!(partition, epoch, generation, ids, "{TXN_TOPIC}: loaded");
            let count = self.partition_count();
            let mut plans = engine.pending_plans();
            plans.retain(|p| records::partition_for(&p.transactional_id, count) == partition);
            plans
        };
        for plan in plans {
            tracing::info!(transactional_id = %plan.transactional_id, "completing a transaction left prepared");
            // In the background: one partition that cannot take its marker
            // must not keep the coordinator from loading.
            drop(self.finish(plan));
        }
        Ok(())
    }

    /// The metadata image changed: serves the `__transaction_state`
    /// partitions it names this node the leader of, each loaded under the
    /// leader epoch the image gives it, loading new ones in the background
    /// and dropping the others (Kafka's onElection / onResignation). A
    /// partition led in another epoch than the one loaded or loading is
    /// dropped and loaded again: this node lost it and got it back (maybe
    /// without an image in between that said so) and another coordinator
    /// may have written meanwhile. Starts the coordinator if the topic
    /// exists.
    pub async fn on_metadata_change(&self) {
        let state_log = self.0.seams.state_log.clone();
        if state_log.partition_count().is_none() {
            return;
        }
        if let Err(e) = self.ready().await {
            tracing::error!("starting the transaction coordinator: {e:?}");
            return;
        }
        let leaders = state_log.leaders();
        for partition in 0..self.partition_count() {
            let action = self.0.leadership.lock().follow(partition, leaders.get(&partition).copied());
            match action {
                FollowAction::Keep => {}
                FollowAction::Load { epoch } => self.load_in_background(partition, epoch),
                FollowAction::Reload { was, epoch } => {
                    tracing::info!(partition, was, epoch, "{TXN_TOPIC} led under a new leader epoch: loading again");
                    self.on_resign(partition);
                    self.load_in_background(partition, epoch);
                }
                FollowAction::Resign => self.on_resign(partition),
            }
        }
    }

    /// Begins the load now (so the partition answers
    /// COORDINATOR_LOAD_IN_PROGRESS from here on) and runs it in the
    /// background.
    fn load_in_background(&self, partition: i32, epoch: i32) {
        let generation = self.begin_load(partition, epoch);
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.run_load(partition, epoch, generation).await {
                tracing::warn!(partition, epoch, "loading {TXN_TOPIC}: {e}");
            }
        });
    }

    /// This node no longer leads `partition`: the transactional ids stored
    /// there are dropped (their new coordinator finishes what they left).
    pub fn on_resign(&self, partition: i32) {
        let mut leadership = self.0.leadership.lock();
        tracing::info!(partition, epoch = ?leadership.epoch(partition), "{TXN_TOPIC}: unloading");
        leadership.resign(partition);
        let count = self.partition_count();
        let mut engine = self.0.engine.lock();
        // Appends in flight for them resolve into nothing.
        engine.unload_where(|id| records::partition_for(id, count) == partition);
        debug_assert!(engine.all().all(|m| records::partition_for(&m.transactional_id, count) != partition));
    }

    /// A transactional id's state (DescribeTransactions).
    pub async fn describe(&self, id: &str) -> Result<Option<TxnMetadata>, ResponseError> {
        self.ready().await?;
        self.check(id)?;
        Ok(self.0.engine.lock().get(id).cloned())
    }

    /// Every transactional id's state (ListTransactions); while a partition
    /// loads, COORDINATOR_LOAD_IN_PROGRESS, as Kafka answers.
    pub async fn list(&self) -> Result<Vec<TxnMetadata>, ResponseError> {
        self.ready().await?;
        if self.0.leadership.lock().any_loading() {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        Ok(self.0.engine.lock().all().cloned().collect())
    }

    /// Runs `decide` on the engine and appends the states it staged to
    /// `__transaction_state` before releasing the engine's lock, so the
    /// log holds decisions in the order the engine took them (replay keeps
    /// the last record of an id). The caller awaits them with
    /// [`TxnService::durable`].
    ///
    /// Each staged id is in flight in the engine until its append is
    /// resolved (Kafka's pending state: other requests for it answer
    /// CONCURRENT_TRANSACTIONS). An append refused at once is resolved as
    /// failed here, and so are the writes staged after it: the engine puts
    /// their states before back, as the log's.
    fn decide<R>(
        &self,
        decide: impl FnOnce(&mut TxnCoordinator, i64) -> Result<R, ResponseError>,
    ) -> Result<(R, Writes), ResponseError> {
        let now = self.now();
        let mut engine = self.0.engine.lock();
        let result = decide(&mut engine, now);
        let staged = engine.take_writes();
        debug_assert!(result.is_ok() || staged.is_empty(), "a refusal stages nothing");
        let result = result?;
        let mut appended = Vec::with_capacity(staged.len());
        let mut staged = staged.into_iter();
        while let Some(write) = staged.next() {
            let value = write.state.as_ref().map(records::value);
            match self.append_state(&write.transactional_id, value, now) {
                Ok(wait) => appended.push((write, wait)),
                Err(e) => {
                    for w in std::iter::once(write).chain(staged) {
                        engine.failed(&w.transactional_id, w.token);
                    }
                    drop(engine);
                    // Those appended before it still resolve.
                    drop(self.resolve(appended));
                    return Err(e);
                }
            }
        }
        Ok((result, Writes(appended)))
    }

    /// Resolves `writes` in a task of its own, so that a request dropped
    /// mid-wait (its client went away) never leaves an id in flight: each
    /// durable one is written, each other failed (its state before put
    /// back). The first failure, if any.
    fn resolve(&self, writes: Vec<(StateWrite, Appended)>) -> tokio::task::JoinHandle<Result<(), ResponseError>> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut result = Ok(());
            for (write, wait) in writes {
                let outcome = wait.await;
                let mut engine = me.0.engine.lock();
                match outcome {
                    Ok(()) => {
                        engine.written(&write.transactional_id, write.token);
                    }
                    Err(e) => {
                        tracing::warn!(transactional_id = %write.transactional_id, "{TXN_TOPIC} not replicated: {e}");
                        if engine.failed(&write.transactional_id, write.token) {
                            tracing::info!(transactional_id = %write.transactional_id, "a state that was not written is undone");
                        }
                        // Kafka's translation: leadership moved ->
                        // NOT_COORDINATOR, too few replicas or a timeout ->
                        // COORDINATOR_NOT_AVAILABLE.
                        result = result.and(Err(e.response_error()));
                    }
                }
            }
            result
        })
    }

    /// Waits until every append of a decision is resolved; the first
    /// failure (its decision is undone, see [`TxnService::decide`]).
    async fn durable(&self, writes: Writes) -> Result<(), ResponseError> {
        if writes.0.is_empty() {
            return Ok(());
        }
        self.resolve(writes.0).await.unwrap_or(Err(ResponseError::CoordinatorNotAvailable))
    }

    /// InitProducerId with a transactional id: the producer id and epoch.
    pub async fn init_producer_id(
        &self,
        id: &str,
        timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
    ) -> Result<ProducerIdAndEpoch, ResponseError> {
        self.ready().await?;
        self.check(id)?;
        let mut new_pid = None;
        // Bounded: each pass either answers, allocates once, or ends the
        // open transaction it found (and the next pass bumps the epoch).
        for _ in 0..4 {
            let (decision, waits) =
                self.decide(|engine, now| engine.init_producer_id(now, id, timeout_ms, expected, new_pid))?;
            match decision {
                InitDecision::NeedProducerId => {
                    debug_assert!(waits.0.is_empty(), "nothing decided yet");
                    let pid = self.0.seams.producer_ids.next_id().await.map_err(|e| {
                        tracing::error!("allocating a producer id: {e}");
                        ResponseError::CoordinatorLoadInProgress
                    })?;
                    new_pid = Some(pid);
                }
                InitDecision::Ready(meta) => {
                    self.durable(waits).await?;
                    return Ok(meta.producer());
                }
                InitDecision::AbortFirst(_, plan) => {
                    let finishing = self.prepared(waits, plan).await?;
                    // Kafka answers CONCURRENT_TRANSACTIONS here and the
                    // client retries; ending the fenced transaction first
                    // and answering the retry at once is the same outcome.
                    // If the markers take long, the client retries as with
                    // Kafka.
                    match tokio::time::timeout(FINISH_WAIT, finishing).await {
                        Ok(Ok(())) => {}
                        _ => return Err(ResponseError::ConcurrentTransactions),
                    }
                }
            }
        }
        Err(ResponseError::ConcurrentTransactions)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn.
    pub async fn add_partitions(
        &self,
        id: &str,
        producer: ProducerIdAndEpoch,
        partitions: &[TopicPartition],
    ) -> Result<(), ResponseError> {
        self.ready().await?;
        self.check(id)?;
        let started = std::time::Instant::now();
        let (_, waits) = self.decide(|engine, now| engine.add_partitions(now, id, producer, partitions))?;
        let result = self.durable(waits).await;
        tracing::debug!(transactional_id = id, elapsed_us = started.elapsed().as_micros() as u64, "AddPartitionsToTxn");
        result
    }

    /// EndTxn: once PrepareCommit/PrepareAbort is durable the outcome is
    /// decided; the answer waits (bounded) until the markers are durable on
    /// every partition too, so the next transaction can start at once.
    pub async fn end_txn(&self, id: &str, producer: ProducerIdAndEpoch, commit: bool) -> Result<(), ResponseError> {
        self.ready().await?;
        self.check(id)?;
        let started = std::time::Instant::now();
        let (decision, waits) = self.decide(|engine, now| engine.end_txn(now, id, producer, commit))?;
        match decision {
            EndDecision::AlreadyDone => debug_assert!(waits.0.is_empty(), "a retry writes nothing"),
            EndDecision::Begin(_, plan) => {
                // Finished in a task of its own: neither a slow partition nor
                // a client that stops reading keeps the markers from being
                // written.
                let finishing = self.prepared(waits, plan).await?;
                let _ = tokio::time::timeout(FINISH_WAIT, finishing).await;
            }
        }
        tracing::debug!(transactional_id = id, commit, elapsed_us = started.elapsed().as_micros() as u64, "EndTxn");
        Ok(())
    }

    /// Waits until the Prepare* state of `plan` is durable, then finishes
    /// it: both in a task of its own, so a request dropped meanwhile (its
    /// client went away) leaves no transaction prepared with nobody
    /// writing its markers. The handle of the finish; the append's error
    /// (the decision undone) if it failed.
    async fn prepared(&self, waits: Writes, plan: EndPlan) -> Result<tokio::task::JoinHandle<()>, ResponseError> {
        let me = self.clone();
        tokio::spawn(async move { me.durable(waits).await.map(|()| me.finish(plan)) })
            .await
            .unwrap_or(Err(ResponseError::CoordinatorNotAvailable))
    }

    /// The coordinator epoch of `id`'s partition: its leader epoch when
    /// loaded here (only a loaded partition's transactions end here).
    fn coordinator_epoch(&self, id: &str) -> i32 {
        let partition = self.partition_of(id);
        let epoch = self.0.coordinator_epochs.lock().get(&partition).copied();
        debug_assert!(epoch.is_some(), "markers of partition {partition}, never loaded here");
        epoch.unwrap_or(0)
    }

    /// Appends one `__transaction_state` record (`None`: a tombstone), in
    /// the epoch the id's partition was loaded under: refused
    /// (NOT_COORDINATOR) once the partition leads in another.
    fn append_state(&self, id: &str, value: Option<Bytes>, now: i64) -> Result<Appended, ResponseError> {
        let partition = self.partition_of(id);
        let Some(epoch) = self.0.coordinator_epochs.lock().get(&partition).copied() else {
            tracing::warn!(partition, "a state of {TXN_TOPIC}-{partition}, never loaded here: not appended");
            return Err(ResponseError::NotCoordinator);
        };
        self.0.seams.state_log.append(partition, Some(epoch), &[(records::key(id), value)], None, now).map_err(|e| {
            tracing::warn!(partition, epoch, "appending to {TXN_TOPIC}-{partition}: {e}");
            e.response_error()
        })
    }

    /// Whether this node still coordinates `id` under `coordinator_epoch`
    /// (its partition Loaded here in that leader epoch): Kafka's check
    /// before acting on a marker's answer. Lost, loading again, or loaded
    /// again under another epoch: the markers begun under this one are
    /// obsolete (the coordinator of the new epoch resends them).
    fn owns(&self, id: &str, coordinator_epoch: i32) -> Result<(), String> {
        let partition = self.partition_of(id);
        self.0.leadership.lock().check(partition).map_err(|e| e.to_string())?;
        match self.0.coordinator_epochs.lock().get(&partition).copied() {
            Some(epoch) if epoch == coordinator_epoch => Ok(()),
            other => Err(format!("coordinator epoch now {other:?}, the markers' {coordinator_epoch}")),
        }
    }

    /// One attempt at the markers of a prepared transaction, under
    /// `coordinator_epoch`: writes them to the partitions in `remaining`
    /// and keeps there those to write again.
    async fn write_markers(
        &self,
        plan: &EndPlan,
        coordinator_epoch: i32,
        remaining: &mut Vec<TopicPartition>,
    ) -> Attempt {
        if remaining.is_empty() {
            return Attempt::Written;
        }
        let marker = TxnMarker {
            producer_id: plan.producer_id,
            producer_epoch: plan.producer_epoch,
            coordinator_epoch,
            marker: plan.marker,
        };
        let outcomes = self.0.seams.markers.write(remaining, marker).await;
        debug_assert_eq!(outcomes.len(), remaining.len(), "one outcome per partition");
        let mut stop = false;
        let mut again = Vec::new();
        for (tp, outcome) in remaining.drain(..).zip(outcomes) {
            let Err(e) = outcome else { continue };
            let (id, topic, partition) = (&plan.transactional_id, &*tp.topic, tp.partition);
            match e.disposition() {
                // Deleted since it joined the transaction: nothing to end.
                MarkerDisposition::Done => {
                    tracing::warn!(transactional_id = %id, %topic, partition, "marker not needed: {e}")
                }
                MarkerDisposition::Retry => {
                    tracing::warn!(transactional_id = %id, %topic, partition, "writing a transaction marker, retrying: {e}");
                    again.push(tp);
                }
                MarkerDisposition::Stop => {
                    tracing::warn!(transactional_id = %id, %topic, partition, "another coordinator ends it: {e}");
                    stop = true;
                }
            }
        }
        *remaining = again;
        if stop {
            Attempt::Stop
        } else if remaining.is_empty() {
            Attempt::Written
        } else {
            Attempt::Retry
        }
    }

    /// Ends a prepared transaction in a task of its own, as Kafka's
    /// `TransactionMarkerChannelManager`: writes its markers under the
    /// coordinator epoch of the id's partition now (again on the partitions
    /// that failed, to the leaders a newer image names) until all are
    /// written, then appends Complete and waits until it is durable
    /// (appending it again if it fails; only the append, the markers are
    /// written). Stops without Complete when the node stops, when this
    /// node no longer coordinates the id under that epoch, or when a
    /// partition refuses the markers for a newer producer or coordinator
    /// epoch: the transaction stays Prepare* here, and the coordinator of
    /// the newer epoch finishes it after loading it. The handle says when.
    fn finish(&self, plan: EndPlan) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let id = plan.transactional_id.clone();
            let coordinator_epoch = me.coordinator_epoch(&id);
            let mut remaining = plan.partitions.clone();
            loop {
                // A retry after the plan completed must not write its markers
                // again: the same producer epoch may have a later transaction
                // on those partitions by now (found by `txn::sim`).
                if !me.0.engine.lock().is_pending(&plan) {
                    return;
                }
                if let Err(why) = me.owns(&id, coordinator_epoch) {
                    tracing::info!(transactional_id = %id, coordinator_epoch, "markers obsolete, not writing: {why}");
                    return;
                }
                let attempt = me.write_markers(&plan, coordinator_epoch, &mut remaining).await;
                if let Err(why) = me.owns(&id, coordinator_epoch) {
                    tracing::info!(transactional_id = %id, coordinator_epoch, "markers obsolete, not completing: {why}");
                    return;
                }
                match attempt {
                    Attempt::Written => {
                        let completed = me.decide(|engine, now| Ok(engine.complete(now, &plan)));
                        let completed = match completed {
                            Ok((_, writes)) => me.durable(writes).await,
                            Err(e) => Err(e),
                        };
                        match completed {
                            Ok(()) => return,
                            Err(e) => {
                                tracing::warn!(transactional_id = %id, "completing the transaction failed, retrying: {e:?}")
                            }
                        }
                    }
                    Attempt::Stop => {
                        tracing::info!(transactional_id = %id, coordinator_epoch, "markers refused: not completing");
                        return;
                    }
                    Attempt::Retry => {}
                }
                if me.stopping() {
                    return;
                }
                tokio::time::sleep(FINISH_RETRY).await;
            }
        })
    }
}

/// What one attempt at a transaction's markers left to do.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    /// Every marker is written (or not needed).
    Written,
    /// Some partitions need their marker again.
    Retry,
    /// A newer coordinator owns the transaction.
    Stop,
}

/// The appends of one decision, each with the write it resolves.
struct Writes(Vec<(StateWrite, Appended)>);

/// How long a request waits for a transaction's markers before answering
/// (the outcome is decided and durable by then; the markers follow).
const FINISH_WAIT: Duration = Duration::from_secs(10);
/// Pause between attempts at writing a prepared transaction's markers.
const FINISH_RETRY: Duration = Duration::from_millis(500);

/// Aborts transactions past their timeout, and removes transactional ids
/// idle past `transactional.id.expiration.ms`, until the service is gone
/// or the node stops.
async fn expire_loop(inner: Weak<Inner>) {
    let mut next_id_check = None;
    loop {
        let wait = {
            let Some(inner) = inner.upgrade() else { return };
            let s = TxnService(inner);
            if s.stopping() {
                return;
            }
            let now = s.now();
            let next = s.0.engine.lock().next_deadline().unwrap_or(now + EXPIRY_CHECK_MS);
            (next - now).clamp(1, EXPIRY_CHECK_MS)
        };
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        let Some(inner) = inner.upgrade() else { return };
        let s = TxnService(inner);
        let now = s.now();
        if next_id_check.is_none_or(|at| now >= at) {
            next_id_check = Some(now + s.0.id_expiration_check_ms);
            let expiration = s.0.id_expiration_ms;
            let gone = s.decide(|engine, now| Ok(engine.expire_ids(now, expiration)));
            match gone {
                Ok((ids, waits)) => {
                    for id in &ids {
                        tracing::info!(transactional_id = %id, "removed an expired transactional id");
                    }
                    if let Err(e) = s.durable(waits).await {
                        tracing::error!("writing the tombstones of expired ids: {e:?}");
                    }
                }
                Err(e) => tracing::error!("writing the tombstones of expired ids: {e:?}"),
            }
        }
        let expired = s.decide(|engine, now| Ok(engine.expire(now)));
        match expired {
            Ok((expired, waits)) => {
                if let Err(e) = s.durable(waits).await {
                    tracing::error!("persisting the abort of timed-out transactions: {e:?}");
                }
                // An abort whose append failed is undone (Ongoing again, not
                // pending: its finish ends at once); the others go on.
                for (meta, plan) in expired {
                    tracing::info!(transactional_id = %meta.transactional_id, "aborting a transaction past its timeout");
                    drop(s.finish(plan));
                }
            }
            Err(e) => tracing::error!("aborting timed-out transactions: {e:?}"),
        }
    }
}

/// The last state of every transactional id stored on `partition`.
/// Blocking.
fn read_states(log: &dyn InternalPartitions, partition: i32) -> Result<BTreeMap<String, StateValue>, CoordinatorError> {
    let mut states = BTreeMap::new();
    log.read_committed(partition, &mut |record| {
        let Some(id) = record.key.as_deref().filter(|_| !record.control).and_then(records::decode_key) else {
            return;
        };
        if let Some(state) = records::decode_value(&id, record.value.as_deref()) {
            states.insert(id, state);
        }
    })?;
    Ok(states)
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
