//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics
//! (resource type 2) and this broker (type 4, read-only here: dynamic
//! broker configs are not supported and say so).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::topic::manager::code;

pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
pub const BROKER_LOGGER: i8 = 8;

const SOURCE_TOPIC: i8 = 1;
const INVALID_REQUEST: i16 = 42;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

fn synonym(name: &str, value: Option<String>, source: i8) -> DescribeConfigsSynonym {
    let mut sy = DescribeConfigsSynonym::default();
    sy.name = s(name);
    sy.value = value.map(s);
    sy.source = source;
    sy
}

fn describe_topic(broker: &Broker, name: &str, keys: Option<&Vec<StrBytes>>, synonyms: bool) -> DescribeConfigsResult {
    let mut r = DescribeConfigsResult::default();
    r.resource_type = TOPIC;
    r.resource_name = s(name);
    let image = broker.topics.image();
    let Some(t) = image.topic(name) else {
        r.error_code = code::UNKNOWN_TOPIC_OR_PARTITION;
        r.error_message = Some(s(format!("Topic '{name}' does not exist.")));
        return r;
    };
    for def in broker.config.topic_defaults() {
        if keys.is_some_and(|ks| !ks.iter().any(|k| k.as_str() == def.name)) {
            continue;
        }
        let inherited = def.synonyms.iter().map(|sy| synonym(sy.name, sy.value.clone(), sy.source.kafka_code()));
        let mut e = DescribeConfigsResourceResult::default();
        e.name = s(def.name);
        e.config_type = def.config_type.kafka_code();
        match t.configs.get(def.name) {
            Some(v) => {
                e.value = Some(s(v.clone()));
                e.config_source = SOURCE_TOPIC;
                if synonyms {
                    e.synonyms.push(synonym(def.name, Some(v.clone()), SOURCE_TOPIC));
                    e.synonyms.extend(inherited);
                }
            }
            None => {
                e.value = def.value.clone().map(s);
                e.config_source = def.source.kafka_code();
                if synonyms {
                    e.synonyms.extend(inherited);
                }
            }
        }
        r.configs.push(e);
    }
    r
}

fn describe_broker(
    broker: &Broker,
    name: &str,
    keys: Option<&Vec<StrBytes>>,
    synonyms: bool,
    docs: bool,
) -> DescribeConfigsResult {
    let mut r = DescribeConfigsResult::default();
    r.resource_type = BROKER;
    r.resource_name = s(name);
    if !name.is_empty() && name.parse::<i32>().ok() != Some(broker.node_id()) {
        r.error_code = INVALID_REQUEST;
        r.error_message = Some(s(format!(
            "Unexpected broker id, expected {} or empty string, but received {name}",
            broker.node_id()
        )));
        return r;
    }
    for entry in broker.config.describe() {
        if keys.is_some_and(|ks| !ks.iter().any(|k| k.as_str() == entry.name)) {
            continue;
        }
        let mut e = DescribeConfigsResourceResult::default();
        e.name = s(entry.name.clone());
        e.value = entry.value.clone().map(s);
        e.config_source = entry.source.kafka_code();
        e.read_only = entry.read_only;
        e.is_sensitive = entry.is_sensitive;
        e.config_type = entry.config_type.kafka_code();
        if docs {
            e.documentation = Some(s(entry.documentation));
        }
        if synonyms {
            e.synonyms =
                entry.synonyms.iter().map(|sy| synonym(sy.name, sy.value.clone(), sy.source.kafka_code())).collect();
        }
        r.configs.push(e);
    }
    r
}

pub async fn describe(broker: &Arc<Broker>, version: i16, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let mut resp = DescribeConfigsResponse::default();
    let synonyms = req.include_synonyms && version >= 1;
    for res in &req.resources {
        let name = res.resource_name.to_string();
        let r = match res.resource_type {
            TOPIC => describe_topic(broker, &name, res.configuration_keys.as_ref(), synonyms),
            BROKER => {
                describe_broker(broker, &name, res.configuration_keys.as_ref(), synonyms, req.include_documentation)
            }
            other => {
                let mut r = DescribeConfigsResult::default();
                r.resource_type = other;
                r.resource_name = s(name);
                r.error_code = INVALID_REQUEST;
                r.error_message = Some(s(format!("Unsupported resource type {other}")));
                r
            }
        };
        resp.results.push(r);
    }
    resp
}

/// Applies topic config changes on the blocking pool; (code, message).
async fn alter_topic(
    broker: &Arc<Broker>,
    name: String,
    changes: Vec<(String, Option<String>)>,
    replace_all: bool,
    validate_only: bool,
) -> (i16, Option<String>) {
    let change = move |tm: &crate::topic::TopicManager| tm.alter_configs(&name, &changes, replace_all, validate_only);
    match crate::topic::on_blocking_pool(&broker.topics, change).await {
        Ok(()) => (0, None),
        Err(e) => (e.code, Some(e.message)),
    }
}

