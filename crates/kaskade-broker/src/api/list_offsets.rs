//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest
//! local (-4), earliest tiered (-5, no tiering: the log start) and by
//! timestamp, with Kafka's semantics: "latest" is the high watermark
//! (read_committed: the last stable offset), and a timestamp lookup answers
//! the first record whose timestamp is >= the one asked for.

use kafka_protocol::ResponseError;
use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::records::RecordBatchDecoder;
use kaskade_log::Log;

use crate::broker::Broker;
use crate::error::BrokerError;

pub const EARLIEST: i64 = -2;
pub const LATEST: i64 = -1;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL: i64 = -4;
pub const EARLIEST_TIERED: i64 = -5;
pub const LATEST_TIERED: i64 = -6;

/// (offset, timestamp) for a lookup, or a Kafka error code. Under
/// read_committed nothing at or past the last stable offset is returned
/// (the latest offset is the LSO), as Kafka's `fetchOffsetForTimestamp`.
fn lookup(log: &Log, timestamp: i64, read_committed: bool) -> Result<(i64, i64), i16> {
    // Kafka's "last fetchable offset": no answer may point at or past it.
    let fetchable = if read_committed { log.last_stable_offset() } else { log.high_watermark() };
    match timestamp {
        EARLIEST | EARLIEST_LOCAL | EARLIEST_TIERED => Ok((log.log_start_offset(), -1)),
        LATEST | LATEST_TIERED => Ok((fetchable, -1)),
        MAX_TIMESTAMP => Ok(match log.max_timestamp() {
            Some((ts, off)) if off < fetchable => (exact_max(log, ts, off).unwrap_or(off), ts),
            _ => (-1, -1),
        }),
        t if t >= 0 => {
            let hit = log.find_by_timestamp(t).map_err(|e| crate::partition::storage_error(&e).code())?;
            let Some(hit) = hit.filter(|h| h.header.base_offset < fetchable) else { return Ok((-1, -1)) };
            // A batch may straddle the log start (DeleteRecords): records
            // below it are gone, so the answer starts at the log start.
            let start = log.log_start_offset();
            let found = first_record_at_or_after(&hit.batch, t, start)
                .unwrap_or((hit.header.base_offset.max(start), hit.header.max_timestamp));
            Ok(if found.0 < fetchable { found } else { (-1, -1) })
        }
        _ => Err(ResponseError::InvalidRequest.code()),
    }
}

/// Decodes one batch (any compression) and finds the first record at or
/// past offset `from` with timestamp >= `t`.
fn first_record_at_or_after(batch: &bytes::Bytes, t: i64, from: i64) -> Option<(i64, i64)> {
    let mut buf = batch.clone();
    let set = RecordBatchDecoder::decode(&mut buf).ok()?;
    set.records.iter().find(|r| r.offset >= from && r.timestamp >= t).map(|r| (r.offset, r.timestamp))
}

/// The offset of the record that holds the max timestamp (KIP-734), from
/// the batch the log reports.
fn exact_max(log: &Log, ts: i64, batch_last: i64) -> Option<i64> {
    let r = log.read(batch_last, 1, None).ok()?.records?;
    let mut buf = r;
    let set = RecordBatchDecoder::decode(&mut buf).ok()?;
    set.records.iter().find(|r| r.timestamp == ts).map(|r| r.offset)
}

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: ListOffsetsRequest,
) -> Result<ListOffsetsResponse, BrokerError> {
    let read_committed = version >= 2 && req.isolation_level == 1;
    let image = broker.topics.image();
    let mut resp = ListOffsetsResponse::default();
    for t in req.topics {
        let mut tr = ListOffsetsTopicResponse::default();
        tr.name = t.name.clone();
        let topic = image.topic(t.name.as_str());
        for p in t.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            pr.timestamp = -1;
            pr.offset = -1;
            let part = topic.and_then(|tp| {
                tp.partitions
                    .get(p.partition_index.max(0) as usize)
                    .filter(|_| p.partition_index >= 0)
                    .map(|pi| (tp, pi))
            });
            let Some((tp, pi)) = part else {
                pr.error_code = ResponseError::UnknownTopicOrPartition.code();
                tr.partitions.push(pr);
                continue;
            };
            if version >= 4 {
                pr.leader_epoch = pi.leader_epoch;
            }
            if p.current_leader_epoch >= 0 && p.current_leader_epoch < pi.leader_epoch {
                pr.error_code = ResponseError::FencedLeaderEpoch.code();
            } else if p.current_leader_epoch > pi.leader_epoch {
                pr.error_code = ResponseError::UnknownLeaderEpoch.code();
            } else if let Some(log) = broker.topics.log(&tp.name, p.partition_index) {
                let ts = p.timestamp;
                let res =
                    tokio::task::spawn_blocking(move || lookup(&log, ts, read_committed)).await.unwrap_or(Err(-1));
                match res {
                    Ok((offset, timestamp)) => {
                        pr.offset = offset;
                        pr.timestamp = timestamp;
                    }
                    Err(c) => pr.error_code = c,
                }
            } else {
                pr.error_code = ResponseError::UnknownTopicOrPartition.code();
            }
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    Ok(resp)
}

crate::route_to!(ListOffsets, handle);
