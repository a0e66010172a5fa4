//! One classic group: its members, generation, protocol and committed
//! offsets, with the rules Kafka's `ClassicGroup` applies to them.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use indexmap::IndexMap;
use kafka_protocol::error::ResponseError;
use kaskade_types::{LeaderEpoch, Offset, TopicPartition};

use super::types::{Protocol, Token};

/// The protocol type of Kafka's consumers (`ConsumerProtocol`).
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The states of a classic group, as Kafka names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members (possibly committed offsets).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Assignment distributed; heartbeats keep members in.
    Stable,
    /// Removed.
    Dead,
}

impl GroupState {
    /// The name Kafka reports (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A member of a group.
#[derive(Clone, Debug)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// In the member's order of preference.
    pub protocols: Vec<Protocol>,
    /// From the leader's SyncGroup of the current generation.
    pub assignment: Bytes,
    /// The parked JoinGroup, while the member awaits the join phase's end.
    pub(crate) join_token: Option<Token>,
    /// The parked SyncGroup, while the member awaits the leader's assignment.
    pub(crate) sync_token: Option<Token>,
    /// When the session expires (ignored while a join or sync is parked).
    pub(crate) session_deadline: i64,
}

impl Member {
    /// Whether the member's JoinGroup is parked.
    pub fn is_awaiting_join(&self) -> bool {
        self.join_token.is_some()
    }

    /// Whether the member's SyncGroup is parked.
    pub fn is_awaiting_sync(&self) -> bool {
        self.sync_token.is_some()
    }

    /// The metadata of a protocol, if the member supports it.
    pub fn metadata(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols.iter().find(|p| p.name == protocol).map(|p| &p.metadata)
    }

    /// Whether `protocols` equals what the member supports (names and
    /// metadata, in order).
    pub fn matches(&self, protocols: &[Protocol]) -> bool {
        self.protocols == protocols
    }

    /// The member's vote: its most preferred protocol among `candidates`.
    fn vote(&self, candidates: &HashSet<&str>) -> Option<&str> {
        self.protocols.iter().map(|p| p.name.as_str()).find(|name| candidates.contains(name))
    }
}

/// An offset committed for one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: Offset,
    /// The epoch of the last record the consumer saw, if it said (-1 on
    /// the wire and in `OffsetCommitValue`).
    pub leader_epoch: Option<LeaderEpoch>,
    pub metadata: String,
    pub commit_timestamp: i64,
}

/// A committed offset set (or, `None`, removed): what gets persisted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetChange {
    pub group_id: String,
    pub topic: String,
    pub partition: i32,
    pub value: Option<CommittedOffset>,
}

/// What the join timer does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JoinTimer {
    /// `group.initial.rebalance.delay.ms` for a group leaving Empty: extended
    /// while new members keep arriving, up to the rebalance timeout.
    Initial { delay_ms: i64, remaining_ms: i64 },
    /// The rebalance timeout: members that did not rejoin are dropped.
    Rebalance,
}

/// A classic group.
#[derive(Clone, Debug)]
pub struct Group {
    pub group_id: String,
    pub(crate) state: GroupState,
    pub(crate) previous_state: GroupState,
    pub(crate) state_timestamp: i64,
    pub(crate) generation_id: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) leader_id: Option<String>,
    /// In join order (the first joined member leads when the leader goes).
    pub(crate) members: IndexMap<String, Member>,
    /// group.instance.id -> member id.
    pub(crate) static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet joined, with
    /// the deadline by which they must join.
    pub(crate) pending_members: HashMap<String, i64>,
    /// Members that got their JoinGroup response and have not synced yet.
    pub(crate) pending_sync: HashSet<String>,
    pub(crate) join_timer: Option<(i64, JoinTimer)>,
    pub(crate) sync_deadline: Option<i64>,
    /// A new member joined during the initial rebalance delay.
    pub(crate) new_member_added: bool,
    /// Committed offsets by partition.
    pub(crate) offsets: BTreeMap<TopicPartition, CommittedOffset>,
}

