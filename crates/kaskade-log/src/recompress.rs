//! Recompression of a produced batch to the topic's `compression.type`
//! (Kafka's `LogValidator`): when a topic names a codec other than
//! `producer` and the batch was compressed differently, the broker decodes
//! its records and encodes them again with the topic's codec, at the
//! KIP-390 level the topic configures (`compression.gzip.level`,
//! `compression.lz4.level`, `compression.zstd.level`). Everything else of
//! the batch stays: offsets deltas, timestamps, keys, values, headers,
//! producer id, epoch and sequence, the transactional flag.
//!
//! The only path that decodes records of a client batch; it runs off the
//! async workers (the caller's job) because compression costs CPU in
//! proportion to the data.

use std::io::Write;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::{Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};

use crate::error::{LogError, Result};

/// A topic's `compression.type` other than `producer`, with its level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    codec: Compression,
    /// The KIP-390 level; `None` for codecs without levels (snappy, none).
    level: Option<i32>,
}

/// gzip's level -1 means the codec's default (zlib's 6).
const GZIP_DEFAULT_LEVEL: u32 = 6;

impl Target {
    /// The target for a topic's configuration; `None` for `producer`
    /// (batches are stored as the producer compressed them) and for values
    /// the config layer would not have accepted.
    pub fn from_config(compression_type: &str, gzip_level: i32, lz4_level: i32, zstd_level: i32) -> Option<Target> {
        let (codec, level) = match compression_type {
            "uncompressed" => (Compression::None, None),
            "gzip" => (Compression::Gzip, Some(gzip_level)),
            "snappy" => (Compression::Snappy, None),
            "lz4" => (Compression::Lz4, Some(lz4_level)),
            "zstd" => (Compression::Zstd, Some(zstd_level)),
            _ => return None,
        };
        Some(Target { codec, level })
    }

    /// Whether a batch whose attributes name codec `batch_codec` (the low
    /// three bits) must be recompressed: Kafka keeps a batch already in the
    /// topic's codec, whatever its level.
    pub fn needs(&self, batch_codec: i16) -> bool {
        batch_codec != self.codec as i16
    }
}

/// The batch `batch` (one magic v2 batch) with its records compressed as
/// `target` says.
pub fn recompress(batch: &Bytes, target: Target) -> Result<Bytes> {
    let mut input = batch.clone();
    let set = RecordBatchDecoder::decode(&mut input)
        .map_err(|e| LogError::CorruptBatch(format!("undecodable batch: {e}")))?;
    if set.records.is_empty() {
        return Ok(batch.clone());
    }
    let options = RecordEncodeOptions { version: 2, compression: target.codec };
    let mut out = BytesMut::with_capacity(batch.len());
    let level = target.level;
    let compressor =
        move |records: &mut BytesMut, out: &mut BytesMut, codec: Compression| compress(records, out, codec, level);
    RecordBatchEncoder::encode_with_custom_compression(&mut out, set.records.iter(), &options, Some(compressor))
        .map_err(|e| LogError::InvalidRecord(format!("recompressing the batch failed: {e}")))?;
    Ok(out.freeze())
}

fn compress(records: &mut BytesMut, out: &mut BytesMut, codec: Compression, level: Option<i32>) -> anyhow::Result<()> {
    let plain = records.split().freeze();
    match codec {
        Compression::None => out.put_slice(&plain),
        Compression::Gzip => {
            let level = match level {
                Some(l) if (0..=9).contains(&l) => l as u32,
                _ => GZIP_DEFAULT_LEVEL,
            };
            let mut e = flate2::write::GzEncoder::new(out.writer(), flate2::Compression::new(level));
            e.write_all(&plain)?;
            e.finish()?;
        }
        Compression::Snappy => {
            // Kafka's snappy is the xerial framing; the protocol crate
            // writes and reads it, so let it do this one.
            use kafka_protocol::compression::{Compressor, Snappy};
            <Snappy as Compressor<BytesMut>>::compress(out, |b: &mut BytesMut| {
                b.put_slice(&plain);
                Ok(())
            })?;
        }
        Compression::Lz4 => {
            let mut e = lz4::EncoderBuilder::new()
                .level(level.unwrap_or(9).clamp(1, 17) as u32)
                .block_mode(lz4::BlockMode::Independent)
                .build(out.writer())?;
            std::io::copy(&mut plain.reader(), &mut e)?;
            let (_, finished) = e.finish();
            finished?;
        }
        Compression::Zstd => {
            zstd::stream::copy_encode(plain.reader(), out.writer(), level.unwrap_or(3))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{Record, TimestampType};

    fn batch(codec: Compression) -> Bytes {
        let records: Vec<Record> = (0..50)
            .map(|i| Record {
                transactional: true,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 42,
                producer_epoch: 3,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: 100 + i as i32,
                timestamp: 1_700_000_000_000 + i,
                key: (i % 7 != 0).then(|| Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(format!("value {i} {}", "x".repeat(200)))),
                headers: IndexMap::from([(StrBytes::from_static_str("h"), Some(Bytes::from_static(b"v")))]),
            })
            .collect();
        let mut out = BytesMut::new();
        RecordBatchEncoder::encode(&mut out, records.iter(), &RecordEncodeOptions { version: 2, compression: codec })
            .expect("encode");
        out.freeze()
    }

    fn decoded(b: &Bytes) -> kafka_protocol::records::RecordSet {
        RecordBatchDecoder::decode(&mut b.clone()).expect("decodes")
    }

    #[test]
    fn every_codec_round_trips_the_records_and_the_producer_fields() {
        let original = batch(Compression::None);
        let want = decoded(&original).records;
        for (name, codec) in [
            ("gzip", Compression::Gzip),
            ("snappy", Compression::Snappy),
            ("lz4", Compression::Lz4),
            ("zstd", Compression::Zstd),
        ] {
            let target = Target::from_config(name, 9, 17, 19).expect("a codec");
            assert!(target.needs(0), "{name}: an uncompressed batch is recompressed");
            let out = recompress(&original, target).expect(name);
            let header = crate::batch::BatchHeader::parse(&out).expect("header");
            assert_eq!(header.compression(), codec as i16, "{name}");
            assert!(out.len() < original.len(), "{name} compresses repetitive values");
            let got = decoded(&out);
            assert_eq!(got.compression, codec);
            assert_eq!(got.records, want, "{name}: records, sequence, producer, headers kept");
            // And back to uncompressed.
            let plain = recompress(&out, Target::from_config("uncompressed", -1, 9, 3).expect("none")).expect("none");
            assert_eq!(decoded(&plain).records, want);
        }
    }

    #[test]
    fn levels_change_the_output_and_same_codec_batches_are_kept() {
        let original = batch(Compression::None);
        let fast = recompress(&original, Target::from_config("zstd", -1, 9, 1).expect("zstd")).expect("zstd 1");
        let strong = recompress(&original, Target::from_config("zstd", -1, 9, 19).expect("zstd")).expect("zstd 19");
        assert_ne!(fast, strong, "the zstd level is applied");
        let zstd = Target::from_config("zstd", -1, 9, 3).expect("zstd");
        assert!(!zstd.needs(Compression::Zstd as i16));
        assert!(zstd.needs(Compression::Gzip as i16));
        assert!(Target::from_config("producer", -1, 9, 3).is_none());
    }

    #[test]
    fn an_undecodable_batch_is_refused() {
        let mut broken = BytesMut::from(&batch(Compression::None)[..]);
        let len = broken.len();
        broken.truncate(len - 10);
        assert!(recompress(&broken.freeze(), Target::from_config("gzip", -1, 9, 3).expect("gzip")).is_err());
    }
}
