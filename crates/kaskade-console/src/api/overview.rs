//! `GET /api/overview`: brokers, disk usage per log directory, throughput.
//!
//! Every broker's version and uptime come from its registration in this
//! node's metadata image (the `process` its `RegisterBroker` record
//! carries): no Kafka API tells another broker's, and the image is the
//! cluster's own record of who registered, replicated to every node. A
//! node of its own (no quorum, no registration) shows its own; a broker
//! whose registration predates the field shows none.

use std::collections::BTreeMap;

use axum::Json;
use kaskade_meta::{BrokerProcess, BrokerRegistration};
use kaskade_types::{Clock, NodeId, SystemClock};
use serde::Serialize;

use super::State;
use crate::error::ApiResult;
use crate::history::Throughput;
use crate::view::{self, BrokerInfo, LogDir};

#[derive(Debug, PartialEq, Serialize)]
pub struct Broker {
    id: i32,
    host: String,
    port: i32,
    rack: Option<String>,
    controller: bool,
    version: Option<String>,
    /// Now minus its start time (0 if its clock is ahead of this node's).
    uptime_ms: Option<u64>,
}

#[derive(Serialize)]
pub struct Overview {
    cluster_id: String,
    brokers: Vec<Broker>,
    topics: usize,
    partitions: usize,
    log_dirs: Vec<LogDir>,
    throughput: Vec<Throughput>,
    sample_interval_ms: u64,
}

pub async fn get(axum::extract::State(console): State) -> ApiResult<Overview> {
    let kafka = &console.kafka;
    let (brokers, controller, topics) = view::metadata(kafka, None).await?;
    let broker = kafka.broker();
    let image = broker.topics.image();
    let me = (broker.node_id().get(), broker.process());
    let brokers = broker_rows(brokers, controller, image.brokers(), &me, SystemClock.now_ms());
    Ok(Json(Overview {
        cluster_id: broker.cluster_id().to_string(),
        brokers,
        partitions: topics.iter().map(|t| t.partitions.len()).sum(),
        topics: topics.len(),
        log_dirs: view::log_dirs(kafka).await?,
        throughput: console.history.throughput(),
        sample_interval_ms: console.options.sample_interval.as_millis() as u64,
    }))
}

/// The brokers Metadata listed, each with the version and uptime its
/// registration carries (`me`'s own when it has no registration).
pub fn broker_rows(
    brokers: Vec<BrokerInfo>,
    controller: i32,
    registered: &BTreeMap<NodeId, BrokerRegistration>,
    me: &(i32, BrokerProcess),
    now_ms: i64,
) -> Vec<Broker> {
    brokers
        .into_iter()
        .map(|b| {
            let process = match registered.get(&NodeId(b.id)) {
                Some(r) => r.process.as_ref(),
                None => (b.id == me.0).then_some(&me.1),
            };
            Broker {
                controller: b.id == controller,
                version: process.map(|p| p.version.clone()),
                uptime_ms: process.map(|p| u64::try_from(now_ms.saturating_sub(p.start_time_ms)).unwrap_or(0)),
                id: b.id,
                host: b.host,
                port: b.port,
                rack: b.rack,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use kaskade_meta::Uuid;

    use super::*;

    fn listed(id: i32) -> BrokerInfo {
        BrokerInfo { id, host: format!("h{id}"), port: 9092, rack: None }
    }

    fn registration(id: i32, process: Option<BrokerProcess>) -> (NodeId, BrokerRegistration) {
        let r = BrokerRegistration {
            id: NodeId(id),
            incarnation_id: Uuid::new_v4(),
            endpoints: vec![],
            rack: None,
            fenced: false,
            process,
        };
        (NodeId(id), r)
    }

    fn process(version: &str, start_time_ms: i64) -> BrokerProcess {
        BrokerProcess { version: version.into(), start_time_ms }
    }

    #[test]
    fn every_registered_broker_shows_its_version_and_uptime() {
        let registered = BTreeMap::from([
            registration(1, Some(process("1.0.0", 10_000))),
            registration(2, Some(process("1.1.0", 25_000))),
            // Registered by a broker older than the field.
            registration(3, None),
            // Its clock runs ahead of this node's: no negative uptime.
            registration(4, Some(process("1.1.0", 40_000))),
        ]);
        let me = (1, process("1.1.0", 5_000));
        let rows = broker_rows((1..=4).map(listed).collect(), 2, &registered, &me, 30_000);
        let got: Vec<_> = rows.iter().map(|b| (b.id, b.version.as_deref(), b.uptime_ms, b.controller)).collect();
        assert_eq!(
            got,
            vec![
                (1, Some("1.0.0"), Some(20_000), false),
                (2, Some("1.1.0"), Some(5_000), true),
                (3, None, None, false),
                (4, Some("1.1.0"), Some(0), false),
            ],
            "the registration's word, even for this node"
        );
    }

    #[test]
    fn a_node_of_its_own_shows_its_own_and_an_unregistered_other_shows_none() {
        let me = (1, process("1.1.0", 5_000));
        let rows = broker_rows(vec![listed(1), listed(2)], 1, &BTreeMap::new(), &me, 30_000);
        assert_eq!((rows[0].version.as_deref(), rows[0].uptime_ms), (Some("1.1.0"), Some(25_000)));
        assert_eq!((rows[1].version.as_deref(), rows[1].uptime_ms), (None, None));
        assert_eq!((rows[0].host.as_str(), rows[0].port), ("h1", 9092));
    }
}
