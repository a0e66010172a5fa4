//! A controller's side of Kafka's Fetch (API 1) and FetchSnapshot (API 59)
//! of `__cluster_metadata`: how broker-only nodes (observers) follow the
//! metadata log, as Kafka's brokers fetch it from the KRaft leader.
//!
//! The quorum server (`server`) hands over a connection whose first
//! request is one of these two (it peeks at the API key); this module
//! answers them in order until the connection closes. Anything else on it,
//! an unsupported version or a malformed request closes the connection.
//! The decisions are `metadata_fetch`'s (pure); here they meet the Raft
//! state: the epoch and leader from openraft's metrics, the log from the
//! in-memory Raft log, the high watermark from the state machine's last
//! applied entry, the snapshot from the state machine.
//!
//! A Fetch answer carries record batches, one per Raft entry: base offset
//! = the entry's index, partition leader epoch = its term, one record whose
//! value is the entry as Kaskade stores it (JSON). Only applied (so
//! committed) entries are served, up to the high watermark (why:
//! `metadata_fetch`). An observer with nothing new waits up to its
//! `max_wait_ms` (at most [`MAX_WAIT`]) until an entry is applied. Every
//! valid fetch moves the observer's position in `observers` (Kafka's
//! observer state: the fetch offset is its log end offset).
//! FetchSnapshot sends the current snapshot (openraft's meta and the image
//! as records, JSON) in chunks by position.

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
    SnapshotId as FetchSnapshotIdField,
};
use kafka_protocol::messages::fetch_snapshot_response;
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, FetchSnapshotRequest, FetchSnapshotResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
    NO_SEQUENCE,
};
use tokio::io::BufStream;
use tokio::net::TcpStream;

use super::frame::Hello;
use super::kafka_wire::{self, invalid};
use super::metadata_fetch::{
    check_fields, check_leader, cluster_ok, snapshot_chunk, validate, EpochLog, FetchRefusal, Position, QuorumView,
    SnapshotId, METADATA_TOPIC, METADATA_TOPIC_ID,
};
use super::node::QuorumMetadataLog;
use super::server::IDLE_TIMEOUT;
use super::types::{epoch_of, to_node_id};
use crate::metadata_log::MetadataLog;

/// The longest a fetch with nothing new is held.
pub const MAX_WAIT: Duration = Duration::from_secs(5);
/// Fetch versions served: 13 names the topic by id, 17 is Kafka 4's
/// (replica state, node endpoints, directory ids); 18 adds nothing here.
pub const FETCH_VERSIONS: std::ops::RangeInclusive<i16> = 13..=18;
/// FetchSnapshot versions served.
pub const FETCH_SNAPSHOT_VERSIONS: std::ops::RangeInclusive<i16> = 0..=1;
/// The most record bytes one answer carries (Kafka's raft client fetches
/// at most 8 MiB), whatever the request asks.
const MAX_FETCH_BYTES: usize = 8 * 1024 * 1024;

/// Whether the API key `key` is one this module serves (for `server`'s sniff).
pub fn serves(key: i16) -> bool {
    key == ApiKey::Fetch as i16 || key == ApiKey::FetchSnapshot as i16
}

/// The Raft log and snapshot as `metadata_fetch` reads them.
struct RaftLog<'a> {
    log: &'a QuorumMetadataLog,
    snapshot: Option<SnapshotId>,
}

fn offset(index: u64) -> i64 {
    i64::try_from(index).unwrap_or(i64::MAX)
}

impl EpochLog for RaftLog<'_> {
    fn log_start(&self) -> i64 {
        offset(self.log.log_reader.log_start())
    }
    fn log_end(&self) -> i64 {
        offset(self.log.log_reader.log_end())
    }
    fn epoch_at(&self, offset: i64) -> Option<i32> {
        let index = u64::try_from(offset).ok()?;
        self.log.log_reader.term_at(index).map(epoch_of)
    }
    fn snapshot(&self) -> Option<SnapshotId> {
        self.snapshot
    }
}

