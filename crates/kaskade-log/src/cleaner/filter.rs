//! One record batch through the cleaner: decode its records (decompressing
//! with kafka-protocol's codecs), then rebuild it with the records the
//! cleaner keeps, as Kafka's `MemoryRecords.filterTo` does for magic v2:
//!
//! - the base offset, last offset delta, producer id, epoch and base
//!   sequence stay, so the batch still ends where it ended and an idempotent
//!   producer's last sequence survives;
//! - the codec stays (the kept records are recompressed with it);
//! - kept records are copied byte for byte (attributes, deltas, key, value,
//!   headers), unless the base timestamp changes for a delete horizon
//!   (KIP-534: the horizon is stored in the base timestamp field with
//!   attribute bit 6, and record timestamps are deltas from that field);
//! - a batch whose records all go but which must stay (the last batch of an
//!   active producer, the last batch of the cleaning round) becomes an empty
//!   batch header, as Kafka's `writeEmptyHeader`.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};

use crate::batch::{self, BatchHeader, ATTR_LOG_APPEND_TIME, HEADER_LEN, LOG_OVERHEAD};
use crate::error::{LogError, Result};

/// Attribute bit 6: the base timestamp holds the delete horizon (KIP-534).
pub const ATTR_DELETE_HORIZON: i16 = 0x40;
const ATTR_COMPRESSION: i16 = 0x07;

/// One record as the cleaner sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    /// False for a tombstone (null value).
    pub has_value: bool,
}

#[derive(Debug)]
struct RawRecord {
    /// The whole record, length prefix included.
    whole: Range<usize>,
    /// From the key length to the end of the record (copied as is when the
    /// timestamp delta is re-encoded).
    tail: Range<usize>,
    attributes: u8,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<Range<usize>>,
    has_value: bool,
}

/// The decoded (decompressed) records of one batch.
#[derive(Debug)]
pub struct Records {
    data: Bytes,
    recs: Vec<RawRecord>,
}

impl Records {
    pub fn len(&self) -> usize {
        self.recs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    /// The records, with absolute offsets and timestamps.
    pub fn iter<'a>(&'a self, h: &'a BatchHeader) -> impl Iterator<Item = RecordView<'a>> + 'a {
        self.recs.iter().map(move |r| RecordView {
            offset: h.base_offset + i64::from(r.offset_delta),
            timestamp: h.base_timestamp.wrapping_add(r.timestamp_delta),
            key: r.key.clone().map(|k| &self.data[k]),
            has_value: r.has_value,
        })
    }
}

/// The delete horizon stored in a batch, if any (KIP-534).
pub fn delete_horizon(h: &BatchHeader) -> Option<i64> {
    (h.attributes & ATTR_DELETE_HORIZON != 0).then_some(h.base_timestamp)
}

/// Decodes the records of a whole, CRC-checked batch.
pub fn decode(batch: &Bytes, h: &BatchHeader) -> Result<Records> {
    if batch.len() < HEADER_LEN {
        return Err(LogError::CorruptBatch(format!("a batch of {} bytes has no records section", batch.len())));
    }
    let data = decompress(h.compression(), batch.slice(HEADER_LEN..))?;
    let mut recs = Vec::with_capacity(h.records_count.clamp(0, 1 << 16) as usize);
    let mut pos = 0;
    for i in 0..h.records_count.max(0) {
        let r = parse_record(&data, &mut pos).ok_or_else(|| {
            LogError::CorruptBatch(format!("record {i} of the batch at offset {} cannot be parsed", h.base_offset))
        })?;
        recs.push(r);
    }
    if pos != data.len() {
        return Err(LogError::CorruptBatch(format!(
            "{} bytes follow the {} records of the batch at offset {}",
            data.len() - pos,
            h.records_count,
            h.base_offset
        )));
    }
    Ok(Records { data, recs })
}

