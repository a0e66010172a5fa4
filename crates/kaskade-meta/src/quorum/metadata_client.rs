//! An observer's side of Kafka's Fetch and FetchSnapshot of
//! `__cluster_metadata`: one connection to a controller's listener, one
//! request in flight, the answers turned into what the observer decides on
//! (`observer`). Requests are those Kafka's brokers send as observers:
//! `ReplicaState.replica_id` = the node id with `replica_epoch` -1, the
//! cluster id, the topic id `AAAAAAAAAAAAAAAAAAAAAQ`, partition 0, the
//! leader epoch it knows, its fetch offset and last fetched epoch.
//!
//! Invariants: an answer is matched to its request by correlation id and
//! must name the metadata partition; a record that is not a Raft entry, or
//! an answer that does not decode, is an error (the connection is dropped).

use std::io;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::fetch_snapshot_request::{self, PartitionSnapshot, TopicSnapshot};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchSnapshotRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use tokio::io::BufStream;
use tokio::net::TcpStream;

use super::kafka_wire::{self, invalid};
use super::metadata_fetch::{SnapshotId, METADATA_TOPIC, METADATA_TOPIC_ID};
use super::observer_state::Fetched;
use super::types::Entry;

/// The Fetch version observers send (Kafka 4's brokers send 17).
pub const FETCH_VERSION: i16 = 17;
/// The FetchSnapshot version observers send.
pub const FETCH_SNAPSHOT_VERSION: i16 = 1;
/// How long a connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The record bytes one Fetch asks for (Kafka's raft client asks 8 MiB).
const FETCH_MAX_BYTES: i32 = 8 * 1024 * 1024;
/// The bytes one FetchSnapshot asks for.
pub const SNAPSHOT_CHUNK_BYTES: i32 = 1024 * 1024;

/// The leader an answer names, and the endpoints it gives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderInfo {
    /// (leader id, epoch); the id is -1 when the controller knows none.
    pub leader: Option<(i32, i32)>,
    /// Node id -> `host:port` of its controller listener.
    pub endpoints: Vec<(i32, String)>,
}

/// What a Fetch answered.
#[derive(Clone, Debug)]
pub enum FetchOutcome {
    /// A Kafka error code (top level or the partition's).
    Refused(i16),
    /// Entries from the fetch offset, and the high watermark.
    Records { high_watermark: i64, entries: Vec<Fetched> },
    /// Below the log start: load this snapshot.
    Snapshot(SnapshotId),
    /// The last fetched epoch ends at another offset there.
    Diverging(SnapshotId),
}

/// What a FetchSnapshot answered.
#[derive(Clone, Debug)]
pub struct SnapshotChunk {
    pub error_code: i16,
    pub size: i64,
    pub position: i64,
    pub bytes: Bytes,
}

/// A connection to a controller for metadata fetches.
pub struct MetadataConn {
    conn: BufStream<TcpStream>,
    correlation: i32,
    client_id: String,
    cluster_id: String,
    node_id: i32,
}