fn broker_read_only(broker: &Broker, name: &str) -> (i16, Option<String>) {
    if !name.is_empty() && name.parse::<i32>().ok() != Some(broker.node_id()) {
        return (INVALID_REQUEST, Some(format!("Unexpected broker id {name}")));
    }
    (40, Some("Dynamic broker configs are not supported yet: set them in server.properties or KAFKA_* variables and restart".into()))
}

pub async fn alter(broker: &Arc<Broker>, _version: i16, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut resp = AlterConfigsResponse::default();
    for res in req.resources {
        let name = res.resource_name.to_string();
        let (code, msg) = match res.resource_type {
            TOPIC => {
                let changes =
                    res.configs.iter().map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string()))).collect();
                alter_topic(broker, name.clone(), changes, true, req.validate_only).await
            }
            BROKER => broker_read_only(broker, &name),
            other => (INVALID_REQUEST, Some(format!("Unsupported resource type {other}"))),
        };
        let mut r = alter_configs_response::AlterConfigsResourceResponse::default();
        r.error_code = code;
        r.error_message = msg.map(s);
        r.resource_type = res.resource_type;
        r.resource_name = s(name);
        resp.responses.push(r);
    }
    resp
}

/// Operation codes: 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT.
pub async fn incremental(
    broker: &Arc<Broker>,
    _version: i16,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut resp = IncrementalAlterConfigsResponse::default();
    for res in req.resources {
        let name = res.resource_name.to_string();
        let (code, msg) = match res.resource_type {
            TOPIC => {
                let current: BTreeMap<String, String> = broker
                    .topics
                    .image()
                    .topic(&name)
                    .map(|t| crate::topic::config::effective(broker.topics.defaults(), &t.configs))
                    .unwrap_or_default();
                let mut changes = Vec::new();
                let mut err = None;
                for c in &res.configs {
                    let key = c.name.to_string();
                    let value = c.value.as_ref().map(|v| v.to_string());
                    let list = |v: &str| {
                        v.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect::<Vec<_>>()
                    };
                    match c.config_operation {
                        0 => changes.push((key, Some(value.unwrap_or_default()))),
                        1 => changes.push((key, None)),
                        2 | 3 => {
                            if key != "cleanup.policy" {
                                err =
                                    Some((40, format!("Config {key} is not a list: APPEND/SUBTRACT are not allowed")));
                                break;
                            }
                            let mut cur = list(current.get(&key).map(String::as_str).unwrap_or(""));
                            for item in list(value.as_deref().unwrap_or("")) {
                                if c.config_operation == 2 {
                                    if !cur.contains(&item) {
                                        cur.push(item);
                                    }
                                } else {
                                    cur.retain(|x| x != &item);
                                }
                            }
                            changes.push((key, Some(cur.join(","))));
                        }
                        op => {
                            err = Some((INVALID_REQUEST, format!("Unknown config operation {op}")));
                            break;
                        }
                    }
                }
                match err {
                    Some((c, m)) => (c, Some(m)),
                    None => alter_topic(broker, name.clone(), changes, false, req.validate_only).await,
                }
            }
            BROKER => broker_read_only(broker, &name),
            other => (INVALID_REQUEST, Some(format!("Unsupported resource type {other}"))),
        };
        let mut r = incremental_alter_configs_response::AlterConfigsResourceResponse::default();
        r.error_code = code;
        r.error_message = msg.map(s);
        r.resource_type = res.resource_type;
        r.resource_name = s(name);
        resp.responses.push(r);
    }
    resp
}

pub fn route_describe(
    broker: Arc<Broker>,
    header: kafka_protocol::messages::RequestHeader,
    body: kafka_protocol::messages::RequestKind,
) -> crate::router::HandlerFuture {
    super::handler(async move {
        let request = crate::request_body!(body, DescribeConfigs)?;
        Ok(kafka_protocol::messages::ResponseKind::DescribeConfigs(
            describe(&broker, header.request_api_version, request).await,
        ))
    })
}

pub fn route_alter(
    broker: Arc<Broker>,
    header: kafka_protocol::messages::RequestHeader,
    body: kafka_protocol::messages::RequestKind,
) -> crate::router::HandlerFuture {
    super::handler(async move {
        let request = crate::request_body!(body, AlterConfigs)?;
        Ok(kafka_protocol::messages::ResponseKind::AlterConfigs(
            alter(&broker, header.request_api_version, request).await,
        ))
    })
}

pub fn route_incremental(
    broker: Arc<Broker>,
    header: kafka_protocol::messages::RequestHeader,
    body: kafka_protocol::messages::RequestKind,
) -> crate::router::HandlerFuture {
    super::handler(async move {
        let request = crate::request_body!(body, IncrementalAlterConfigs)?;
        Ok(kafka_protocol::messages::ResponseKind::IncrementalAlterConfigs(
            incremental(&broker, header.request_api_version, request).await,
        ))
    })
}
