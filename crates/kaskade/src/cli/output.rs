//! Output for people (aligned tables, Kafka console-consumer style lines)
//! and for programs (JSON).

use std::io::Write;

use bytes::Bytes;
use clap::ValueEnum;
use kafka_protocol::records::TimestampType;
use serde::Serialize;
use uuid::Uuid;

use kaskade_client::records::ConsumedRecord;

/// `--output` of the topic commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    #[default]
    Table,
    /// JSON for programs.
    Json,
}

/// A table with a header row, columns separated by two spaces.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(headers: I) -> Table {
        Table { headers: headers.into_iter().map(Into::into).collect(), rows: Vec::new() }
    }

    pub fn row<I: IntoIterator<Item = S>, S: Into<String>>(&mut self, cells: I) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table as text, one line per row, each ending in a newline.
    /// Trailing spaces are trimmed; the last column is not padded.
    pub fn render(&self) -> String {
        let ncols = self.rows.iter().map(Vec::len).chain([self.headers.len()]).max().unwrap_or(0);
        let mut widths = vec![0usize; ncols];
        for r in std::iter::once(&self.headers).chain(&self.rows) {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(c);
                if i + 1 < r.len() {
                    for _ in c.chars().count()..widths[i] {
                        line.push(' ');
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Comma-separated node ids, e.g. `1,2,3`.
pub fn id_list(ids: &[kaskade_types::NodeId]) -> String {
    ids.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",")
}

/// A topic id as Kafka prints it (`Uuid.toString()`): URL-safe base64
/// of the 16 bytes, without padding, 22 characters.
pub fn kafka_uuid(id: &Uuid) -> String {
    base64(id.as_bytes(), URL_SAFE_ALPHABET, false)
}

const STD_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64(data: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 with padding.
pub fn base64_std(data: &[u8]) -> String {
    base64(data, STD_ALPHABET, true)
}

/// Bytes as text the way Kafka's console consumer prints them: `null`
/// for a null, else the bytes as UTF-8 (invalid sequences replaced).
pub fn bytes_text(b: &Option<Bytes>) -> String {
    match b {
        None => "null".to_string(),
        Some(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// Bytes in JSON: null, a string when valid UTF-8, else
/// `{"base64": "..."}`.
pub fn bytes_json(b: &Option<Bytes>) -> serde_json::Value {
    match b {
        None => serde_json::Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => serde_json::Value::String(s.to_string()),
            Err(_) => serde_json::json!({ "base64": base64_std(b) }),
        },
    }
}

/// Which fields `consume` prints.
#[derive(Debug, Clone, Default)]
pub struct RecordFormat {
    pub json: bool,
    pub print_key: bool,
    pub print_headers: bool,
    pub print_timestamp: bool,
    pub print_partition: bool,
    pub print_offset: bool,
}

#[derive(Serialize)]
struct JsonRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: serde_json::Value,
    headers: serde_json::Map<String, serde_json::Value>,
    value: serde_json::Value,
}

/// One consumed record as one line (no trailing newline). Text follows
/// Kafka's `DefaultMessageFormatter`: the chosen fields in the order
/// timestamp, partition, offset, headers, key, value, separated by tabs.
pub fn format_record(topic: &str, partition: i32, r: &ConsumedRecord, f: &RecordFormat) -> String {
    if f.json {
        let rec = JsonRecord {
            topic,
            partition,
            offset: r.offset.get(),
            timestamp: r.timestamp,
            key: bytes_json(&r.key),
            headers: r.headers.iter().map(|h| (h.key.clone(), bytes_json(&h.value))).collect(),
            value: bytes_json(&r.value),
        };
        return serde_json::to_string(&rec).expect("records serialize");
    }
    let mut fields: Vec<String> = Vec::with_capacity(6);
    if f.print_timestamp {
        let kind = match r.timestamp_type {
            TimestampType::Creation => "CreateTime",
            TimestampType::LogAppend => "LogAppendTime",
        };
        fields.push(if r.timestamp < 0 { "NO_TIMESTAMP".to_string() } else { format!("{kind}:{}", r.timestamp) });
    }
    if f.print_partition {
        fields.push(format!("Partition:{partition}"));
    }
    if f.print_offset {
        fields.push(format!("Offset:{}", r.offset));
    }
    if f.print_headers {
        fields.push(if r.headers.is_empty() {
            "NO_HEADERS".to_string()
        } else {
            r.headers.iter().map(|h| format!("{}:{}", h.key, bytes_text(&h.value))).collect::<Vec<_>>().join(",")
        });
    }
    if f.print_key {
        fields.push(bytes_text(&r.key));
    }
    fields.push(bytes_text(&r.value));
    fields.join("\t")
}

/// Write to stdout; `false` when stdout is gone (e.g. `| head`), in which
/// case the caller should stop quietly.
pub fn write_stdout(s: &str) -> bool {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
        Err(e) => {
            eprintln!("error: writing to stdout: {e}");
            false
        }
    }
}

/// Print a JSON value (pretty) and a newline to stdout.
pub fn print_json(v: &serde_json::Value) {
    write_stdout(&(serde_json::to_string_pretty(v).expect("json serializes") + "\n"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaskade_client::records::Header;

    fn rec() -> ConsumedRecord {
        ConsumedRecord {
            offset: kaskade_types::Offset(42),
            timestamp: 1_700_000_000_123,
            timestamp_type: TimestampType::Creation,
            key: Some(Bytes::from_static(b"k1")),
            value: Some(Bytes::from_static(b"hello")),
            headers: vec![Header::new("a", Some(Bytes::from_static(b"1"))), Header::new("b", None)],
        }
    }

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(["NAME", "PARTITIONS"]);
        t.row(["orders", "3"]);
        t.row(["a-much-longer-name", "12"]);
        assert_eq!(t.render(), "NAME                PARTITIONS\norders              3\na-much-longer-name  12\n");
    }

    #[test]
    fn value_only_by_default() {
        assert_eq!(format_record("t", 0, &rec(), &RecordFormat::default()), "hello");
        let mut r = rec();
        r.value = None;
        assert_eq!(format_record("t", 0, &r, &RecordFormat::default()), "null");
    }

    #[test]
    fn all_fields_in_kafka_order() {
        let f = RecordFormat {
            json: false,
            print_key: true,
            print_headers: true,
            print_timestamp: true,
            print_partition: true,
            print_offset: true,
        };
        assert_eq!(
            format_record("t", 3, &rec(), &f),
            "CreateTime:1700000000123\tPartition:3\tOffset:42\ta:1,b:null\tk1\thello"
        );
        let mut r = rec();
        r.headers.clear();
        r.key = None;
        r.timestamp_type = TimestampType::LogAppend;
        assert_eq!(
            format_record("t", 3, &r, &f),
            "LogAppendTime:1700000000123\tPartition:3\tOffset:42\tNO_HEADERS\tnull\thello"
        );
    }

    #[test]
    fn json_record() {
        let f = RecordFormat { json: true, ..Default::default() };
        let line = format_record("orders", 1, &rec(), &f);
        assert_eq!(
            line,
            r#"{"topic":"orders","partition":1,"offset":42,"timestamp":1700000000123,"key":"k1","headers":{"a":"1","b":null},"value":"hello"}"#
        );
        let mut r = rec();
        r.value = Some(Bytes::from_static(&[0xff, 0x00, 0x61]));
        r.key = None;
        let v: serde_json::Value = serde_json::from_str(&format_record("t", 0, &r, &f)).unwrap();
        assert_eq!(v["value"]["base64"], "/wBh");
        assert!(v["key"].is_null());
    }

    #[test]
    fn base64_forms() {
        assert_eq!(base64_std(b""), "");
        assert_eq!(base64_std(b"f"), "Zg==");
        assert_eq!(base64_std(b"fo"), "Zm8=");
        assert_eq!(base64_std(b"foo"), "Zm9v");
        assert_eq!(base64_std(b"foobar"), "Zm9vYmFy");
        // Kafka's Uuid.toString of all-zero and of bytes 0xfb.. is 22
        // URL-safe characters.
        assert_eq!(kafka_uuid(&Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(kafka_uuid(&Uuid::from_bytes([0xfb; 16])), "-_v7-_v7-_v7-_v7-_v7-w");
    }
}
