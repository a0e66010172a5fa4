//! DescribeQuorum (55) of `__cluster_metadata` on the wire, for the quorum:
//! how a controller's [`QuorumStatus`] is written into the answer's
//! partition ([`write_partition`], used by the broker layer's handler on
//! both listeners), how it is read back ([`read_answer`]), and how a
//! broker-only node asks the active controller for it on the controller
//! listener ([`ask`]), as Kafka's brokers forward DescribeQuorum to the
//! controller (KafkaApis: DESCRIBE_QUORUM goes to the controller).
//!
//! Invariants: the read is the write's inverse for every field the version
//! carries (a directory id of all zeros is "not known"); a refusal keeps its
//! meaning: NOT_LEADER_OR_FOLLOWER is [`MetaError::NotLeader`] naming the
//! leader the answer names (none for -1), any other code a quorum error, and
//! an answer without the metadata partition is an error, never a made-up
//! status.

use std::io;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_request::{PartitionData as AskedPartition, TopicData as AskedTopic};
use kafka_protocol::messages::describe_quorum_response::{PartitionData, ReplicaState};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kaskade_types::NodeId;
use tokio::io::BufStream;
use tokio::net::TcpStream;

use super::kafka_wire;
use super::status::{QuorumStatus, ReplicaStatus};
use crate::MetaError;

/// The topic of the metadata log, as KRaft names it.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// The version a broker-only node asks at (Kafka 4's, with directory ids).
const ASK_VERSION: i16 = 2;

/// How long a connect to the active controller may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Fills the metadata partition `p` of an answer at `version`: the
/// leader's view, or NOT_LEADER_OR_FOLLOWER naming the leader elsewhere
/// (only the leader knows where the replicas are).
pub fn write_partition(p: &mut PartitionData, status: Result<QuorumStatus, MetaError>, version: i16) {
    let status = match status {
        Ok(status) => status,
        Err(e) => {
            let code = match &e {
                MetaError::NotLeader { leader } => {
                    p.leader_id = BrokerId(leader.map_or(-1, NodeId::get));
                    ResponseError::NotLeaderOrFollower
                }
                _ => ResponseError::UnknownServerError,
            };
            p.error_code = code.code();
            p.error_message = Some(StrBytes::from_string(e.to_string()));
            return;
        }
    };
    p.leader_id = BrokerId(status.leader_id);
    p.leader_epoch = status.leader_epoch;
    p.high_watermark = status.high_watermark;
    let replica = |r: &ReplicaStatus| {
        let mut state = ReplicaState::default();
        state.replica_id = BrokerId(r.replica_id);
        state.log_end_offset = r.log_end_offset;
        if version >= 1 {
            state.last_fetch_timestamp = r.last_fetch_timestamp;
            state.last_caught_up_timestamp = r.last_caught_up_timestamp;
        }
        if version >= 2 {
            // KIP-853's voter key; the zero UUID where it is not known.
            state.replica_directory_id = r.directory_id.unwrap_or_default();
        }
        state
    };
    p.current_voters = status.voters.iter().map(replica).collect();
    p.observers = status.observers.iter().map(replica).collect();
}

/// The status an answer carries for the metadata partition, or why not.
pub fn read_answer(resp: &DescribeQuorumResponse) -> Result<QuorumStatus, MetaError> {
    if resp.error_code != 0 {
        return Err(MetaError::Quorum(format!("DescribeQuorum refused with error {}", resp.error_code)));
    }
    let partition = resp
        .topics
        .iter()
        .filter(|t| t.topic_name.0.as_str() == METADATA_TOPIC)
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == 0)
        .ok_or_else(|| MetaError::Quorum("DescribeQuorum answered without the metadata partition".into()))?;
    read_partition(partition)
}

fn read_partition(p: &PartitionData) -> Result<QuorumStatus, MetaError> {
    if p.error_code == ResponseError::NotLeaderOrFollower.code() {
        let leader = (p.leader_id.0 >= 0).then_some(NodeId(p.leader_id.0));
        return Err(MetaError::NotLeader { leader });
    }
    if p.error_code != 0 {
        let message = p.error_message.as_ref().map_or("", |m| m.as_str());
        return Err(MetaError::Quorum(format!("DescribeQuorum error {}: {message}", p.error_code)));
    }
    let replica = |r: &ReplicaState| ReplicaStatus {
        replica_id: r.replica_id.0,
        directory_id: Some(r.replica_directory_id).filter(|id| !id.is_nil()),
        log_end_offset: r.log_end_offset,
        last_fetch_timestamp: r.last_fetch_timestamp,
        last_caught_up_timestamp: r.last_caught_up_timestamp,
    };
    Ok(QuorumStatus {
        leader_id: p.leader_id.0,
        leader_epoch: p.leader_epoch,
        high_watermark: p.high_watermark,
        voters: p.current_voters.iter().map(replica).collect(),
        observers: p.observers.iter().map(replica).collect(),
    })
}

