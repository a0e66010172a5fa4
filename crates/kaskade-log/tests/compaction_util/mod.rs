//! Helpers for the compaction tests: keyed batches encoded with
//! kafka-protocol's encoder (any codec), and a full read of a log decoded
//! with its decoder (so cleaned batches are checked by a third-party codec).

#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kaskade_log::batch::{self, BatchHeader};
use kaskade_log::Log;

pub const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

/// An idempotent (or transactional) producer's batch fields.
#[derive(Clone, Copy, Debug)]
pub struct Producer {
    pub id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
}

/// A record to encode: key and value, either may be null.
pub type KV<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// One batch (base offset 0) of `(key, value)` records with timestamps
/// `ts, ts+1, ...`.
pub fn keyed_batch(records: &[KV<'_>], ts: i64, compression: Compression, producer: Option<Producer>) -> Vec<u8> {
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: producer.is_some_and(|p| p.transactional),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: producer.map_or(-1, |p| p.id),
            producer_epoch: producer.map_or(-1, |p| p.epoch),
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // Without a producer the base sequence must come out as -1.
            sequence: producer.map_or(i as i32 - 1, |p| p.base_sequence + i as i32),
            timestamp: ts + i as i64,
            key: k.map(Bytes::copy_from_slice),
            value: v.map(Bytes::copy_from_slice),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &recs, &RecordEncodeOptions { version: 2, compression }).expect("encode");
    let out = buf.to_vec();
    assert_eq!(batch::peek_extent(&out).map(|(_, l)| l), Some(out.len()), "one batch");
    out
}

/// A record as read back: offset, key, value.
pub type Got = (i64, Option<Bytes>, Option<Bytes>);

/// Every data record from the log start to the log end (control records
/// left out), checking that every batch is valid, that offsets strictly
/// increase and stay inside their batch, and returning the batch headers.
pub fn read_all(log: &Log) -> (Vec<Got>, Vec<BatchHeader>) {
    let (mut out, mut headers) = (Vec::new(), Vec::new());
    let mut next = log.log_start_offset();
    let end = log.log_end_offset();
    let mut last_offset = -1i64;
    while next < end {
        let r = log.read(next, 64 << 10, None).expect("read");
        let Some(mut bytes) = r.records else { break };
        while !bytes.is_empty() {
            let h = BatchHeader::parse(&bytes).expect("header");
            let len = h.total_len();
            batch::validate_structure(&bytes[..len]).expect("a valid batch");
            assert!(h.base_offset > last_offset || headers.is_empty(), "batches in offset order");
            let mut one = bytes.slice(..len);
            let set = RecordBatchDecoder::decode(&mut one).expect("kafka-protocol decodes the batch");
            assert_eq!(set.records.len(), h.records_count as usize);
            for rec in set.records {
                assert!(rec.offset > last_offset, "offsets strictly increase: {} after {last_offset}", rec.offset);
                assert!(rec.offset >= h.base_offset && rec.offset <= h.last_offset(), "record inside its batch");
                last_offset = rec.offset;
                if !rec.control {
                    out.push((rec.offset, rec.key, rec.value));
                }
            }
            last_offset = last_offset.max(h.last_offset());
            next = h.next_offset();
            headers.push(h);
            bytes = bytes.slice(len..);
        }
    }
    (out, headers)
}

/// Drives `log`'s high watermark by the single-node rule (HW = durable end
/// in durable mode, log end in lazy mode), as the broker's partition layer
/// does for a one-replica ISR: the log itself only takes the HW as input.
pub fn follow_local(log: std::sync::Arc<kaskade_log::Log>) -> std::sync::Arc<kaskade_log::Log> {
    log.set_position_listener(std::sync::Arc::new(|p: kaskade_log::Positions| {
        Some(if p.durable_mode { p.durable_end.min(p.log_end) } else { p.log_end })
    }));
    log
}
