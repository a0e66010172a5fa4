//! CreateTopics, with validate_only, configs, assignments and Kafka's
//! error codes; in a cluster carried out by the active controller
//! (`api::forwarding`). Topic creation writes the metadata log (fsync) and creates
//! directories, so it runs on the blocking pool.

use kafka_protocol::ResponseError;
use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::topic::config as topic_config;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: CreateTopicsRequest,
) -> Result<CreateTopicsResponse, BrokerError> {
    let mut resp = CreateTopicsResponse::default();
    let mut seen = std::collections::HashMap::new();
    for t in &req.topics {
        *seen.entry(t.name.to_string()).or_insert(0) += 1;
    }
    for t in req.topics {
        let name = t.name.to_string();
        let mut r = CreatableTopicResult::default();
        // Null, not the protocol crate's default "", when there is no error.
        r.error_message = None;
        r.name = t.name.clone();
        r.num_partitions = -1;
        r.replication_factor = -1;
        if seen.get(&name).copied().unwrap_or(0) > 1 {
            r.error_code = ResponseError::InvalidRequest.code(); // as Kafka answers duplicates
            r.error_message = Some(StrBytes::from_string(format!(
                "Create topics request from client contains multiple entries for topic {name}"
            )));
            resp.topics.push(r);
            continue;
        }
        let mut configs = BTreeMap::new();
        let mut null_value = None;
        for c in &t.configs {
            match &c.value {
                Some(v) => {
                    configs.insert(c.name.to_string(), v.to_string());
                }
                None => null_value = Some(c.name.to_string()),
            }
        }
        if let Some(k) = null_value {
            r.error_code = ResponseError::InvalidConfig.code();
            r.error_message = Some(StrBytes::from_string(format!("Null value not supported for topic configs: {k}")));
            resp.topics.push(r);
            continue;
        }
        let assignments: Vec<(i32, Vec<i32>)> =
            t.assignments.iter().map(|a| (a.partition_index, a.broker_ids.iter().map(|b| b.0).collect())).collect();
        let (np, rf, validate_only) = (t.num_partitions, t.replication_factor, req.validate_only);
        let cfg2 = configs.clone();
        let res = crate::topic::on_blocking_pool(&broker.topics, move |tm| {
            tm.create(&name, np, rf, &assignments, &cfg2, validate_only)
        })
        .await;
        match res {
            Ok(topic) => {
                r.topic_id = topic.id;
                r.num_partitions = topic.partitions.len() as i32;
                r.replication_factor = topic.partitions.first().map(|p| p.replicas.len() as i16).unwrap_or(1);
                if version >= 5 {
                    let values = topic_config::effective(&broker.topics.defaults(), &configs);
                    r.configs = Some(
                        values
                            .into_iter()
                            .map(|(k, v)| {
                                let mut c = CreatableTopicConfigs::default();
                                c.config_source = if configs.contains_key(&k) { 1 } else { 5 };
                                c.name = StrBytes::from_string(k);
                                c.value = Some(StrBytes::from_string(v));
                                c
                            })
                            .collect(),
                    );
                }
            }
            Err(e) => {
                r.error_code = e.code();
                r.error_message = Some(StrBytes::from_string(e.message));
            }
        }
        resp.topics.push(r);
    }
    Ok(resp)
}

/// Decided on this node's image (a lone node, or the active controller).
mod decide {
    crate::route_to!(CreateTopics, super::handle);
}

crate::forwarded_routes!(decide::route);
