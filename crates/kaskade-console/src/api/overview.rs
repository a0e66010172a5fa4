//! `GET /api/overview`: brokers, disk usage per log directory, throughput.

use axum::Json;
use serde::Serialize;

use super::State;
use crate::error::ApiResult;
use crate::history::Throughput;
use crate::view::{self, LogDir};

#[derive(Serialize)]
pub struct Broker {
    id: i32,
    host: String,
    port: i32,
    rack: Option<String>,
    controller: bool,
    /// Known for the node serving the console; other nodes' are not carried
    /// by any Kafka API.
    version: Option<&'static str>,
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
    let me = kafka.broker().node_id().get();
    let brokers = brokers
        .into_iter()
        .map(|b| Broker {
            controller: b.id == controller,
            version: (b.id == me).then_some(env!("CARGO_PKG_VERSION")),
            uptime_ms: (b.id == me).then(|| console.started.elapsed().as_millis() as u64),
            id: b.id,
            host: b.host,
            port: b.port,
            rack: b.rack,
        })
        .collect();
    Ok(Json(Overview {
        cluster_id: kafka.broker().cluster_id().to_string(),
        brokers,
        partitions: topics.iter().map(|t| t.partitions.len()).sum(),
        topics: topics.len(),
        log_dirs: view::log_dirs(kafka).await?,
        throughput: console.history.throughput(),
        sample_interval_ms: console.options.sample_interval.as_millis() as u64,
    }))
}