/// Rebuilds the batch with the records where `keep` is true. `new_base` is
/// the base timestamp to write (the delete horizon when `set_horizon`).
pub fn rebuild(h: &BatchHeader, records: &Records, keep: &[bool], set_horizon: Option<i64>) -> Result<Vec<u8>> {
    let new_base = set_horizon.unwrap_or(h.base_timestamp);
    let mut raw = BytesMut::new();
    let mut count = 0i32;
    let mut max_ts = i64::MIN;
    for (r, _) in records.recs.iter().zip(keep).filter(|(_, k)| **k) {
        count += 1;
        let ts = h.base_timestamp.wrapping_add(r.timestamp_delta);
        max_ts = max_ts.max(ts);
        if new_base == h.base_timestamp {
            raw.extend_from_slice(&records.data[r.whole.clone()]);
        } else {
            let mut body = Vec::with_capacity(r.whole.len() + 10);
            body.push(r.attributes);
            put_varint(&mut body, ts.wrapping_sub(new_base));
            put_varint(&mut body, i64::from(r.offset_delta));
            body.extend_from_slice(&records.data[r.tail.clone()]);
            let mut len = Vec::with_capacity(5);
            put_varint(&mut len, body.len() as i64);
            raw.extend_from_slice(&len);
            raw.extend_from_slice(&body);
        }
    }
    let max_timestamp = if h.attributes & ATTR_LOG_APPEND_TIME != 0 || count == 0 { h.max_timestamp } else { max_ts };
    let mut out = BytesMut::with_capacity(HEADER_LEN + raw.len());
    out.resize(HEADER_LEN, 0);
    compress(h.compression(), &raw, &mut out)?;
    let mut attributes = h.attributes;
    if set_horizon.is_some() {
        attributes |= ATTR_DELETE_HORIZON;
    }
    let header = BatchHeader {
        attributes,
        base_timestamp: new_base,
        max_timestamp,
        records_count: count,
        batch_length: (out.len() - LOG_OVERHEAD) as i32,
        ..*h
    };
    let mut out = out.to_vec();
    write_header(&mut out, &header);
    Ok(out)
}

/// An empty batch holding the place of `h` (Kafka's `writeEmptyHeader`):
/// same offsets and producer fields, no records, no compression, both
/// timestamps set to the batch's max timestamp.
pub fn empty_batch(h: &BatchHeader) -> Vec<u8> {
    let header = BatchHeader {
        attributes: h.attributes & !(ATTR_COMPRESSION | ATTR_DELETE_HORIZON),
        base_timestamp: h.max_timestamp,
        records_count: 0,
        batch_length: (HEADER_LEN - LOG_OVERHEAD) as i32,
        ..*h
    };
    let mut out = vec![0u8; HEADER_LEN];
    write_header(&mut out, &header);
    out
}

