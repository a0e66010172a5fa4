//! `kaskade topic ...`: create, list, describe, alter, delete.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use kafka_protocol::ResponseError;
use serde_json::{json, Value};

use super::output::{id_list, kafka_uuid, print_json, write_stdout, OutputFormat, Table};
use kaskade_client::admin::{self, ConfigOp, NewTopic};
use kaskade_client::cluster::{unknown_topic, TopicMetadata};
use kaskade_client::{Client, KafkaError};
use kaskade_types::{LeaderEpoch, NodeId};

#[derive(Debug, Args)]
pub struct TopicArgs {
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    #[command(subcommand)]
    pub command: TopicCommand,
}

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        /// Topic name.
        name: String,
        /// Number of partitions (default: the broker's num.partitions).
        #[arg(long, short = 'p', value_parser = clap::value_parser!(i32).range(1..))]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(long, short = 'r', value_parser = clap::value_parser!(i16).range(1..))]
        replication_factor: Option<i16>,
        /// Topic config, e.g. --config retention.ms=86400000 (repeatable).
        #[arg(long, short = 'c', value_name = "KEY=VALUE", value_parser = parse_config)]
        config: Vec<(String, String)>,
        /// Succeed if the topic already exists.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// List topics.
    List {
        /// Include internal topics such as __consumer_offsets.
        #[arg(long)]
        internal: bool,
    },
    /// Describe topics: partitions, leaders, replicas, ISR, topic id and
    /// configs that differ from the defaults.
    Describe {
        /// Topics to describe (default: every non-internal topic).
        names: Vec<String>,
    },
    /// Delete topics.
    Delete {
        /// Topic name(s).
        #[arg(required = true)]
        names: Vec<String>,
        /// Succeed if a topic does not exist.
        #[arg(long)]
        if_exists: bool,
    },
    /// Add partitions to a topic, or change its configs.
    Alter {
        /// Topic name.
        name: String,
        /// New total number of partitions (can only grow).
        #[arg(long, short = 'p', value_parser = clap::value_parser!(i32).range(1..))]
        partitions: Option<i32>,
        /// Set a topic config, e.g. --config retention.ms=3600000 (repeatable).
        #[arg(long, short = 'c', value_name = "KEY=VALUE", value_parser = parse_config)]
        config: Vec<(String, String)>,
        /// Remove a topic config override, reverting to the default (repeatable).
        #[arg(long, value_name = "KEY")]
        delete_config: Vec<String>,
    },
}

