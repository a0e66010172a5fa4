//! AlterReplicaLogDirs (key 34): move replicas between log directories.
//! Kaskade has one log directory, so the only destination that exists is
//! the one every replica is already in: that is a success with nothing to
//! move; any other path is LOG_DIR_NOT_FOUND, and a partition this broker
//! does not have is UNKNOWN_TOPIC_OR_PARTITION, as Kafka answers.

use std::path::Path;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::{AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse};

use crate::broker::Broker;
use crate::error::BrokerError;

/// Whether `requested` names the broker's log directory (Kafka compares
/// absolute, normalised paths).
fn is_log_dir(requested: &str, log_dir: &Path) -> bool {
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    let requested = Path::new(requested);
    requested.is_absolute() && canonical(requested).is_some_and(|r| Some(r) == canonical(log_dir))
}

pub async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    req: AlterReplicaLogDirsRequest,
) -> Result<AlterReplicaLogDirsResponse, BrokerError> {
    let log_dir = broker.topics.logs().dir().to_path_buf();
    let mut resp = AlterReplicaLogDirsResponse::default();
    for dir in req.dirs {
        let known_dir = is_log_dir(dir.path.as_str(), &log_dir);
        for topic in dir.topics {
            let mut t = AlterReplicaLogDirTopicResult::default();
            for partition in topic.partitions {
                let mut p = AlterReplicaLogDirPartitionResult::default();
                p.partition_index = partition;
                p.error_code = if broker.topics.log(topic.name.0.as_str(), partition).is_none() {
                    ResponseError::UnknownTopicOrPartition.code()
                } else if !known_dir {
                    ResponseError::LogDirNotFound.code()
                } else {
                    0
                };
                t.partitions.push(p);
            }
            t.topic_name = topic.name;
            resp.results.push(t);
        }
    }
    Ok(resp)
}

crate::route_to!(AlterReplicaLogDirs, handle);