/// Writes `h` into the first 61 bytes of `out` and the CRC over the rest.
fn write_header(out: &mut [u8], h: &BatchHeader) {
    let mut w = &mut out[..HEADER_LEN];
    w.put_i64(h.base_offset);
    w.put_i32(h.batch_length);
    w.put_i32(h.partition_leader_epoch);
    w.put_i8(2);
    w.put_u32(0);
    w.put_i16(h.attributes);
    w.put_i32(h.last_offset_delta);
    w.put_i64(h.base_timestamp);
    w.put_i64(h.max_timestamp);
    w.put_i64(h.producer_id);
    w.put_i16(h.producer_epoch);
    w.put_i32(h.base_sequence);
    w.put_i32(h.records_count);
    let crc = batch::compute_crc(out);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn decompress(codec: i16, mut payload: Bytes) -> Result<Bytes> {
    let out = match codec {
        0 => return Ok(payload),
        1 => Gzip::decompress(&mut payload, |b: &mut Bytes| Ok(b.clone())),
        2 => Snappy::decompress(&mut payload, |b: &mut Bytes| Ok(b.clone())),
        3 => Lz4::decompress(&mut payload, |b: &mut Bytes| Ok(b.clone())),
        4 => Zstd::decompress(&mut payload, |b: &mut Bytes| Ok(b.clone())),
        c => return Err(LogError::CorruptBatch(format!("unknown compression codec {c}"))),
    };
    out.map_err(|e| LogError::CorruptBatch(format!("decompressing records: {e:#}")))
}

fn compress(codec: i16, raw: &[u8], out: &mut BytesMut) -> Result<()> {
    let res = match codec {
        0 => {
            out.extend_from_slice(raw);
            return Ok(());
        }
        1 => Gzip::compress(out, |t: &mut BytesMut| {
            t.extend_from_slice(raw);
            Ok(())
        }),
        2 => Snappy::compress(out, |t: &mut BytesMut| {
            t.extend_from_slice(raw);
            Ok(())
        }),
        3 => Lz4::compress(out, |t: &mut BytesMut| {
            t.extend_from_slice(raw);
            Ok(())
        }),
        4 => Zstd::compress(out, |t: &mut BytesMut| {
            t.extend_from_slice(raw);
            Ok(())
        }),
        c => return Err(LogError::CorruptBatch(format!("unknown compression codec {c}"))),
    };
    res.map_err(|e| LogError::Io(std::io::Error::other(format!("compressing records: {e:#}"))))
}

use crate::varint::{get as get_varint, put as put_varint};

/// Parses one record at `pos`, checking every length against the record's
/// own size (Kafka's `DefaultRecord.readFrom`).
fn parse_record(data: &[u8], pos: &mut usize) -> Option<RawRecord> {
    let start = *pos;
    let len = usize::try_from(get_varint(data, pos)?).ok()?;
    let body_start = *pos;
    let end = body_start.checked_add(len)?;
    let body = data.get(..end)?;
    let mut p = body_start;
    let attributes = *body.get(p)?;
    p += 1;
    let timestamp_delta = get_varint(body, &mut p)?;
    let offset_delta = i32::try_from(get_varint(body, &mut p)?).ok()?;
    let tail_start = p;
    let key = match get_varint(body, &mut p)? {
        -1 => None,
        n => {
            let n = usize::try_from(n).ok()?;
            let k = p..p.checked_add(n)?;
            body.get(k.clone())?;
            p = k.end;
            Some(k)
        }
    };
    let has_value = match get_varint(body, &mut p)? {
        -1 => false,
        n => {
            p = p.checked_add(usize::try_from(n).ok()?)?;
            true
        }
    };
    let headers = get_varint(body, &mut p)?;
    if headers < 0 {
        return None;
    }
    for _ in 0..headers {
        let klen = usize::try_from(get_varint(body, &mut p)?).ok()?;
        p = p.checked_add(klen)?;
        match get_varint(body, &mut p)? {
            -1 => {}
            n => p = p.checked_add(usize::try_from(n).ok()?)?,
        }
        if p > end {
            return None;
        }
    }
    if p != end {
        return None;
    }
    *pos = end;
    Some(RawRecord {
        whole: start..end,
        tail: tail_start..end,
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        has_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn record(offset: i64, key: Option<&str>, value: Option<&str>, ts: i64) -> Record {
        let mut headers = IndexMap::new();
        headers.insert(StrBytes::from_static_str("h"), Some(Bytes::from_static(b"v")));
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: 7,
            producer_epoch: 1,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: offset as i32 + 3,
            timestamp: ts,
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
            headers,
        }
    }

    fn encode(records: &[Record], compression: Compression) -> Bytes {
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(&mut buf, records, &RecordEncodeOptions { version: 2, compression })
            .expect("encode");
        buf.freeze()
    }

    const CODECS: [Compression; 5] =
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

    #[test]
    fn decode_rebuild_keeps_offsets_and_producer_fields_for_every_codec() {
        for codec in CODECS {
            let recs = vec![
                record(0, Some("a"), Some("1"), 1000),
                record(1, Some("b"), None, 1001),
                record(2, Some("a"), Some("2"), 1005),
                record(3, None, Some("x"), 1002),
            ];
            let b = encode(&recs, codec);
            let h = batch::validate_structure(&b).expect("valid");
            let decoded = decode(&b, &h).expect("decode");
            let views: Vec<_> = decoded.iter(&h).collect();
            assert_eq!(views.len(), 4);
            assert_eq!(views[1], RecordView { offset: 1, timestamp: 1001, key: Some(b"b"), has_value: false });
            assert_eq!(views[3].key, None);
            // Drop the first and the last record.
            let out = rebuild(&h, &decoded, &[false, true, true, false], None).expect("rebuild");
            let h2 = batch::validate_structure(&out).expect("rebuilt batch is valid");
            assert_eq!(h2.base_offset, h.base_offset);
            assert_eq!(h2.last_offset_delta, 3, "{codec:?}: the batch keeps its last offset");
            assert_eq!((h2.producer_id, h2.producer_epoch, h2.base_sequence), (7, 1, 3));
            assert_eq!(h2.records_count, 2);
            assert_eq!(h2.compression(), h.compression());
            assert_eq!(h2.max_timestamp, 1005);
            let sets = RecordBatchDecoder::decode_all(&mut Bytes::from(out)).expect("kafka-protocol decodes it");
            let got: Vec<_> = sets[0].records.iter().map(|r| (r.offset, r.key.clone(), r.value.clone())).collect();
            assert_eq!(
                got,
                vec![(1, Some(Bytes::from("b")), None), (2, Some(Bytes::from("a")), Some(Bytes::from("2")))]
            );
            assert_eq!(sets[0].records[1].headers.len(), 1, "headers are kept");
        }
    }

    #[test]
    fn delete_horizon_moves_the_base_timestamp_and_keeps_record_times() {
        let recs = vec![record(0, Some("a"), None, 5000), record(1, Some("b"), Some("v"), 7000)];
        let b = encode(&recs, Compression::Lz4);
        let h = batch::validate_structure(&b).expect("valid");
        assert_eq!(delete_horizon(&h), None);
        let decoded = decode(&b, &h).expect("decode");
        let out = rebuild(&h, &decoded, &[true, true], Some(90_000)).expect("rebuild");
        let h2 = batch::validate_structure(&out).expect("valid");
        assert_eq!(delete_horizon(&h2), Some(90_000));
        assert_eq!(h2.max_timestamp, 7000);
        let d2 = decode(&Bytes::from(out.clone()), &h2).expect("decode again");
        let times: Vec<i64> = d2.iter(&h2).map(|r| r.timestamp).collect();
        assert_eq!(times, vec![5000, 7000], "record timestamps survive the new base");
        let sets = RecordBatchDecoder::decode_all(&mut Bytes::from(out)).expect("decodes");
        assert!(sets[0].records[0].delete_horizon);
    }

    #[test]
    fn empty_batch_keeps_the_place_of_the_original() {
        let recs = vec![record(0, Some("a"), Some("1"), 10), record(1, Some("a"), Some("2"), 20)];
        let b = encode(&recs, Compression::Zstd);
        let h = batch::validate_structure(&b).expect("valid");
        let e = empty_batch(&h);
        let h2 = batch::validate_structure(&e).expect("valid");
        assert_eq!((h2.base_offset, h2.last_offset(), h2.records_count), (0, 1, 0));
        assert_eq!((h2.compression(), h2.base_timestamp, h2.max_timestamp), (0, 20, 20));
        assert_eq!((h2.producer_id, h2.base_sequence), (7, 3));
        let d = decode(&Bytes::from(e), &h2).expect("decode empty");
        assert!(d.is_empty());
    }

    #[test]
    fn malformed_records_are_refused_not_misread() {
        let recs = vec![record(0, Some("key"), Some("value"), 10)];
        let b = encode(&recs, Compression::None);
        let h = batch::validate_structure(&b).expect("valid");
        // Claim two records: the second cannot be parsed.
        let lying = BatchHeader { records_count: 2, ..h };
        assert!(decode(&b, &lying).is_err());
        // Shorten the key length varint's target past the record.
        let mut bad = b.to_vec();
        let key_len_at = HEADER_LEN + 1 + 1 + 1 + 1; // length, attributes, ts delta, offset delta
        bad[key_len_at] = 0x7e; // key length 63
        assert!(decode(&Bytes::from(bad), &h).is_err());
        let mut v = Vec::new();
        for x in [0i64, -1, 1, 63, -64, 300, i32::MAX as i64, i64::MIN, i64::MAX] {
            v.clear();
            put_varint(&mut v, x);
            let mut p = 0;
            assert_eq!(get_varint(&v, &mut p), Some(x));
            assert_eq!(p, v.len());
        }
    }
}