impl QuorumMetadataLog {
    /// The epoch, the leader and whether this controller leads.
    fn quorum_view(&self) -> QuorumView {
        let metrics = self.raft().metrics();
        let m = metrics.borrow();
        let leader = m.current_leader.map(to_node_id);
        QuorumView {
            epoch: epoch_of(m.current_term),
            leader,
            is_leader: m.current_leader == Some(self.raft_id()) && m.state.is_leader(),
        }
    }

    /// The high watermark observers are served up to: after the last
    /// applied entry.
    fn served_end(&self) -> i64 {
        self.shared.last_applied().map_or(0, |l| offset(l.index) + 1)
    }

    /// The leader's id and controller listener endpoint, as the answers'
    /// CurrentLeader and NodeEndpoints name it.
    fn leader_endpoint(&self, view: &QuorumView) -> Option<(i32, String, u16)> {
        let leader = view.leader?;
        let id = u64::try_from(leader.get()).ok()?;
        let addr = self.address_of(id)?;
        let (host, port) = addr.rsplit_once(':')?;
        Some((leader.get(), host.trim_matches(['[', ']']).to_string(), port.parse().ok()?))
    }
}

impl QuorumMetadataLog {
    /// Answers an observer's Fetch of `__cluster_metadata` that came on a
    /// Kafka connection the broker layer serves: one that began with
    /// another request (Kafka's clients begin with ApiVersions), so the
    /// listener's sniff handed it over.
    pub async fn answer_metadata_fetch(&self, req: FetchRequest) -> FetchResponse {
        answer_fetch(self, self.hello(), req).await
    }

    /// The same for FetchSnapshot.
    pub fn answer_metadata_fetch_snapshot(&self, req: FetchSnapshotRequest) -> FetchSnapshotResponse {
        answer_fetch_snapshot(self, self.hello(), req)
    }
}

/// Serves Fetch / FetchSnapshot requests on `stream` until it closes, a
/// request is refused as malformed, or it stays idle for [`IDLE_TIMEOUT`].
pub async fn serve_connection(stream: TcpStream, log: QuorumMetadataLog, ours: &Hello) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut conn = BufStream::new(stream);
    loop {
        let next = tokio::time::timeout(IDLE_TIMEOUT, kafka_wire::read_frame(&mut conn, kafka_wire::MAX_REQUEST))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "idle metadata fetch connection"))?;
        let Some(frame) = next? else { return Ok(()) };
        let (key, version) = kafka_wire::key_and_version(&frame)?;
        if key == ApiKey::Fetch as i16 && FETCH_VERSIONS.contains(&version) {
            let (header, req) = kafka_wire::decode_request::<FetchRequest>(frame, version)?;
            let answer = answer_fetch(&log, ours, req).await;
            kafka_wire::write_response(&mut conn, header.correlation_id, version, &answer).await?;
        } else if key == ApiKey::FetchSnapshot as i16 && FETCH_SNAPSHOT_VERSIONS.contains(&version) {
            let (header, req) = kafka_wire::decode_request::<FetchSnapshotRequest>(frame, version)?;
            let answer = answer_fetch_snapshot(&log, ours, req);
            kafka_wire::write_response(&mut conn, header.correlation_id, version, &answer).await?;
        } else {
            return Err(invalid(format!("API {key} v{version} on a metadata fetch connection")));
        }
    }
}

fn top_level(code: i16) -> FetchResponse {
    FetchResponse::default().with_error_code(code)
}

fn current_leader(view: &QuorumView) -> LeaderIdAndEpoch {
    LeaderIdAndEpoch::default()
        .with_leader_id(BrokerId(view.leader.map_or(-1, |l| l.get())))
        .with_leader_epoch(view.epoch)
}

