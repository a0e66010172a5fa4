//! Record batches (magic v2) for the CLI: build them with kafka-protocol's
//! `RecordBatchEncoder`, read fetched ones with `RecordBatchDecoder`.

use std::collections::HashSet;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

use kaskade_types::{Offset, ProducerId};

use crate::error::{ClientError, Result};

/// A record header (Kafka's `Header`): a key and a value that may be null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Bytes>,
}

impl Header {
    pub fn new(key: impl Into<String>, value: Option<Bytes>) -> Header {
        Header { key: key.into(), value }
    }
}

/// A record to send. Header keys are unique within a record (the codec
/// keeps headers in a map); a repeated key keeps its last value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
    /// CreateTime, milliseconds since the epoch.
    pub timestamp: i64,
}

impl ProducerRecord {
    /// Rough size in a batch, for batch-size accounting.
    pub fn approx_size(&self) -> usize {
        let opt = |b: &Option<Bytes>| b.as_ref().map_or(0, |b| b.len());
        16 + opt(&self.key)
            + opt(&self.value)
            + self.headers.iter().map(|h| h.key.len() + opt(&h.value) + 4).sum::<usize>()
    }
}

/// Encode `records` as one magic-v2 batch with base offset 0, no producer
/// id and no sequence (a plain, non-idempotent producer).
pub fn encode_batch(records: &[ProducerRecord], compression: Compression) -> Result<Bytes> {
    if records.is_empty() {
        return Err(ClientError::InvalidInput("cannot encode an empty batch".to_string()));
    }
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch only while
            // `offset - sequence` is constant, and writes the first
            // record's sequence as the batch's base sequence. offset-1
            // gives one batch whose base sequence is -1 (NO_SEQUENCE).
            sequence: i as i32 - 1,
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|h| (StrBytes::from_string(h.key.clone()), h.value.clone()))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &recs, &RecordEncodeOptions { version: 2, compression })
        .map_err(|e| ClientError::Protocol(format!("encoding record batch: {e:#}")))?;
    Ok(buf.freeze())
}

/// A record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub offset: Offset,
    pub timestamp: i64,
    pub timestamp_type: TimestampType,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

/// What a fetched `records` field held.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Data records at or after the fetch offset (control records and
    /// records before the fetch offset are dropped).
    pub records: Vec<ConsumedRecord>,
    /// The offset to fetch next, if any complete batch was seen.
    pub next_offset: Option<Offset>,
}

// Byte positions in a v2 batch header.
const LENGTH_END: usize = 12; // base offset (8) + batch length (4)
const MAGIC_AT: usize = 16;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const PRODUCER_ID_AT: usize = 43;
const HEADER_LEN: usize = 61;
const TRANSACTIONAL_FLAG: i16 = 1 << 4;
const CONTROL_FLAG: i16 = 1 << 5;
/// Control record type of an abort marker (the key is version, type).
const ABORT_MARKER: i16 = 0;

/// An aborted transaction as a read_committed Fetch response names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: ProducerId,
    pub first_offset: Offset,
}

/// Whether a control batch is an abort marker (its record's key is
/// version i16, type i16; type 0 is ABORT).
fn is_abort_marker(batch: &Bytes, base_offset: i64) -> Result<bool> {
    let set = RecordBatchDecoder::decode(&mut batch.clone())
        .map_err(|e| ClientError::Protocol(format!("decoding control batch at offset {base_offset}: {e:#}")))?;
    Ok(set
        .records
        .first()
        .and_then(|r| r.key.as_ref())
        .is_some_and(|k| k.len() >= 4 && i16::from_be_bytes([k[2], k[3]]) == ABORT_MARKER))
}