/// DescribeQuorum for the metadata partition.
pub fn request() -> DescribeQuorumRequest {
    let mut partition = AskedPartition::default();
    partition.partition_index = 0;
    let mut topic = AskedTopic::default();
    topic.topic_name = TopicName(StrBytes::from_static_str(METADATA_TOPIC));
    topic.partitions.push(partition);
    let mut req = DescribeQuorumRequest::default();
    req.topics.push(topic);
    req
}

/// Asks the controller listener at `addr` for DescribeQuorum as
/// `client_id` on a connection of its own (its first request, so the
/// controller hands it to its Kafka APIs), and closes it.
pub async fn ask(addr: &str, client_id: &str) -> io::Result<DescribeQuorumResponse> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("connecting to {addr}")))??;
    stream.set_nodelay(true)?;
    let mut conn = BufStream::new(stream);
    kafka_wire::write_request(&mut conn, 1, client_id, ASK_VERSION, &request()).await?;
    kafka_wire::read_response::<_, DescribeQuorumRequest>(&mut conn, 1, ASK_VERSION).await
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_quorum_response::TopicData;

    use super::*;

    fn replica(id: i32, directory_id: Option<uuid::Uuid>) -> ReplicaStatus {
        ReplicaStatus {
            replica_id: id,
            directory_id,
            log_end_offset: 10 + i64::from(id),
            last_fetch_timestamp: 1000 + i64::from(id),
            last_caught_up_timestamp: 900 + i64::from(id),
        }
    }

    fn answer(status: Result<QuorumStatus, MetaError>) -> DescribeQuorumResponse {
        let mut p = PartitionData::default();
        write_partition(&mut p, status, ASK_VERSION);
        let mut t = TopicData::default();
        t.topic_name = TopicName(StrBytes::from_static_str(METADATA_TOPIC));
        t.partitions.push(p);
        let mut resp = DescribeQuorumResponse::default();
        resp.topics.push(t);
        resp
    }

    #[test]
    fn a_status_reads_back_as_it_was_written() {
        let status = QuorumStatus {
            leader_id: 2,
            leader_epoch: 7,
            high_watermark: 42,
            voters: vec![replica(1, Some(uuid::Uuid::from_bytes([1; 16]))), replica(2, None)],
            observers: vec![replica(10, None)],
        };
        assert_eq!(read_answer(&answer(Ok(status.clone()))).expect("a status"), status);
    }

    #[test]
    fn refusals_keep_their_meaning() {
        let named = read_answer(&answer(Err(MetaError::NotLeader { leader: Some(NodeId(3)) })));
        assert!(matches!(named, Err(MetaError::NotLeader { leader: Some(NodeId(3)) })), "{named:?}");
        let none = read_answer(&answer(Err(MetaError::NotLeader { leader: None })));
        assert!(matches!(none, Err(MetaError::NotLeader { leader: None })), "{none:?}");
        let failed = read_answer(&answer(Err(MetaError::Quorum("stopped".into()))));
        assert!(matches!(&failed, Err(MetaError::Quorum(m)) if m.contains("stopped")), "{failed:?}");
        // A top-level error, or no metadata partition: an error, no status.
        let mut top = answer(Ok(QuorumStatus {
            leader_id: 1,
            leader_epoch: 1,
            high_watermark: 0,
            voters: vec![],
            observers: vec![],
        }));
        top.error_code = ResponseError::ClusterAuthorizationFailed.code();
        assert!(matches!(read_answer(&top), Err(MetaError::Quorum(_))));
        top.error_code = 0;
        top.topics[0].partitions[0].partition_index = 1;
        assert!(matches!(read_answer(&top), Err(MetaError::Quorum(_))));
        assert!(matches!(read_answer(&DescribeQuorumResponse::default()), Err(MetaError::Quorum(_))));
    }
}
