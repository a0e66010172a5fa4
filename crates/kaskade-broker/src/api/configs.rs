//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics
//! (resource type 2) and brokers (type 4: this node's id, or "" for the
//! cluster-wide dynamic defaults; see `config::dynamic`). In a cluster the
//! changes are carried out by the active controller (`config_routes`).

use kafka_protocol::ResponseError;
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
use crate::config::{dynamic, ConfigSource};
use crate::error::BrokerError;

pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
pub const BROKER_LOGGER: i8 = 8;

const SOURCE_TOPIC: i8 = 1;

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
        r.error_code = ResponseError::UnknownTopicOrPartition.code();
        r.error_message = Some(s(format!("Topic '{name}' does not exist.")));
        return r;
    };
    // Dynamic broker configs (this broker's, then the cluster's) come
    // before the static ones in what a topic inherits.
    let node = broker.node_id().to_string();
    let layers: Vec<_> = [
        (image.broker_configs(&node), ConfigSource::DynamicBroker),
        (image.broker_configs(""), ConfigSource::DynamicDefault),
    ]
    .into_iter()
    .filter_map(|(configs, source)| configs.map(|c| (c, dynamic::topic_defaults(c), source)))
    .collect();
    for mut def in broker.config.topic_defaults() {
        if keys.is_some_and(|ks| !ks.iter().any(|k| k.as_str() == def.name)) {
            continue;
        }
        let mut dynamic_synonyms = Vec::new();
        let mut decided = false;
        for (configs, topic_defaults, source) in &layers {
            for key in def.broker_keys {
                if let Some(v) = configs.get(*key) {
                    dynamic_synonyms.push(synonym(key, Some(v.clone()), source.kafka_code()));
                }
            }
            if let Some(v) = topic_defaults.get(def.name).filter(|_| !decided) {
                def.value = Some(v.clone());
                def.source = *source;
                decided = true;
            }
        }
        let inherited = dynamic_synonyms
            .into_iter()
            .chain(def.synonyms.iter().map(|sy| synonym(sy.name, sy.value.clone(), sy.source.kafka_code())));
        let mut e = DescribeConfigsResourceResult::default();
        e.name = s(def.name);
        e.documentation = None;
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
    if let Err(message) = broker_resource(broker, name) {
        r.error_code = ResponseError::InvalidRequest.code();
        r.error_message = Some(s(message));
        return r;
    }
    let image = broker.topics.image();
    let entries = if name.is_empty() {
        dynamic::describe_cluster_defaults(image.broker_configs(""))
    } else {
        dynamic::describe(broker.config.describe(), image.broker_configs(""), image.broker_configs(name))
    };
    for entry in entries {
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
        // Kafka sends null unless documentation was asked for.
        e.documentation = docs.then(|| s(entry.documentation));
        if synonyms {
            e.synonyms =
                entry.synonyms.iter().map(|sy| synonym(sy.name, sy.value.clone(), sy.source.kafka_code())).collect();
        }
        r.configs.push(e);
    }
    r
}

/// Checks a broker resource name: this node's id, or "" (the cluster-wide
/// defaults); Kafka's message otherwise.
pub(crate) fn broker_resource(broker: &Broker, name: &str) -> Result<(), String> {
    if name.is_empty() || name.parse::<i32>().ok() == Some(broker.node_id().get()) {
        Ok(())
    } else {
        Err(format!("Unexpected broker id, expected {}, but received {name}", broker.node_id()))
    }
}

/// A broker resource name on the active controller: "" or a broker id.
fn controller_broker_resource(name: &str) -> Result<(), String> {
    match name.parse::<i32>() {
        _ if name.is_empty() => Ok(()),
        Ok(id) if id >= 0 => Ok(()),
        _ => Err(format!("Invalid broker name {name}")),
    }
}

pub async fn describe(
    broker: &Arc<Broker>,
    version: i16,
    req: DescribeConfigsRequest,
) -> Result<DescribeConfigsResponse, BrokerError> {
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
                r.error_code = ResponseError::InvalidRequest.code();
                r.error_message = Some(s(format!("Unsupported resource type {other}")));
                r
            }
        };
        resp.results.push(r);
    }
    Ok(resp)
}

/// Applies config changes to a topic (`TOPIC`) or to a broker's dynamic
/// configs (`BROKER`) on the blocking pool; (code, message).
async fn apply_changes(
    broker: &Arc<Broker>,
    resource_type: i8,
    name: String,
    changes: Vec<ConfigChange>,
    replace_all: bool,
    validate_only: bool,
) -> (i16, Option<String>) {
    if resource_type == BROKER {
        // The broker that took the request checked the id against its own
        // (Kafka's `ConfigAdminManager.preprocess`); the controller takes
        // any broker's, as KRaft's `ControllerConfigurationValidator` does.
        let checked = if crate::topic::deciding_as_active_controller() {
            controller_broker_resource(&name)
        } else {
            broker_resource(broker, &name)
        };
        if let Err(message) = checked {
            return (ResponseError::InvalidRequest.code(), Some(message));
        }
    }
    let change = move |tm: &crate::topic::TopicManager| {
        if resource_type == BROKER {
            tm.alter_broker_configs(&name, &changes, replace_all, validate_only)
        } else {
            tm.alter_configs(&name, &changes, replace_all, validate_only)
        }
    };
    match crate::topic::on_blocking_pool(&broker.topics, change).await {
        Ok(()) => (0, None),
        Err(e) => (e.code(), Some(e.message)),
    }
}