/// One partition's answer in a Fetch response, with the leader's endpoint.
fn fetch_answer(log: &QuorumMetadataLog, view: &QuorumView, partition: PartitionData) -> FetchResponse {
    let endpoints = log
        .leader_endpoint(view)
        .map(|(id, host, port)| {
            vec![NodeEndpoint::default()
                .with_node_id(BrokerId(id))
                .with_host(StrBytes::from_string(host))
                .with_port(i32::from(port))]
        })
        .unwrap_or_default();
    let topic = FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
        .with_topic_id(METADATA_TOPIC_ID)
        .with_partitions(vec![partition.with_current_leader(current_leader(view))]);
    FetchResponse::default().with_responses(vec![topic]).with_node_endpoints(endpoints)
}

fn empty_partition(code: i16, high_watermark: i64, log_start: i64) -> PartitionData {
    PartitionData::default()
        .with_partition_index(0)
        .with_error_code(code)
        .with_high_watermark(high_watermark)
        .with_last_stable_offset(high_watermark)
        .with_log_start_offset(log_start)
}

/// Answers an observer's (or any replica's) Fetch; see the module docs.
async fn answer_fetch(log: &QuorumMetadataLog, ours: &Hello, req: FetchRequest) -> FetchResponse {
    if !cluster_ok(&ours.cluster_id, req.cluster_id.as_ref().map(|c| c.as_str())) {
        return top_level(FetchRefusal::InconsistentClusterId.code());
    }
    let [topic] = req.topics.as_slice() else { return top_level(FetchRefusal::InvalidRequest.code()) };
    let [p] = topic.partitions.as_slice() else { return top_level(FetchRefusal::InvalidRequest.code()) };
    if topic.topic_id != METADATA_TOPIC_ID || p.partition != 0 {
        return top_level(FetchRefusal::InvalidRequest.code());
    }
    let replica_id =
        if req.replica_state.replica_id.0 >= 0 { req.replica_state.replica_id.0 } else { req.replica_id.0 };
    let wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0)).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let mut applied = log.subscribe();
    loop {
        let view = log.quorum_view();
        let high_watermark = log.served_end();
        let raft_log = RaftLog { log, snapshot: log.shared.snapshot_id() };
        let log_start = raft_log.log_start();
        if !check_fields(req.max_wait_ms, p.fetch_offset, p.last_fetched_epoch, p.current_leader_epoch) {
            return fetch_answer(
                log,
                &view,
                empty_partition(FetchRefusal::InvalidRequest.code(), high_watermark, log_start),
            );
        }
        if let Err(refusal) = check_leader(&view, p.current_leader_epoch) {
            return fetch_answer(log, &view, empty_partition(refusal.code(), high_watermark, log_start));
        }
        let partition = empty_partition(0, high_watermark, log_start);
        match validate(&raft_log, p.fetch_offset, p.last_fetched_epoch) {
            Position::Snapshot(s) => {
                let id = FetchSnapshotIdField::default().with_end_offset(s.end_offset).with_epoch(s.epoch);
                return fetch_answer(log, &view, partition.with_snapshot_id(id));
            }
            Position::Diverging(e) => {
                let diverging = EpochEndOffset::default().with_epoch(e.epoch).with_end_offset(e.end_offset);
                return fetch_answer(log, &view, partition.with_diverging_epoch(diverging));
            }
            Position::Valid => {}
        }
        if replica_id >= 0 {
            log.observers.lock().fetched(replica_id, p.fetch_offset, high_watermark, log.now_ms());
        }
        if p.fetch_offset < high_watermark {
            let max = usize::try_from(p.partition_max_bytes).unwrap_or(0).clamp(1, MAX_FETCH_BYTES);
            let (from, to) = (p.fetch_offset as u64, high_watermark as u64);
            let entries = log.log_reader.read_json(from, to, max);
            if entries.first().is_some_and(|(id, _)| id.index == from) {
                let records = encode_entries(&entries, log.now_ms()).unwrap_or_default();
                return fetch_answer(log, &view, partition.with_records(Some(records)));
            }
            // Purged meanwhile: decide again (now a snapshot id).
            continue;
        }
        if tokio::time::Instant::now() >= deadline {
            return fetch_answer(log, &view, partition.with_records(Some(Bytes::new())));
        }
        // Nothing new: wait for the next applied entry, then decide again.
        let _ = tokio::time::timeout_at(deadline, applied.changed()).await;
    }
}

