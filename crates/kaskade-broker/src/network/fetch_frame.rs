//! A Fetch response frame whose record sets stay in the segment files: the
//! encoded bytes up to each partition's records length prefix, then the
//! records as a [`FileRange`] (sent with `sendfile(2)`), and so on.
//!
//! `kafka-protocol` cannot encode a length without its bytes, so the outer
//! levels (response, topic) are framed here around `kafka-protocol`'s own
//! encodings of each level's other fields, and each partition is encoded by
//! `kafka-protocol` with empty records, whose length prefix is then replaced
//! by the range's. The prefix is found by encoding the partition twice, with
//! empty and with null records: the two encodings differ exactly in it
//! (`00 00 00 00` / `ff ff ff ff` in v4-11, `01` / `00` in flexible v12+),
//! whatever tagged fields follow. Invariant: the frame is byte for byte what
//! `frame::encode_response` gives for the same response with the ranges'
//! bytes as records (tested for every version).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader};
use kafka_protocol::protocol::Encodable;
use kaskade_log::FileRange;

use super::frame::SIZE_PREFIX_LEN;
use crate::error::BrokerError;

/// A Fetch response whose non-empty record sets are file ranges.
#[derive(Debug, Default)]
pub struct FetchAnswer {
    /// The response; a partition with a range has empty records here.
    pub response: FetchResponse,
    /// One entry per partition, in response order (topics, then their
    /// partitions): the partition's records, if it has any.
    pub ranges: Vec<Option<FileRange>>,
}

impl FetchAnswer {
    /// The response with every range's bytes read into its partition (the
    /// buffered path). Blocking: run it off the async workers.
    pub fn into_buffered(self) -> std::io::Result<FetchResponse> {
        let FetchAnswer { mut response, ranges } = self;
        debug_assert_eq!(ranges.len(), partition_count(&response));
        let mut ranges = ranges.into_iter();
        for pd in response.responses.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
            if let Some(range) = ranges.next().flatten() {
                pd.records = Some(range.read()?);
            }
        }
        Ok(response)
    }

    /// Record bytes in the ranges.
    pub fn range_bytes(&self) -> usize {
        self.ranges.iter().flatten().map(FileRange::len).sum()
    }
}

fn partition_count(response: &FetchResponse) -> usize {
    response.responses.iter().map(|t| t.partitions.len()).sum()
}

/// One piece of an outgoing frame.
#[derive(Debug)]
pub enum Chunk {
    Bytes(Bytes),
    File(FileRange),
}