pub async fn alter(
    broker: &Arc<Broker>,
    _version: i16,
    req: AlterConfigsRequest,
) -> Result<AlterConfigsResponse, BrokerError> {
    let mut resp = AlterConfigsResponse::default();
    for res in req.resources {
        let name = res.resource_name.to_string();
        let (code, msg) = match res.resource_type {
            TOPIC | BROKER => {
                let changes =
                    res.configs.iter().map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string()))).collect();
                apply_changes(broker, res.resource_type, name.clone(), changes, true, req.validate_only).await
            }
            other => (ResponseError::InvalidRequest.code(), Some(format!("Unsupported resource type {other}"))),
        };
        let mut r = alter_configs_response::AlterConfigsResourceResponse::default();
        r.error_code = code;
        r.error_message = msg.map(s);
        r.resource_type = res.resource_type;
        r.resource_name = s(name);
        resp.responses.push(r);
    }
    Ok(resp)
}

/// A key set (`Some`) or removed (`None`).
type ConfigChange = (String, Option<String>);

/// Turns IncrementalAlterConfigs operations into set/remove changes.
/// Operation codes: 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT (the last two only
/// for list keys, applied to `current`).
fn incremental_changes(
    configs: &[kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig],
    current: &BTreeMap<String, String>,
    is_list: impl Fn(&str) -> bool,
) -> Result<Vec<ConfigChange>, (i16, String)> {
    let list = |v: &str| v.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect::<Vec<_>>();
    let mut changes = Vec::new();
    for c in configs {
        let key = c.name.to_string();
        let value = c.value.as_ref().map(|v| v.to_string());
        match c.config_operation {
            0 => changes.push((key, Some(value.unwrap_or_default()))),
            1 => changes.push((key, None)),
            2 | 3 => {
                if !is_list(&key) {
                    return Err((40, format!("Config {key} is not a list: APPEND/SUBTRACT are not allowed")));
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
            op => return Err((ResponseError::InvalidRequest.code(), format!("Unknown config operation {op}"))),
        }
    }
    Ok(changes)
}

pub async fn incremental(
    broker: &Arc<Broker>,
    _version: i16,
    req: IncrementalAlterConfigsRequest,
) -> Result<IncrementalAlterConfigsResponse, BrokerError> {
    let mut resp = IncrementalAlterConfigsResponse::default();
    for res in req.resources {
        let name = res.resource_name.to_string();
        let (code, msg) = match res.resource_type {
            TOPIC => {
                let current: BTreeMap<String, String> = broker
                    .topics
                    .image()
                    .topic(&name)
                    .map(|t| crate::topic::config::effective(&broker.topics.defaults(), &t.configs))
                    .unwrap_or_default();
                match incremental_changes(&res.configs, &current, |k| k == "cleanup.policy") {
                    Err((c, m)) => (c, Some(m)),
                    Ok(changes) => apply_changes(broker, TOPIC, name.clone(), changes, false, req.validate_only).await,
                }
            }
            BROKER => {
                let image = broker.topics.image();
                let current = dynamic::effective(image.broker_configs(""), image.broker_configs(&name));
                match incremental_changes(&res.configs, &current, |k| k == "log.cleanup.policy") {
                    Err((c, m)) => (c, Some(m)),
                    Ok(changes) => apply_changes(broker, BROKER, name.clone(), changes, false, req.validate_only).await,
                }
            }
            other => (ResponseError::InvalidRequest.code(), Some(format!("Unsupported resource type {other}"))),
        };
        let mut r = incremental_alter_configs_response::AlterConfigsResourceResponse::default();
        r.error_code = code;
        r.error_message = msg.map(s);
        r.resource_type = res.resource_type;
        r.resource_name = s(name);
        resp.responses.push(r);
    }
    Ok(resp)
}

/// DescribeConfigs, AlterConfigs and IncrementalAlterConfigs decided on
/// this node (see `config_routes` for the cluster's routes).
pub mod describe_route {
    crate::route_to!(DescribeConfigs, super::describe);
}
pub mod alter_route {
    crate::route_to!(AlterConfigs, super::alter);
}
pub mod incremental_route {
    crate::route_to!(IncrementalAlterConfigs, super::incremental);
}

#[cfg(test)]
mod controller_tests {
    #[test]
    fn the_controller_takes_any_broker_id_or_the_cluster_default() {
        for ok in ["", "0", "1", "42"] {
            assert!(super::controller_broker_resource(ok).is_ok(), "{ok}");
        }
        for bad in ["-1", "x", "1.5", " 1"] {
            assert_eq!(super::controller_broker_resource(bad), Err(format!("Invalid broker name {bad}")));
        }
    }
}
