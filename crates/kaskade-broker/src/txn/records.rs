//! The records of `__transaction_state`, with Kafka's schemas:
//! `TransactionLogKey` v0 (`version i16 | transactional_id string`) and
//! `TransactionLogValue` v0 (`version i16 | producer_id i64 |
//! producer_epoch i16 | transaction_timeout_ms i32 | transaction_status i8 |
//! transaction_partitions [topic string, partition_ids [i32]] (nullable) |
//! transaction_last_update_timestamp_ms i64 |
//! transaction_start_timestamp_ms i64`), and Kafka's choice of an id's
//! partition.

use std::collections::BTreeSet;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kaskade_types::{ProducerEpoch, ProducerId, TopicPartition};

use super::state::{TxnMetadata, TxnState};
use crate::group::records::java_string_hash;

/// `transaction_start_timestamp_ms` of a state with no open transaction.
const NO_START: i64 = -1;

/// The internal topic.
pub const TXN_TOPIC: &str = "__transaction_state";
const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

/// `Utils.abs(transactionalId.hashCode) % transaction.state.log.num.partitions`.
pub fn partition_for(transactional_id: &str, partitions: i32) -> i32 {
    let h = java_string_hash(transactional_id);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

fn put_string(buf: &mut BytesMut, s: &str) {
    let n = s.len().min(i16::MAX as usize);
    buf.put_i16(n as i16);
    buf.put_slice(&s.as_bytes()[..n]);
}

pub fn key(transactional_id: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + transactional_id.len());
    buf.put_i16(KEY_VERSION);
    put_string(&mut buf, transactional_id);
    buf.freeze()
}

pub fn value(m: &TxnMetadata) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(VALUE_VERSION);
    buf.put_i64(m.producer_id.get());
    buf.put_i16(m.producer_epoch.get());
    buf.put_i32(m.timeout_ms);
    buf.put_i8(m.state.id());
    // Kafka writes the partitions grouped by topic; null when empty.
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for tp in &m.partitions {
        match topics.last_mut() {
            Some((last, ps)) if *last == &*tp.topic => ps.push(tp.partition),
            _ => topics.push((&tp.topic, vec![tp.partition])),
        }
    }
    if topics.is_empty() {
        buf.put_i32(-1);
    } else {
        buf.put_i32(topics.len() as i32);
        for (t, ps) in topics {
            put_string(&mut buf, t);
            buf.put_i32(ps.len() as i32);
            for p in ps {
                buf.put_i32(p);
            }
        }
    }
    buf.put_i64(m.update_ms);
    buf.put_i64(m.start_ms.unwrap_or(NO_START));
    buf.freeze()
}

fn get_string(b: &mut &[u8]) -> Option<String> {
    if b.remaining() < 2 {
        return None;
    }
    let n = usize::try_from(b.get_i16()).ok()?;
    if b.remaining() < n {
        return None;
    }
    let s = String::from_utf8(b[..n].to_vec()).ok()?;
    b.advance(n);
    Some(s)
}

/// The transactional id of a key, `None` if it is not a v0 key.
pub fn decode_key(mut b: &[u8]) -> Option<String> {
    if b.remaining() < 2 || b.get_i16() != KEY_VERSION {
        return None;
    }
    get_string(&mut b)
}

/// What a `__transaction_state` value says of its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateValue {
    /// The id's state.
    Metadata(TxnMetadata),
    /// A tombstone: the id is gone.
    Removed,
}

/// The value of `id`'s record (`None` value: a tombstone); `None` if it is
/// not a v0 value.
pub fn decode_value(id: &str, value: Option<&[u8]>) -> Option<StateValue> {
    let Some(mut b) = value else {
        return Some(StateValue::Removed);
    };
    if b.remaining() < 2 + 8 + 2 + 4 + 1 + 4 || b.get_i16() != VALUE_VERSION {
        return None;
    }
    let producer_id = ProducerId(b.get_i64());
    let producer_epoch = ProducerEpoch(b.get_i16());
    let timeout_ms = b.get_i32();
    let state = TxnState::from_id(b.get_i8())?;
    let topics = b.get_i32();
    let mut partitions = BTreeSet::new();
    for _ in 0..topics.max(0) {
        let topic = get_string(&mut b)?;
        if b.remaining() < 4 {
            return None;
        }
        let n = b.get_i32();
        if n < 0 || b.remaining() < n as usize * 4 {
            return None;
        }
        let topic: std::sync::Arc<str> = topic.into();
        for _ in 0..n {
            partitions.insert(TopicPartition::new(topic.clone(), b.get_i32()));
        }
    }
    if b.remaining() < 16 {
        return None;
    }
    let update_ms = b.get_i64();
    // Kafka writes -1 when no transaction is open.
    let start_ms = Some(b.get_i64()).filter(|&ms| ms >= 0);
    Some(StateValue::Metadata(TxnMetadata {
        transactional_id: id.to_string(),
        producer_id,
        producer_epoch,
        last_producer_epoch: None,
        timeout_ms,
        state,
        partitions,
        start_ms,
        update_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_kafkas_layout() {
        let m = TxnMetadata {
            transactional_id: "tx".into(),
            producer_id: ProducerId(5),
            producer_epoch: ProducerEpoch(2),
            last_producer_epoch: None,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [TopicPartition::new("a", 0), TopicPartition::new("a", 3), TopicPartition::new("b", 1)]
                .into_iter()
                .collect(),
            start_ms: Some(10),
            update_ms: 11,
        };
        assert_eq!(&key("tx")[..], &[0, 0, 0, 2, b't', b'x']);
        let v = value(&m);
        // version, pid, epoch, timeout, status, 2 topics.
        assert_eq!(&v[..2], &[0, 0]);
        assert_eq!(v[16], 1);
        assert_eq!(&v[17..21], &[0, 0, 0, 2]);
        assert_eq!(decode_key(&key("tx")).as_deref(), Some("tx"));
        assert_eq!(decode_value("tx", Some(&v)), Some(StateValue::Metadata(m.clone())));
        let empty = TxnMetadata { partitions: BTreeSet::new(), state: TxnState::CompleteCommit, start_ms: None, ..m };
        let encoded = value(&empty);
        assert_eq!(&encoded[encoded.len() - 8..], &(-1i64).to_be_bytes(), "no start: -1, as Kafka writes");
        assert_eq!(decode_value("tx", Some(&encoded)), Some(StateValue::Metadata(empty)));
        assert_eq!(decode_value("tx", None), Some(StateValue::Removed));
        assert_eq!(decode_value("tx", Some(&[0, 0, 1])), None);
        assert_eq!(partition_for("my-txn", 50), partition_for("my-txn", 50));
    }
}