impl Chunk {
    pub fn len(&self) -> usize {
        match self {
            Chunk::Bytes(b) => b.len(),
            Chunk::File(f) => f.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Builds the chunks, encoded bytes between file ranges.
struct Builder {
    chunks: Vec<Chunk>,
    buf: BytesMut,
}

impl Builder {
    fn range(&mut self, range: FileRange) {
        let bytes = self.buf.split().freeze();
        if !bytes.is_empty() {
            self.chunks.push(Chunk::Bytes(bytes));
        }
        self.chunks.push(Chunk::File(range));
    }
}

/// Appends an unsigned varint (Kafka's compact lengths).
fn put_uvarint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// An array length: compact (n + 1, varint) in flexible versions.
fn put_array_len(buf: &mut BytesMut, n: usize, flexible: bool) {
    if flexible {
        put_uvarint(buf, n as u64 + 1);
    } else {
        buf.put_i32(n as i32);
    }
}

/// Bytes an empty array's length takes.
fn empty_array_len(flexible: bool) -> usize {
    if flexible {
        1
    } else {
        4
    }
}

fn encode<T: Encodable>(value: &T, version: i16, what: &str) -> Result<BytesMut, BrokerError> {
    let mut b = BytesMut::new();
    value.encode(&mut b, version).map_err(|e| BrokerError::internal(format!("cannot encode a Fetch {what}: {e:#}")))?;
    Ok(b)
}

/// Encodes a whole response frame (size prefix, header, body) as chunks.
pub fn encode_fetch(version: i16, correlation_id: i32, answer: FetchAnswer) -> Result<Vec<Chunk>, BrokerError> {
    let FetchAnswer { mut response, ranges } = answer;
    if ranges.len() != partition_count(&response) {
        return Err(BrokerError::internal("a Fetch answer's ranges do not match its partitions"));
    }
    let flexible = version >= 12;
    let mut out = Builder { chunks: Vec::new(), buf: BytesMut::with_capacity(256) };
    out.buf.put_i32(0); // The size, patched below.
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header
        .encode(&mut out.buf, ApiKey::Fetch.response_header_version(version))
        .map_err(|e| BrokerError::internal(format!("cannot encode a Fetch response header: {e:#}")))?;

    // The response's own fields around an empty topic array: throttle
    // time, and from v7 error code and session id, come before it.
    let topics = std::mem::take(&mut response.responses);
    let shell = encode(&response, version, "response")?;
    let head = if version >= 7 { 10 } else { 4 };
    let tail_at = head + empty_array_len(flexible);
    debug_assert!(shell.len() >= tail_at);
    out.buf.extend_from_slice(&shell[..head]);
    put_array_len(&mut out.buf, topics.len(), flexible);
    let mut ranges = ranges.into_iter();
    for mut topic in topics {
        encode_topic(&mut out, &mut topic, version, &mut ranges)?;
    }
    out.buf.extend_from_slice(&shell[tail_at..]);

    let last = out.buf.split().freeze();
    if !last.is_empty() {
        out.chunks.push(Chunk::Bytes(last));
    }
    let total: usize = out.chunks.iter().map(Chunk::len).sum();
    let size = i32::try_from(total - SIZE_PREFIX_LEN)
        .map_err(|_| BrokerError::internal(format!("a Fetch response of {total} bytes is too large")))?;
    match out.chunks.first_mut() {
        Some(Chunk::Bytes(first)) if first.len() >= SIZE_PREFIX_LEN => {
            let mut patched = BytesMut::from(&first[..]);
            patched[..SIZE_PREFIX_LEN].copy_from_slice(&size.to_be_bytes());
            *first = patched.freeze();
        }
        _ => return Err(BrokerError::internal("a Fetch frame must start with its header")),
    }
    Ok(out.chunks)
}

/// The topic's name (v4-12) or id (v13+), then its partitions.
fn encode_topic(
    out: &mut Builder,
    topic: &mut FetchableTopicResponse,
    version: i16,
    ranges: &mut impl Iterator<Item = Option<FileRange>>,
) -> Result<(), BrokerError> {
    let flexible = version >= 12;
    let partitions = std::mem::take(&mut topic.partitions);
    let shell = encode(&*topic, version, "topic")?;
    let head = match version {
        13.. => 16,
        12 => {
            let n = topic.topic.len();
            let mut b = BytesMut::new();
            put_uvarint(&mut b, n as u64 + 1);
            b.len() + n
        }
        _ => 2 + topic.topic.len(),
    };
    let tail_at = head + empty_array_len(flexible);
    debug_assert!(shell.len() >= tail_at);
    out.buf.extend_from_slice(&shell[..head]);
    put_array_len(&mut out.buf, partitions.len(), flexible);
    for mut pd in partitions {
        match ranges.next().flatten() {
            Some(range) => encode_ranged_partition(out, &mut pd, version, range)?,
            None => out.buf.extend_from_slice(&encode(&pd, version, "partition")?),
        }
    }
    out.buf.extend_from_slice(&shell[tail_at..]);
    Ok(())
}

/// A partition whose records are `range`: its encoding with the records'
/// length prefix for the range's length, then the range, then what follows
/// the records (the tagged fields of flexible versions).
fn encode_ranged_partition(
    out: &mut Builder,
    pd: &mut PartitionData,
    version: i16,
    range: FileRange,
) -> Result<(), BrokerError> {
    pd.records = Some(Bytes::new());
    let empty = encode(&*pd, version, "partition")?;
    pd.records = None;
    let null = encode(&*pd, version, "partition")?;
    let flexible = version >= 12;
    let prefix_len = if flexible { 1 } else { 4 };
    let at = empty.iter().zip(null.iter()).position(|(a, b)| a != b);
    let Some(at) = at.filter(|at| empty.len() == null.len() && at + prefix_len <= empty.len()) else {
        return Err(BrokerError::internal("cannot place a Fetch partition's records"));
    };
    debug_assert_eq!(empty[at + prefix_len..], null[at + prefix_len..]);
    out.buf.extend_from_slice(&empty[..at]);
    if flexible {
        put_uvarint(&mut out.buf, range.len() as u64 + 1);
    } else {
        let len = i32::try_from(range.len()).map_err(|_| BrokerError::internal("a record set over 2 GiB"))?;
        out.buf.put_i32(len);
    }
    out.range(range);
    out.buf.extend_from_slice(&empty[at + prefix_len..]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use kafka_protocol::messages::fetch_response::{AbortedTransaction, EpochEndOffset, LeaderIdAndEpoch};
    use kafka_protocol::messages::{BrokerId, ProducerId, ResponseKind, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::ResponseError;
    use kaskade_log::batch::build;
    use kaskade_log::{FileRange, LogConfig, LogManager, ManagerOptions, TopicPartition};

    use super::*;
    use crate::network::frame::encode_response;

    /// Ranges of a real log: batches of several sizes, across segments.
    fn ranges(dir: &std::path::Path) -> (Arc<LogManager>, Vec<FileRange>) {
        let cfg = LogConfig { segment_bytes: 3_000, ..LogConfig::default() };
        let c = cfg.clone();
        let (mgr, _) = LogManager::open(dir, ManagerOptions::default(), move |_| c.clone()).expect("open");
        let log = mgr.get_or_create(&TopicPartition::new("t", 0), cfg).expect("log");
        for i in 0..30u8 {
            log.append(build::filled(1 + i as usize % 3, 40 + i as usize * 13, 1000, i), 0).expect("append");
        }
        let end = log.log_end_offset();
        let ranges = [(0, 1), (3, 200), (10, 5_000), (end - 1, 1 << 20)]
            .iter()
            .map(|&(start, max)| log.read_range(start, max, Some(end)).expect("read").records.expect("data"))
            .collect();
        (mgr, ranges)
    }

    /// A response of every shape: topics by name and id, partitions with
    /// and without records, errors, aborted transactions, tagged fields.
    fn response(version: i16, ranges: &[FileRange]) -> (FetchResponse, Vec<Option<FileRange>>) {
        let mut resp = FetchResponse::default();
        resp.throttle_time_ms = 7;
        if version >= 7 {
            resp.error_code = 0;
            resp.session_id = 42;
        }
        let mut flat = Vec::new();
        let mut next = ranges.iter();
        for (t, name) in ["alpha", "b", "a-much-longer-topic-name"].iter().enumerate() {
            let mut topic = FetchableTopicResponse::default();
            topic.topic = TopicName(StrBytes::from_static_str(name));
            topic.topic_id = uuid::Uuid::from_u128(t as u128 + 1);
            for p in 0..3 {
                let mut pd = PartitionData::default();
                pd.partition_index = p;
                pd.high_watermark = 100 + p as i64;
                pd.last_stable_offset = 90;
                pd.log_start_offset = 1;
                pd.records = Some(Bytes::new());
                let range = match (t, p) {
                    (1, 1) => {
                        pd.error_code = ResponseError::NotLeaderOrFollower.code();
                        if version >= 12 {
                            let mut leader = LeaderIdAndEpoch::default();
                            leader.leader_id = BrokerId(3);
                            leader.leader_epoch = 5;
                            pd.current_leader = leader;
                        }
                        None
                    }
                    (2, 0) => None,
                    _ => next.next().cloned(),
                };
                if range.is_some() && p == 2 {
                    let mut a = AbortedTransaction::default();
                    a.producer_id = ProducerId(9);
                    a.first_offset = 4;
                    pd.aborted_transactions = Some(vec![a]);
                    if version >= 12 {
                        let mut d = EpochEndOffset::default();
                        d.epoch = 2;
                        d.end_offset = 17;
                        pd.diverging_epoch = d;
                    }
                }
                flat.push(range);
                topic.partitions.push(pd);
            }
            resp.responses.push(topic);
        }
        (resp, flat)
    }

    fn materialize(chunks: &[Chunk]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in chunks {
            match c {
                Chunk::Bytes(b) => out.extend_from_slice(b),
                Chunk::File(f) => out.extend_from_slice(&f.read().expect("range bytes")),
            }
        }
        out
    }

    #[test]
    fn frames_match_the_buffered_encoding_in_every_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_mgr, ranges) = ranges(dir.path());
        for version in 4..=17 {
            let (resp, flat) = response(version, &ranges);
            assert!(flat.iter().flatten().count() >= 4, "records from several ranges");
            let answer = FetchAnswer { response: resp, ranges: flat };
            let buffered = FetchAnswer { response: answer.response.clone(), ranges: answer.ranges.clone() }
                .into_buffered()
                .expect("buffered");
            let mut want = BytesMut::new();
            encode_response(ApiKey::Fetch, version, 77, &ResponseKind::Fetch(buffered), &mut want).expect("encode");
            let chunks = encode_fetch(version, 77, answer).expect("encode_fetch");
            assert!(chunks.iter().filter(|c| matches!(c, Chunk::File(_))).count() >= 4);
            assert_eq!(materialize(&chunks), want.to_vec(), "v{version}");
        }
    }

    #[test]
    fn answers_without_ranges_and_mismatched_answers() {
        for version in [4, 11, 12, 16, 17] {
            let mut resp = FetchResponse::default();
            resp.responses.push(FetchableTopicResponse::default());
            resp.responses[0].partitions.push(PartitionData::default());
            let mut want = BytesMut::new();
            encode_response(ApiKey::Fetch, version, 1, &ResponseKind::Fetch(resp.clone()), &mut want).expect("encode");
            let answer = FetchAnswer { response: resp.clone(), ranges: vec![None] };
            let chunks = encode_fetch(version, 1, answer).expect("encode_fetch");
            assert_eq!(materialize(&chunks), want.to_vec(), "v{version}");
            // Ranges that do not line up with the partitions are refused.
            assert!(encode_fetch(version, 1, FetchAnswer { response: resp, ranges: Vec::new() }).is_err());
        }
    }
}
