//! Records as the message browser shows them, and the batch it produces.
//!
//! Keys, values and header values are shown as pretty-printed JSON when
//! they parse as JSON, as text when they are UTF-8, else as hex; anything
//! longer than [`SHOW_BYTES`] is cut (with its full size given), so a page of
//! 1 MiB records stays a small answer.

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use serde::Serialize;

use crate::error::ConsoleError;

/// Bytes of a key, value or header shown at most.
pub const SHOW_BYTES: usize = 16 * 1024;

/// A key, value or header value for display.
#[derive(Debug, Serialize, PartialEq)]
pub struct Shown {
    /// "json", "text" or "hex".
    pub kind: &'static str,
    pub text: String,
    /// The size of the whole thing, bytes.
    pub size: usize,
    pub truncated: bool,
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// How `bytes` are shown.
pub fn show(bytes: &[u8]) -> Shown {
    let size = bytes.len();
    let truncated = size > SHOW_BYTES;
    let head = &bytes[..size.min(SHOW_BYTES)];
    if !truncated {
        if let Ok(text) = std::str::from_utf8(head) {
            let trimmed = text.trim_start();
            if trimmed.starts_with('{') || trimmed.starts_with('[') {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
                    if let Ok(pretty) = serde_json::to_string_pretty(&v) {
                        return Shown { kind: "json", text: pretty, size, truncated };
                    }
                }
            }
        }
    }
    // A cut may split a UTF-8 sequence: accept a valid prefix of up to 3 bytes less.
    let text = match std::str::from_utf8(head) {
        Ok(t) => Some(t),
        Err(e) if truncated && head.len() - e.valid_up_to() < 4 && e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).ok()
        }
        Err(_) => None,
    };
    match text {
        Some(t) if !t.chars().any(|c| c.is_control() && !c.is_whitespace()) => {
            Shown { kind: "text", text: t.to_string(), size, truncated }
        }
        _ => Shown { kind: "hex", text: hex(head), size, truncated },
    }
}

#[derive(Debug, Serialize)]
pub struct Message {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub timestamp_type: &'static str,
    pub key: Option<Shown>,
    pub value: Option<Shown>,
    pub headers: Vec<(String, Option<Shown>)>,
}

impl Message {
    /// Whether `needle` (lowercase) occurs in the key, value or headers.
    pub fn matches(&self, needle: &str) -> bool {
        let has = |s: &Option<Shown>| s.as_ref().is_some_and(|s| s.text.to_lowercase().contains(needle));
        has(&self.key)
            || has(&self.value)
            || self.headers.iter().any(|(k, v)| k.to_lowercase().contains(needle) || has(v))
    }
}

/// The data records in fetched `data` at or after `from` (control records
/// and the part of a batch before `from` are skipped), and the offset after
/// the last record decoded (`from` when there was none).
pub fn decode(partition: i32, mut data: Bytes, from: i64) -> Result<(Vec<Message>, i64), ConsoleError> {
    let mut out = Vec::new();
    let mut next = from;
    while !data.is_empty() {
        let set = RecordBatchDecoder::decode(&mut data)
            .map_err(|e| ConsoleError::Internal(format!("partition {partition}: undecodable batch: {e}")))?;
        for r in set.records {
            next = next.max(r.offset + 1);
            if r.control || r.offset < from {
                continue;
            }
            out.push(Message {
                partition,
                offset: r.offset,
                timestamp: r.timestamp,
                timestamp_type: match r.timestamp_type {
                    TimestampType::Creation => "CreateTime",
                    TimestampType::LogAppend => "LogAppendTime",
                },
                key: r.key.as_deref().map(show),
                value: r.value.as_deref().map(show),
                headers: r.headers.iter().map(|(k, v)| (k.to_string(), v.as_deref().map(show))).collect(),
            });
        }
    }
    Ok((out, next))
}

/// One record to produce.
#[derive(Debug, Default)]
pub struct Outgoing {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    pub timestamp: i64,
}

/// A magic v2 batch of one uncompressed record, as a plain (non-idempotent)
/// producer sends it.
pub fn encode(record: Outgoing) -> Result<Bytes, ConsoleError> {
    let headers: IndexMap<StrBytes, Option<Bytes>> =
        record.headers.into_iter().map(|(k, v)| (StrBytes::from_string(k), v)).collect();
    let r = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: record.timestamp,
        key: record.key,
        value: record.value,
        headers,
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, [&r], &RecordEncodeOptions { version: 2, compression: Compression::None })
        .map_err(|e| ConsoleError::Internal(format!("encoding the record: {e}")))?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_pretty_printed_text_kept_binary_hex() {
        let j = show(br#"{"a":[1,2]}"#);
        assert_eq!(j.kind, "json");
        assert!(j.text.contains("\n  \"a\""));
        assert_eq!(show(b"hello").kind, "text");
        let b = show(&[0, 1, 0xfe]);
        assert_eq!((b.kind, b.text.as_str()), ("hex", "0001fe"));
        assert_eq!(show(b"{not json").kind, "text");
    }

    #[test]
    fn large_values_are_cut_with_their_size() {
        let big = vec![b'x'; 1 << 20];
        let s = show(&big);
        assert!(s.truncated);
        assert_eq!(s.size, 1 << 20);
        assert_eq!(s.text.len(), SHOW_BYTES);
        // A multi-byte character split by the cut is dropped, not shown as hex.
        let mut utf = vec![b'a'; SHOW_BYTES - 1];
        utf.extend_from_slice("é and more".as_bytes());
        assert_eq!(show(&utf).kind, "text");
    }

    #[test]
    fn encoded_records_decode_back_with_headers() {
        let batch = encode(Outgoing {
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"{\"v\":1}")),
            headers: vec![("h".into(), Some(Bytes::from_static(b"x"))), ("nil".into(), None)],
            timestamp: 1234,
        })
        .expect("encodes");
        let (msgs, next) = decode(3, batch, 0).expect("decodes");
        assert_eq!(next, 1);
        assert_eq!(msgs.len(), 1);
        let m = &msgs[0];
        assert_eq!((m.partition, m.offset, m.timestamp), (3, 0, 1234));
        assert_eq!(m.key.as_ref().map(|k| k.text.as_str()), Some("k"));
        assert_eq!(m.value.as_ref().map(|v| v.kind), Some("json"));
        assert_eq!(m.headers.len(), 2);
        assert!(m.headers[1].1.is_none());
        assert!(m.matches("\"v\""));
        assert!(!m.matches("absent"));
        // Records before the requested offset are skipped.
        assert!(decode(3, encode(Outgoing::default()).expect("encodes"), 1).expect("decodes").0.is_empty());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(0, Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 1]), 0).is_err());
    }
}
