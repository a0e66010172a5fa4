//! The broker's own use of its internal topics (`__consumer_offsets`,
//! `__transaction_state`): record batches it writes (key/value records in
//! one uncompressed batch, plain or transactional), replaying them, and
//! creating a topic on a node of a multi-node cluster, which asks the
//! active controller with CreateTopics (19) on its controller channel, not
//! in an Envelope, as Kafka's broker does for its internal topics.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use kaskade_types::ProducerIdAndEpoch;

use crate::cluster::controller_channel::ControllerChannel;
use crate::error::BrokerError;

/// The CreateTopics that creates internal topic `name` with `partitions`,
/// `replication` and `configs`.
pub fn create_request(
    name: &str,
    partitions: i32,
    replication: i16,
    configs: &BTreeMap<String, String>,
    timeout: Duration,
) -> CreateTopicsRequest {
    let configs = configs.iter().map(|(k, v)| {
        CreatableTopicConfig::default()
            .with_name(StrBytes::from_string(k.clone()))
            .with_value(Some(StrBytes::from_string(v.clone())))
    });
    let topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.to_string())))
        .with_num_partitions(partitions)
        .with_replication_factor(replication)
        .with_configs(configs.collect());
    CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX))
}

/// The only topic's error code (NOT_CONTROLLER there makes the channel
/// ask the next controller; CreateTopics has no top-level code).
fn topic_code(answer: &CreateTopicsResponse) -> i16 {
    answer.topics.first().map_or(ResponseError::UnknownServerError.code(), |t| t.error_code)
}

/// Asks the active controller to create `req`'s topic: `Ok` once created
/// (or found created: TOPIC_ALREADY_EXISTS), else why not. Async.
pub async fn create_through_controller(channel: &ControllerChannel, req: &CreateTopicsRequest) -> Result<(), String> {
    let within = Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0).max(1));
    let answer = channel.request(req, within, topic_code).await.map_err(|e| e.to_string())?;
    match topic_code(&answer) {
        0 => Ok(()),
        code if code == ResponseError::TopicAlreadyExists.code() => Ok(()),
        code => {
            let message = answer.topics.first().and_then(|t| t.error_message.as_ref()).map(|m| m.to_string());
            Err(format!("the active controller answered error code {code}: {}", message.unwrap_or_default()))
        }
    }
}

/// One batch holding `records` (key, value; `None`: tombstone). With a
/// producer (id, epoch) the batch is transactional, as TxnOffsetCommit
/// records are; it carries no sequence, as Kafka writes them.
pub fn encode_batch(
    records: &[(Bytes, Option<Bytes>)],
    now: i64,
    producer: Option<ProducerIdAndEpoch>,
) -> Result<BytesMut, BrokerError> {
    // Kafka's -1s in the batch header: no producer.
    let (producer_id, producer_epoch) = producer.map_or((-1, -1), |p| (p.id.get(), p.epoch.get()));
    let batch: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset - sequence
            // is constant; the batch's base sequence (the first record's)
            // is then -1: no sequence.
            sequence: i as i32 - 1,
            timestamp: now,
            key: Some(key.clone()),
            value: value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &batch, &RecordEncodeOptions { version: 2, compression: Compression::None })
        .map_err(|e| BrokerError::internal(format!("encoding internal records: {e}")))?;
    Ok(buf)
}

/// Bytes read per step while replaying.
const REPLAY_CHUNK: usize = 1 << 20;

/// Reads every record of `log` from its start, in order, into `visit`
/// (start-up replay of an internal topic). Blocking.
pub fn replay(log: &kaskade_log::Log, mut visit: impl FnMut(&Record)) -> Result<usize, BrokerError> {
    let mut count = 0;
    let mut next = log.log_start_offset();
    loop {
        let read = log.read(next, REPLAY_CHUNK, None).map_err(|e| BrokerError::internal(format!("reading: {e}")))?;
        let Some(mut bytes) = read.records else { break };
        // Taken before `next` moves: a read that moves it is progress (the
        // replay once stopped after its first chunk, comparing with the
        // position after this read's batches; issue 14).
        let before = next;
        // Resume after each batch's last offset, not its last record's: a
        // compacted batch keeps its offset range when its last records (or
        // all of them) are gone.
        if let Some(h) = kaskade_log::batch::headers(&bytes).last() {
            next = next.max(h.next_offset());
        }
        let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut bytes)
            .map_err(|e| BrokerError::internal(format!("decoding: {e}")))?;
        for set in sets {
            for record in &set.records {
                next = next.max(record.offset + 1);
                visit(record);
                count += 1;
            }
        }
        if next <= before || next >= read.log_end_offset {
            break;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::protocol::Encodable;

    use super::*;

    #[test]
    fn the_create_request_names_the_topic_and_its_configs() {
        let configs = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
        let req = create_request("__consumer_offsets", 50, 3, &configs, Duration::from_secs(30));
        assert_eq!(req.timeout_ms, 30_000);
        let t = &req.topics[0];
        assert_eq!((t.name.as_str(), t.num_partitions, t.replication_factor), ("__consumer_offsets", 50, 3));
        assert_eq!(t.configs[0].name.as_str(), "cleanup.policy");
        assert_eq!(t.configs[0].value.as_ref().map(|v| v.as_str()), Some("compact"));
        let mut buf = BytesMut::new();
        req.encode(&mut buf, 7).expect("encodes at v7");
        let refused = CreateTopicsResponse::default();
        assert_eq!(topic_code(&refused), ResponseError::UnknownServerError.code(), "no topic answered");
    }
}
