//! Follower replication: the replica fetchers (Kafka's
//! `ReplicaFetcherManager` and `ReplicaFetcherThread`).
//!
//! For every partition the metadata image places on this node and has
//! another node lead, this node fetches from that leader as a follower:
//! one fetcher task per source broker carries all the partitions this node
//! follows from it (Kafka's `num.replica.fetchers`=1 default). After every
//! image this node applies, [`ReplicaFetchers::reconcile`] works out what
//! each leader should be fetched for and hands each fetcher its new
//! [`Assignment`]: fetchers start for new leaders, stop when nothing is left
//! to follow from their leader, and a partition whose leader moved leaves
//! one fetcher for another. Leadership changes reach this module only
//! through the image; it never writes elections.
//!
//! `fetcher` is the task: see its module doc for the fetch loop, the
//! durable-mode rule (a follower reports only what it has fsynced) and the
//! truncation on a new leader epoch (`truncation` decides where, from the
//! leader's OffsetForLeaderEpoch answer). `isr` is the leader's side: it shrinks
//! and expands the ISRs of the partitions this node leads through the
//! metadata log. `selector` decides, on the leader, which in-sync replica a
//! consumer should fetch from (KIP-392, `replica.selector.class`).
//!
//! Invariant: a partition is in at most one fetcher's assignment, the one of
//! the leader the latest reconciled image names, and never when this node
//! leads it.

mod fetcher;
mod isr;
pub mod selector;
#[cfg(test)]
mod sim;
pub mod throttle;
mod truncation;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kaskade_meta::Image;
use kaskade_types::{LeaderEpoch, NodeId, TopicPartition};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::broker::Broker;
use crate::partition::Partition;

/// One partition this node follows.
#[derive(Clone, Debug)]
pub struct Followed {
    pub partition: Arc<Partition>,
    pub topic_id: uuid::Uuid,
    /// The leader epoch the image gives it: sent as `current_leader_epoch`;
    /// a new one means a new leader or a new term, so truncate first.
    pub leader_epoch: LeaderEpoch,
}

impl PartialEq for Followed {
    fn eq(&self, other: &Followed) -> bool {
        Arc::ptr_eq(&self.partition, &other.partition)
            && self.topic_id == other.topic_id
            && self.leader_epoch == other.leader_epoch
    }
}

/// What one fetcher fetches: its leader's address and the partitions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Assignment {
    /// `host:port` of the leader's registered endpoint.
    pub leader_addr: String,
    pub partitions: BTreeMap<TopicPartition, Followed>,
}

struct Fetcher {
    assignment: watch::Sender<Assignment>,
    task: JoinHandle<()>,
}

/// This node's fetchers, by the leader they fetch from.
pub struct ReplicaFetchers {
    broker: Arc<Broker>,
    fetchers: Mutex<HashMap<NodeId, Fetcher>>,
    /// The ISR checker of the partitions this node leads.
    isr: JoinHandle<()>,
}

impl ReplicaFetchers {
    pub fn new(broker: Arc<Broker>) -> Arc<ReplicaFetchers> {
        let isr = tokio::spawn(isr::run(broker.clone()));
        Arc::new(ReplicaFetchers { broker, fetchers: Mutex::new(HashMap::new()), isr })
    }

    /// Brings the fetchers to `image`: what it makes this node follow, from
    /// which leader. Partitions not hosted here yet are left for the image
    /// that creates them.
    pub fn reconcile(&self, image: &Image) {
        let listener = &self.broker.config.kraft.inter_broker_listener_name;
        let wanted =
            assignments(self.broker.node_id(), image, listener, |topic, p| self.broker.topics.partition(topic, p).ok());
        let mut fetchers = self.fetchers.lock();
        fetchers.retain(|leader, f| {
            let keep = wanted.contains_key(leader) && !f.task.is_finished();
            if !keep {
                // An empty assignment ends the task after its current fetch.
                f.assignment.send_replace(Assignment::default());
            }
            keep
        });
        for (leader, assignment) in wanted {
            match fetchers.get(&leader) {
                Some(f) => {
                    f.assignment.send_if_modified(|a| {
                        let changed = *a != assignment;
                        if changed {
                            *a = assignment.clone();
                        }
                        changed
                    });
                }
                None => {
                    tracing::info!(leader = leader.get(), partitions = assignment.partitions.len(),
                        addr = %assignment.leader_addr, "starting a replica fetcher");
                    let (tx, rx) = watch::channel(assignment);
                    let task = tokio::spawn(fetcher::run(self.broker.clone(), leader, rx));
                    fetchers.insert(leader, Fetcher { assignment: tx, task });
                }
            }
        }
    }

    /// Ends every fetcher (shutdown).
    pub fn stop(&self) {
        self.isr.abort();
        for (_, f) in self.fetchers.lock().drain() {
            f.task.abort();
        }
    }
}

/// What `node` follows in `image`, by leader: every partition with `node`
/// among its replicas, a leader other than `node` with a registered
/// endpoint (on the inter-broker `listener`), and a local replica (`hosted`).
fn assignments(
    node: NodeId,
    image: &Image,
    listener: &str,
    hosted: impl Fn(&str, i32) -> Option<Arc<Partition>>,
) -> HashMap<NodeId, Assignment> {
    let mut wanted: HashMap<NodeId, Assignment> = HashMap::new();
    for t in image.topics() {
        for (i, p) in t.partitions.iter().enumerate() {
            let Some(leader) = p.leader else { continue };
            if leader == node || !p.replicas.contains(&node) {
                continue;
            }
            let Some(addr) = image
                .brokers()
                .get(&leader)
                .and_then(|b| crate::inter_broker::endpoint(b, listener))
                .map(|e| format!("{}:{}", e.host, e.port))
            else {
                continue;
            };
            let Some(partition) = hosted(&t.name, i as i32) else { continue };
            let a = wanted.entry(leader).or_insert_with(|| Assignment { leader_addr: addr, ..Assignment::default() });
            a.partitions.insert(
                TopicPartition::new(t.name.as_str(), i as i32),
                Followed { partition, topic_id: t.id, leader_epoch: p.leader_epoch },
            );
        }
    }
    wanted
}
