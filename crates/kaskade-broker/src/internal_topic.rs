//! Record batches the broker itself writes to its internal topics
//! (`__consumer_offsets`, `__transaction_state`): key/value records in one
//! uncompressed batch, plain or transactional.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use kaskade_types::ProducerIdAndEpoch;

use crate::error::BrokerError;

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
