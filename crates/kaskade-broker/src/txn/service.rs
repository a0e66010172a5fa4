//! The async shell around the transaction engine: loads
//! `__transaction_state` on first use, persists what the engine decides
//! (durably, before answering), writes the markers of ending transactions
//! to their partitions, tells the group coordinator about transactional
//! offsets, and aborts transactions that time out. No decision is taken
//! here; the engine's lock is never held across an `.await`.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kaskade_log::txn::Marker;
use kaskade_log::{Log, LogError};
use parking_lot::Mutex;
use tokio::sync::OnceCell;

use super::coordinator::{EndDecision, EndPlan, InitDecision, TxnCoordinator};
use super::records::{self, TXN_TOPIC};
use super::state::{TxnMetadata, TxnPartition};
use crate::broker::Broker;
use crate::error::BrokerError;
use crate::group::now_ms;
use crate::group::records::OFFSETS_TOPIC;

/// Kafka's `transaction.state.log.segment.bytes` default.
const SEGMENT_BYTES: &str = "104857600";
/// Longest pause of the timeout task between checks.
const EXPIRY_CHECK_MS: i64 = 1000;

pub struct TxnService {
    engine: Mutex<TxnCoordinator>,
    loaded: OnceCell<()>,
    /// `transaction.state.log.num.partitions` (the topic's own count once
    /// it exists).
    partitions: std::sync::atomic::AtomicI32,
    /// `transactional.id.expiration.ms`
    id_expiration_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`
    id_expiration_check_ms: i64,
}

impl std::fmt::Debug for TxnService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnService").finish_non_exhaustive()
    }
}

fn internal(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::internal(e.to_string())
}

impl TxnService {
    /// The service the broker's configuration describes.
    pub fn from_config(config: &crate::config::BrokerConfig) -> Self {
        TxnService {
            engine: Mutex::new(TxnCoordinator::new(config.transaction_max_timeout_ms)),
            loaded: OnceCell::new(),
            partitions: std::sync::atomic::AtomicI32::new(config.transaction_state_log_num_partitions.max(1)),
            id_expiration_ms: i64::from(config.transactional_id_expiration_ms),
            id_expiration_check_ms: config.transaction_remove_expired_interval_ms.max(1),
        }
    }

    fn partition_count(&self) -> i32 {
        self.partitions.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Loads the coordinator at start-up when `__transaction_state` exists,
    /// so open transactions time out and prepared ones are finished even if
    /// no client asks (Kafka loads it when it becomes the partitions'
    /// leader).
    pub async fn start(&self, broker: &Arc<Broker>) {
        if broker.topics.image().topic(TXN_TOPIC).is_some() {
            if let Err(e) = self.ready(broker).await {
                tracing::error!("loading the transaction coordinator: {e:?}");
            }
        }
    }

    /// Creates and loads `__transaction_state` once, starts finishing the
    /// transactions caught between Prepare and Complete, and starts the
    /// timeout task.
    async fn ready(&self, broker: &Arc<Broker>) -> Result<(), ResponseError> {
        self.loaded
            .get_or_try_init(|| async {
                let (b, wanted) = (broker.clone(), self.partition_count());
                let loaded =
                    tokio::task::spawn_blocking(move || load(&b, wanted)).await.map_err(internal).and_then(|r| r);
                let (partitions, states) = loaded.map_err(|e| {
                    tracing::error!("loading {TXN_TOPIC}: {e}");
                    ResponseError::CoordinatorLoadInProgress
                })?;
                self.partitions.store(partitions, std::sync::atomic::Ordering::Relaxed);
                let plans = {
                    let mut engine = self.engine.lock();
                    for meta in states.into_values() {
                        engine.load(meta);
                    }
                    engine.pending_plans()
                };
                for plan in plans {
                    tracing::info!(transactional_id = %plan.transactional_id, "completing a transaction left prepared");
                    // In the background: one partition that cannot take its
                    // marker must not keep the coordinator from loading.
                    drop(finish(broker, plan));
                }
                tokio::spawn(expire_loop(Arc::downgrade(broker)));
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// A transactional id's state (DescribeTransactions).
    pub async fn describe(&self, broker: &Arc<Broker>, id: &str) -> Result<Option<TxnMetadata>, ResponseError> {
        self.ready(broker).await?;
        Ok(self.engine.lock().get(id).cloned())
    }

    /// Every transactional id's state (ListTransactions).
    pub async fn list(&self, broker: &Arc<Broker>) -> Result<Vec<TxnMetadata>, ResponseError> {
        self.ready(broker).await?;
        Ok(self.engine.lock().all().cloned().collect())
    }

    /// Runs `decide` on the engine and appends the states it returns to
    /// `__transaction_state` before releasing the engine's lock, so the
    /// log holds decisions in the order the engine took them (replay keeps
    /// the last record of an id). The appends are page-cache writes; the
    /// caller awaits their durability with [`durable`].
    fn decide<R>(
        &self,
        broker: &Arc<Broker>,
        decide: impl FnOnce(&mut TxnCoordinator) -> Result<(R, Vec<StateRecord>), ResponseError>,
    ) -> Result<(R, Vec<Append>), ResponseError> {
        let mut engine = self.engine.lock();
        let (result, records) = decide(&mut engine)?;
        let mut waits = Vec::with_capacity(records.len());
        for (id, value) in records {
            waits.push(self.append_state(broker, &id, value)?);
        }
        Ok((result, waits))
    }

    /// InitProducerId with a transactional id: the producer id and epoch.
    pub async fn init_producer_id(
        &self,
        broker: &Arc<Broker>,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), ResponseError> {
        self.ready(broker).await?;
        let mut new_pid = None;
        // Bounded: each pass either answers, allocates once, or ends the
        // open transaction it found (and the next pass bumps the epoch).
        for _ in 0..4 {
            let (decision, waits) = self.decide(broker, |engine| {
                let decision = engine.init_producer_id(now_ms(), id, timeout_ms, expected, new_pid)?;
                let records = match &decision {
                    InitDecision::NeedProducerId => Vec::new(),
                    InitDecision::Ready(meta) | InitDecision::AbortFirst(meta, _) => vec![state_record(meta)],
                };
                Ok((decision, records))
            })?;
            durable(waits).await?;
            match decision {
                InitDecision::NeedProducerId => {
                    new_pid = Some(broker.producer_ids.generate(&broker.topics).await.map_err(|e| {
                        tracing::error!("allocating a producer id: {e}");
                        ResponseError::CoordinatorLoadInProgress
                    })?);
                }
                InitDecision::Ready(meta) => return Ok((meta.producer_id, meta.producer_epoch)),
                InitDecision::AbortFirst(_, plan) => {
                    // Kafka answers CONCURRENT_TRANSACTIONS here and the
                    // client retries; ending the fenced transaction first
                    // and answering the retry at once is the same outcome.
                    // If the markers take long, the client retries as with
                    // Kafka.
                    match tokio::time::timeout(FINISH_WAIT, finish(broker, plan)).await {
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
        broker: &Arc<Broker>,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TxnPartition],
    ) -> Result<(), ResponseError> {
        self.ready(broker).await?;
        let started = std::time::Instant::now();
        let ((), waits) = self.decide(broker, |engine| {
            let changed = engine.add_partitions(now_ms(), id, producer_id, epoch, partitions)?;
            Ok(((), changed.iter().map(state_record).collect()))
        })?;
        let result = durable(waits).await;
        tracing::debug!(transactional_id = id, elapsed_us = started.elapsed().as_micros() as u64, "AddPartitionsToTxn");
        result
    }

    /// EndTxn: once PrepareCommit/PrepareAbort is durable the outcome is
    /// decided; the answer waits (bounded) until the markers are durable on
    /// every partition too, so the next transaction can start at once.
    pub async fn end_txn(
        &self,
        broker: &Arc<Broker>,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), ResponseError> {
        self.ready(broker).await?;
        let started = std::time::Instant::now();
        let (decision, waits) = self.decide(broker, |engine| {
            let decision = engine.end_txn(now_ms(), id, producer_id, epoch, commit)?;
            let records = match &decision {
                EndDecision::AlreadyDone => Vec::new(),
                EndDecision::Begin(meta, _) => vec![state_record(meta)],
            };
            Ok((decision, records))
        })?;
        durable(waits).await?;
        if let EndDecision::Begin(_, plan) = decision {
            // Finished in a task of its own: neither a slow partition nor a
            // client that stops reading keeps the markers from being written.
            let _ = tokio::time::timeout(FINISH_WAIT, finish(broker, plan)).await;
        }
        tracing::debug!(transactional_id = id, commit, elapsed_us = started.elapsed().as_micros() as u64, "EndTxn");
        Ok(())
    }

    /// Appends one `__transaction_state` record (`None`: a tombstone): the
    /// log and the end offset to await for durability.
    fn append_state(
        &self,
        broker: &Arc<Broker>,
        id: &str,
        value: Option<Bytes>,
    ) -> Result<(Arc<Log>, i64), ResponseError> {
        let partition = records::partition_for(id, self.partition_count());
        let log = broker.topics.log(TXN_TOPIC, partition).ok_or(ResponseError::CoordinatorNotAvailable)?;
        let record = [(records::key(id), value)];
        let batch = crate::internal_topic::encode_batch(&record, now_ms(), None).map_err(|e| {
            tracing::error!("encoding transaction state: {e}");
            ResponseError::UnknownServerError
        })?;
        let info = log.append(batch, 0).map_err(|e| {
            tracing::error!("appending to {TXN_TOPIC}-{partition}: {e}");
            ResponseError::CoordinatorNotAvailable
        })?;
        Ok((log, info.last_offset + 1))
    }

    /// One attempt at ending a prepared transaction: writes the plan's
    /// markers, waits until they are durable, settles the transaction's
    /// offsets with the group coordinator, then records Complete (not
    /// awaited: if it is lost, start-up writes the markers again, which
    /// changes nothing).
    async fn execute(&self, broker: &Arc<Broker>, plan: &EndPlan) -> Result<(), ResponseError> {
        let mut waits: Vec<Append> = Vec::new();
        let mut offsets_partitions = Vec::new();
        for (topic, partition) in &plan.partitions {
            // A partition deleted since it joined the transaction has
            // nothing to end.
            let Some(log) = broker.topics.log(topic, *partition) else { continue };
            if topic == OFFSETS_TOPIC {
                offsets_partitions.push(*partition);
            }
            match log.append_marker(plan.producer_id, plan.producer_epoch, 0, plan.marker, 0) {
                Ok(info) => waits.push((log, info.last_offset + 1)),
                // The producer has a newer epoch on this partition: this
                // transaction's data there is already ended or fenced, as
                // Kafka treats a refused marker.
                Err(LogError::InvalidProducerEpoch(e)) => {
                    tracing::warn!(transactional_id = %plan.transactional_id, %topic, partition, "marker not needed: {e}");
                }
                Err(e) => {
                    tracing::error!(transactional_id = %plan.transactional_id, %topic, partition, "writing a transaction marker: {e}");
                    return Err(ResponseError::KafkaStorageError);
                }
            }
        }
        durable(waits).await?;
        if !offsets_partitions.is_empty() {
            broker
                .groups
                .complete_txn(plan.producer_id, plan.marker == Marker::Commit, offsets_partitions)
                .await
                .map_err(|_| ResponseError::CoordinatorNotAvailable)?;
        }
        self.decide(broker, |engine| Ok(((), engine.complete(now_ms(), plan).iter().map(state_record).collect())))?;
        Ok(())
    }
}

/// A `__transaction_state` record to append: the id and its value (`None`:
/// a tombstone).
type StateRecord = (String, Option<Bytes>);

/// An append to await: the log and the offset it must be durable up to.
type Append = (Arc<Log>, i64);

fn state_record(meta: &TxnMetadata) -> StateRecord {
    (meta.transactional_id.clone(), Some(records::value(meta)))
}

/// Waits until every append is durable.
async fn durable(waits: Vec<Append>) -> Result<(), ResponseError> {
    for (log, end) in waits {
        log.wait_durable(end).await.map_err(|e| {
            tracing::error!("{TXN_TOPIC} not durable: {e}");
            ResponseError::CoordinatorNotAvailable
        })?;
    }
    Ok(())
}

/// How long a request waits for a transaction's markers before answering
/// (the outcome is decided and durable by then; the markers follow).
const FINISH_WAIT: Duration = Duration::from_secs(10);
/// Pause between attempts at writing a prepared transaction's markers.
const FINISH_RETRY_MS: u64 = 500;

/// Ends a prepared transaction in a task of its own, retrying until its
/// markers are written (or the broker stops). The handle says when.
fn finish(broker: &Arc<Broker>, plan: EndPlan) -> tokio::task::JoinHandle<()> {
    let broker = broker.clone();
    tokio::spawn(async move {
        loop {
            match broker.txns.execute(&broker, &plan).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(transactional_id = %plan.transactional_id, "ending the transaction failed, retrying: {e:?}")
                }
            }
            if broker.is_stopping() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(FINISH_RETRY_MS)).await;
        }
    })
}

/// Aborts transactions past their timeout, and removes transactional ids
/// idle past `transactional.id.expiration.ms`, until the broker stops.
async fn expire_loop(broker: Weak<Broker>) {
    let mut next_id_check = now_ms();
    loop {
        let wait = {
            let Some(b) = broker.upgrade() else { return };
            if b.is_stopping() {
                return;
            }
            let now = now_ms();
            let next = b.txns.engine.lock().next_deadline().unwrap_or(now + EXPIRY_CHECK_MS);
            (next - now).clamp(1, EXPIRY_CHECK_MS)
        };
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        let Some(b) = broker.upgrade() else { return };
        if now_ms() >= next_id_check {
            next_id_check = now_ms() + b.txns.id_expiration_check_ms;
            let gone = b.txns.decide(&b, |engine| {
                let ids = engine.expire_ids(now_ms(), b.txns.id_expiration_ms);
                let tombstones = ids.iter().map(|id| (id.clone(), None)).collect();
                Ok((ids, tombstones))
            });
            match gone {
                Ok((ids, waits)) => {
                    for id in &ids {
                        tracing::info!(transactional_id = %id, "removed an expired transactional id");
                    }
                    if let Err(e) = durable(waits).await {
                        tracing::error!("writing the tombstones of expired ids: {e:?}");
                    }
                }
                Err(e) => tracing::error!("writing the tombstones of expired ids: {e:?}"),
            }
        }
        let expired = b.txns.decide(&b, |engine| {
            let expired = engine.expire(now_ms());
            let records = expired.iter().map(|(meta, _)| state_record(meta)).collect();
            Ok((expired, records))
        });
        match expired {
            Ok((expired, waits)) => {
                if let Err(e) = durable(waits).await {
                    tracing::error!("persisting the abort of timed-out transactions: {e:?}");
                    continue;
                }
                for (meta, plan) in expired {
                    tracing::info!(transactional_id = %meta.transactional_id, "aborting a transaction past its timeout");
                    drop(finish(&b, plan));
                }
            }
            Err(e) => tracing::error!("aborting timed-out transactions: {e:?}"),
        }
    }
}

/// Creates `__transaction_state` (with `partitions` partitions) if needed
/// and replays it: its partition count and the last state of every
/// transactional id. Blocking.
fn load(broker: &Arc<Broker>, partitions: i32) -> Result<(i32, BTreeMap<String, TxnMetadata>), BrokerError> {
    let topics = &broker.topics;
    if topics.image().topic(TXN_TOPIC).is_none() {
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), SEGMENT_BYTES.to_string()),
        ]);
        topics
            .create(TXN_TOPIC, partitions, 1, &[], &configs, false)
            .map_err(|e| BrokerError::internal(format!("creating {TXN_TOPIC}: {e:?}")))?;
    }
    let partitions = topics.image().topic(TXN_TOPIC).map_or(0, |t| t.partitions.len() as i32);
    let mut states = BTreeMap::new();
    for partition in 0..partitions {
        let log = topics
            .log(TXN_TOPIC, partition)
            .ok_or_else(|| BrokerError::internal(format!("{TXN_TOPIC}-{partition} has no log")))?;
        crate::internal_topic::replay(&log, |record| {
            let Some(id) = record.key.as_deref().filter(|_| !record.control).and_then(records::decode_key) else {
                return;
            };
            if let Some(meta) = records::decode_value(&id, record.value.as_deref()) {
                states.insert(id, meta);
            }
        })
        .map_err(|e| BrokerError::internal(format!("{TXN_TOPIC}-{partition}: {e}")))?;
    }
    Ok((partitions, states))
}
