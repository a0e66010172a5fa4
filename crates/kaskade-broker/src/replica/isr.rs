//! ISR shrink and expand on the leader (Kafka's `isr-expiration` task and
//! `AlterPartitionManager`): every half `replica.lag.time.max.ms` the
//! partitions this node leads are asked for the ISR they want
//! (`Partition::isr_proposal`: lagging members out, caught-up replicas in,
//! a replica the image has fenced or unregistered never in), and the
//! changes go in one AlterPartition (56, v3: each member with its broker
//! epoch as this node's image has its registration, where Kafka's leader
//! takes the epoch the follower's Fetch carried; the request's own epoch
//! too) through the broker's controller channel to the active controller,
//! which checks the leader and partition epochs they were decided at and
//! writes each accepted one as a partition change record
//! (`api::alter_partition`). The change reaches the partition back through
//! the image (`Partition::apply`), which may move the HW; a refused or
//! unanswered change is decided again at the next check. A lone node (no
//! controller channel) is its own controller and writes the record itself,
//! only if its image still has the epochs the change was decided at.
//! Adding replicas of a reassignment are replicas like any other here: once
//! caught up they are proposed into the ISR, and the change that admits the
//! last of them also completes the reassignment
//! (`kaskade_meta::reassignment::isr_change`, on the controller).
//!
//! A change that committed is counted as a shrink and/or expand
//! (`metrics::replication::ISR_CHANGES`, Kafka's `IsrShrinksPerSec` /
//! `IsrExpandsPerSec`), by this task only, so each change counts once, on
//! the leader that proposed it.
//!
//! Invariant: this task proposes only for partitions this node leads in
//! the image it read, and asks for no leader change (completing a
//! reassignment may move the leadership: NEW_LEADER_ELECTED).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_request::{BrokerState, PartitionData, TopicData};
use kafka_protocol::messages::{AlterPartitionRequest, AlterPartitionResponse, BrokerId};
use kaskade_meta::{reassignment, MetaError, Uuid};
use kaskade_types::{LeaderEpoch, NodeId};

use crate::api::broker_registration::broker_epoch;
use crate::broker::Broker;
use crate::cluster::controller_channel::ControllerChannel;
use crate::metrics::replication::ISR_CHANGES;

/// Kafka's `replica.lag.time.max.ms` default.
const DEFAULT_LAG_MAX_MS: i64 = 30_000;

/// `replica.lag.time.max.ms` as configured.
pub(super) fn lag_max_ms(broker: &Broker) -> i64 {
    broker
        .config
        .value_of("replica.lag.time.max.ms")
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| *v > 0)
        .unwrap_or(DEFAULT_LAG_MAX_MS)
}

/// One ISR change this leader wants: the partition, the leader and
/// partition epochs it was decided at, the ISR in the image then and the
/// ISR wanted.
struct Change {
    topic_id: Uuid,
    name: String,
    index: usize,
    epoch: LeaderEpoch,
    partition_epoch: i32,
    old: Vec<NodeId>,
    isr: Vec<NodeId>,
}

/// Checks the ISRs of the partitions this node leads, forever.
pub(super) async fn run(broker: Arc<Broker>) {
    let lag = lag_max_ms(&broker);
    let period = Duration::from_millis((lag / 2).max(100) as u64);
    loop {
        tokio::select! {
            _ = broker.stopping() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let changes = wanted(&broker, lag);
        if changes.is_empty() {
            continue;
        }
        match broker.forwarding() {
            Some(channel) => alter_partition(&broker, channel, changes, period.max(MIN_REQUEST_BOUND)).await,
            None => write_locally(&broker, changes).await,
        }
    }
}

/// The ISR changes wanted for the partitions this node leads in its image.
/// A replica joins only if the image has it registered and unfenced, as
/// Kafka's leader admits only ISR-eligible replicas: the controller would
/// refuse the whole change (INELIGIBLE_REPLICA), a shrink with it.
fn wanted(broker: &Broker, lag: i64) -> Vec<Change> {
    let me = broker.node_id();
    let image = broker.topics.image();
    let standalone = image.brokers().is_empty();
    let mut changes = Vec::new();
    for t in image.topics() {
        for (i, p) in t.partitions.iter().enumerate() {
            if p.leader != Some(me) {
                continue;
            }
            let Ok(partition) = broker.topics.partition(&t.name, i as i32) else { continue };
            let Some((epoch, mut isr)) = partition.isr_proposal(lag) else { continue };
            isr.retain(|r| p.isr.contains(r) || standalone || image.is_unfenced(*r));
            if isr != p.isr {
                changes.push(Change {
                    topic_id: t.id,
                    name: t.name.clone(),
                    index: i,
                    epoch,
                    partition_epoch: p.partition_epoch,
                    old: p.isr.clone(),
                    isr,
                });
            }
        }
    }
    changes
}

/// The shortest bound on one AlterPartition round trip.
const MIN_REQUEST_BOUND: Duration = Duration::from_secs(5);

/// Sends `changes` in one AlterPartition to the active controller (a node
/// of a multi-node cluster), and counts those it wrote. The changes reach
/// the partitions through this node's image, as every metadata change does.
async fn alter_partition(broker: &Broker, channel: &ControllerChannel, changes: Vec<Change>, within: Duration) {
    let image = broker.topics.image();
    let epoch_of = |n: NodeId| image.brokers().get(&n).map_or(-1, |b| broker_epoch(b.incarnation_id));
    let request = request(broker.node_id(), epoch_of, &changes);
    let answer = match channel.request(&request, within, |r: &AlterPartitionResponse| r.error_code).await {
        Ok(answer) if answer.error_code == 0 => answer,
        Ok(answer) => {
            // STALE_BROKER_EPOCH until this node's image holds its registration.
            tracing::debug!(code = answer.error_code, "AlterPartition refused; the next check asks again");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "AlterPartition not answered; the next check asks again");
            return;
        }
    };
    for c in &changes {
        let answered = answer
            .topics
            .iter()
            .filter(|t| t.topic_id == c.topic_id)
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == c.index as i32);
        let Some(p) = answered else { continue };
        // Written: a new partition epoch, or NEW_LEADER_ELECTED (the change
        // completed a reassignment that moved the leadership).
        let written = (p.error_code == 0 && p.partition_epoch > c.partition_epoch)
            || p.error_code == ResponseError::NewLeaderElected.code();
        if written {
            committed(c);
        } else if p.error_code != 0 {
            tracing::debug!(topic = %c.name, partition = c.index, code = p.error_code,
                "ISR change refused; the next check decides again");
        }
    }
}

