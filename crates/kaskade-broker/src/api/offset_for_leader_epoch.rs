//! OffsetForLeaderEpoch: the end offset of a leader epoch. One node never
//! changes leader, so every partition has had epoch 0 since creation: the
//! end of epoch 0 is the log end; a later epoch than the current one is
//! unknown; an epoch below 0 is undefined (-1, -1), as Kafka answers.

use kafka_protocol::ResponseError;
use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::broker::Broker;
use crate::error::BrokerError;

pub async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    req: OffsetForLeaderEpochRequest,
) -> Result<OffsetForLeaderEpochResponse, BrokerError> {
    let image = broker.topics.image();
    let mut resp = OffsetForLeaderEpochResponse::default();
    for t in req.topics {
        let mut tr = OffsetForLeaderTopicResult::default();
        tr.topic = t.topic.clone();
        for p in t.partitions {
            let mut e = EpochEndOffset::default();
            e.partition = p.partition;
            e.leader_epoch = -1;
            e.end_offset = -1;
            let part = image
                .topic(t.topic.as_str())
                .and_then(|ti| ti.partitions.get(p.partition.max(0) as usize).filter(|_| p.partition >= 0));
            match (part, broker.topics.log(t.topic.as_str(), p.partition)) {
                (Some(pi), Some(log)) => {
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch < pi.leader_epoch {
                        e.error_code = ResponseError::FencedLeaderEpoch.code();
                    } else if p.current_leader_epoch > pi.leader_epoch {
                        e.error_code = ResponseError::UnknownLeaderEpoch.code();
                    } else if p.leader_epoch >= 0 && p.leader_epoch <= pi.leader_epoch {
                        e.leader_epoch = pi.leader_epoch;
                        e.end_offset = log.log_end_offset();
                    }
                }
                _ => e.error_code = ResponseError::UnknownTopicOrPartition.code(),
            }
            tr.partitions.push(e);
        }
        resp.topics.push(tr);
    }
    Ok(resp)
}

crate::route_to!(OffsetForLeaderEpoch, handle);
