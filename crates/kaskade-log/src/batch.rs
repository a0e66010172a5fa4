//! Record batch (magic v2) headers: read, validate and patch without decoding
//! the records.
//!
//! Layout (big-endian), 61 bytes, as Kafka's `DefaultRecordBatch`:
//! `baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 |
//! crc u32 | attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 |
//! maxTimestamp i64 | producerId i64 | producerEpoch i16 | baseSequence i32 |
//! recordsCount i32`. `batchLength` counts the bytes after itself; the CRC32C
//! covers everything from `attributes` to the end, so base offset and leader
//! epoch can be rewritten without recomputing it.

use bytes::Bytes;

use crate::error::{LogError, Result};

/// A batch as `Log::append` takes it: bytes the log may keep past the call,
/// because whichever appender writes next also writes the batches other
/// appenders queued meanwhile (`log` module docs). Owned bytes (`Bytes`, as
/// a produce request carries them, `BytesMut` or a `Vec`) are taken without
/// a copy; a borrowed slice is copied once.
pub trait IntoBatchBytes {
    fn into_batch_bytes(self) -> Bytes;
}

impl IntoBatchBytes for Bytes {
    fn into_batch_bytes(self) -> Bytes {
        self
    }
}

impl IntoBatchBytes for &Bytes {
    fn into_batch_bytes(self) -> Bytes {
        self.clone()
    }
}

impl IntoBatchBytes for bytes::BytesMut {
    fn into_batch_bytes(self) -> Bytes {
        self.freeze()
    }
}

impl IntoBatchBytes for Vec<u8> {
    fn into_batch_bytes(self) -> Bytes {
        Bytes::from(self)
    }
}

impl IntoBatchBytes for &Vec<u8> {
    fn into_batch_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl IntoBatchBytes for &[u8] {
    fn into_batch_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl<const N: usize> IntoBatchBytes for &[u8; N] {
    fn into_batch_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

pub const HEADER_LEN: usize = 61;
/// Bytes before `batchLength`'s payload: base offset + length field.
pub const LOG_OVERHEAD: usize = 12;
/// Enough of the header to learn a batch's extent on disk.
pub const MIN_PREFIX: usize = 17;

const LENGTH_OFF: usize = 8;
const EPOCH_OFF: usize = 12;
const MAGIC_OFF: usize = 16;
const CRC_OFF: usize = 17;
const ATTR_OFF: usize = 21;
const LAST_DELTA_OFF: usize = 23;
const BASE_TS_OFF: usize = 27;
const MAX_TS_OFF: usize = 35;
const PRODUCER_ID_OFF: usize = 43;
const PRODUCER_EPOCH_OFF: usize = 51;
const BASE_SEQ_OFF: usize = 53;
const COUNT_OFF: usize = 57;

/// Attribute bit: timestamps are the broker's append time.
pub const ATTR_LOG_APPEND_TIME: i16 = 0x08;
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
pub const ATTR_CONTROL: i16 = 0x20;

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

/// A decoded batch header. Holds no reference to the batch bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses a full 61-byte header. `buf` must hold at least `HEADER_LEN`
    /// bytes; the magic is checked so that fields are not misread.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader> {
        if buf.len() < MIN_PREFIX {
            return Err(LogError::CorruptBatch(format!("{} bytes cannot hold a record batch header", buf.len())));
        }
        let magic = buf[MAGIC_OFF] as i8;
        if magic != 2 {
            return Err(LogError::UnsupportedMagic(magic));
        }
        if buf.len() < HEADER_LEN {
            return Err(LogError::CorruptBatch(format!(
                "{} bytes cannot hold a magic v2 batch header ({HEADER_LEN} bytes)",
                buf.len()
            )));
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length: be_i32(buf, LENGTH_OFF),
            partition_leader_epoch: be_i32(buf, EPOCH_OFF),
            magic,
            crc: be_i32(buf, CRC_OFF) as u32,
            attributes: be_i16(buf, ATTR_OFF),
            last_offset_delta: be_i32(buf, LAST_DELTA_OFF),
            base_timestamp: be_i64(buf, BASE_TS_OFF),
            max_timestamp: be_i64(buf, MAX_TS_OFF),
            producer_id: be_i64(buf, PRODUCER_ID_OFF),
            producer_epoch: be_i16(buf, PRODUCER_EPOCH_OFF),
            base_sequence: be_i32(buf, BASE_SEQ_OFF),
            records_count: be_i32(buf, COUNT_OFF),
        })
    }

