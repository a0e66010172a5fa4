//! Committed offsets (OffsetCommit, OffsetFetch, OffsetDelete) and group
//! administration (DescribeGroups, ListGroups, DeleteGroups).

use kafka_protocol::error::ResponseError;
use kaskade_types::TopicPartition;

use super::coordinator::GroupCoordinator;
use super::state::{CommittedOffset, Group, GroupState, OffsetChange, CONSUMER_PROTOCOL_TYPE};
use super::types::{
    CommitPartition, CommitRequest, FetchedCommit, FetchedOffset, GroupDescription, GroupListing, MemberDescription,
};
use super::writes::WriteKind;

/// The change one committed partition makes, or OFFSET_METADATA_TOO_LARGE
/// (shared by OffsetCommit and TxnOffsetCommit).
pub(super) fn offset_change(
    group_id: &str,
    p: &CommitPartition,
    now: i64,
    max_metadata: usize,
) -> Result<OffsetChange, ResponseError> {
    let metadata = p.metadata.clone().unwrap_or_default();
    if metadata.len() > max_metadata {
        return Err(ResponseError::OffsetMetadataTooLarge);
    }
    Ok(OffsetChange {
        group_id: group_id.to_string(),
        topic: p.topic.clone(),
        partition: p.partition,
        value: Some(CommittedOffset {
            offset: p.offset,
            leader_epoch: p.leader_epoch,
            metadata,
            commit_timestamp: now,
        }),
    })
}

impl GroupCoordinator {
    /// OffsetCommit: one error (or none) per partition, in request order.
    pub fn commit_offsets(&mut self, now: i64, req: &CommitRequest) -> Vec<Option<ResponseError>> {
        self.settle(&req.group_id, now);
        let result = self.validate_commit(now, req, false);
        let max_metadata = self.config.offset_metadata_max_bytes;
        let errors = match result {
            Err(e) => vec![Some(e); req.partitions.len()],
            Ok(()) => {
                // Written now, visible once replicated (`writes`).
                let mut written = Vec::new();
                let errors = req
                    .partitions
                    .iter()
                    .map(|p| match offset_change(&req.group_id, p, now, max_metadata) {
                        Err(e) => Some(e),
                        Ok(change) => {
                            written.push(change);
                            None
                        }
                    })
                    .collect();
                if !written.is_empty() {
                    self.offset_changes.extend(written.iter().cloned());
                    self.writes.open(&req.group_id, WriteKind::Offsets(written));
                }
                errors
            }
        };
        self.settle(&req.group_id, now);
        errors
    }

