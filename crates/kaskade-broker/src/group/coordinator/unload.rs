//! Unloading the groups of an `__consumer_offsets` partition this
//! coordinator stops leading (Kafka's `onResignation` /
//! `onGroupUnloaded`): they are served elsewhere from now on.

use kafka_protocol::error::ResponseError;

use super::GroupCoordinator;
use crate::group::records::partition_for;
use crate::group::types::{JoinResponse, Reply, SyncResponse};

impl GroupCoordinator {
    /// Drops every group stored on `partition` (of `partitions`) and the
    /// pending transactional offsets of those groups; parked JoinGroup and
    /// SyncGroup requests of their members answer NOT_COORDINATOR, so the
    /// clients look for the new coordinator. Groups of other partitions are
    /// untouched. Returns the groups dropped.
    pub fn unload_partition(&mut self, partition: i32, partitions: i32) -> Vec<String> {
        let on_partition = |group_id: &str| partition_for(group_id, partitions) == partition;
        let mut ids: Vec<String> = self.groups.keys().filter(|id| on_partition(id)).cloned().collect();
        ids.sort();
        for id in &ids {
            let removed = self.groups.remove(id);
            self.reindex(id);
            let Some(group) = removed else { continue };
            for member in group.members.values() {
                if let Some(token) = member.join_token {
                    let reply = JoinResponse::error(ResponseError::NotCoordinator, &member.member_id);
                    self.complete(token, Reply::Join(reply));
                }
                if let Some(token) = member.sync_token {
                    self.complete(token, Reply::Sync(SyncResponse::error(ResponseError::NotCoordinator)));
                }
            }
        }
        for changes in self.pending_txn_offsets.values_mut() {
            changes.retain(|c| !on_partition(&c.group_id));
        }
        self.pending_txn_offsets.retain(|_, changes| !changes.is_empty());
        // The new leader's log decides what they wrote.
        self.drop_writes_of_partition(partition, partitions);
        debug_assert!(self.groups.keys().all(|id| !on_partition(id)), "no group of an unloaded partition stays");
        ids
    }
}
