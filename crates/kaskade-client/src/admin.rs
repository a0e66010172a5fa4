//! Topic administration: CreateTopics, DeleteTopics, CreatePartitions,
//! DescribeConfigs, IncrementalAlterConfigs. Sent to the controller that
//! Metadata names (in KRaft mode any broker, which forwards), retried
//! once on NOT_CONTROLLER. [`create_topics_request`] is the one builder
//! of a CreateTopics request, shared with the web console (which sends it
//! through its broker's route table instead of a connection).

use std::collections::BTreeMap;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::cluster::Client;
use crate::error::{ClientError, KafkaError, Outcome, Result};

/// Admin request timeout sent to the broker.
pub const TIMEOUT_MS: i32 = 30_000;
/// ConfigResource type of a topic.
pub const RESOURCE_TOPIC: i8 = 2;
/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// One change of IncrementalAlterConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    /// Set `name` to `value`.
    Set { name: String, value: String },
    /// Remove `name`'s override (back to its default).
    Delete { name: String },
}

impl ConfigOp {
    fn alterable(&self) -> AlterableConfig {
        match self {
            ConfigOp::Set { name, value } => {
                AlterableConfig::default().with_name(sb(name)).with_config_operation(OP_SET).with_value(Some(sb(value)))
            }
            ConfigOp::Delete { name } => {
                AlterableConfig::default().with_name(sb(name)).with_config_operation(OP_DELETE).with_value(None)
            }
        }
    }
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn tn(s: &str) -> TopicName {
    TopicName(sb(s))
}

fn not_controller(code: i16) -> bool {
    code == ResponseError::NotController.code()
}

fn not_mentioned(context: &str) -> ClientError {
    ClientError::Protocol(format!("{context}: the broker's response does not mention the topic"))
}

/// A broker's per-resource answer as a result.
fn answered(code: i16, message: Option<&StrBytes>, context: &str) -> Result<(), KafkaError> {
    match KafkaError::from_code(code, message.map(|m| m.to_string()), context) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A topic to create; -1 partitions / replication factor mean the
/// broker's defaults (`num.partitions`, `default.replication.factor`).
#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// Topic config overrides by name (Kafka's `NewTopic.configs()`: a name
    /// given twice keeps its last value, as `kafka-topics.sh --config`).
    pub configs: BTreeMap<String, String>,
}

/// The CreateTopics request creating `topic` at `version`, asking the
/// broker to wait up to `timeout_ms`. Before v4, which brought the
/// broker defaults (-1), an unset partition count or replication factor
/// is sent as 1.
pub fn create_topics_request(topic: &NewTopic, version: i16, timeout_ms: i32) -> CreateTopicsRequest {
    let (mut partitions, mut rf) = (topic.num_partitions, topic.replication_factor);
    if version < 4 {
        partitions = if partitions < 0 { 1 } else { partitions };
        rf = if rf < 0 { 1 } else { rf };
    }
    let configs =
        topic.configs.iter().map(|(k, v)| CreatableTopicConfig::default().with_name(sb(k)).with_value(Some(sb(v))));
    let creatable = CreatableTopic::default()
        .with_name(tn(&topic.name))
        .with_num_partitions(partitions)
        .with_replication_factor(rf)
        .with_configs(configs.collect());
    CreateTopicsRequest::default().with_timeout_ms(timeout_ms).with_topics(vec![creatable])
}

/// What CreateTopics reported for a created topic (fields the broker's
/// version does not carry are -1 / nil).
#[derive(Debug, Clone)]
pub struct CreatedTopic {
    pub name: String,
    pub topic_id: Uuid,
    pub num_partitions: i32,
    pub replication_factor: i16,
}

/// Create one topic. `Err` holds a `KafkaError` when the broker refused.
pub async fn create_topic(client: &Client, topic: &NewTopic) -> Result<CreatedTopic> {
    let context = format!("creating topic '{}'", topic.name);
    for attempt in 0..2 {
        let conn = client.admin_connection().await?;
        let version = conn.version::<CreateTopicsRequest>()?;
        let req = create_topics_request(topic, version, TIMEOUT_MS);
        let resp = conn.send(&req, version).await?;
        let r = resp.topics.iter().find(|t| t.name.0.as_str() == topic.name).ok_or_else(|| not_mentioned(&context))?;
        if not_controller(r.error_code) && attempt == 0 {
            client.forget_controller();
            continue;
        }
        answered(r.error_code, r.error_message.as_ref(), &context)?;
        return Ok(CreatedTopic {
            name: topic.name.clone(),
            topic_id: r.topic_id,
            num_partitions: if version >= 5 { r.num_partitions } else { -1 },
            replication_factor: if version >= 5 { r.replication_factor } else { -1 },
        });
    }
    Err(KafkaError::new(ResponseError::NotController, None, context).into())
}

/// Delete topics by name; one outcome per name.
pub async fn delete_topics(client: &Client, names: &[String]) -> Result<Vec<Outcome<()>>> {
    let mut pending: Vec<String> = names.to_vec();
    let mut out = Vec::new();
    for attempt in 0..2 {
        let conn = client.admin_connection().await?;
        let version = conn.version::<DeleteTopicsRequest>()?;
        let mut req = DeleteTopicsRequest::default().with_timeout_ms(TIMEOUT_MS);
        if version >= 6 {
            req.topics = pending.iter().map(|n| DeleteTopicState::default().with_name(Some(tn(n)))).collect();
        } else {
            req.topic_names = pending.iter().map(|n| tn(n)).collect();
        }
        let resp = conn.send(&req, version).await?;
        let mut retry = Vec::new();
        for name in pending.drain(..) {
            let r = resp.responses.iter().find(|r| r.name.as_ref().map(|n| n.0.as_str()) == Some(name.as_str()));
            let context = format!("deleting topic '{name}'");
            let outcome = match r {
                None => Err(KafkaError::new(
                    ResponseError::UnknownServerError,
                    Some("the broker's response does not mention the topic".into()),
                    context,
                )),
                Some(r) if not_controller(r.error_code) && attempt == 0 => {
                    retry.push(name);
                    continue;
                }
                Some(r) => answered(r.error_code, r.error_message.as_ref(), &context),
            };
            out.push(Outcome { name, result: outcome });
        }
        if retry.is_empty() {
            break;
        }
        client.forget_controller();
        pending = retry;
    }
    Ok(out)
}

/// Grow a topic to `count` partitions in total.
pub async fn create_partitions(client: &Client, name: &str, count: i32) -> Result<()> {
    let context = format!("adding partitions to topic '{name}'");
    for attempt in 0..2 {
        let conn = client.admin_connection().await?;
        let version = conn.version::<CreatePartitionsRequest>()?;
        let req = CreatePartitionsRequest::default().with_timeout_ms(TIMEOUT_MS).with_topics(vec![
            CreatePartitionsTopic::default().with_name(tn(name)).with_count(count).with_assignments(None),
        ]);
        let resp = conn.send(&req, version).await?;
        let r = resp.results.iter().find(|r| r.name.0.as_str() == name).ok_or_else(|| not_mentioned(&context))?;
        if not_controller(r.error_code) && attempt == 0 {
            client.forget_controller();
            continue;
        }
        answered(r.error_code, r.error_message.as_ref(), &context)?;
        return Ok(());
    }
    Err(KafkaError::new(ResponseError::NotController, None, context).into())
}

/// One config of a resource, as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    /// Kafka's ConfigSource: 1 DYNAMIC_TOPIC_CONFIG, 2 DYNAMIC_BROKER_CONFIG,
    /// 3 DYNAMIC_DEFAULT_BROKER_CONFIG, 4 STATIC_BROKER_CONFIG,
    /// 5 DEFAULT_CONFIG, 6 DYNAMIC_BROKER_LOGGER_CONFIG, ...
    pub source: i8,
    pub read_only: bool,
    pub is_sensitive: bool,
}

