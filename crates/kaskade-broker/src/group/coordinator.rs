//! The group coordinator's membership protocol (classic groups): JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup and the timers that drive rebalances.
//!
//! Every entry point takes the current time in milliseconds. A request
//! addressed to one group fires that group's timers due at or before it
//! first (and any its own action made due), and no other group's: as in
//! Kafka, where each member's session expires on its own timer whatever
//! other groups do, the other groups' timers are [`GroupCoordinator::tick`]'s
//! business, which the driver calls at [`GroupCoordinator::next_deadline`].
//! Both cost the work due plus O(log groups) (`deadlines`), never a scan of
//! every group. Answers to parked requests (JoinGroup, SyncGroup) go to the
//! outbox, drained with [`GroupCoordinator::take_completions`].

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kaskade_types::{ProducerId, TopicPartition};

use super::state::{Group, GroupState, JoinTimer, Member, OffsetChange};
use super::txn_offsets::TxnOffsetChange;
use super::types::{
    Completion, GroupConfig, HeartbeatRequest, JoinMember, JoinRequest, JoinResponse, LeaveResponse, LeavingMember,
    MemberLeft, Reply, SyncRequest, SyncResponse, Token,
};
use super::writes::{WriteKind, Writes};

mod deadlines;
mod timers;
mod unload;

use deadlines::Deadlines;

/// The classic group coordinator: every group of one coordinator, no I/O.
#[derive(Debug)]
pub struct GroupCoordinator {
    pub(crate) config: GroupConfig,
    pub(crate) groups: HashMap<String, Group>,
    /// Every group's earliest deadline (see `deadlines`).
    deadlines: Deadlines,
    outbox: Vec<Completion>,
    /// Committed-offset changes to persist (`None`: a tombstone).
    pub(crate) offset_changes: Vec<OffsetChange>,
    /// Groups whose metadata is to be persisted (a tombstone if gone).
    pub(crate) dirty_groups: Vec<String>,
    /// Groups being deleted: a tombstone of their metadata is to be
    /// persisted (after `dirty_groups`), the group still in memory.
    pub(crate) group_tombstones: Vec<String>,
    /// Offsets committed in open transactions, by producer id.
    pub(crate) pending_txn_offsets: HashMap<ProducerId, Vec<OffsetChange>>,
    /// Transactional offset records to persist.
    pub(crate) txn_offset_changes: Vec<TxnOffsetChange>,
    /// Appends whose effect waits until the ISR holds them (`writes`).
    pub(crate) writes: Writes,
    /// State of the generator of member ids (splitmix64).
    rng: u64,
}