/// One batch per entry: offset = index, partition leader epoch = term,
/// the entry's JSON as the value.
fn encode_entries(entries: &[(super::types::LogId, Vec<u8>)], now_ms: i64) -> io::Result<Bytes> {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    for (id, json) in entries {
        let record = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: epoch_of(id.leader_id.term),
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset: offset(id.index),
            sequence: NO_SEQUENCE,
            timestamp: now_ms,
            key: None,
            value: Some(Bytes::copy_from_slice(json)),
            headers: Default::default(),
        };
        RecordBatchEncoder::encode(&mut buf, [&record], &options).map_err(invalid)?;
    }
    Ok(buf.freeze())
}

fn snapshot_top_level(code: i16) -> FetchSnapshotResponse {
    FetchSnapshotResponse::default().with_error_code(code)
}

/// Answers a FetchSnapshot (Kafka's `handleFetchSnapshotRequest`).
fn answer_fetch_snapshot(log: &QuorumMetadataLog, ours: &Hello, req: FetchSnapshotRequest) -> FetchSnapshotResponse {
    use fetch_snapshot_response::{LeaderIdAndEpoch, NodeEndpoint, PartitionSnapshot, SnapshotId, TopicSnapshot};
    if !cluster_ok(&ours.cluster_id, req.cluster_id.as_ref().map(|c| c.as_str())) {
        return snapshot_top_level(FetchRefusal::InconsistentClusterId.code());
    }
    let [topic] = req.topics.as_slice() else { return snapshot_top_level(FetchRefusal::InvalidRequest.code()) };
    let [p] = topic.partitions.as_slice() else { return snapshot_top_level(FetchRefusal::InvalidRequest.code()) };
    let view = log.quorum_view();
    let partition = |code: i16| {
        PartitionSnapshot::default().with_index(p.partition).with_error_code(code).with_current_leader(
            LeaderIdAndEpoch::default()
                .with_leader_id(BrokerId(view.leader.map_or(-1, |l| l.get())))
                .with_leader_epoch(view.epoch),
        )
    };
    let answer = |part: PartitionSnapshot| {
        let endpoints = log
            .leader_endpoint(&view)
            .map(|(id, host, port)| {
                vec![NodeEndpoint::default()
                    .with_node_id(BrokerId(id))
                    .with_host(StrBytes::from_string(host))
                    .with_port(port)]
            })
            .unwrap_or_default();
        let t = TopicSnapshot::default().with_name(topic.name.clone()).with_partitions(vec![part]);
        FetchSnapshotResponse::default().with_topics(vec![t]).with_node_endpoints(endpoints)
    };
    if topic.name.0.as_str() != METADATA_TOPIC || p.partition != 0 {
        // Kafka: UNKNOWN_TOPIC_OR_PARTITION for a partition it does not hold.
        return answer(partition(3));
    }
    if let Err(refusal) = check_leader(&view, p.current_leader_epoch) {
        return answer(partition(refusal.code()));
    }
    let Some((id, bytes)) = log.shared.snapshot_bytes() else {
        return answer(partition(FetchRefusal::SnapshotNotFound.code()));
    };
    if id.end_offset != p.snapshot_id.end_offset || id.epoch != p.snapshot_id.epoch {
        return answer(partition(FetchRefusal::SnapshotNotFound.code()));
    }
    let range = match snapshot_chunk(bytes.len(), p.position, req.max_bytes) {
        Ok(r) => r,
        Err(refusal) => return answer(partition(refusal.code())),
    };
    let position = range.start as i64;
    let chunk = Bytes::copy_from_slice(&bytes[range]);
    answer(
        partition(0)
            .with_snapshot_id(SnapshotId::default().with_end_offset(id.end_offset).with_epoch(id.epoch))
            .with_size(bytes.len() as i64)
            .with_position(position)
            .with_unaligned_records(chunk),
    )
}