pub const SOURCE_DEFAULT_CONFIG: i8 = 5;

impl ConfigEntry {
    /// Whether the value is Kafka's built-in default (`ConfigEntry.isDefault`).
    pub fn is_default(&self) -> bool {
        self.source == SOURCE_DEFAULT_CONFIG
    }
}

/// Kafka's name for a ConfigSource.
pub fn config_source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
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

/// Configs of topics; one outcome per topic, in order.
pub async fn describe_topic_configs(client: &Client, topics: &[String]) -> Result<Vec<Outcome<Vec<ConfigEntry>>>> {
    if topics.is_empty() {
        return Ok(vec![]);
    }
    let conn = client.any_connection().await?;
    let version = conn.version::<DescribeConfigsRequest>()?;
    let req = DescribeConfigsRequest::default().with_resources(
        topics
            .iter()
            .map(|t| {
                DescribeConfigsResource::default()
                    .with_resource_type(RESOURCE_TOPIC)
                    .with_resource_name(sb(t))
                    .with_configuration_keys(None)
            })
            .collect(),
    );
    let resp = conn.send(&req, version).await?;
    Ok(topics
        .iter()
        .map(|t| {
            let context = format!("describing configs of topic '{t}'");
            let r = resp.results.iter().find(|r| r.resource_type == RESOURCE_TOPIC && r.resource_name.as_str() == t);
            let outcome = match r {
                None => Err(KafkaError::new(
                    ResponseError::UnknownServerError,
                    Some("the broker's response does not mention the topic".into()),
                    context,
                )),
                Some(r) => answered(r.error_code, r.error_message.as_ref(), &context).map(|()| {
                    r.configs
                        .iter()
                        .map(|c| ConfigEntry {
                            name: c.name.to_string(),
                            value: c.value.as_ref().map(|v| v.to_string()),
                            source: c.config_source,
                            read_only: c.read_only,
                            is_sensitive: c.is_sensitive,
                        })
                        .collect()
                }),
            };
            Outcome { name: t.clone(), result: outcome }
        })
        .collect())
}

