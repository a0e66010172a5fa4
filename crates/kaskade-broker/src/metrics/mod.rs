//! The broker's metrics in Prometheus' text exposition format (0.0.4), for
//! the HTTP listener's `/metrics`. `docs/metrics.md` lists every metric and
//! the Kafka JMX metric it corresponds to.
//!
//! Except the request and traffic counters (atomics), everything here is
//! read at scrape time from state the broker keeps anyway (the logs, the
//! group coordinator, `/proc`), so serving clients pays nothing for it.
//! Rendering walks every partition and waits for the group coordinator:
//! call [`NodeMetrics::render`] from a blocking thread.
//!
//! Files: `text` (the exposition format), `logs` (per-partition gauges),
//! `groups` (consumer group lag, state, members), `process` (open files),
//! `requests` (per-API request counts and latency, counted on the hot path),
//! `errors` (responses per API and error code, counted on the hot path),
//! `acks` (the acks=all wait of Produce requests),
//! `traffic` (bytes and records in and out per partition, counted on the
//! hot path), `connections` (open and accepted client connections),
//! `replication` (under-replicated, under/at min ISR, offline, leader and
//! partition counts from the image; ISR change counters the ISR task adds
//! to; the controller's unclean elections; follower lag the replica fetchers record).

pub mod acks;
pub mod connections;
mod errors;
mod groups;
mod logs;
pub mod process;
pub mod replication;
pub mod requests;
mod text;
pub mod traffic;

use std::sync::Arc;

use crate::Broker;

pub use text::Exposition;

/// The metrics of a running broker; see the module docs.
pub struct NodeMetrics {
    broker: Arc<Broker>,
    /// The broker's runtime: group state is read through its coordinator
    /// task, waited for from the (blocking) rendering thread.
    runtime: tokio::runtime::Handle,
}

impl NodeMetrics {
    /// Metrics of `broker`, whose tasks run on `runtime`.
    pub fn new(broker: Arc<Broker>, runtime: tokio::runtime::Handle) -> Self {
        NodeMetrics { broker, runtime }
    }

    /// Appends every broker metric to `out`. Blocks: see the module docs.
    pub fn render(&self, out: &mut String) {
        let mut x = Exposition::new(out);
        x.family("kaskade_broker_info", "gauge", "Constant 1, labelled with the node's identity.");
        let node = self.broker.node_id().to_string();
        x.sample(
            "kaskade_broker_info",
            &[("node_id", &node), ("cluster_id", self.broker.cluster_id()), ("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        let logs = self.broker.topics.logs().all();
        // Nine families per partition share its labels: escaped once.
        let labels: Vec<text::Labels> = logs
            .iter()
            .map(|l| {
                let tp = l.topic_partition();
                text::Labels::new(&[("topic", &tp.topic), ("partition", &tp.partition.to_string())])
            })
            .collect();
        logs::render(&mut x, &logs, &labels);
        traffic::render(&mut x, &logs, &labels);
        groups::render(&mut x, &self.broker, &self.runtime, &logs);
        let topics = &self.broker.topics;
        let min_isr = |t: &kaskade_meta::TopicImage| topics.log_config(&t.configs).min_insync_replicas;
        let follower_lag = |t: &str, p: i32| topics.partition(t, p).ok().and_then(|p| p.follower_lag());
        let sources = replication::Sources {
            min_isr: &min_isr,
            follower_lag: &follower_lag,
            isr_changes: &replication::ISR_CHANGES,
            unclean_elections: &kaskade_meta::leader_election::UNCLEAN_ELECTIONS,
        };
        replication::render(&mut x, &topics.image(), self.broker.node_id(), &sources);
        requests::render(&mut x);
        errors::render(&mut x);
        acks::render(&mut x);
        requests::render_fsync(&mut x);
        connections::render(&mut x);
    }
}