impl Group {
    pub(crate) fn new(group_id: String, now: i64) -> Self {
        Group {
            group_id,
            state: GroupState::Empty,
            previous_state: GroupState::Empty,
            state_timestamp: now,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: IndexMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            pending_sync: HashSet::new(),
            join_timer: None,
            sync_deadline: None,
            new_member_added: false,
            offsets: BTreeMap::new(),
        }
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    pub fn leader_id(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.get(member_id)
    }

    pub fn offsets(&self) -> &BTreeMap<TopicPartition, CommittedOffset> {
        &self.offsets
    }

    pub(crate) fn transition(&mut self, to: GroupState, now: i64) {
        self.previous_state = self.state;
        self.state = to;
        self.state_timestamp = now;
    }

    pub(crate) fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    /// The largest rebalance timeout of the members (the join phase's bound).
    pub(crate) fn rebalance_timeout_ms(&self) -> i64 {
        self.members.values().map(|m| i64::from(m.rebalance_timeout_ms)).max().unwrap_or(0)
    }

    /// Kafka's `hasAllMembersJoined`: every member has a parked JoinGroup and
    /// no member id handed out with MEMBER_ID_REQUIRED is outstanding.
    pub(crate) fn all_members_joined(&self) -> bool {
        self.members.values().all(Member::is_awaiting_join) && self.pending_members.is_empty()
    }

    pub(crate) fn num_awaiting_join(&self) -> usize {
        self.members.values().filter(|m| m.is_awaiting_join()).count()
    }

    /// Kafka's `supportsProtocols`: an empty group takes any non-empty
    /// protocol type and list; otherwise the type must match and one of the
    /// protocols must be supported by every member.
    pub(crate) fn supports_protocols(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.state == GroupState::Empty {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let n = self.members.len();
        protocols
            .iter()
            .any(|p| self.members.values().filter(|m| m.protocols.iter().any(|q| q.name == p.name)).count() == n)
    }

    /// Kafka's `selectProtocol`: among the protocols every member supports,
    /// each member votes for its most preferred one; the most votes win (ties
    /// go to the leader's, then the first member's, preference order).
    pub(crate) fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: HashSet<&str> = first
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| self.members.values().all(|m| m.protocols.iter().any(|q| q.name == *name)))
            .collect();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for member in self.members.values() {
            if let Some(vote) = member.vote(&candidates) {
                *votes.entry(vote).or_default() += 1;
            }
        }
        let preference = self.leader_id.as_deref().and_then(|l| self.members.get(l)).unwrap_or(first);
        let rank = |name: &str| preference.protocols.iter().position(|p| p.name == name).unwrap_or(usize::MAX);
        votes
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| rank(b.0).cmp(&rank(a.0))))
            .map(|(name, _)| name.to_string())
    }

    /// Kafka's `validateMember`: a static member is checked by instance id
    /// (FENCED_INSTANCE_ID when another member id holds it), a dynamic one
    /// by member id.
    pub(crate) fn validate_member(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        if let Some(instance) = group_instance_id {
            match self.static_members.get(instance) {
                None => Err(ResponseError::UnknownMemberId),
                Some(existing) if existing != member_id => Err(ResponseError::FencedInstanceId),
                Some(_) => Ok(()),
            }
        } else if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(ResponseError::UnknownMemberId)
        }
    }

    /// The checks SyncGroup and Heartbeat share: the group is alive, the
    /// member belongs to it (`validate_member`) and speaks for the current
    /// generation.
    pub(crate) fn validate_member_generation(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        self.validate_member(member_id, group_instance_id)?;
        if generation_id != self.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    /// The topics the members subscribe to, when the group uses the consumer
    /// protocol and every member's subscription parses; `None` if unknown.
    pub(crate) fn subscribed_topics(&self) -> Option<HashSet<String>> {
        if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = HashSet::new();
        for member in self.members.values() {
            topics.extend(parse_subscription_topics(member.metadata(protocol)?)?);
        }
        Some(topics)
    }
}

/// The topics of a `ConsumerProtocolSubscription` (any version: every
/// version starts with the version and the topic array, none is flexible).
pub fn parse_subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut buf = metadata;
    let mut take = |n: usize| -> Option<&[u8]> {
        if buf.len() < n {
            return None;
        }
        let (head, tail) = buf.split_at(n);
        buf = tail;
        Some(head)
    };
    let _version = i16::from_be_bytes(take(2)?.try_into().ok()?);
    let count = i32::from_be_bytes(take(4)?.try_into().ok()?);
    let mut topics = Vec::new();
    for _ in 0..count.max(0) {
        let len = i16::from_be_bytes(take(2)?.try_into().ok()?);
        let name = take(usize::try_from(len).ok()?)?;
        topics.push(String::from_utf8(name.to_vec()).ok()?);
    }
    Some(topics)
}
