//! ISR shrink and expand on the leader (Kafka's `isr-expiration` task and
//! AlterPartition): every half `replica.lag.time.max.ms` the partitions
//! this node leads are asked for the ISR they want
//! (`Partition::isr_proposal`: lagging members out, caught-up replicas in),
//! and each change is written to the metadata log as a partition change
//! record, only if the image still has the leader epoch and partition
//! epoch it was decided on (optimistic concurrency, as the controller
//! checks AlterPartition's epochs). The change reaches the partition back
//! through the image (`Partition::apply`), which may move the HW.
//! Adding replicas of a reassignment are replicas like any other here: once
//! caught up they are proposed into the ISR, and the change that admits the
//! last of them also completes the reassignment
//! (`kaskade_meta::reassignment::isr_change`).
//!
//! A change that committed is counted as a shrink and/or expand
//! (`metrics::replication::ISR_CHANGES`, Kafka's `IsrShrinksPerSec` /
//! `IsrExpandsPerSec`), by this task only, so each change counts once, on
//! the leader that proposed it.
//!
//! Invariant: this task proposes only for partitions this node leads in
//! the image it read, and never writes a leader change.

use std::sync::Arc;
use std::time::Duration;

use kaskade_meta::{reassignment, MetaError};
use kaskade_types::NodeId;

use crate::broker::Broker;
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

/// Checks the ISRs of the partitions this node leads, forever.
pub(super) async fn run(broker: Arc<Broker>) {
    let lag = lag_max_ms(&broker);
    let period = Duration::from_millis((lag / 2).max(100) as u64);
    let me = broker.node_id();
    loop {
        tokio::select! {
            _ = broker.stopping() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let image = broker.topics.image();
        let mut changes = Vec::new();
        for t in image.topics() {
            for (i, p) in t.partitions.iter().enumerate() {
                if p.leader != Some(me) {
                    continue;
                }
                let Ok(partition) = broker.topics.partition(&t.name, i as i32) else { continue };
                if let Some((epoch, isr)) = partition.isr_proposal(lag) {
                    changes.push((t.id, t.name.clone(), i, epoch, p.partition_epoch, isr));
                }
            }
        }
        for (topic_id, name, index, epoch, partition_epoch, isr) in changes {
            let topics = broker.topics.clone();
            let wanted = isr.clone();
            let written = tokio::task::spawn_blocking(move || {
                topics.update(|img| -> Result<(Vec<_>, Option<Vec<NodeId>>), MetaError> {
                    let current = img.topic_by_id(&topic_id).and_then(|t| t.partitions.get(index));
                    match current {
                        Some(p) if p.leader_epoch == epoch && p.partition_epoch == partition_epoch => {
                            // The change completes a reassignment in progress
                            // when it admits the last adding replica.
                            // Nothing written (no change): nothing to count.
                            match reassignment::isr_change(img, topic_id, index as i32, p, wanted.clone()) {
                                Some(record) => Ok((vec![record], Some(p.isr.clone()))),
                                None => Ok((Vec::new(), None)),
                            }
                        }
                        // The image moved on: the next check decides again.
                        _ => Ok((Vec::new(), None)),
                    }
                })
            })
            .await;
            match written {
                Ok(Ok(Some(old))) => {
                    // Committed: counted once, here, by the leader that proposed it.
                    ISR_CHANGES.count(&old, &isr);
                    tracing::info!(topic = %name, partition = index,
                        isr = ?isr.iter().map(|n| n.get()).collect::<Vec<_>>(), "ISR changed")
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::warn!(topic = %name, partition = index, error = %e, "ISR change not written"),
                Err(e) => tracing::error!(error = %e, "the ISR change task failed"),
            }
        }
    }
}
