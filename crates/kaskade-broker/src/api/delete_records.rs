//! DeleteRecords: move a partition's log start offset forward (-1 means
//! the high watermark), deleting whole segments below it.

use kafka_protocol::ResponseError;
use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::broker::Broker;
use crate::error::BrokerError;

pub async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    req: DeleteRecordsRequest,
) -> Result<DeleteRecordsResponse, BrokerError> {
    let mut resp = DeleteRecordsResponse::default();
    for t in req.topics {
        let mut tr = DeleteRecordsTopicResult::default();
        tr.name = t.name.clone();
        for p in t.partitions {
            let mut pr = DeleteRecordsPartitionResult::default();
            pr.partition_index = p.partition_index;
            pr.low_watermark = -1;
            match broker.topics.log(t.name.as_str(), p.partition_index) {
                None => pr.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(log) => {
                    let hw = log.high_watermark();
                    let target = if p.offset == -1 { hw } else { p.offset };
                    if target < 0 || target > hw {
                        pr.error_code = ResponseError::OffsetOutOfRange.code();
                    } else {
                        match tokio::task::spawn_blocking(move || log.advance_log_start(target)).await {
                            Ok(Ok(start)) => pr.low_watermark = start,
                            Ok(Err(e)) => pr.error_code = crate::partition::storage_error(&e).code(),
                            Err(_) => pr.error_code = ResponseError::UnknownServerError.code(),
                        }
                    }
                }
            }
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    Ok(resp)
}

crate::route_to!(DeleteRecords, handle);