/// Decode the batches in a fetch response's `records`, any compression.
/// A partial batch at the end (the broker cuts at the byte limit) is
/// ignored; the next fetch starts at it. Control batches (transaction
/// markers) are never records.
///
/// `aborted` is `None` for read_uncommitted; for read_committed it is the
/// response's aborted transactions, and their data is skipped as Kafka's
/// consumer does: a transaction counts as aborted from its first offset
/// (once a batch reaches it) until its producer's abort marker, and
/// transactional batches of an aborted producer are dropped.
pub fn decode_fetched(mut data: Bytes, fetch_offset: Offset, aborted: Option<&[AbortedTxn]>) -> Result<Decoded> {
    let fetch_offset = fetch_offset.get();
    let mut out = Decoded::default();
    // Aborted transactions not reached yet, latest first (popped from
    // the end in first-offset order).
    let mut pending: Vec<AbortedTxn> = aborted.unwrap_or_default().to_vec();
    pending.sort_by_key(|a| std::cmp::Reverse(a.first_offset));
    let mut aborted_producers: HashSet<i64> = HashSet::new();
    while data.len() >= LENGTH_END {
        let base_offset = (&data[0..8]).get_i64();
        let batch_len = (&data[8..12]).get_i32();
        if batch_len < 0 || (batch_len as usize) < HEADER_LEN - LENGTH_END {
            return Err(ClientError::Protocol(format!(
                "corrupt record batch at offset {base_offset}: length {batch_len}"
            )));
        }
        let total = LENGTH_END + batch_len as usize;
        if data.len() < total {
            break; // partial batch
        }
        let mut batch = data.split_to(total);
        let magic = batch[MAGIC_AT] as i8;
        if magic != 2 {
            return Err(ClientError::Unsupported(format!(
                "record batch at offset {base_offset} has message format v{magic}; only v2 is supported"
            )));
        }
        let attributes = (&batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2]).get_i16();
        let last_offset_delta = (&batch[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]).get_i32();
        let producer_id = (&batch[PRODUCER_ID_AT..PRODUCER_ID_AT + 8]).get_i64();
        let next = base_offset + last_offset_delta as i64 + 1;
        out.next_offset = Some(out.next_offset.map_or(Offset(next), |n| n.max(Offset(next))));
        let control = attributes & CONTROL_FLAG != 0;
        if aborted.is_some() && producer_id >= 0 {
            // Kafka's consumer: aborted transactions that began at or
            // before this batch's last offset are now in force.
            while let Some(a) = pending.pop_if(|a| a.first_offset.get() < next) {
                aborted_producers.insert(a.producer_id.get());
            }
            if control {
                if aborted_producers.contains(&producer_id) && is_abort_marker(&batch, base_offset)? {
                    aborted_producers.remove(&producer_id);
                }
            } else if attributes & TRANSACTIONAL_FLAG != 0 && aborted_producers.contains(&producer_id) {
                continue; // data of an aborted transaction
            }
        }
        if control || next <= fetch_offset {
            continue; // transaction markers, or entirely before our position
        }
        let set = RecordBatchDecoder::decode(&mut batch)
            .map_err(|e| ClientError::Protocol(format!("decoding record batch at offset {base_offset}: {e:#}")))?;
        for r in set.records {
            if r.offset < fetch_offset {
                continue;
            }
            out.records.push(ConsumedRecord {
                offset: Offset(r.offset),
                timestamp: r.timestamp,
                timestamp_type: r.timestamp_type,
                key: r.key,
                value: r.value,
                headers: r.headers.into_iter().map(|(k, v)| Header::new(k.as_str(), v)).collect(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: Option<&str>, value: &str, ts: i64) -> ProducerRecord {
        ProducerRecord {
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: Some(Bytes::copy_from_slice(value.as_bytes())),
            headers: vec![Header::new("h1", Some(Bytes::from_static(b"v1"))), Header::new("h2", None)],
            timestamp: ts,
        }
    }

    /// Rewrite the base offset as a broker does on append.
    fn at_offset(batch: &Bytes, base: i64) -> Bytes {
        let mut b = BytesMut::from(&batch[..]);
        b[..8].copy_from_slice(&base.to_be_bytes());
        b.freeze()
    }

    #[test]
    fn batch_header_is_plain_producer() {
        let batch = encode_batch(&[rec(None, "a", 1000), rec(Some("k"), "b", 1001)], Compression::None).unwrap();
        let infos = RecordBatchDecoder::decode_batch_info(&mut batch.clone()).unwrap();
        assert_eq!(infos.len(), 1, "all records in one batch");
        let info = &infos[0];
        assert_eq!(info.record_count, 2);
        assert_eq!(info.base_sequence, -1);
        assert_eq!(info.producer_id, -1);
        assert_eq!(info.producer_epoch, -1);
        assert_eq!(info.partition_leader_epoch, -1);
        assert_eq!(info.min_timestamp, 1000);
        assert_eq!(info.min_offset, 0);
        assert!(!info.transactional && !info.control);
    }

    #[test]
    fn round_trip_every_compression() {
        for c in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let input: Vec<_> = (0..50)
                .map(|i| rec(if i % 2 == 0 { Some("key") } else { None }, &format!("value-{i}"), 1_700_000_000_000 + i))
                .collect();
            let batch = encode_batch(&input, c).unwrap();
            let batch = at_offset(&batch, 100);
            let d = decode_fetched(batch, Offset(100), None).unwrap();
            assert_eq!(d.next_offset, Some(Offset(150)), "{c:?}");
            assert_eq!(d.records.len(), 50, "{c:?}");
            for (i, (got, want)) in d.records.iter().zip(&input).enumerate() {
                assert_eq!(got.offset, Offset(100 + i as i64));
                assert_eq!(got.timestamp, want.timestamp);
                assert_eq!(got.key, want.key);
                assert_eq!(got.value, want.value);
                assert_eq!(got.headers, want.headers);
                assert_eq!(got.timestamp_type, TimestampType::Creation);
            }
        }
    }

    #[test]
    fn skips_records_before_fetch_offset_and_partial_tail() {
        let a = at_offset(
            &encode_batch(&[rec(None, "a", 1), rec(None, "b", 2), rec(None, "c", 3)], Compression::Lz4).unwrap(),
            10,
        );
        let b = at_offset(&encode_batch(&[rec(None, "d", 4)], Compression::None).unwrap(), 13);
        let mut data = BytesMut::new();
        data.extend_from_slice(&a);
        data.extend_from_slice(&b);
        data.extend_from_slice(&b[..20]); // truncated third batch
        let d = decode_fetched(data.freeze(), Offset(11), None).unwrap();
        let offsets: Vec<i64> = d.records.iter().map(|r| r.offset.get()).collect();
        assert_eq!(offsets, vec![11, 12, 13]);
        assert_eq!(d.next_offset, Some(Offset(14)));
    }

    #[test]
    fn empty_and_partial_only() {
        let d = decode_fetched(Bytes::new(), Offset(0), None).unwrap();
        assert!(d.records.is_empty() && d.next_offset.is_none());
        let a = encode_batch(&[rec(None, "a", 1)], Compression::None).unwrap();
        let d = decode_fetched(a.slice(..a.len() - 1), Offset(0), None).unwrap();
        assert!(d.records.is_empty() && d.next_offset.is_none());
    }

    #[test]
    fn control_batches_are_skipped_but_advance() {
        let a = encode_batch(&[rec(None, "a", 1)], Compression::None).unwrap();
        let mut b = BytesMut::from(&at_offset(&a, 5)[..]);
        b[ATTRIBUTES_AT + 1] |= CONTROL_FLAG as u8; // CRC now wrong, but we never decode it
        let d = decode_fetched(b.freeze(), Offset(0), None).unwrap();
        assert!(d.records.is_empty());
        assert_eq!(d.next_offset, Some(Offset(6)));
    }

    /// A transactional batch of `producer_id` at `base`: data records with
    /// `values`, or (`marker` Some(type)) one control record.
    fn txn_batch(producer_id: i64, base: i64, values: &[&str], marker: Option<i16>) -> Bytes {
        let control = marker.is_some();
        let recs: Vec<Record> = if let Some(kind) = marker {
            let mut key = 0i16.to_be_bytes().to_vec();
            key.extend(kind.to_be_bytes());
            vec![(Some(Bytes::from(key)), Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])))]
        } else {
            values.iter().map(|v| (None, Some(Bytes::copy_from_slice(v.as_bytes())))).collect()
        }
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: true,
            control,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: base + i as i64,
            sequence: if control { -1 } else { base as i32 + i as i32 },
            timestamp: 1000,
            key,
            value,
            headers: IndexMap::new(),
        })
        .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &recs,
            &RecordEncodeOptions { version: 2, compression: Compression::None },
        )
        .unwrap();
        at_offset(&buf.freeze(), base)
    }

    const ABORT: Option<i16> = Some(0);
    const COMMIT: Option<i16> = Some(1);

    /// Two interleaved transactions (producer 1 commits, producer 2
    /// aborts, then commits a second one) and a plain record.
    fn interleaved() -> Bytes {
        let mut data = BytesMut::new();
        for b in [
            txn_batch(1, 0, &["c1"], None),
            txn_batch(2, 1, &["a1", "a2"], None),
            txn_batch(1, 3, &["c2"], None),
            txn_batch(2, 4, &[], ABORT),
            txn_batch(1, 5, &[], COMMIT),
            txn_batch(2, 6, &["x"], None),
            txn_batch(2, 7, &[], COMMIT),
            at_offset(&encode_batch(&[rec(None, "plain", 9)], Compression::None).unwrap(), 8),
        ] {
            data.extend_from_slice(&b);
        }
        data.freeze()
    }

    fn values(d: &Decoded) -> Vec<String> {
        d.records.iter().map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned()).collect()
    }

    #[test]
    fn read_uncommitted_prints_every_data_record_and_no_marker() {
        let d = decode_fetched(interleaved(), Offset(0), None).unwrap();
        assert_eq!(values(&d), ["c1", "a1", "a2", "c2", "x", "plain"]);
        assert_eq!(d.next_offset, Some(Offset(9)));
        // Aborted transactions listed or not, read_uncommitted ignores them.
        let d = decode_fetched(interleaved(), Offset(0), Some(&[])).unwrap();
        assert_eq!(values(&d), ["c1", "a1", "a2", "c2", "x", "plain"]);
    }

    #[test]
    fn read_committed_skips_aborted_transactions_until_their_marker() {
        let aborted = [AbortedTxn { producer_id: ProducerId(2), first_offset: Offset(1) }];
        let d = decode_fetched(interleaved(), Offset(0), Some(&aborted)).unwrap();
        assert_eq!(values(&d), ["c1", "c2", "x", "plain"]);
        let offsets: Vec<i64> = d.records.iter().map(|r| r.offset.get()).collect();
        assert_eq!(offsets, [0, 3, 6, 8]);
        assert_eq!(d.next_offset, Some(Offset(9)), "skipped batches and markers still advance");
        // A fetch starting inside the aborted transaction (the broker
        // lists it: it overlaps the fetched range).
        let d = decode_fetched(interleaved(), Offset(2), Some(&aborted)).unwrap();
        assert_eq!(values(&d), ["c2", "x", "plain"]);
        // An abort marker of another producer does not end it.
        let mut data = BytesMut::new();
        for b in [txn_batch(2, 0, &["a"], None), txn_batch(3, 1, &[], ABORT), txn_batch(2, 2, &["b"], None)] {
            data.extend_from_slice(&b);
        }
        let d = decode_fetched(
            data.freeze(),
            Offset(0),
            Some(&[AbortedTxn { producer_id: ProducerId(2), first_offset: Offset(0) }]),
        )
        .unwrap();
        assert!(d.records.is_empty(), "{:?}", values(&d));
    }

    #[test]
    fn read_committed_keeps_data_before_an_aborted_transaction_begins() {
        // Producer 2's aborted transaction starts at offset 2: its
        // committed records before that are visible.
        let mut data = BytesMut::new();
        for b in [
            txn_batch(2, 0, &["first"], None),
            txn_batch(2, 1, &[], COMMIT),
            txn_batch(2, 2, &["gone"], None),
            txn_batch(2, 3, &[], ABORT),
        ] {
            data.extend_from_slice(&b);
        }
        let d = decode_fetched(
            data.freeze(),
            Offset(0),
            Some(&[AbortedTxn { producer_id: ProducerId(2), first_offset: Offset(2) }]),
        )
        .unwrap();
        assert_eq!(values(&d), ["first"]);
    }

    #[test]
    fn corrupt_abort_marker_is_an_error_under_read_committed() {
        let mut b = BytesMut::from(&txn_batch(2, 1, &[], ABORT)[..]);
        let n = b.len();
        b[n - 1] ^= 0xff;
        let mut data = BytesMut::from(&txn_batch(2, 0, &["a"], None)[..]);
        data.extend_from_slice(&b);
        let err = decode_fetched(
            data.freeze(),
            Offset(0),
            Some(&[AbortedTxn { producer_id: ProducerId(2), first_offset: Offset(0) }]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("control batch at offset 1"), "{err:#}");
    }

    #[test]
    fn corrupt_crc_is_an_error() {
        let a = encode_batch(&[rec(None, "a", 1)], Compression::None).unwrap();
        let mut b = BytesMut::from(&a[..]);
        let n = b.len();
        b[n - 2] ^= 0xff;
        assert!(decode_fetched(b.freeze(), Offset(0), None).is_err());
    }
}