impl GroupCoordinator {
    /// A coordinator; `seed` makes generated member ids reproducible.
    pub fn new(config: GroupConfig, seed: u64) -> Self {
        GroupCoordinator {
            config,
            groups: HashMap::new(),
            deadlines: Deadlines::default(),
            outbox: Vec::new(),
            offset_changes: Vec::new(),
            dirty_groups: Vec::new(),
            group_tombstones: Vec::new(),
            pending_txn_offsets: HashMap::new(),
            txn_offset_changes: Vec::new(),
            writes: Writes::default(),
            rng: seed,
        }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// A group, if it exists.
    pub fn group(&self, group_id: &str) -> Option<&Group> {
        self.groups.get(group_id)
    }

    /// Every group.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// Answers to parked requests produced since the last call.
    pub fn take_completions(&mut self) -> Vec<Completion> {
        std::mem::take(&mut self.outbox)
    }

    /// Offset changes produced since the last call, to persist in order.
    pub fn take_offset_changes(&mut self) -> Vec<OffsetChange> {
        std::mem::take(&mut self.offset_changes)
    }

    /// Groups whose metadata changed since the last call (persist each as
    /// it is now, or a tombstone when it is gone).
    pub fn take_dirty_groups(&mut self) -> Vec<String> {
        let mut dirty = std::mem::take(&mut self.dirty_groups);
        dirty.dedup();
        dirty
    }

    /// Groups whose deletion was decided since the last call: persist a
    /// tombstone for each, after the dirty groups.
    pub fn take_group_tombstones(&mut self) -> Vec<String> {
        std::mem::take(&mut self.group_tombstones)
    }

    /// Restores a group's persisted metadata (members come back Stable and
    /// must heartbeat within their session timeout); `None` is a tombstone.
    pub fn load_group(&mut self, now: i64, group_id: String, loaded: Option<Box<Group>>) {
        match loaded {
            Some(mut loaded) => {
                if let Some(existing) = self.groups.remove(&group_id) {
                    loaded.offsets = existing.offsets;
                }
                for m in loaded.members.values_mut() {
                    m.session_deadline = now + i64::from(m.session_timeout_ms);
                }
                self.groups.insert(group_id.clone(), *loaded);
            }
            None => {
                let keep = self.groups.get(&group_id).is_some_and(|g| !g.offsets.is_empty());
                if keep {
                    let offsets = std::mem::take(&mut self.groups.get_mut(&group_id).expect("exists").offsets);
                    let mut group = Group::new(group_id.clone(), now);
                    group.offsets = offsets;
                    self.groups.insert(group_id.clone(), group);
                } else {
                    self.groups.remove(&group_id);
                }
            }
        }
        self.reindex(&group_id);
    }

    /// Restores a committed offset (or removes it, for a tombstone) while
    /// loading persisted state; creates the group, Empty, if needed.
    pub fn load_offset(&mut self, now: i64, change: OffsetChange) {
        let OffsetChange { group_id, topic, partition, value } = change;
        match value {
            Some(v) => {
                let group = self.groups.entry(group_id.clone()).or_insert_with(|| Group::new(group_id.clone(), now));
                group.offsets.insert(TopicPartition::new(topic, partition), v);
                self.reindex(&group_id);
            }
            None => {
                self.forget_pending_txn_offset(&group_id, &topic, partition);
                if let Some(group) = self.groups.get_mut(&group_id) {
                    group.offsets.remove(&TopicPartition::new(topic, partition));
                    if group.offsets.is_empty() && group.state == GroupState::Empty {
                        self.groups.remove(&group_id);
                    }
                }
                self.reindex(&group_id);
            }
        }
    }

    fn next_member_id(&mut self, client_id: &str) -> String {
        let mut next = || {
            self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let uuid = uuid::Builder::from_random_bytes(((u128::from(next()) << 64) | u128::from(next())).to_be_bytes())
            .into_uuid();
        format!("{client_id}-{uuid}")
    }

    pub(super) fn complete(&mut self, token: Token, reply: Reply) {
        self.outbox.push(Completion { token, reply });
    }

    fn fail_join(&mut self, token: Token, error: ResponseError, member_id: &str) {
        self.complete(token, Reply::Join(JoinResponse::error(error, member_id)));
    }

    // ---------------------------------------------------------------- join

    /// JoinGroup. The answer comes through the outbox with `token`, at once
    /// or when the join phase ends.
    pub fn join(&mut self, now: i64, token: Token, req: JoinRequest) {
        let group_id = req.group_id.clone();
        self.settle(&group_id, now);
        self.join_inner(now, token, req);
        self.settle(&group_id, now);
    }

    fn join_inner(&mut self, now: i64, token: Token, req: JoinRequest) {
        if req.group_id.is_empty() {
            return self.fail_join(token, ResponseError::InvalidGroupId, &req.member_id);
        }
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return self.fail_join(token, ResponseError::InvalidSessionTimeout, &req.member_id);
        }
        let unknown_member = req.member_id.is_empty();
        let group_id = req.group_id.clone();
        let created = !self.groups.contains_key(&group_id);
        if created {
            if !unknown_member {
                return self.fail_join(token, ResponseError::UnknownMemberId, &req.member_id);
            }
            self.groups.insert(group_id.clone(), Group::new(group_id.clone(), now));
        }
        let Some(group) = self.groups.get(&group_id) else {
            return;
        };
        if !self.accept_joining_member(group, &req.member_id) {
            return self.fail_join(token, ResponseError::GroupMaxSizeReached, &req.member_id);
        }
        if unknown_member {
            self.join_new_member(now, token, req);
        } else {
            self.join_existing_member(now, token, req);
        }
        // A group this join created and left untouched (the join failed)
        // does not stay behind, as in Kafka.
        if created
            && self.groups.get(&group_id).is_some_and(|g| {
                g.state == GroupState::Empty
                    && g.members.is_empty()
                    && g.pending_members.is_empty()
                    && g.offsets.is_empty()
            })
        {
            self.groups.remove(&group_id);
        }
    }

    /// Kafka's `acceptJoiningMember` (`group.max.size`).
    fn accept_joining_member(&self, group: &Group, member_id: &str) -> bool {
        let max = self.config.max_size;
        match group.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                group.members.get(member_id).is_some_and(Member::is_awaiting_join) || group.num_awaiting_join() < max
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                group.members.contains_key(member_id)
                    || group.pending_members.contains_key(member_id)
                    || group.members.len() < max
            }
        }
    }

    fn join_new_member(&mut self, now: i64, token: Token, req: JoinRequest) {
        let group = &self.groups[&req.group_id];
        if group.state == GroupState::Dead {
            return self.fail_join(token, ResponseError::CoordinatorNotAvailable, "");
        }
        if !group.supports_protocols(&req.protocol_type, &req.protocols) {
            return self.fail_join(token, ResponseError::InconsistentGroupProtocol, "");
        }
        let existing_static = req.group_instance_id.as_ref().and_then(|i| group.static_members.get(i)).cloned();
        let new_id = self.next_member_id(&req.client_id);
        if let Some(old_id) = existing_static {
            self.replace_static_member(now, token, req, old_id, new_id);
        } else if req.group_instance_id.is_none() && req.require_known_member_id {
            // KIP-394: hand out the id; the member joins again with it.
            let deadline = now + i64::from(req.session_timeout_ms);
            if let Some(group) = self.groups.get_mut(&req.group_id) {
                group.pending_members.insert(new_id.clone(), deadline);
            }
            self.fail_join(token, ResponseError::MemberIdRequired, &new_id);
        } else {
            self.add_member_and_rebalance(now, token, req, new_id);
        }
    }

    fn join_existing_member(&mut self, now: i64, token: Token, req: JoinRequest) {
        let group = &self.groups[&req.group_id];
        if group.state == GroupState::Dead {
            return self.fail_join(token, ResponseError::CoordinatorNotAvailable, &req.member_id);
        }
        if !group.supports_protocols(&req.protocol_type, &req.protocols) {
            return self.fail_join(token, ResponseError::InconsistentGroupProtocol, &req.member_id);
        }
        if group.pending_members.contains_key(&req.member_id) {
            let member_id = req.member_id.clone();
            if let Some(group) = self.groups.get_mut(&req.group_id) {
                group.pending_members.remove(&member_id);
            }
            return self.add_member_and_rebalance(now, token, req, member_id);
        }
        if let Err(e) = group.validate_member(&req.member_id, req.group_instance_id.as_deref()) {
            return self.fail_join(token, e, &req.member_id);
        }
        let member = &group.members[&req.member_id];
        let unchanged = member.matches(&req.protocols);
        let is_leader = group.is_leader(&req.member_id);
        match group.state {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(now, token, req),
            GroupState::CompletingRebalance if unchanged => {
                // A retried JoinGroup: the same answer again.
                let response = self.join_response_for(&req.group_id, &req.member_id, is_leader, false);
                self.complete(token, Reply::Join(response));
            }
            GroupState::Stable if unchanged && !is_leader => {
                let response = self.join_response_for(&req.group_id, &req.member_id, false, false);
                self.complete(token, Reply::Join(response));
            }
            GroupState::CompletingRebalance | GroupState::Stable => self.update_member_and_rebalance(now, token, req),
            GroupState::Empty | GroupState::Dead => {
                self.fail_join(token, ResponseError::UnknownMemberId, &req.member_id)
            }
        }
    }

    /// The JoinGroup answer of the current generation for one member.
    pub(super) fn join_response_for(
        &self,
        group_id: &str,
        member_id: &str,
        with_members: bool,
        skip_assignment: bool,
    ) -> JoinResponse {
        let group = &self.groups[group_id];
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let members = if with_members {
            group
                .members
                .values()
                .map(|m| JoinMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata(&protocol).cloned().unwrap_or_default(),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            error: None,
            generation_id: group.generation_id,
            protocol_type: group.protocol_type.clone(),
            protocol_name: group.protocol_name.clone(),
            leader: group.leader_id.clone().unwrap_or_default(),
            skip_assignment,
            member_id: member_id.to_string(),
            members,
        }
    }

    fn add_member_and_rebalance(&mut self, now: i64, token: Token, req: JoinRequest, member_id: String) {
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return;
        };
        let member = Member {
            member_id: member_id.clone(),
            group_instance_id: req.group_instance_id.clone(),
            client_id: req.client_id,
            client_host: req.client_host,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            session_timeout_ms: req.session_timeout_ms,
            protocol_type: req.protocol_type.clone(),
            protocols: req.protocols,
            assignment: Bytes::new(),
            join_token: Some(token),
            sync_token: None,
            session_deadline: now + i64::from(req.session_timeout_ms),
        };
        if group.members.is_empty() {
            group.protocol_type = Some(req.protocol_type);
        }
        if let Some(instance) = &req.group_instance_id {
            group.static_members.insert(instance.clone(), member_id.clone());
        }
        if group.leader_id.is_none() {
            group.leader_id = Some(member_id.clone());
        }
        group.members.insert(member_id, member);
        if group.state == GroupState::PreparingRebalance && group.previous_state == GroupState::Empty {
            group.new_member_added = true;
        }
        self.maybe_prepare_rebalance_or_complete_join(now, &req.group_id);
    }

    fn update_member_and_rebalance(&mut self, now: i64, token: Token, req: JoinRequest) {
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return;
        };
        let Some(member) = group.members.get_mut(&req.member_id) else {
            return;
        };
        member.protocols = req.protocols;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.session_timeout_ms = req.session_timeout_ms;
        let replaced = member.join_token.replace(token);
        if let Some(old) = replaced {
            self.fail_join(old, ResponseError::RebalanceInProgress, &req.member_id);
        }
        self.maybe_prepare_rebalance_or_complete_join(now, &req.group_id);
    }

    fn maybe_prepare_rebalance_or_complete_join(&mut self, now: i64, group_id: &str) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty => {
                self.prepare_rebalance(now, group_id)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now, group_id),
            GroupState::Dead => {}
        }
    }

    /// KIP-345: a static member joining with a new member id takes the old
    /// one's place; in a Stable group whose selected protocol would not
    /// change, without a rebalance.
    fn replace_static_member(&mut self, now: i64, token: Token, req: JoinRequest, old_id: String, new_id: String) {
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return;
        };
        let Some(index) = group.members.get_index_of(&old_id) else {
            return;
        };
        let Some(mut member) = group.members.shift_remove(&old_id) else {
            return;
        };
        let fenced: Vec<(Token, Reply)> = [
            member
                .join_token
                .take()
                .map(|t| (t, Reply::Join(JoinResponse::error(ResponseError::FencedInstanceId, &old_id)))),
            member.sync_token.take().map(|t| (t, Reply::Sync(SyncResponse::error(ResponseError::FencedInstanceId)))),
        ]
        .into_iter()
        .flatten()
        .collect();
        let previous = Box::new(member.clone());
        member.member_id = new_id.clone();
        member.protocols = req.protocols;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.session_timeout_ms = req.session_timeout_ms;
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        member.join_token = Some(token);
        member.session_deadline = now + i64::from(req.session_timeout_ms);
        group.members.shift_insert(index, new_id.clone(), member);
        if let Some(instance) = &req.group_instance_id {
            group.static_members.insert(instance.clone(), new_id.clone());
        }
        if group.is_leader(&old_id) {
            group.leader_id = Some(new_id.clone());
        }
        if group.pending_sync.remove(&old_id) {
            group.pending_sync.insert(new_id.clone());
        }
        let state = group.state;
        let same_protocol = group.select_protocol() == group.protocol_name;
        for (t, reply) in fenced {
            self.complete(t, reply);
        }
        match state {
            GroupState::Stable if same_protocol => {
                // The group record names the new member id; the member
                // hears once it is stored (`static_join`), as in Kafka.
                self.dirty_groups.push(req.group_id.clone());
                if let Some(m) = self.groups.get_mut(&req.group_id).and_then(|g| g.members.get_mut(&new_id)) {
                    m.join_token = None;
                }
                let generation = self.groups.get(&req.group_id).map_or(0, |g| g.generation_id);
                let kind = WriteKind::StaticJoin { token, previous, new_member: new_id, generation };
                self.writes.open(&req.group_id, kind);
            }
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now, &req.group_id),
            GroupState::PreparingRebalance => self.maybe_complete_join(now, &req.group_id),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    pub(super) fn prepare_rebalance(&mut self, now: i64, group_id: &str) {
        let initial_delay = i64::from(self.config.initial_rebalance_delay_ms);
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let mut failed = Vec::new();
        if group.state == GroupState::CompletingRebalance {
            for member in group.members.values_mut() {
                member.assignment = Bytes::new();
                if let Some(t) = member.sync_token.take() {
                    member.session_deadline = now + i64::from(member.session_timeout_ms);
                    failed.push(t);
                }
            }
        }
        group.pending_sync.clear();
        group.sync_deadline = None;
        let initial = group.state == GroupState::Empty;
        let rebalance_timeout = group.rebalance_timeout_ms();
        group.transition(GroupState::PreparingRebalance, now);
        group.join_timer = Some(if initial {
            let remaining_ms = (rebalance_timeout - initial_delay).max(0);
            (now + initial_delay, JoinTimer::Initial { delay_ms: initial_delay, remaining_ms })
        } else {
            (now + rebalance_timeout, JoinTimer::Rebalance)
        });
        for t in failed {
            self.complete(t, Reply::Sync(SyncResponse::error(ResponseError::RebalanceInProgress)));
        }
        if !initial {
            self.maybe_complete_join(now, group_id);
        }
    }

    fn maybe_complete_join(&mut self, now: i64, group_id: &str) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        if group.state == GroupState::PreparingRebalance
            && group.all_members_joined()
            && group.previous_state != GroupState::Empty
        {
            self.complete_join(now, group_id);
        }
    }

    /// The end of the join phase: drop the dynamic members that did not
    /// rejoin, elect a leader among those that did, start the next
    /// generation and answer every parked JoinGroup.
    fn complete_join(&mut self, now: i64, group_id: &str) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        let gone: Vec<String> = group
            .members
            .values()
            .filter(|m| !m.is_awaiting_join() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in &gone {
            remove_member(group, id);
        }
        let leader_joined =
            group.leader_id.as_ref().and_then(|l| group.members.get(l)).is_some_and(Member::is_awaiting_join);
        if !leader_joined {
            group.leader_id = group.members.values().find(|m| m.is_awaiting_join()).map(|m| m.member_id.clone());
        }
        if group.leader_id.is_none() && !group.members.is_empty() {
            // Only static members that have not rejoined: wait for them to
            // rejoin or for their sessions to expire.
            group.join_timer = Some((now + group.rebalance_timeout_ms().max(1), JoinTimer::Rebalance));
            return;
        }
        group.join_timer = None;
        group.generation_id += 1;
        if group.members.is_empty() {
            group.protocol_name = None;
            group.leader_id = None;
            group.transition(GroupState::Empty, now);
            self.dirty_groups.push(group_id.to_string());
            return;
        }
        group.protocol_name = group.select_protocol();
        group.transition(GroupState::CompletingRebalance, now);
        group.pending_sync = group.members.keys().cloned().collect();
        group.sync_deadline = Some(now + group.rebalance_timeout_ms());
        let mut parked = Vec::new();
        for member in group.members.values_mut() {
            // Only members that joined start a new session: a static member
            // that did not rejoin keeps its deadline (and expires on it).
            if let Some(t) = member.join_token.take() {
                parked.push((t, member.member_id.clone()));
                member.session_deadline = now + i64::from(member.session_timeout_ms);
            }
        }
        for (t, member_id) in parked {
            let is_leader = self.groups[group_id].is_leader(&member_id);
            let response = self.join_response_for(group_id, &member_id, is_leader, false);
            self.complete(t, Reply::Join(response));
        }
    }

    // ---------------------------------------------------------------- sync

    /// SyncGroup. The answer comes through the outbox with `token`, at once
    /// or when the leader's assignment arrives.
    pub fn sync(&mut self, now: i64, token: Token, req: SyncRequest) {
        self.settle(&req.group_id, now);
        let result = self.sync_inner(now, token, &req);
        if let Err(e) = result {
            self.complete(token, Reply::Sync(SyncResponse::error(e)));
        }
        self.settle(&req.group_id, now);
    }

    fn sync_inner(&mut self, now: i64, token: Token, req: &SyncRequest) -> Result<(), ResponseError> {
        let group = self.groups.get_mut(&req.group_id).ok_or(ResponseError::UnknownMemberId)?;
        group.validate_member_generation(&req.member_id, req.group_instance_id.as_deref(), req.generation_id)?;
        let mismatch = |given: &Option<String>, ours: &Option<String>| given.is_some() && given != ours;
        if mismatch(&req.protocol_type, &group.protocol_type) || mismatch(&req.protocol_name, &group.protocol_name) {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        match group.state {
            GroupState::Empty | GroupState::Dead => Err(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            GroupState::Stable => {
                group.pending_sync.remove(&req.member_id);
                if group.pending_sync.is_empty() {
                    group.sync_deadline = None;
                }
                let member = group.members.get_mut(&req.member_id).ok_or(ResponseError::UnknownMemberId)?;
                member.session_deadline = now + i64::from(member.session_timeout_ms);
                let response = SyncResponse {
                    error: None,
                    protocol_type: group.protocol_type.clone(),
                    protocol_name: group.protocol_name.clone(),
                    assignment: member.assignment.clone(),
                };
                self.complete(token, Reply::Sync(response));
                Ok(())
            }
            GroupState::CompletingRebalance => {
                group.pending_sync.remove(&req.member_id);
                let member = group.members.get_mut(&req.member_id).ok_or(ResponseError::UnknownMemberId)?;
                let replaced = member.sync_token.replace(token);
                if let Some(old) = replaced {
                    self.complete(old, Reply::Sync(SyncResponse::error(ResponseError::RebalanceInProgress)));
                }
                let group = self.groups.get_mut(&req.group_id).expect("group exists");
                if group.is_leader(&req.member_id) {
                    let mut assignments: HashMap<&str, &Bytes> =
                        req.assignments.iter().map(|(m, a)| (m.as_str(), a)).collect();
                    for member in group.members.values_mut() {
                        member.assignment = assignments.remove(member.member_id.as_str()).cloned().unwrap_or_default();
                    }
                    // The group record carries the assignment; the group
                    // turns Stable and the members get it only once it is
                    // stored (`writes`), as Kafka's SyncGroup does.
                    let generation = group.generation_id;
                    self.dirty_groups.push(req.group_id.clone());
                    self.writes.open(&req.group_id, WriteKind::Assignment { generation });
                }
                Ok(())
            }
        }
    }

    pub(super) fn propagate_assignments(&mut self, now: i64, group_id: &str) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let mut ready = Vec::new();
        for member in group.members.values_mut() {
            if let Some(t) = member.sync_token.take() {
                member.session_deadline = now + i64::from(member.session_timeout_ms);
                ready.push((
                    t,
                    SyncResponse {
                        error: None,
                        protocol_type: group.protocol_type.clone(),
                        protocol_name: group.protocol_name.clone(),
                        assignment: member.assignment.clone(),
                    },
                ));
            }
        }
        if group.pending_sync.is_empty() {
            group.sync_deadline = None;
        }
        for (t, response) in ready {
            self.complete(t, Reply::Sync(response));
        }
    }

    // ----------------------------------------------------------- heartbeat

    /// Heartbeat: the error code to answer (`None`: keep going).
    pub fn heartbeat(&mut self, now: i64, req: &HeartbeatRequest) -> Option<ResponseError> {
        self.settle(&req.group_id, now);
        let result = self.heartbeat_inner(now, req);
        self.settle(&req.group_id, now);
        result.err()
    }

    fn heartbeat_inner(&mut self, now: i64, req: &HeartbeatRequest) -> Result<(), ResponseError> {
        let group = self.groups.get_mut(&req.group_id).ok_or(ResponseError::UnknownMemberId)?;
        group.validate_member_generation(&req.member_id, req.group_instance_id.as_deref(), req.generation_id)?;
        let state = group.state;
        let member = group.members.get_mut(&req.member_id).ok_or(ResponseError::UnknownMemberId)?;
        match state {
            GroupState::Empty | GroupState::Dead => Err(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => {
                member.session_deadline = now + i64::from(member.session_timeout_ms);
                Err(ResponseError::RebalanceInProgress)
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                member.session_deadline = now + i64::from(member.session_timeout_ms);
                Ok(())
            }
        }
    }

    // --------------------------------------------------------------- leave

    /// LeaveGroup (one or a batch of members).
    pub fn leave(&mut self, now: i64, group_id: &str, members: &[LeavingMember]) -> LeaveResponse {
        self.settle(group_id, now);
        let response = self.leave_inner(now, group_id, members);
        self.settle(group_id, now);
        response
    }

    fn leave_inner(&mut self, now: i64, group_id: &str, members: &[LeavingMember]) -> LeaveResponse {
        let top = |e| LeaveResponse { error: Some(e), members: Vec::new() };
        let Some(group) = self.groups.get_mut(group_id) else {
            return top(ResponseError::UnknownMemberId);
        };
        if group.state == GroupState::Dead {
            return top(ResponseError::CoordinatorNotAvailable);
        }
        let mut results = Vec::new();
        let mut leaving = Vec::new();
        let mut pending_left = false;
        for m in members {
            let error = if m.group_instance_id.is_none() && group.pending_members.remove(&m.member_id).is_some() {
                pending_left = true;
                None
            } else if let Some(instance) = &m.group_instance_id {
                match group.static_members.get(instance) {
                    None => Some(ResponseError::UnknownMemberId),
                    Some(existing) if !m.member_id.is_empty() && *existing != m.member_id => {
                        Some(ResponseError::FencedInstanceId)
                    }
                    Some(existing) => {
                        leaving.push(existing.clone());
                        None
                    }
                }
            } else if group.members.contains_key(&m.member_id) {
                leaving.push(m.member_id.clone());
                None
            } else {
                Some(ResponseError::UnknownMemberId)
            };
            results.push(MemberLeft {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                error,
            });
        }
        for id in leaving {
            self.remove_member_and_update_group(now, group_id, &id);
        }
        if pending_left {
            self.maybe_complete_join(now, group_id);
        }
        LeaveResponse { error: None, members: results }
    }

    /// Kafka's `removeMemberAndUpdateClassicGroup`: parked requests of the
    /// member get UNKNOWN_MEMBER_ID, then the group rebalances (or, mid
    /// join, may finish joining).
    pub(crate) fn remove_member_and_update_group(&mut self, now: i64, group_id: &str, member_id: &str) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let Some(member) = remove_member(group, member_id) else {
            return;
        };
        let state = group.state;
        if let Some(t) = member.join_token {
            self.fail_join(t, ResponseError::UnknownMemberId, member_id);
        }
        if let Some(t) = member.sync_token {
            self.complete(t, Reply::Sync(SyncResponse::error(ResponseError::UnknownMemberId)));
        }
        match state {
            GroupState::Dead | GroupState::Empty => {}
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now, group_id),
            GroupState::PreparingRebalance => self.maybe_complete_join(now, group_id),
        }
    }
}

/// Removes a member from the group's books (no state transition).
fn remove_member(group: &mut Group, member_id: &str) -> Option<Member> {
    let member = group.members.shift_remove(member_id)?;
    if let Some(instance) = &member.group_instance_id {
        if group.static_members.get(instance).map(String::as_str) == Some(member_id) {
            group.static_members.remove(instance);
        }
    }
    group.pending_sync.remove(member_id);
    if group.is_leader(member_id) {
        group.leader_id = group.members.keys().next().cloned();
    }
    Some(member)
}
