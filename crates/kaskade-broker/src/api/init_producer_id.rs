//! InitProducerId (key 22), versions 0 to 5: producer ids for idempotent
//! producers. Version 6 (KIP-939 two-phase commit: `enable_2pc`,
//! `keep_prepared_txn`) is not offered, as Kafka 4.4 does not offer it
//! without `transaction.two.phase.commit.enable`.
//!
//! As Kafka 4 (`KafkaApis.handleInitProducerIdRequest`,
//! `TransactionCoordinator.handleInitProducerId`):
//! - without a transactional id the request is "blindly accepted": a new
//!   producer id with epoch 0. That includes KIP-360 re-initialisation,
//!   where an idempotent producer sends its current id and epoch (its epoch
//!   is exhausted, or it lost track of its sequences): it gets a new id,
//!   epoch 0, too;
//! - a producer id and epoch of which exactly one is -1 is INVALID_REQUEST;
//! - an empty transactional id is INVALID_REQUEST.
//!
//! - with a transactional id the transaction coordinator answers
//!   (`txn::TxnService::init_producer_id`): the id's producer id with a
//!   bumped epoch, after aborting a transaction it left open (fencing the
//!   previous producer); `transaction_timeout_ms` above
//!   `transaction.max.timeout.ms` is INVALID_TRANSACTION_TIMEOUT.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use kaskade_types::{ProducerEpoch, ProducerIdAndEpoch};

use crate::broker::Broker;
use crate::error::BrokerError;

const NO_PRODUCER_ID: i64 = -1;
const NO_PRODUCER_EPOCH: i16 = -1;

/// The answer: a producer id and epoch, or an error code (with Kafka's
/// -1s for the id and epoch).
fn response(answer: Result<ProducerIdAndEpoch, i16>) -> InitProducerIdResponse {
    let resp = InitProducerIdResponse::default()
        .with_ongoing_txn_producer_id(ProducerId(NO_PRODUCER_ID))
        .with_ongoing_txn_producer_epoch(NO_PRODUCER_EPOCH);
    match answer {
        Ok(p) => resp.with_producer_id(ProducerId(p.id.get())).with_producer_epoch(p.epoch.get()),
        Err(code) => resp
            .with_error_code(code)
            .with_producer_id(ProducerId(NO_PRODUCER_ID))
            .with_producer_epoch(NO_PRODUCER_EPOCH),
    }
}

fn error(e: ResponseError) -> InitProducerIdResponse {
    response(Err(e.code()))
}

/// Answers one InitProducerId request.
pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    request: InitProducerIdRequest,
) -> Result<InitProducerIdResponse, BrokerError> {
    Ok(answer(broker, version, request).await)
}

async fn answer(broker: &Arc<Broker>, version: i16, request: InitProducerIdRequest) -> InitProducerIdResponse {
    if let Some(txn) = &request.transactional_id {
        if txn.is_empty() {
            return error(ResponseError::InvalidRequest);
        }
        let expected = match (request.producer_id.0, request.producer_epoch) {
            (NO_PRODUCER_ID, NO_PRODUCER_EPOCH) => None,
            (NO_PRODUCER_ID, _) | (_, NO_PRODUCER_EPOCH) => return error(ResponseError::InvalidRequest),
            (pid, epoch) => Some(ProducerIdAndEpoch::new(kaskade_types::ProducerId(pid), ProducerEpoch(epoch))),
        };
        let id = txn.to_string();
        return match broker.txns.init_producer_id(&id, request.transaction_timeout_ms, expected).await {
            Ok(p) => response(Ok(p)),
            Err(e) => response(Err(super::fenced_for(version, 4, e))),
        };
    }
    match (request.producer_id.0, request.producer_epoch) {
        (NO_PRODUCER_ID, NO_PRODUCER_EPOCH) => {}
        (NO_PRODUCER_ID, _) | (_, NO_PRODUCER_EPOCH) => return error(ResponseError::InvalidRequest),
        // KIP-360: an idempotent producer re-initialising gets a new id.
        _ => {}
    }
    match broker.producer_ids.generate(&broker.topics).await {
        // A new id: epoch 0.
        Ok(id) => response(Ok(ProducerIdAndEpoch::new(id, ProducerEpoch(0)))),
        Err(e) => {
            // Kafka answers COORDINATOR_LOAD_IN_PROGRESS while no block of
            // ids is available; clients retry it.
            tracing::error!(error = %e, "allocating a producer id block failed");
            error(ResponseError::CoordinatorLoadInProgress)
        }
    }
}

crate::route_to!(InitProducerId, handle);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::router::Router;
    use kafka_protocol::messages::TransactionalId;
    use kafka_protocol::protocol::StrBytes;

    fn req(pid: i64, epoch: i16, txn: Option<&'static str>) -> InitProducerIdRequest {
        InitProducerIdRequest::default()
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_transactional_id(txn.map(|t| TransactionalId(StrBytes::from_static_str(t))))
    }

    #[test]
    fn answers_as_kafka() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        let b = Arc::new(Broker::for_tests(BrokerConfig::default(), Router::default()));
        let r1 = rt.block_on(answer(&b, 5, req(-1, -1, None)));
        assert_eq!((r1.error_code, r1.producer_epoch), (0, 0));
        let r2 = rt.block_on(answer(&b, 5, req(-1, -1, None)));
        assert_eq!(r2.producer_id.0, r1.producer_id.0 + 1, "a new id each time");
        // KIP-360 re-init with the current id and epoch: a new id, epoch 0.
        let r3 = rt.block_on(answer(&b, 5, req(r2.producer_id.0, 7, None)));
        assert_eq!((r3.error_code, r3.producer_id.0, r3.producer_epoch), (0, r2.producer_id.0 + 1, 0));
        for (pid, epoch) in [(-1, 3), (5, -1)] {
            let r = rt.block_on(answer(&b, 5, req(pid, epoch, None)));
            assert_eq!((r.error_code, r.producer_id.0, r.producer_epoch), (42, -1, -1), "({pid}, {epoch})");
        }
        // A transactional id: its own producer id, the epoch bumped on
        // every init.
        let mut txn = req(-1, -1, Some("tx-1"));
        txn.transaction_timeout_ms = 60_000;
        let t1 = rt.block_on(answer(&b, 5, txn.clone()));
        assert_eq!((t1.error_code, t1.producer_epoch), (0, 0));
        let t2 = rt.block_on(answer(&b, 5, txn.clone()));
        assert_eq!((t2.error_code, t2.producer_id.0, t2.producer_epoch), (0, t1.producer_id.0, 1));
        txn.transaction_timeout_ms = 900_001;
        assert_eq!(rt.block_on(answer(&b, 5, txn)).error_code, 50, "above transaction.max.timeout.ms");
        assert_eq!(rt.block_on(answer(&b, 5, req(-1, -1, Some("")))).error_code, 42);
    }
}