/// Set and delete topic configs.
pub async fn alter_topic_configs(client: &Client, topic: &str, ops: &[ConfigOp]) -> Result<()> {
    let context = format!("altering configs of topic '{topic}'");
    for attempt in 0..2 {
        let conn = client.admin_connection().await?;
        let version = conn.version::<IncrementalAlterConfigsRequest>()?;
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(sb(topic))
            .with_configs(ops.iter().map(ConfigOp::alterable).collect())]);
        let resp = conn.send(&req, version).await?;
        let r =
            resp.responses.iter().find(|r| r.resource_name.as_str() == topic).ok_or_else(|| not_mentioned(&context))?;
        if not_controller(r.error_code) && attempt == 0 {
            client.forget_controller();
            continue;
        }
        answered(r.error_code, r.error_message.as_ref(), &context)?;
        return Ok(());
    }
    Err(KafkaError::new(ResponseError::NotController, None, context).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(partitions: i32, rf: i16) -> NewTopic {
        let configs = [("retention.ms", "1000"), ("cleanup.policy", "compact")];
        NewTopic {
            name: "orders".into(),
            num_partitions: partitions,
            replication_factor: rf,
            configs: configs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn create_topics_request_carries_the_topic_and_the_broker_defaults_from_v4() {
        let req = create_topics_request(&topic(-1, -1), 7, 5_000);
        assert_eq!(req.timeout_ms, 5_000);
        let t = &req.topics[0];
        assert_eq!((t.name.0.as_str(), t.num_partitions, t.replication_factor), ("orders", -1, -1));
        let configs: Vec<(&str, Option<&str>)> =
            t.configs.iter().map(|c| (c.name.as_str(), c.value.as_ref().map(|v| v.as_str()))).collect();
        assert_eq!(configs, vec![("cleanup.policy", Some("compact")), ("retention.ms", Some("1000"))]);
        // Before v4 there are no broker defaults: unset becomes 1.
        let old = create_topics_request(&topic(-1, -1), 3, 5_000);
        assert_eq!((old.topics[0].num_partitions, old.topics[0].replication_factor), (1, 1));
        let given = create_topics_request(&topic(6, 3), 3, 5_000);
        assert_eq!((given.topics[0].num_partitions, given.topics[0].replication_factor), (6, 3));
    }
}
