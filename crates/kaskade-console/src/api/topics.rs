//! Topics: list, create, delete, describe (partitions and configs), alter
//! configs. Creation, deletion and config changes are CreateTopics,
//! DeleteTopics and IncrementalAlterConfigs, so the broker's validation and
//! its error messages are the ones shown.

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::Json;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::*;
use serde::{Deserialize, Serialize};

use super::State;
use crate::error::{ApiResult, Body, ConsoleError};
use crate::kafka::{check, sb};
use crate::view::{self, PartitionInfo};

/// Timeout the console gives the broker for admin requests.
const ADMIN_TIMEOUT_MS: i32 = 30_000;

/// DescribeConfigs' and IncrementalAlterConfigs' resource type of a topic
/// (Kafka's `ConfigResource.Type.TOPIC`).
const RESOURCE_TOPIC: i8 = 2;

/// IncrementalAlterConfigs operations (Kafka's `AlterConfigOp.OpType`).
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// A value set on the topic itself (Kafka's `ConfigSource.DYNAMIC_TOPIC_CONFIG`).
const DYNAMIC_TOPIC_CONFIG: i8 = 1;

/// DescribeConfigs' sources (Kafka's `DescribeConfigsResponse.ConfigSource`).
fn source_name(source: i8) -> &'static str {
    match source {
        DYNAMIC_TOPIC_CONFIG => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

#[derive(Serialize)]
pub struct TopicRow {
    name: String,
    internal: bool,
    partitions: usize,
    replication_factor: usize,
    size_bytes: i64,
    records: i64,
    records_per_sec: Option<f64>,
}

pub async fn list(axum::extract::State(console): State) -> ApiResult<Vec<TopicRow>> {
    let kafka = &console.kafka;
    let topics = view::topics(kafka).await?;
    let ends = view::end_offsets(kafka, &topics).await?;
    let starts = view::start_offsets(kafka, &topics).await?;
    let sizes = view::leader_sizes(&topics, &view::log_dirs(kafka).await?);
    let rows = topics
        .iter()
        .map(|t| {
            let tps = || t.partitions.iter().map(|p| (t.name.clone(), p.partition));
            TopicRow {
                name: t.name.clone(),
                internal: t.internal,
                partitions: t.partitions.len(),
                replication_factor: t.partitions.first().map_or(0, |p| p.replicas.len()),
                size_bytes: tps().filter_map(|tp| sizes.get(&tp)).sum(),
                records: tps().map(|tp| ends.get(&tp).unwrap_or(&0) - starts.get(&tp).unwrap_or(&0)).sum(),
                records_per_sec: console.history.topic_rate(&t.name),
            }
        })
        .collect();
    Ok(Json(rows))
}

#[derive(Deserialize)]
pub struct NewTopic {
    name: String,
    /// -1 or absent: the broker's `num.partitions`.
    partitions: Option<i32>,
    /// -1 or absent: the broker's `default.replication.factor`.
    replication_factor: Option<i16>,
    #[serde(default)]
    configs: BTreeMap<String, String>,
}

/// The CreateTopics version the console sends (its broker's route table
/// serves it; v5+ answers the partitions and replication factor made).
const CREATE_TOPICS_VERSION: i16 = 7;

pub async fn create(axum::extract::State(console): State, new: Body<NewTopic>) -> ApiResult<serde_json::Value> {
    let Json(new) = new?;
    let topic = kaskade_client::admin::NewTopic {
        name: new.name.clone(),
        num_partitions: new.partitions.unwrap_or(-1),
        replication_factor: new.replication_factor.unwrap_or(-1),
        configs: new.configs,
    };
    let req = kaskade_client::admin::create_topics_request(&topic, CREATE_TOPICS_VERSION, ADMIN_TIMEOUT_MS);
    let resp = console.kafka.call(req, CREATE_TOPICS_VERSION).await?;
    let r =
        resp.topics.first().ok_or_else(|| ConsoleError::Internal("CreateTopics answered without the topic".into()))?;
    check(r.error_code, r.error_message.as_ref())?;
    Ok(Json(serde_json::json!({
        "name": new.name,
        "id": r.topic_id.to_string(),
        "partitions": r.num_partitions,
        "replication_factor": r.replication_factor,
    })))
}

pub async fn delete(axum::extract::State(console): State, Path(topic): Path<String>) -> ApiResult<serde_json::Value> {
    let req = DeleteTopicsRequest::default()
        .with_topics(vec![DeleteTopicState::default().with_name(Some(TopicName(sb(&topic))))])
        .with_timeout_ms(ADMIN_TIMEOUT_MS);
    let resp = console.kafka.call(req, 6).await?;
    let r = resp
        .responses
        .first()
        .ok_or_else(|| ConsoleError::Internal("DeleteTopics answered without the topic".into()))?;
    check(r.error_code, r.error_message.as_ref())?;
    Ok(Json(serde_json::json!({ "deleted": topic })))
}

#[derive(Serialize)]
pub struct PartitionRow {
    #[serde(flatten)]
    info: PartitionInfo,
    start_offset: Option<i64>,
    end_offset: Option<i64>,
}

#[derive(Serialize)]
pub struct ConfigRow {
    name: String,
    value: Option<String>,
    source: &'static str,
    /// Set on the topic itself (not inherited from the broker or defaults).
    is_override: bool,
    /// The value without the topic's override: the broker's synonym (as
    /// `key=value` when its key differs), `None` when the broker lists none.
    default_value: Option<String>,
    read_only: bool,
    sensitive: bool,
}

#[derive(Serialize)]
pub struct TopicDetail {
    name: String,
    id: String,
    internal: bool,
    partitions: Vec<PartitionRow>,
    configs: Vec<ConfigRow>,
}

async fn configs(console: &crate::Console, topic: &str) -> Result<Vec<ConfigRow>, ConsoleError> {
    let req = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(sb(topic))
            .with_configuration_keys(None)])
        .with_include_synonyms(true);
    let resp = console.kafka.call(req, 4).await?;
    let r = resp
        .results
        .into_iter()
        .next()
        .ok_or_else(|| ConsoleError::Internal("DescribeConfigs answered without the topic".into()))?;
    check(r.error_code, r.error_message.as_ref())?;
    let mut rows: Vec<ConfigRow> = r
        .configs
        .into_iter()
        .map(|c| {
            let is_override = c.config_source == DYNAMIC_TOPIC_CONFIG;
            let default_value = if is_override {
                // The broker's synonym may be another key (log.retention.hours
                // for retention.ms): name it then.
                c.synonyms.iter().find(|s| s.source != DYNAMIC_TOPIC_CONFIG).and_then(|s| {
                    s.value.as_ref().map(|v| if s.name == c.name { v.to_string() } else { format!("{}={v}", s.name) })
                })
            } else {
                c.value.as_ref().map(|v| v.to_string())
            };
            ConfigRow {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                source: source_name(c.config_source),
                is_override,
                default_value,
                read_only: c.read_only,
                sensitive: c.is_sensitive,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

pub async fn describe(axum::extract::State(console): State, Path(topic): Path<String>) -> ApiResult<TopicDetail> {
    let kafka = &console.kafka;
    let t = view::topic(kafka, &topic).await?;
    let one = std::slice::from_ref(&t);
    let ends = view::end_offsets(kafka, one).await?;
    let starts = view::start_offsets(kafka, one).await?;
    let configs = configs(&console, &topic).await?;
    let partitions = t
        .partitions
        .iter()
        .map(|p| {
            let tp = (t.name.clone(), p.partition);
            PartitionRow { info: p.clone(), start_offset: starts.get(&tp).copied(), end_offset: ends.get(&tp).copied() }
        })
        .collect();
    Ok(Json(TopicDetail { name: t.name, id: t.id, internal: t.internal, partitions, configs }))
}

#[derive(Deserialize)]
pub struct ConfigChange {
    #[serde(default)]
    set: BTreeMap<String, String>,
    /// Overrides to remove (back to the broker's value).
    #[serde(default)]
    delete: Vec<String>,
}

pub async fn alter_configs(
    axum::extract::State(console): State,
    Path(topic): Path<String>,
    change: Body<ConfigChange>,
) -> ApiResult<serde_json::Value> {
    let Json(change) = change?;
    if change.set.is_empty() && change.delete.is_empty() {
        return Err(ConsoleError::BadRequest("no config to set or delete".into()));
    }
    let ops = change
        .set
        .iter()
        .map(|(k, v)| AlterableConfig::default().with_name(sb(k)).with_config_operation(OP_SET).with_value(Some(sb(v))))
        .chain(
            change.delete.iter().map(|k| AlterableConfig::default().with_name(sb(k)).with_config_operation(OP_DELETE)),
        )
        .collect();
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(RESOURCE_TOPIC)
        .with_resource_name(sb(&topic))
        .with_configs(ops)]);
    let resp = console.kafka.call(req, 1).await?;
    let r = resp
        .responses
        .first()
        .ok_or_else(|| ConsoleError::Internal("IncrementalAlterConfigs answered without the topic".into()))?;
    check(r.error_code, r.error_message.as_ref())?;
    Ok(Json(serde_json::json!({ "altered": topic })))
}