impl MetadataConn {
    /// Connects to `addr` (`host:port` of a controller listener).
    pub async fn connect(addr: &str, cluster_id: &str, node_id: i32) -> io::Result<MetadataConn> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("connecting to {addr}")))??;
        stream.set_nodelay(true)?;
        Ok(MetadataConn {
            conn: BufStream::new(stream),
            correlation: 0,
            client_id: format!("raft-client-{node_id}"),
            cluster_id: cluster_id.to_string(),
            node_id,
        })
    }

    fn next_correlation(&mut self) -> i32 {
        self.correlation = self.correlation.wrapping_add(1);
        self.correlation
    }

    /// Fetches from `offset` (after an entry of `last_epoch`), naming
    /// `epoch` as the leader epoch it knows; the controller holds it up to
    /// `max_wait` when there is nothing new.
    pub async fn fetch(
        &mut self,
        epoch: i32,
        offset: i64,
        last_epoch: i32,
        max_wait: Duration,
    ) -> io::Result<(LeaderInfo, FetchOutcome)> {
        let partition = FetchPartition::default()
            .with_partition(0)
            .with_current_leader_epoch(epoch)
            .with_fetch_offset(offset)
            .with_last_fetched_epoch(last_epoch)
            .with_log_start_offset(-1)
            .with_partition_max_bytes(FETCH_MAX_BYTES);
        let request = FetchRequest::default()
            .with_cluster_id(Some(StrBytes::from_string(self.cluster_id.clone())))
            .with_replica_state(ReplicaState::default().with_replica_id(BrokerId(self.node_id)).with_replica_epoch(-1))
            .with_max_wait_ms(i32::try_from(max_wait.as_millis()).unwrap_or(i32::MAX))
            .with_min_bytes(0)
            .with_max_bytes(FETCH_MAX_BYTES)
            .with_topics(vec![FetchTopic::default().with_topic_id(METADATA_TOPIC_ID).with_partitions(vec![partition])]);
        let correlation = self.next_correlation();
        kafka_wire::write_request(&mut self.conn, correlation, &self.client_id, FETCH_VERSION, &request).await?;
        let answer = kafka_wire::read_response::<_, FetchRequest>(&mut self.conn, correlation, FETCH_VERSION).await?;
        let info = LeaderInfo {
            leader: None,
            endpoints: answer
                .node_endpoints
                .iter()
                .map(|e| (e.node_id.0, format!("{}:{}", e.host.as_str(), e.port)))
                .collect(),
        };
        if answer.error_code != 0 {
            return Ok((info, FetchOutcome::Refused(answer.error_code)));
        }
        let [topic] = answer.responses.as_slice() else { return Err(invalid("a Fetch answer without one topic")) };
        let [p] = topic.partitions.as_slice() else { return Err(invalid("a Fetch answer without one partition")) };
        if topic.topic_id != METADATA_TOPIC_ID || p.partition_index != 0 {
            return Err(invalid("a Fetch answer for another partition"));
        }
        let info = LeaderInfo {
            leader: (p.current_leader.leader_id.0 >= 0)
                .then_some((p.current_leader.leader_id.0, p.current_leader.leader_epoch)),
            ..info
        };
        let outcome = if p.error_code != 0 {
            FetchOutcome::Refused(p.error_code)
        } else if p.snapshot_id.end_offset >= 0 {
            FetchOutcome::Snapshot(SnapshotId { end_offset: p.snapshot_id.end_offset, epoch: p.snapshot_id.epoch })
        } else if p.diverging_epoch.end_offset >= 0 {
            FetchOutcome::Diverging(SnapshotId {
                end_offset: p.diverging_epoch.end_offset,
                epoch: p.diverging_epoch.epoch,
            })
        } else {
            let entries = decode_entries(p.records.clone().unwrap_or_default())?;
            FetchOutcome::Records { high_watermark: p.high_watermark, entries }
        };
        Ok((info, outcome))
    }

    /// Fetches the chunk of snapshot `id` at `position`.
    pub async fn fetch_snapshot(
        &mut self,
        epoch: i32,
        id: SnapshotId,
        position: i64,
    ) -> io::Result<(LeaderInfo, SnapshotChunk)> {
        let partition = PartitionSnapshot::default()
            .with_partition(0)
            .with_current_leader_epoch(epoch)
            .with_snapshot_id(
                fetch_snapshot_request::SnapshotId::default().with_end_offset(id.end_offset).with_epoch(id.epoch),
            )
            .with_position(position);
        let request = FetchSnapshotRequest::default()
            .with_cluster_id(Some(StrBytes::from_string(self.cluster_id.clone())))
            .with_replica_id(BrokerId(self.node_id))
            .with_max_bytes(SNAPSHOT_CHUNK_BYTES)
            .with_topics(vec![TopicSnapshot::default()
                .with_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
                .with_partitions(vec![partition])]);
        let correlation = self.next_correlation();
        kafka_wire::write_request(&mut self.conn, correlation, &self.client_id, FETCH_SNAPSHOT_VERSION, &request)
            .await?;
        let answer =
            kafka_wire::read_response::<_, FetchSnapshotRequest>(&mut self.conn, correlation, FETCH_SNAPSHOT_VERSION)
                .await?;
        let mut info = LeaderInfo {
            leader: None,
            endpoints: answer
                .node_endpoints
                .iter()
                .map(|e| (e.node_id.0, format!("{}:{}", e.host.as_str(), e.port)))
                .collect(),
        };
        let refused = |code| SnapshotChunk { error_code: code, size: -1, position: -1, bytes: Bytes::new() };
        if answer.error_code != 0 {
            return Ok((info, refused(answer.error_code)));
        }
        let [topic] = answer.topics.as_slice() else { return Err(invalid("a FetchSnapshot answer without one topic")) };
        let [p] = topic.partitions.as_slice() else {
            return Err(invalid("a FetchSnapshot answer without one partition"));
        };
        if p.current_leader.leader_id.0 >= 0 {
            info.leader = Some((p.current_leader.leader_id.0, p.current_leader.leader_epoch));
        }
        if p.error_code != 0 {
            return Ok((info, refused(p.error_code)));
        }
        if p.snapshot_id.end_offset != id.end_offset || p.snapshot_id.epoch != id.epoch {
            return Err(invalid("a FetchSnapshot answer for another snapshot"));
        }
        Ok((
            info,
            SnapshotChunk { error_code: 0, size: p.size, position: p.position, bytes: p.unaligned_records.clone() },
        ))
    }
}

/// The Raft entries in a Fetch answer's record batches.
fn decode_entries(mut records: Bytes) -> io::Result<Vec<Fetched>> {
    let mut out = Vec::new();
    for set in RecordBatchDecoder::decode_all(&mut records).map_err(invalid)? {
        for r in set.records {
            let value = r.value.ok_or_else(|| invalid("a metadata record without a value"))?;
            let entry: Entry = serde_json::from_slice(&value).map_err(invalid)?;
            out.push((r.offset, r.partition_leader_epoch, entry));
        }
    }
    Ok(out)
}
