//! DeleteRecords: move a partition's log start offset forward (-1 means
//! the high watermark), deleting whole segments below it.

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::broker::Broker;
use crate::topic::manager::code;

pub async fn handle(broker: &Arc<Broker>, _version: i16, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut resp = DeleteRecordsResponse::default();
    for t in req.topics {
        let mut tr = DeleteRecordsTopicResult::default();
        tr.name = t.name.clone();
        for p in t.partitions {
            let mut pr = DeleteRecordsPartitionResult::default();
            pr.partition_index = p.partition_index;
            pr.low_watermark = -1;
            match broker.topics.log(t.name.as_str(), p.partition_index) {
                None => pr.error_code = code::UNKNOWN_TOPIC_OR_PARTITION,
                Some(log) => {
                    let hw = log.high_watermark();
                    let target = if p.offset == -1 { hw } else { p.offset };
                    if target < 0 || target > hw {
                        pr.error_code = 1; // OFFSET_OUT_OF_RANGE
                    } else {
                        match tokio::task::spawn_blocking(move || log.advance_log_start(target)).await {
                            Ok(Ok(start)) => pr.low_watermark = start,
                            Ok(Err(e)) => pr.error_code = e.kafka_code(),
                            Err(_) => pr.error_code = -1,
                        }
                    }
                }
            }
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    resp
}

pub fn route(
    broker: Arc<Broker>,
    header: kafka_protocol::messages::RequestHeader,
    body: kafka_protocol::messages::RequestKind,
) -> crate::router::HandlerFuture {
    super::handler(async move {
        let request = crate::request_body!(body, DeleteRecords)?;
        Ok(kafka_protocol::messages::ResponseKind::DeleteRecords(
            handle(&broker, header.request_api_version, request).await,
        ))
    })
}