    /// Total bytes the batch occupies in the log.
    pub fn total_len(&self) -> usize {
        self.batch_length as usize + LOG_OVERHEAD
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// The compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & 0x07
    }
}

/// The headers of the whole batches at the start of `records` (a read's
/// result), in order; stops at the first that does not parse.
pub fn headers(records: &[u8]) -> impl Iterator<Item = BatchHeader> + '_ {
    let mut rest = records;
    std::iter::from_fn(move || {
        let h = BatchHeader::parse(rest).ok()?;
        rest = rest.get(h.total_len()..).unwrap_or_default();
        Some(h)
    })
}

/// Reads only the batch extent (base offset, total length) from a prefix of
/// at least `LOG_OVERHEAD` bytes. Used while scanning the log.
pub fn peek_extent(buf: &[u8]) -> Option<(i64, usize)> {
    if buf.len() < LOG_OVERHEAD {
        return None;
    }
    let len = be_i32(buf, LENGTH_OFF);
    if len < (HEADER_LEN - LOG_OVERHEAD) as i32 {
        return None;
    }
    Some((be_i64(buf, 0), len as usize + LOG_OVERHEAD))
}

/// CRC32C over `attributes..end`, as stored in the header.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c(&batch[ATTR_OFF..])
}

/// CRC-32C (Castagnoli), the checksum of Kafka's record batches and of our
/// own files (producer snapshots).
pub fn crc32c(bytes: &[u8]) -> u32 {
    // CRC-32 fits u32; the crate returns every width as u64.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, bytes) as u32
}

/// Structural checks shared by the append path and recovery: the length
/// field matches the bytes, magic is 2 and the CRC holds.
pub fn validate_structure(batch: &[u8]) -> Result<BatchHeader> {
    let header = BatchHeader::parse(batch)?;
    if header.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(LogError::CorruptBatch(format!("batch length {} is smaller than the header", header.batch_length)));
    }
    if header.total_len() != batch.len() {
        return Err(LogError::CorruptBatch(format!(
            "batch length field says {} bytes but {} are present",
            header.total_len(),
            batch.len()
        )));
    }
    let crc = compute_crc(batch);
    if crc != header.crc {
        return Err(LogError::CorruptBatch(format!(
            "CRC32C mismatch: header {:#010x}, computed {:#010x}",
            header.crc, crc
        )));
    }
    if header.last_offset_delta < 0 {
        return Err(LogError::CorruptBatch(format!("negative last offset delta {}", header.last_offset_delta)));
    }
    Ok(header)
}

/// Everything a producer's batch must satisfy before it is appended.
pub fn validate_for_append(batch: &[u8], max_message_bytes: usize) -> Result<BatchHeader> {
    if batch.len() > max_message_bytes {
        // Read the magic first so an old-format batch says so, not "too large".
        if batch.len() > MAGIC_OFF && batch[MAGIC_OFF] as i8 != 2 {
            return Err(LogError::UnsupportedMagic(batch[MAGIC_OFF] as i8));
        }
        return Err(LogError::TooLarge { size: batch.len(), max: max_message_bytes });
    }
    let header = validate_structure(batch)?;
    if header.records_count <= 0 {
        return Err(LogError::InvalidRecord(format!("batch declares {} records", header.records_count)));
    }
    if header.records_count as i64 != header.last_offset_delta as i64 + 1 {
        return Err(LogError::InvalidRecord(format!(
            "record count {} does not match last offset delta {}",
            header.records_count, header.last_offset_delta
        )));
    }
    Ok(header)
}

/// Splits a produce payload into exactly one batch. Kafka requires one
/// magic-v2 batch per partition in a produce request.
pub fn single_batch(records: &[u8]) -> Result<&[u8]> {
    let (_, len) =
        peek_extent(records).ok_or_else(|| LogError::CorruptBatch("records too short for a batch".into()))?;
    if records.len() > MAGIC_OFF && records[MAGIC_OFF] as i8 != 2 {
        return Err(LogError::UnsupportedMagic(records[MAGIC_OFF] as i8));
    }
    if len < records.len() {
        return Err(LogError::InvalidRecord(
            "produce requests must contain exactly one record batch per partition".into(),
        ));
    }
    Ok(records)
}

