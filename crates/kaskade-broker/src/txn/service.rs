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
use kaskade_log::Log;
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

    /// Creates and loads `__transaction_state` once, finishes transactions
    /// caught between Prepare and Complete, and starts the timeout task.
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
                    self.execute(broker, &plan).await?;
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
            let decision = self.engine.lock().init_producer_id(now_ms(), id, timeout_ms, expected, new_pid)?;
            match decision {
                InitDecision::NeedProducerId => {
                    new_pid = Some(broker.producer_ids.generate(&broker.topics).await.map_err(|e| {
                        tracing::error!("allocating a producer id: {e}");
                        ResponseError::CoordinatorLoadInProgress
                    })?);
                }
                InitDecision::Ready(meta) => {
                    self.persist(broker, &meta).await?;
                    return Ok((meta.producer_id, meta.producer_epoch));
                }
                InitDecision::AbortFirst(meta, plan) => {
                    // Kafka answers CONCURRENT_TRANSACTIONS here and the
                    // client retries; ending the fenced transaction first
                    // and answering the retry at once is the same outcome.
                    self.persist(broker, &meta).await?;
                    self.execute(broker, &plan).await?;
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
        let changed = self.engine.lock().add_partitions(now_ms(), id, producer_id, epoch, partitions)?;
        let result = match changed {
            Some(meta) => self.persist(broker, &meta).await,
            None => Ok(()),
        };
        tracing::debug!(transactional_id = id, elapsed_us = started.elapsed().as_micros() as u64, "AddPartitionsToTxn");
        result
    }

    /// EndTxn: answers once the markers are durable on every partition,
    /// so the next transaction of the producer can start at once.
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
        let decision = self.engine.lock().end_txn(now_ms(), id, producer_id, epoch, commit)?;
        let result = match decision {
            EndDecision::AlreadyDone => Ok(()),
            EndDecision::Begin(meta, plan) => {
                self.persist(broker, &meta).await?;
                self.execute(broker, &plan).await
            }
        };
        tracing::debug!(transactional_id = id, commit, elapsed_us = started.elapsed().as_micros() as u64, "EndTxn");
        result
    }

    /// Writes `meta` to its `__transaction_state` partition and waits until
    /// it is durable.
    async fn persist(&self, broker: &Arc<Broker>, meta: &TxnMetadata) -> Result<(), ResponseError> {
        self.append_state(broker, &meta.transactional_id, Some(records::value(meta))).await
    }

    /// Appends one `__transaction_state` record (`None`: a tombstone) and
    /// waits until it is durable.
    async fn append_state(&self, broker: &Arc<Broker>, id: &str, value: Option<Bytes>) -> Result<(), ResponseError> {
        let partition = records::partition_for(id, self.partition_count());
        let log = broker.topics.log(TXN_TOPIC, partition).ok_or(ResponseError::CoordinatorNotAvailable)?;
        let record = [(records::key(id), value)];
        let batch = crate::internal_topic::encode_batch(&record, now_ms(), None).map_err(|e| {
            tracing::error!("encoding transaction state: {e}");
            ResponseError::UnknownServerError
        })?;
        let info = log.append(&batch, 0).map_err(|e| {
            tracing::error!("appending to {TXN_TOPIC}-{partition}: {e}");
            ResponseError::CoordinatorNotAvailable
        })?;
        log.wait_durable(info.last_offset + 1).await.map_err(|e| {
            tracing::error!("{TXN_TOPIC}-{partition} not durable: {e}");
            ResponseError::CoordinatorNotAvailable
        })
    }

    /// Writes the plan's markers, waits until they are durable, settles the
    /// transaction's offsets with the group coordinator, then persists the
    /// Complete state.
    async fn execute(&self, broker: &Arc<Broker>, plan: &EndPlan) -> Result<(), ResponseError> {
        let mut waits: Vec<(Arc<Log>, i64)> = Vec::new();
        let mut offsets_partition = false;
        for (topic, partition) in &plan.partitions {
            // A partition deleted since it joined the transaction has
            // nothing to end.
            let Some(log) = broker.topics.log(topic, *partition) else { continue };
            offsets_partition |= topic == OFFSETS_TOPIC;
            match log.append_marker(plan.producer_id, plan.producer_epoch, 0, plan.marker, 0) {
                Ok(info) => waits.push((log, info.last_offset + 1)),
                Err(e) => {
                    tracing::error!(transactional_id = %plan.transactional_id, %topic, partition, "writing a transaction marker: {e}");
                    return Err(ResponseError::KafkaStorageError);
                }
            }
        }
        for (log, end) in waits {
            log.wait_durable(end).await.map_err(|e| {
                tracing::error!("transaction marker not durable: {e}");
                ResponseError::KafkaStorageError
            })?;
        }
        if offsets_partition {
            let (pid, commit) = (plan.producer_id, plan.marker == Marker::Commit);
            broker
                .groups
                .call(move |engine, now| engine.complete_txn(now, pid, commit))
                .await
                .map_err(|_| ResponseError::CoordinatorNotAvailable)?;
        }
        let done = self.engine.lock().complete(now_ms(), plan);
        match done {
            Some(meta) => self.persist(broker, &meta).await,
            None => Ok(()),
        }
    }
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
            let gone = b.txns.engine.lock().expire_ids(now_ms(), b.txns.id_expiration_ms);
            for id in gone {
                tracing::info!(transactional_id = %id, "removing an expired transactional id");
                if let Err(e) = b.txns.append_state(&b, &id, None).await {
                    tracing::error!(transactional_id = %id, "writing the tombstone of an expired id: {e:?}");
                }
            }
        }
        let expired = b.txns.engine.lock().expire(now_ms());
        for (meta, plan) in expired {
            tracing::info!(transactional_id = %meta.transactional_id, "aborting a transaction past its timeout");
            let result = async {
                b.txns.persist(&b, &meta).await?;
                b.txns.execute(&b, &plan).await
            }
            .await;
            if let Err(e) = result {
                tracing::error!(transactional_id = %meta.transactional_id, "aborting a timed-out transaction: {e:?}");
            }
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