    /// Kafka's `validateOffsetCommit` for classic groups. A transactional
    /// commit (TxnOffsetCommit) without member id and generation (versions
    /// 0-2, as aiokafka and kafkajs send it) is accepted whatever the
    /// group's state, and is not held back by a rebalance, as Kafka does.
    pub(super) fn validate_commit(
        &mut self,
        now: i64,
        req: &CommitRequest,
        transactional: bool,
    ) -> Result<(), ResponseError> {
        if req.group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let Some(group) = self.groups.get(&req.group_id) else {
            if req.generation_id.is_none() {
                // A commit from outside any group (manual assignment): the
                // group exists from now on, empty, to hold the offsets.
                self.groups.insert(req.group_id.clone(), Group::new(req.group_id.clone(), now));
                return Ok(());
            }
            return Err(if req.api_version >= 9 {
                ResponseError::GroupIdNotFound
            } else {
                ResponseError::IllegalGeneration
            });
        };
        if group.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if req.generation_id.is_none() && group.state == GroupState::Empty {
            return Ok(());
        }
        if req.generation_id.is_some() || !req.member_id.is_empty() || req.group_instance_id.is_some() {
            group.validate_member(&req.member_id, req.group_instance_id.as_deref())?;
            if req.generation_id != Some(group.generation_id) {
                return Err(ResponseError::IllegalGeneration);
            }
        } else if !transactional && group.state != GroupState::Empty {
            // No member id and no generation: only an empty group accepts.
            return Err(ResponseError::UnknownMemberId);
        }
        if !transactional && group.state == GroupState::CompletingRebalance {
            // A member that got its JoinGroup answer but not its assignment.
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// OffsetFetch for one group: `partitions` `None` means every committed
    /// offset of the group.
    pub fn fetch_offsets(
        &mut self,
        now: i64,
        group_id: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<FetchedOffset>, ResponseError> {
        self.settle(group_id, now);
        let group = self.groups.get(group_id).filter(|g| g.state != GroupState::Dead);
        let fetched = |tp: &TopicPartition, committed: Option<&CommittedOffset>| FetchedOffset {
            partition: tp.clone(),
            committed: committed.map(|c| FetchedCommit {
                offset: c.offset,
                leader_epoch: c.leader_epoch,
                metadata: c.metadata.clone(),
            }),
        };
        Ok(match partitions {
            Some(partitions) => {
                partitions.iter().map(|tp| fetched(tp, group.and_then(|g| g.offsets.get(tp)))).collect()
            }
            None => group.map(|g| g.offsets.iter().map(|(tp, c)| fetched(tp, Some(c))).collect()).unwrap_or_default(),
        })
    }

    /// OffsetDelete: a top-level error, or one per partition in request
    /// order. The offsets go once their tombstones are replicated
    /// (`deletes`); OffsetFetch shows them until then.
    pub fn delete_offsets(
        &mut self,
        now: i64,
        group_id: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        self.settle(group_id, now);
        let deleting = self.group_deletion_pending(group_id);
        let group = self
            .groups
            .get(group_id)
            .filter(|g| g.state != GroupState::Dead && !deleting)
            .ok_or(ResponseError::GroupIdNotFound)?;
        let subscribed = if group.state == GroupState::Empty {
            None
        } else if group.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE) {
            Some(group.subscribed_topics())
        } else {
            return Err(ResponseError::NonEmptyGroup);
        };
        let known = self.known_partitions(group_id);
        let mut deleted = Vec::new();
        let result = partitions
            .iter()
            .map(|tp| {
                // Unknown subscriptions count as subscribed: never delete
                // offsets a member may be using.
                let in_use = subscribed.as_ref().is_some_and(|s| s.as_ref().is_none_or(|s| s.contains(&*tp.topic)));
                if in_use {
                    Some(ResponseError::GroupSubscribedToTopic)
                } else {
                    if known.contains(tp) && !deleted.contains(tp) {
                        deleted.push(tp.clone());
                    }
                    None
                }
            })
            .collect();
        self.open_deletion(group_id, deleted, false);
        Ok(result)
    }

    /// DescribeGroups for one group (`None`: no such group).
    pub fn describe_group(&mut self, now: i64, group_id: &str) -> Option<GroupDescription> {
        self.settle(group_id, now);
        let group = self.groups.get(group_id)?;
        let stable = group.state == GroupState::Stable;
        let protocol = if stable { group.protocol_name.clone().unwrap_or_default() } else { String::new() };
        let members = group
            .members
            .values()
            .map(|m| MemberDescription {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable { m.metadata(&protocol).cloned().unwrap_or_default() } else { Default::default() },
                assignment: if stable { m.assignment.clone() } else { Default::default() },
            })
            .collect();
        Some(GroupDescription {
            group_id: group.group_id.clone(),
            state: group.state.name(),
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol,
            members,
        })
    }

    /// ListGroups, filtered by state names (case-insensitive; empty: all).
    pub fn list_groups(&mut self, now: i64, states: &[String]) -> Vec<GroupListing> {
        self.tick(now);
        let mut listed: Vec<GroupListing> = self
            .groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .filter(|g| states.is_empty() || states.iter().any(|s| s.eq_ignore_ascii_case(g.state.name())))
            .map(|g| GroupListing {
                group_id: g.group_id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state.name(),
            })
            .collect();
        listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        listed
    }

    /// DeleteGroups: one error (or none) per group, in request order. A
    /// group goes once its tombstones are replicated (`deletes`).
    pub fn delete_groups(&mut self, now: i64, group_ids: &[String]) -> Vec<Option<ResponseError>> {
        self.tick(now);
        group_ids
            .iter()
            .map(|id| {
                if id.is_empty() {
                    return Some(ResponseError::InvalidGroupId);
                }
                if self.group_deletion_pending(id) {
                    return Some(ResponseError::GroupIdNotFound);
                }
                match self.groups.get(id).map(|g| g.state) {
                    None | Some(GroupState::Dead) => Some(ResponseError::GroupIdNotFound),
                    Some(GroupState::Empty) => {
                        let known = self.known_partitions(id);
                        self.open_deletion(id, known, true);
                        None
                    }
                    Some(_) => Some(ResponseError::NonEmptyGroup),
                }
            })
            .collect()
    }

    /// A deleted topic takes its committed offsets with it, in every group
    /// (Kafka's `onPartitionsDeleted`): a topic re-created under the same
    /// name must not inherit them. An empty group left without offsets is
    /// deleted too. Both once replicated (`deletes`). Returns the number
    /// of tombstones written.
    pub fn remove_topic_offsets(&mut self, now: i64, topic: &str) -> usize {
        self.tick(now);
        let mut ids: Vec<String> = self.groups.keys().cloned().collect();
        ids.sort();
        let mut written = 0;
        for id in ids {
            let known = self.known_partitions(&id);
            let (gone, kept): (Vec<TopicPartition>, Vec<TopicPartition>) =
                known.into_iter().partition(|tp| *tp.topic == *topic);
            if gone.is_empty() {
                continue;
            }
            written += gone.len();
            let empty = self.groups.get(&id).is_some_and(|g| {
                g.state == GroupState::Empty && g.pending_members.is_empty() && !self.group_deletion_pending(&id)
            });
            self.open_deletion(&id, gone, empty && kept.is_empty());
        }
        written
    }

    /// `offsets.retention.minutes`: deletes the offsets of empty groups
    /// committed (or, for consumer groups, emptied) more than `retention_ms`
    /// ago, and empty groups left with no offsets, once replicated
    /// (`deletes`). Returns the groups whose deletion was written.
    pub fn expire_offsets(&mut self, now: i64, retention_ms: i64) -> Vec<String> {
        self.tick(now);
        let (in_flight, in_flight_groups) = self.offsets_in_flight();
        let mut expired: Vec<(String, Vec<TopicPartition>, bool)> = Vec::new();
        for group in self.groups.values() {
            if group.state != GroupState::Empty {
                continue;
            }
            let emptied_at = group.protocol_type.as_ref().map(|_| group.state_timestamp);
            // An offset a write or a transaction is about to replace (or
            // delete) waits for it, as in Kafka.
            let in_flight: Vec<&TopicPartition> =
                in_flight.iter().filter(|(g, _)| *g == group.group_id).map(|(_, tp)| tp).collect();
            let busy = in_flight_groups.contains(&group.group_id);
            let gone: Vec<TopicPartition> = group
                .offsets
                .iter()
                .filter(|(tp, c)| {
                    let base = emptied_at.unwrap_or(c.commit_timestamp);
                    base + retention_ms <= now && !in_flight.contains(tp)
                })
                .map(|(tp, _)| tp.clone())
                .collect();
            let remove = gone.len() == group.offsets.len() && group.pending_members.is_empty() && !busy;
            if !gone.is_empty() || remove {
                expired.push((group.group_id.clone(), gone, remove));
            }
        }
        expired.sort_by(|a, b| a.0.cmp(&b.0));
        let mut removed = Vec::new();
        for (id, gone, remove) in expired {
            self.open_deletion(&id, gone, remove);
            if remove {
                removed.push(id);
            }
        }
        removed
    }
}