/// The AlterPartition of `changes` from broker `me`, each broker at the
/// epoch `epoch_of` gives it. At v3 only: the ISR goes in
/// `new_isr_with_epochs` (v2's `new_isr` may not be set at v3).
fn request(me: NodeId, epoch_of: impl Fn(NodeId) -> i64, changes: &[Change]) -> AlterPartitionRequest {
    let mut topics: Vec<TopicData> = Vec::new();
    for c in changes {
        let members = c
            .isr
            .iter()
            .map(|n| BrokerState::default().with_broker_id(BrokerId(n.get())).with_broker_epoch(epoch_of(*n)));
        let partition = PartitionData::default()
            .with_partition_index(c.index as i32)
            .with_leader_epoch(c.epoch.get())
            .with_partition_epoch(c.partition_epoch)
            .with_new_isr_with_epochs(members.collect());
        match topics.iter_mut().find(|t| t.topic_id == c.topic_id) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(TopicData::default().with_topic_id(c.topic_id).with_partitions(vec![partition])),
        }
    }
    AlterPartitionRequest::default()
        .with_broker_id(BrokerId(me.get()))
        .with_broker_epoch(epoch_of(me))
        .with_topics(topics)
}

/// Counted once, here, by the leader that proposed it.
fn committed(c: &Change) {
    ISR_CHANGES.count(&c.old, &c.isr);
    tracing::info!(topic = %c.name, partition = c.index,
        isr = ?c.isr.iter().map(|n| n.get()).collect::<Vec<_>>(), "ISR changed");
}

/// A lone node is its own controller: it writes `changes` itself, each
/// only if the image still has the epochs it was decided at.
async fn write_locally(broker: &Broker, changes: Vec<Change>) {
    for c in changes {
        let topics = broker.topics.clone();
        let (topic_id, index, epoch, partition_epoch, wanted) =
            (c.topic_id, c.index, c.epoch, c.partition_epoch, c.isr.clone());
        let written = tokio::task::spawn_blocking(move || {
            topics.update(|img| -> Result<(Vec<_>, bool), MetaError> {
                let current = img.topic_by_id(&topic_id).and_then(|t| t.partitions.get(index));
                match current {
                    Some(p) if p.leader_epoch == epoch && p.partition_epoch == partition_epoch => {
                        // The change completes a reassignment in progress
                        // when it admits the last adding replica.
                        match reassignment::isr_change(img, topic_id, index as i32, p, wanted.clone()) {
                            Some(record) => Ok((vec![record], true)),
                            None => Ok((Vec::new(), false)),
                        }
                    }
                    // The image moved on: the next check decides again.
                    _ => Ok((Vec::new(), false)),
                }
            })
        })
        .await;
        match written {
            Ok(Ok(true)) => committed(&c),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::warn!(topic = %c.name, partition = c.index, error = %e, "ISR change not written"),
            Err(e) => tracing::error!(error = %e, "the ISR change task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::protocol::Encodable;

    use super::*;

    fn change(topic_id: Uuid, index: usize, isr: &[i32]) -> Change {
        Change {
            topic_id,
            name: "t".into(),
            index,
            epoch: LeaderEpoch(4),
            partition_epoch: 9,
            old: vec![NodeId(1)],
            isr: isr.iter().copied().map(NodeId).collect(),
        }
    }

    #[test]
    fn the_request_groups_partitions_by_topic_and_encodes_at_v3() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let changes = [change(a, 0, &[1, 2]), change(b, 0, &[1]), change(a, 2, &[1, 3])];
        let req = request(NodeId(1), |n| i64::from(n.get()) * 10, &changes);
        assert_eq!((req.broker_id, req.broker_epoch), (BrokerId(1), 10));
        assert_eq!(req.topics.len(), 2);
        let first = &req.topics[0];
        assert_eq!(first.topic_id, a);
        assert_eq!(first.partitions.iter().map(|p| p.partition_index).collect::<Vec<_>>(), vec![0, 2]);
        let members: Vec<(i32, i64)> =
            first.partitions[1].new_isr_with_epochs.iter().map(|m| (m.broker_id.0, m.broker_epoch)).collect();
        assert_eq!(members, vec![(1, 10), (3, 30)]);
        assert_eq!((first.partitions[1].leader_epoch, first.partitions[1].partition_epoch), (4, 9));
        let mut buf = bytes::BytesMut::new();
        req.encode(&mut buf, 3).expect("encodes at v3");
    }
}
