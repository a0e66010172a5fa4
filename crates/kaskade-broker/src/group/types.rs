//! The engine's inputs and outputs: plain data, independent of the wire
//! versions (handlers map the protocol messages onto these).

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kaskade_types::{LeaderEpoch, Offset, TopicPartition};

/// Identifies a parked request (JoinGroup, SyncGroup): the engine answers it
/// through a [`Completion`] carrying the same token, now or after later
/// events.
pub type Token = u64;

/// The coordinator's configuration (Kafka's broker configs).
#[derive(Clone, Debug)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay_ms: i32,
    /// `group.max.size`.
    pub max_size: usize,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
}

impl Default for GroupConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3000,
            max_size: i32::MAX as usize,
            offset_metadata_max_bytes: 4096,
        }
    }
}

/// One protocol a member supports (for consumers: an assignor and the
/// member's subscription).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protocol {
    pub name: String,
    pub metadata: Bytes,
}

/// JoinGroup.
#[derive(Clone, Debug, Default)]
pub struct JoinRequest {
    pub group_id: String,
    pub session_timeout_ms: i32,
    /// v0 has none: the session timeout.
    pub rebalance_timeout_ms: i32,
    /// Empty for a first join.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    pub protocols: Vec<Protocol>,
    pub client_id: String,
    pub client_host: String,
    /// v4+ (KIP-394): a first join gets MEMBER_ID_REQUIRED and a member id.
    pub require_known_member_id: bool,
}

/// A member as the leader sees it in its JoinGroup response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// JoinGroup's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinResponse {
    pub error: Option<ResponseError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    /// KIP-814: a static leader rejoining needs no new assignment.
    pub skip_assignment: bool,
    pub member_id: String,
    /// Only for the leader.
    pub members: Vec<JoinMember>,
}

impl JoinResponse {
    pub(crate) fn error(error: ResponseError, member_id: &str) -> Self {
        JoinResponse {
            error: Some(error),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

/// SyncGroup.
#[derive(Clone, Debug, Default)]
pub struct SyncRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// v5+.
    pub protocol_type: Option<String>,
    /// v5+.
    pub protocol_name: Option<String>,
    /// The leader's assignment, member id -> assignment.
    pub assignments: Vec<(String, Bytes)>,
}

/// SyncGroup's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncResponse {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    pub(crate) fn error(error: ResponseError) -> Self {
        SyncResponse { error: Some(error), protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

/// Heartbeat.
#[derive(Clone, Debug, Default)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// One member leaving (LeaveGroup v3+ batches them; older versions send one
/// member id).
#[derive(Clone, Debug, Default)]
pub struct LeavingMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// LeaveGroup's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaveResponse {
    pub error: Option<ResponseError>,
    /// Per member, in request order.
    pub members: Vec<MemberLeft>,
}

/// One member's answer in a [`LeaveResponse`]: who asked to leave and
/// why it could not (`None`: it left).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberLeft {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub error: Option<ResponseError>,
}

/// A deferred answer to a parked request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Join(JoinResponse),
    Sync(SyncResponse),
}

/// A parked request's answer, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub token: Token,
    pub reply: Reply,
}

/// One partition of an OffsetCommit.
#[derive(Clone, Debug, Default)]
pub struct CommitPartition {
    pub topic: String,
    pub partition: i32,
    pub offset: Offset,
    pub leader_epoch: Option<LeaderEpoch>,
    pub metadata: Option<String>,
}

/// A commit request's generation: negative (Kafka's clients send -1) is a
/// commit from outside the group.
pub fn commit_generation(wire: i32) -> Option<i32> {
    (wire >= 0).then_some(wire)
}

/// A committed leader epoch as a request or `OffsetCommitValue` carries it:
/// only -1 means none (Kafka's `RequestUtils.getLeaderEpoch`).
pub fn committed_leader_epoch(wire: i32) -> Option<LeaderEpoch> {
    (wire != NO_LEADER_EPOCH).then_some(LeaderEpoch(wire))
}

/// The wire's committed leader epoch: -1 for none.
pub fn wire_leader_epoch(epoch: Option<LeaderEpoch>) -> i32 {
    epoch.map_or(NO_LEADER_EPOCH, LeaderEpoch::get)
}

/// `RecordBatch.NO_PARTITION_LEADER_EPOCH`
const NO_LEADER_EPOCH: i32 = -1;

/// OffsetCommit.
#[derive(Clone, Debug, Default)]
pub struct CommitRequest {
    pub group_id: String,
    /// The committing member's generation; `None` for a commit from
    /// outside the group (manual assignment: the request's negative
    /// generation).
    pub generation_id: Option<i32>,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub partitions: Vec<CommitPartition>,
    /// The request version (v9+ answers GROUP_ID_NOT_FOUND for an unknown
    /// group where older versions answer ILLEGAL_GENERATION).
    pub api_version: i16,
}

#[cfg(test)]
impl CommitRequest {
    /// A test's OffsetCommit (v8) of `offset` for partition `t-0` of
    /// `group`, from outside any generation.
    pub fn of_t0(group: &str, offset: i64) -> CommitRequest {
        let partition =
            CommitPartition { topic: "t".into(), partition: 0, offset: Offset(offset), ..Default::default() };
        CommitRequest { group_id: group.into(), partitions: vec![partition], api_version: 8, ..Default::default() }
    }

    /// The same commit sent by `member` of `generation`.
    pub fn by(self, generation: Option<i32>, member: &str) -> CommitRequest {
        CommitRequest { generation_id: generation, member_id: member.into(), ..self }
    }
}

/// One partition of an OffsetFetch answer: what the group has committed
/// for it, if anything (the handler writes "nothing" as Kafka's -1s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedOffset {
    pub partition: TopicPartition,
    pub committed: Option<FetchedCommit>,
}

impl FetchedOffset {
    /// The committed offset, if any.
    pub fn offset(&self) -> Option<Offset> {
        self.committed.as_ref().map(|c| c.offset)
    }
}

/// A committed offset as OffsetFetch reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedCommit {
    pub offset: Offset,
    /// The epoch of the last record the consumer saw, if it said.
    pub leader_epoch: Option<LeaderEpoch>,
    pub metadata: String,
}

/// A member as DescribeGroups shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// The selected protocol's metadata (Stable groups only).
    pub metadata: Bytes,
    /// Stable groups only.
    pub assignment: Bytes,
}

/// DescribeGroups' view of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: &'static str,
    pub protocol_type: String,
    /// The selected protocol (Stable groups only).
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

/// ListGroups' view of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
}
