//! Record batches (magic v2) for the CLI: build them with kafka-protocol's
//! `RecordBatchEncoder`, read fetched ones with `RecordBatchDecoder`.

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

/// A record to send. Header keys are unique within a record (the codec
/// keeps headers in a map); a repeated key keeps its last value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// CreateTime, milliseconds since the epoch.
    pub timestamp: i64,
}

impl ProducerRecord {
    /// Rough size in a batch, for batch-size accounting.
    pub fn approx_size(&self) -> usize {
        let opt = |b: &Option<Bytes>| b.as_ref().map_or(0, |b| b.len());
        16 + opt(&self.key) + opt(&self.value) + self.headers.iter().map(|(k, v)| k.len() + opt(v) + 4).sum::<usize>()
    }
}

/// Encode `records` as one magic-v2 batch with base offset 0, no producer
/// id and no sequence (a plain, non-idempotent producer).
pub fn encode_batch(records: &[ProducerRecord], compression: Compression) -> Result<Bytes> {
    if records.is_empty() {
        bail!("cannot encode an empty batch");
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
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &recs, &RecordEncodeOptions { version: 2, compression })
        .context("encoding record batch")?;
    Ok(buf.freeze())
}

/// A record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub timestamp_type: TimestampType,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// What a fetched `records` field held.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Data records at or after the fetch offset (control records and
    /// records before the fetch offset are dropped).
    pub records: Vec<ConsumedRecord>,
    /// The offset to fetch next, if any complete batch was seen.
    pub next_offset: Option<i64>,
}

// Byte positions in a v2 batch header.
const LENGTH_END: usize = 12; // base offset (8) + batch length (4)
const MAGIC_AT: usize = 16;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const HEADER_LEN: usize = 61;
const CONTROL_FLAG: i16 = 1 << 5;

/// Decode the batches in a fetch response's `records`, any compression.
/// A partial batch at the end (the broker cuts at the byte limit) is
/// ignored; the next fetch starts at it.
pub fn decode_fetched(mut data: Bytes, fetch_offset: i64) -> Result<Decoded> {
    let mut out = Decoded::default();
    while data.len() >= LENGTH_END {
        let base_offset = (&data[0..8]).get_i64();
        let batch_len = (&data[8..12]).get_i32();
        if batch_len < 0 || (batch_len as usize) < HEADER_LEN - LENGTH_END {
            bail!("corrupt record batch at offset {base_offset}: length {batch_len}");
        }
        let total = LENGTH_END + batch_len as usize;
        if data.len() < total {
            break; // partial batch
        }
        let mut batch = data.split_to(total);
        let magic = batch[MAGIC_AT] as i8;
        if magic != 2 {
            bail!("record batch at offset {base_offset} has message format v{magic}; only v2 is supported");
        }
        let attributes = (&batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2]).get_i16();
        let last_offset_delta = (&batch[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]).get_i32();
        let next = base_offset + last_offset_delta as i64 + 1;
        out.next_offset = Some(out.next_offset.map_or(next, |n: i64| n.max(next)));
        if attributes & CONTROL_FLAG != 0 || next <= fetch_offset {
            continue; // transaction markers, or entirely before our position
        }
        let set = RecordBatchDecoder::decode(&mut batch)
            .map_err(|e| anyhow!("decoding record batch at offset {base_offset}: {e:#}"))?;
        for r in set.records {
            if r.offset < fetch_offset {
                continue;
            }
            out.records.push(ConsumedRecord {
                offset: r.offset,
                timestamp: r.timestamp,
                timestamp_type: r.timestamp_type,
                key: r.key,
                value: r.value,
                headers: r.headers.into_iter().map(|(k, v)| (k.as_str().to_string(), v)).collect(),
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
            headers: vec![("h1".into(), Some(Bytes::from_static(b"v1"))), ("h2".into(), None)],
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
            let d = decode_fetched(batch, 100).unwrap();
            assert_eq!(d.next_offset, Some(150), "{c:?}");
            assert_eq!(d.records.len(), 50, "{c:?}");
            for (i, (got, want)) in d.records.iter().zip(&input).enumerate() {
                assert_eq!(got.offset, 100 + i as i64);
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
        let d = decode_fetched(data.freeze(), 11).unwrap();
        let offsets: Vec<i64> = d.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![11, 12, 13]);
        assert_eq!(d.next_offset, Some(14));
    }

    #[test]
    fn empty_and_partial_only() {
        let d = decode_fetched(Bytes::new(), 0).unwrap();
        assert!(d.records.is_empty() && d.next_offset.is_none());
        let a = encode_batch(&[rec(None, "a", 1)], Compression::None).unwrap();
        let d = decode_fetched(a.slice(..a.len() - 1), 0).unwrap();
        assert!(d.records.is_empty() && d.next_offset.is_none());
    }

    #[test]
    fn control_batches_are_skipped_but_advance() {
        let a = encode_batch(&[rec(None, "a", 1)], Compression::None).unwrap();
        let mut b = BytesMut::from(&at_offset(&a, 5)[..]);
        b[ATTRIBUTES_AT + 1] |= CONTROL_FLAG as u8; // CRC now wrong, but we never decode it
        let d = decode_fetched(b.freeze(), 0).unwrap();
        assert!(d.records.is_empty());
        assert_eq!(d.next_offset, Some(6));
    }

    #[test]
    fn corrupt_crc_is_an_error() {
        let a = encode_batch(&[rec(None, "a", 1)], Compression::None).unwrap();
        let mut b = BytesMut::from(&a[..]);
        let n = b.len();
        b[n - 2] ^= 0xff;
        assert!(decode_fetched(b.freeze(), 0).is_err());
    }
}
