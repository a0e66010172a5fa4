//! OffsetForLeaderEpoch: the end offset of a leader epoch, answered by the
//! partition layer from the log's leader-epoch cache
//! (`Partition::end_offset_for_epoch`, Kafka's `lastOffsetForLeaderEpoch`):
//! after the current-epoch checks, the largest epoch <= the one asked for
//! and where it ended (the log end for the latest); an epoch the cache
//! cannot place is undefined (-1, -1), as Kafka answers.

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kaskade_types::LeaderEpoch;

use crate::broker::Broker;
use crate::error::BrokerError;

pub async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    req: OffsetForLeaderEpochRequest,
) -> Result<OffsetForLeaderEpochResponse, BrokerError> {
    let mut resp = OffsetForLeaderEpochResponse::default();
    for t in req.topics {
        let mut tr = OffsetForLeaderTopicResult::default();
        tr.topic = t.topic.clone();
        for p in t.partitions {
            let mut e = EpochEndOffset::default();
            e.partition = p.partition;
            e.leader_epoch = -1;
            e.end_offset = -1;
            let current = LeaderEpoch::from_wire(p.current_leader_epoch);
            let answer = broker.topics.partition(t.topic.as_str(), p.partition).and_then(|partition| {
                match LeaderEpoch::from_wire(p.leader_epoch) {
                    Some(requested) => partition.end_offset_for_epoch(current, requested),
                    // An undefined epoch has no end: only the checks apply.
                    None => partition.check_epoch(current).map(|()| None),
                }
            });
            match answer {
                Ok(Some((epoch, end))) => {
                    e.leader_epoch = epoch.get();
                    e.end_offset = end.get();
                }
                Ok(None) => {}
                Err(err) => e.error_code = err.response_error().code(),
            }
            tr.partitions.push(e);
        }
        resp.topics.push(tr);
    }
    Ok(resp)
}

crate::route_to!(OffsetForLeaderEpoch, handle);