/// The first 16 bytes of a batch with its base offset and leader epoch
/// rewritten; the rest of the batch is written as received.
pub fn patched_prefix(batch: &[u8], base_offset: i64, leader_epoch: i32) -> [u8; 16] {
    let mut p = [0u8; 16];
    p.copy_from_slice(&batch[..16]);
    p[0..8].copy_from_slice(&base_offset.to_be_bytes());
    p[EPOCH_OFF..EPOCH_OFF + 4].copy_from_slice(&leader_epoch.to_be_bytes());
    p
}

/// Rewrites a batch for `message.timestamp.type=LogAppendTime`: sets the
/// attribute bit and max timestamp, and recomputes the CRC (this is the one
/// append path that copies the batch).
pub fn stamp_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attrs = be_i16(batch, ATTR_OFF) | ATTR_LOG_APPEND_TIME;
    batch[ATTR_OFF..ATTR_OFF + 2].copy_from_slice(&attrs.to_be_bytes());
    batch[MAX_TS_OFF..MAX_TS_OFF + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_OFF..CRC_OFF + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Builds a valid magic-v2 batch holding `count` records with the given
/// values. The broker never builds batches on the produce path; tests,
/// benchmarks and control records do.
pub mod build {
    use super::*;

    use crate::varint::put as put_varint;

    /// A simple record: key, value, no headers.
    pub struct Record<'a> {
        pub key: Option<&'a [u8]>,
        pub value: Option<&'a [u8]>,
        pub timestamp_delta: i64,
    }

    /// Encodes an uncompressed batch with base offset 0.
    pub fn batch(records: &[Record<'_>], base_timestamp: i64, producer_id: i64) -> Vec<u8> {
        let mut body = Vec::new();
        let mut max_ts = base_timestamp;
        for (i, r) in records.iter().enumerate() {
            let mut rec = Vec::new();
            rec.push(0u8); // record attributes
            put_varint(&mut rec, r.timestamp_delta);
            put_varint(&mut rec, i as i64);
            match r.key {
                Some(k) => {
                    put_varint(&mut rec, k.len() as i64);
                    rec.extend_from_slice(k);
                }
                None => put_varint(&mut rec, -1),
            }
            match r.value {
                Some(v) => {
                    put_varint(&mut rec, v.len() as i64);
                    rec.extend_from_slice(v);
                }
                None => put_varint(&mut rec, -1),
            }
            put_varint(&mut rec, 0); // headers
            put_varint(&mut body, rec.len() as i64);
            body.extend_from_slice(&rec);
            max_ts = max_ts.max(base_timestamp + r.timestamp_delta);
        }
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(&0i64.to_be_bytes());
        out.extend_from_slice(&((HEADER_LEN - LOG_OVERHEAD + body.len()) as i32).to_be_bytes());
        out.extend_from_slice(&(-1i32).to_be_bytes());
        out.push(2);
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&0i16.to_be_bytes());
        out.extend_from_slice(&((records.len() as i32) - 1).to_be_bytes());
        out.extend_from_slice(&base_timestamp.to_be_bytes());
        out.extend_from_slice(&max_ts.to_be_bytes());
        out.extend_from_slice(&producer_id.to_be_bytes());
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out.extend_from_slice(&(-1i32).to_be_bytes());
        out.extend_from_slice(&(records.len() as i32).to_be_bytes());
        out.extend_from_slice(&body);
        let crc = compute_crc(&out);
        out[CRC_OFF..CRC_OFF + 4].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// Makes `batch` an idempotent producer's batch: sets its producer id,
    /// epoch and base sequence, and recomputes the CRC.
    pub fn set_producer(batch: &mut [u8], producer_id: i64, epoch: i16, base_sequence: i32) {
        batch[PRODUCER_ID_OFF..PRODUCER_ID_OFF + 8].copy_from_slice(&producer_id.to_be_bytes());
        batch[PRODUCER_EPOCH_OFF..PRODUCER_EPOCH_OFF + 2].copy_from_slice(&epoch.to_be_bytes());
        batch[BASE_SEQ_OFF..BASE_SEQ_OFF + 4].copy_from_slice(&base_sequence.to_be_bytes());
        let crc = compute_crc(batch);
        batch[CRC_OFF..CRC_OFF + 4].copy_from_slice(&crc.to_be_bytes());
    }

    /// Sets a built batch's attributes (compression must stay none) and
    /// recomputes the CRC.
    pub fn set_attributes(batch: &mut [u8], attributes: i16) {
        batch[ATTR_OFF..ATTR_OFF + 2].copy_from_slice(&attributes.to_be_bytes());
        let crc = compute_crc(batch);
        batch[CRC_OFF..CRC_OFF + 4].copy_from_slice(&crc.to_be_bytes());
    }

    /// `count` records of `value_len` bytes each, value bytes derived from `seed`.
    pub fn filled(count: usize, value_len: usize, timestamp: i64, seed: u8) -> Vec<u8> {
        let value: Vec<u8> = (0..value_len).map(|i| (i as u8).wrapping_add(seed)).collect();
        let recs: Vec<Record<'_>> =
            (0..count).map(|_| Record { key: None, value: Some(&value), timestamp_delta: 0 }).collect();
        batch(&recs, timestamp, -1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_is_castagnoli() {
        // The catalogue's check value of CRC-32/ISCSI, and a length that
        // takes the vector path with a remainder.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        let long: Vec<u8> = (0..16_445u32).map(|i| (i * 31 + 7) as u8).collect();
        let bitwise = long.iter().fold(!0u32, |mut c, b| {
            c ^= *b as u32;
            for _ in 0..8 {
                c = if c & 1 == 1 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
            }
            c
        });
        assert_eq!(crc32c(&long), !bitwise);
    }

    #[test]
    fn built_batch_validates_and_patches_keep_crc() {
        let b = build::filled(3, 10, 1000, 1);
        let h = validate_for_append(&b, 1 << 20).expect("valid");
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        let p = patched_prefix(&b, 42, 7);
        let mut c = b.clone();
        c[..16].copy_from_slice(&p);
        let h2 = validate_structure(&c).expect("still valid after patch");
        assert_eq!(h2.base_offset, 42);
        assert_eq!(h2.partition_leader_epoch, 7);
    }

    #[test]
    fn rejections_say_what_is_wrong() {
        let b = build::filled(2, 10, 1000, 1);
        let mut flipped = b.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(matches!(validate_for_append(&flipped, 1 << 20).unwrap_err(), LogError::CorruptBatch(_)));
        assert!(matches!(validate_for_append(&b, 10).unwrap_err(), LogError::TooLarge { .. }));
        let mut old = b.clone();
        old[MAGIC_OFF] = 1;
        assert!(matches!(validate_for_append(&old, 1 << 20).unwrap_err(), LogError::UnsupportedMagic(_)));
        let mut bad_count = b.clone();
        bad_count[COUNT_OFF..COUNT_OFF + 4].copy_from_slice(&5i32.to_be_bytes());
        let crc = compute_crc(&bad_count);
        bad_count[CRC_OFF..CRC_OFF + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(validate_for_append(&bad_count, 1 << 20).unwrap_err(), LogError::InvalidRecord(_)));
        assert!(matches!(validate_for_append(&b[..b.len() - 1], 1 << 20).unwrap_err(), LogError::CorruptBatch(_)));
        assert!(matches!(validate_for_append(&b[..5], 1 << 20).unwrap_err(), LogError::CorruptBatch(_)));
        let mut two = b.clone();
        two.extend_from_slice(&b);
        assert!(matches!(single_batch(&two).unwrap_err(), LogError::InvalidRecord(_)));
    }

    #[test]
    fn log_append_time_restamps_and_stays_valid() {
        let mut b = build::filled(2, 10, 1000, 1);
        stamp_log_append_time(&mut b, 5555);
        let h = validate_structure(&b).expect("valid");
        assert_eq!(h.max_timestamp, 5555);
        assert_ne!(h.attributes & ATTR_LOG_APPEND_TIME, 0);
    }
}