/// `key=value`, split at the first `=`.
pub fn parse_config(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

pub async fn run(args: TopicArgs, client: &Client) -> Result<i32> {
    let out = args.output;
    match args.command {
        TopicCommand::Create { name, partitions, replication_factor, config, if_not_exists } => {
            create(client, out, name, partitions, replication_factor, config, if_not_exists).await
        }
        TopicCommand::List { internal } => list(client, out, internal).await,
        TopicCommand::Describe { names } => describe(client, out, names).await,
        TopicCommand::Delete { names, if_exists } => delete(client, out, names, if_exists).await,
        TopicCommand::Alter { name, partitions, config, delete_config } => {
            alter(client, out, name, partitions, config, delete_config).await
        }
    }
}

async fn create(
    client: &Client,
    out: OutputFormat,
    name: String,
    partitions: Option<i32>,
    replication_factor: Option<i16>,
    configs: Vec<(String, String)>,
    if_not_exists: bool,
) -> Result<i32> {
    let topic = NewTopic {
        name: name.clone(),
        num_partitions: partitions.unwrap_or(-1),
        replication_factor: replication_factor.unwrap_or(-1),
        configs: configs.into_iter().collect(),
    };
    match admin::create_topic(client, &topic).await {
        Ok(created) => {
            match out {
                OutputFormat::Table => {
                    write_stdout(&format!("Created topic {name}.\n"));
                }
                OutputFormat::Json => print_json(&json!({
                    "name": name,
                    "created": true,
                    "topic_id": (!created.topic_id.is_nil()).then(|| kafka_uuid(&created.topic_id)),
                    "partitions": (created.num_partitions >= 0).then_some(created.num_partitions),
                    "replication_factor": (created.replication_factor >= 0).then_some(created.replication_factor),
                })),
            }
            Ok(0)
        }
        Err(e) => {
            let exists = e.is(ResponseError::TopicAlreadyExists);
            if exists && if_not_exists {
                match out {
                    OutputFormat::Table => {
                        write_stdout(&format!("Topic {name} already exists.\n"));
                    }
                    OutputFormat::Json => print_json(&json!({ "name": name, "created": false })),
                }
                return Ok(0);
            }
            if let Some(k) = e.kafka() {
                // The generic hint (allowed characters) is wrong for a
                // name that is valid but collides with another.
                if k.is(ResponseError::InvalidTopicException)
                    && k.message.as_deref().is_some_and(|m| m.contains("collides"))
                {
                    return Err(k
                        .clone()
                        .with_hint("names that differ only in '.' and '_' collide (Kafka's metric names would clash); pick another name")
                        .into());
                }
                if k.is(ResponseError::InvalidReplicationFactor) {
                    let n = client.metadata(Some(&[])).await.map(|m| m.brokers.len()).unwrap_or(0);
                    if n > 0 {
                        return Err(k
                            .clone()
                            .with_hint(format!("the cluster has {n} broker(s); use --replication-factor {n} or less"))
                            .into());
                    }
                }
            }
            Err(e.into())
        }
    }
}

async fn list(client: &Client, out: OutputFormat, internal: bool) -> Result<i32> {
    let md = client.metadata(None).await?;
    let mut topics: Vec<&TopicMetadata> =
        md.topics.iter().filter(|t| t.error.is_none() && (internal || !t.is_internal)).collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    match out {
        OutputFormat::Json => print_json(&Value::Array(
            topics
                .iter()
                .map(|t| {
                    json!({
                        "name": t.name,
                        "topic_id": topic_id_json(t),
                        "internal": t.is_internal,
                        "partitions": t.num_partitions(),
                        "replication_factor": t.replication_factor(),
                    })
                })
                .collect(),
        )),
        OutputFormat::Table => {
            if topics.is_empty() {
                eprintln!("No topics. Create one with `kaskade topic create NAME`.");
                return Ok(0);
            }
            let mut table = Table::new(["NAME", "PARTITIONS", "REPLICATION", "TOPIC ID"]);
            for t in topics {
                let name = if t.is_internal { format!("{} (internal)", t.name) } else { t.name.clone() };
                table.row([name, t.num_partitions().to_string(), t.replication_factor().to_string(), topic_id_text(t)]);
            }
            write_stdout(&table.render());
        }
    }
    Ok(0)
}

fn topic_id_text(t: &TopicMetadata) -> String {
    if t.topic_id.is_nil() {
        "-".to_string()
    } else {
        kafka_uuid(&t.topic_id)
    }
}

fn topic_id_json(t: &TopicMetadata) -> Value {
    if t.topic_id.is_nil() {
        Value::Null
    } else {
        Value::String(kafka_uuid(&t.topic_id))
    }
}

fn node(n: Option<NodeId>) -> String {
    n.map_or_else(|| "none".to_string(), |n| n.to_string())
}

fn ids(nodes: &[NodeId]) -> Vec<i32> {
    nodes.iter().map(|n| n.get()).collect()
}

async fn describe(client: &Client, out: OutputFormat, names: Vec<String>) -> Result<i32> {
    let md = if names.is_empty() { client.metadata(None).await? } else { client.metadata(Some(&names)).await? };
    let mut found: Vec<TopicMetadata> = Vec::new();
    let mut errors: Vec<anyhow::Error> = Vec::new();
    if names.is_empty() {
        found = md.topics.into_iter().filter(|t| t.error.is_none() && !t.is_internal).collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
    } else {
        for n in &names {
            match md.topics.iter().find(|t| &t.name == n) {
                Some(t) => match t.error {
                    None => found.push(t.clone()),
                    Some(ResponseError::UnknownTopicOrPartition) => {
                        errors.push(super::hints::for_topic(unknown_topic(n).into(), n).into())
                    }
                    Some(e) => errors.push(KafkaError::new(e, None, format!("describing topic '{n}'")).into()),
                },
                None => errors.push(super::hints::for_topic(unknown_topic(n).into(), n).into()),
            }
        }
    }

    // Configs that differ from Kafka's defaults (as kafka-topics shows).
    let topic_names: Vec<String> = found.iter().map(|t| t.name.clone()).collect();
    // A broker without DescribeConfigs still gets its partitions described.
    let configs: Vec<(String, std::result::Result<Vec<admin::ConfigEntry>, String>)> =
        match admin::describe_topic_configs(client, &topic_names).await {
            Ok(c) => c.into_iter().map(|o| (o.name, o.result.map_err(|e| e.name()))).collect(),
            Err(e) => {
                let msg = format!("{e:#}");
                topic_names.iter().map(|n| (n.clone(), Err(msg.clone()))).collect()
            }
        };

    match out {
        OutputFormat::Json => {
            let mut arr = Vec::new();
            for (t, (_, cfg)) in found.iter().zip(&configs) {
                let configs = match cfg {
                    Ok(entries) => Value::Object(
                        entries
                            .iter()
                            .filter(|c| !c.is_default())
                            .map(|c| (c.name.clone(), config_value_json(c)))
                            .collect(),
                    ),
                    Err(e) => json!({ "error": e }),
                };
                arr.push(json!({
                    "name": t.name,
                    "topic_id": topic_id_json(t),
                    "internal": t.is_internal,
                    "partition_count": t.num_partitions(),
                    "replication_factor": t.replication_factor(),
                    "configs": configs,
                    "partitions": t.partitions.iter().map(|p| json!({
                        "partition": p.partition,
                        "leader": p.leader.map(NodeId::get),
                        "leader_epoch": p.leader_epoch.map_or(-1, LeaderEpoch::get),
                        "replicas": ids(&p.replicas),
                        "isr": ids(&p.isr),
                        "offline_replicas": ids(&p.offline_replicas),
                    })).collect::<Vec<_>>(),
                }));
            }
            print_json(&Value::Array(arr));
        }
        OutputFormat::Table => {
            let mut text = String::new();
            for (i, (t, (_, cfg))) in found.iter().zip(&configs).enumerate() {
                if i > 0 {
                    text.push('\n');
                }
                text.push_str(&format!(
                    "Topic: {}  TopicId: {}  PartitionCount: {}  ReplicationFactor: {}{}\n",
                    t.name,
                    topic_id_text(t),
                    t.num_partitions(),
                    t.replication_factor(),
                    if t.is_internal { "  (internal)" } else { "" }
                ));
                let cfg_text = match cfg {
                    Ok(entries) => entries
                        .iter()
                        .filter(|c| !c.is_default())
                        .map(|c| format!("{}={}", c.name, config_value_text(c)))
                        .collect::<Vec<_>>()
                        .join(","),
                    Err(e) => format!("(could not describe configs: {e})"),
                };
                text.push_str(&format!("Configs: {}\n", if cfg_text.is_empty() { "(defaults)" } else { &cfg_text }));
                let any_offline = t.partitions.iter().any(|p| !p.offline_replicas.is_empty());
                let mut headers = vec!["PARTITION", "LEADER", "REPLICAS", "ISR"];
                if any_offline {
                    headers.push("OFFLINE");
                }
                let mut table = Table::new(headers);
                for p in &t.partitions {
                    let mut row = vec![p.partition.to_string(), node(p.leader), id_list(&p.replicas), id_list(&p.isr)];
                    if any_offline {
                        row.push(id_list(&p.offline_replicas));
                    }
                    table.row(row);
                }
                text.push_str(&table.render());
            }
            if !text.is_empty() {
                write_stdout(&text);
            } else if errors.is_empty() {
                eprintln!("No topics. Create one with `kaskade topic create NAME`.");
            }
        }
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        for e in errors {
            eprintln!("error: {}", super::hints::report(e));
        }
        Ok(1)
    }
}

fn config_value_text(c: &admin::ConfigEntry) -> String {
    if c.is_sensitive {
        "(sensitive)".to_string()
    } else {
        c.value.clone().unwrap_or_else(|| "null".to_string())
    }
}

fn config_value_json(c: &admin::ConfigEntry) -> Value {
    if c.is_sensitive {
        json!({ "sensitive": true })
    } else {
        c.value.clone().map_or(Value::Null, Value::String)
    }
}

async fn delete(client: &Client, out: OutputFormat, names: Vec<String>, if_exists: bool) -> Result<i32> {
    let results = admin::delete_topics(client, &names).await?;
    let mut code = 0;
    let mut json_out = Vec::new();
    for outcome in results {
        let name = outcome.name;
        match outcome.result {
            Ok(()) => {
                if out == OutputFormat::Table {
                    write_stdout(&format!("Deleted topic {name}.\n"));
                }
                json_out.push(json!({ "name": name, "deleted": true }));
            }
            Err(e) if e.is(ResponseError::UnknownTopicOrPartition) && if_exists => {
                if out == OutputFormat::Table {
                    write_stdout(&format!("Topic {name} does not exist.\n"));
                }
                json_out.push(json!({ "name": name, "deleted": false }));
            }
            Err(e) => {
                let e = if e.is(ResponseError::UnknownTopicOrPartition) {
                    e.with_hint(
                        "pass --if-exists to treat a missing topic as success; list topics with `kaskade topic list`",
                    )
                } else {
                    super::hints::kafka(e)
                };
                eprintln!("error: {e}");
                json_out.push(json!({ "name": name, "deleted": false, "error": e.name() }));
                code = 1;
            }
        }
    }
    if out == OutputFormat::Json {
        print_json(&Value::Array(json_out));
    }
    Ok(code)
}

async fn alter(
    client: &Client,
    out: OutputFormat,
    name: String,
    partitions: Option<i32>,
    configs: Vec<(String, String)>,
    delete_configs: Vec<String>,
) -> Result<i32> {
    if partitions.is_none() && configs.is_empty() && delete_configs.is_empty() {
        bail!("nothing to alter: pass --partitions N, --config KEY=VALUE or --delete-config KEY");
    }
    let mut changes: Vec<String> = Vec::new();
    let mut json_out = serde_json::Map::new();
    json_out.insert("name".into(), json!(name));
    if let Some(n) = partitions {
        let before = client.topic(&name, true).await.map_err(|e| super::hints::for_topic(e, &name))?.num_partitions();
        if n == before {
            changes.push(format!("partitions already {n}"));
        } else {
            if n < before {
                return Err(KafkaError::new(
                    ResponseError::InvalidPartitions,
                    Some(format!("topic '{name}' has {before} partitions; the count can only grow")),
                    format!("adding partitions to topic '{name}'"),
                )
                .with_hint(format!("pass --partitions {} or more", before + 1))
                .into());
            }
            admin::create_partitions(client, &name, n).await?;
            changes.push(format!("partitions {before} -> {n}"));
        }
        json_out.insert("partitions".into(), json!(n));
    }
    if !configs.is_empty() || !delete_configs.is_empty() {
        let mut ops: Vec<ConfigOp> =
            configs.iter().map(|(k, v)| ConfigOp::Set { name: k.clone(), value: v.clone() }).collect();
        ops.extend(delete_configs.iter().map(|k| ConfigOp::Delete { name: k.clone() }));
        admin::alter_topic_configs(client, &name, &ops).await?;
        for (k, v) in &configs {
            changes.push(format!("set {k}={v}"));
        }
        for k in &delete_configs {
            changes.push(format!("deleted {k}"));
        }
        json_out.insert("set".into(), Value::Object(configs.iter().map(|(k, v)| (k.clone(), json!(v))).collect()));
        json_out.insert("deleted".into(), json!(delete_configs));
    }
    match out {
        OutputFormat::Table => {
            write_stdout(&format!("Altered topic {name}: {}.\n", changes.join("; ")));
        }
        OutputFormat::Json => print_json(&Value::Object(json_out)),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parsing() {
        assert_eq!(parse_config("retention.ms=1000").unwrap(), ("retention.ms".into(), "1000".into()));
        assert_eq!(parse_config("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(parse_config("a=").unwrap(), ("a".into(), "".into()));
        assert!(parse_config("novalue").is_err());
        assert!(parse_config("=x").is_err());
    }
}
