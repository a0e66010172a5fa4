//! What Kafka's `TransactionCoordinator` (transaction protocol version 1,
//! as Kafka 4.x serves clients without KIP-890 part 2) answers, computed
//! from the metadata before a request, written from Kafka's
//! `prepareInitProducerIdTransit`, `prepareIncrementProducerEpoch`,
//! `prepareFenceProducerEpoch`, `handleAddPartitionsToTransaction` and
//! `endTransaction`. The simulation compares every answer of the engine
//! with it.
//!
//! Where Kafka's answer depends on timing the engine does not model (a
//! transition pending while its record is appended), the oracle takes the
//! engine's single answer: CONCURRENT_TRANSACTIONS for the whole time the
//! markers of an ending transaction are written.

use kafka_protocol::error::ResponseError as E;
use kaskade_log::txn::Marker;
use kaskade_types::{ProducerEpoch, ProducerId, ProducerIdAndEpoch, TopicPartition};

use crate::txn::state::{TxnMetadata, TxnState};

/// `RecordBatch.NO_PRODUCER_EPOCH`: Kafka's metadata of an id before its
/// first InitProducerId completed.
const NO_EPOCH: ProducerEpoch = ProducerEpoch(-1);

/// Kafka's `isProducerEpochExhausted`: the epoch cannot be bumped again.
pub fn exhausted(epoch: ProducerEpoch) -> bool {
    epoch.0 >= i16::MAX - 1
}

/// The epoch a fence aborts with (Kafka's `prepareFenceProducerEpoch`):
/// bumped even when exhausted, up to `Short.MAX_VALUE`, which no client
/// ever holds.
pub fn fence_epoch(epoch: ProducerEpoch) -> ProducerEpoch {
    if epoch.0 == i16::MAX {
        epoch
    } else {
        ProducerEpoch(epoch.0 + 1)
    }
}

fn next(epoch: ProducerEpoch) -> ProducerEpoch {
    ProducerEpoch(epoch.0 + 1)
}

/// InitProducerId's expected outcome.
#[derive(Debug, PartialEq, Eq)]
pub enum Init {
    /// The engine must ask for a new producer id.
    NeedPid,
    /// Answer with this producer id and epoch; `last` is the epoch a retry
    /// may still name (Kafka's `lastProducerEpoch`).
    Ready {
        pid: ProducerId,
        epoch: ProducerEpoch,
        last: Option<ProducerEpoch>,
    },
    /// The open transaction is aborted first with this epoch.
    AbortFirst {
        epoch: ProducerEpoch,
    },
    Error(E),
}

pub fn init(
    before: Option<&TxnMetadata>,
    timeout_ms: i32,
    max_timeout_ms: i32,
    expected: Option<ProducerIdAndEpoch>,
    new_pid: Option<ProducerId>,
) -> Init {
    if timeout_ms <= 0 || timeout_ms > max_timeout_ms {
        return Init::Error(E::InvalidTransactionTimeout);
    }
    let Some(m) = before else {
        // A new id: Kafka creates it with epoch -1 and bumps to 0, whatever
        // the request expected.
        return match new_pid {
            None => Init::NeedPid,
            Some(pid) => Init::Ready { pid, epoch: ProducerEpoch(0), last: None },
        };
    };
    if m.state.is_ending() {
        return Init::Error(E::ConcurrentTransactions);
    }
    if let Some(p) = expected {
        // The epoch is checked when bumping; only the id here.
        if m.producer_epoch != NO_EPOCH && p.id != m.producer_id {
            return Init::Error(E::ProducerFenced);
        }
    }
    match m.state {
        TxnState::Ongoing => Init::AbortFirst { epoch: fence_epoch(m.producer_epoch) },
        _ if exhausted(m.producer_epoch) && expected.is_none_or(|p| p.epoch == m.producer_epoch) => match new_pid {
            None => Init::NeedPid,
            Some(pid) => Init::Ready { pid, epoch: ProducerEpoch(0), last: None },
        },
        _ => match expected {
            None => Init::Ready { pid: m.producer_id, epoch: next(m.producer_epoch), last: None },
            Some(p) if p.epoch == m.producer_epoch || m.producer_epoch == NO_EPOCH => Init::Ready {
                pid: m.producer_id,
                epoch: next(m.producer_epoch),
                last: Some(m.producer_epoch).filter(|&e| e != NO_EPOCH),
            },
            Some(p) if Some(p.epoch) == m.last_producer_epoch => {
                Init::Ready { pid: m.producer_id, epoch: m.producer_epoch, last: m.last_producer_epoch }
            }
            Some(_) => Init::Error(E::ProducerFenced),
        },
    }
}

/// AddPartitionsToTxn / AddOffsetsToTxn: `Ok(None)` nothing changes,
/// `Ok(Some(partitions))` the transaction's partitions after the call.
pub fn add(
    before: Option<&TxnMetadata>,
    producer: ProducerIdAndEpoch,
    partitions: &[TopicPartition],
) -> Result<Option<Vec<TopicPartition>>, E> {
    let m = before.ok_or(E::InvalidProducerIdMapping)?;
    if m.producer_id != producer.id {
        return Err(E::InvalidProducerIdMapping);
    }
    if m.producer_epoch != producer.epoch {
        return Err(E::ProducerFenced);
    }
    if m.state.is_ending() {
        return Err(E::ConcurrentTransactions);
    }
    let ongoing = m.state == TxnState::Ongoing;
    if ongoing && partitions.iter().all(|p| m.partitions.contains(p)) {
        return Ok(None);
    }
    let mut all = if ongoing { m.partitions.clone() } else { Default::default() };
    all.extend(partitions.iter().cloned());
    Ok(Some(all.into_iter().collect()))
}

/// EndTxn: `Ok(Some(marker))` the transaction starts ending, `Ok(None)` a
/// retry of one that already ended this way.
pub fn end(before: Option<&TxnMetadata>, producer: ProducerIdAndEpoch, commit: bool) -> Result<Option<Marker>, E> {
    let m = before.ok_or(E::InvalidProducerIdMapping)?;
    if m.producer_id != producer.id {
        return Err(E::InvalidProducerIdMapping);
    }
    // From a client the epoch must be the current one exactly.
    if m.producer_epoch != producer.epoch {
        return Err(E::ProducerFenced);
    }
    let want = if commit { Marker::Commit } else { Marker::Abort };
    match (m.state, commit) {
        (TxnState::Ongoing, _) => Ok(Some(want)),
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(None),
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => Err(E::ConcurrentTransactions),
        _ => Err(E::InvalidTxnState),
    }
}
