//! `kaskade produce TOPIC`: one record per line of standard input.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Result};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use kafka_protocol::records::Compression;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::topic::parse_config;
use kaskade_client::partitioner::{partition_for_key, StickyPartitioner};
use kaskade_client::producer::{self, PartitionBatch};
use kaskade_client::records::{encode_batch, Header, ProducerRecord};
use kaskade_client::Client;

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Topic to produce to.
    pub topic: String,
    /// Split each line into key and value at the first SEP (lines without
    /// SEP are an error). Without it, lines are values with no key.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Header added to every record, e.g. --header source=cli (repeatable).
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE", value_parser = parse_config)]
    pub headers: Vec<(String, String)>,
    /// Send every record to this partition (default: by key hash, as
    /// Kafka's default partitioner; unkeyed records stick to a partition
    /// per batch).
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// Acknowledgements: 0 (none), 1 (leader), all / -1 (in-sync replicas).
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    pub acks: i16,
    /// Compression codec for the record batches.
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    pub compression: CompressionArg,
    /// Bytes of records per partition batch before sending.
    #[arg(long, default_value_t = 16384, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
    /// How long to wait for more lines before sending a partial batch.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// How long the broker may take to acknowledge a request.
    #[arg(long, default_value_t = 30000)]
    pub request_timeout_ms: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl From<CompressionArg> for Compression {
    fn from(c: CompressionArg) -> Compression {
        match c {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Lz4 => Compression::Lz4,
            CompressionArg::Zstd => Compression::Zstd,
        }
    }
}

/// `0`, `1`, `all` or `-1`.
pub fn parse_acks(s: &str) -> std::result::Result<i16, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "0" => Ok(0),
        "1" => Ok(1),
        "all" | "-1" => Ok(-1),
        _ => Err(format!("acks must be 0, 1, all or -1, not '{s}'")),
    }
}

/// Split a line into key and value at the first `sep`.
pub fn split_key(line: &[u8], sep: &[u8]) -> Option<(Bytes, Bytes)> {
    if sep.is_empty() || line.len() < sep.len() {
        return None;
    }
    let at = line.windows(sep.len()).position(|w| w == sep)?;
    Some((Bytes::copy_from_slice(&line[..at]), Bytes::copy_from_slice(&line[at + sep.len()..])))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Lines from stdin, read on a blocking thread and handed over in chunks:
/// every complete line already buffered goes in one chunk, so piped input
/// is batched while typed lines go out at once.
fn spawn_stdin_reader() -> mpsc::Receiver<std::io::Result<Vec<Vec<u8>>>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut input = std::io::BufReader::with_capacity(1 << 16, stdin.lock());
        loop {
            let mut chunk = Vec::new();
            let mut eof = false;
            loop {
                let mut line = Vec::new();
                match input.read_until(b'\n', &mut line) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(_) => {
                        if line.last() == Some(&b'\n') {
                            line.pop();
                            if line.last() == Some(&b'\r') {
                                line.pop();
                            }
                        } else {
                            eof = true; // last line without a newline
                        }
                        chunk.push(line);
                        if eof || chunk.len() >= 1000 || !input.buffer().contains(&b'\n') {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
            if !chunk.is_empty() && tx.blocking_send(Ok(chunk)).is_err() {
                return;
            }
            if eof {
                return;
            }
        }
    });
    rx
}

/// Records waiting to be sent, per partition.
#[derive(Default)]
struct Accumulator {
    batches: BTreeMap<i32, (Vec<ProducerRecord>, usize)>,
    first_at: Option<Instant>,
}

impl Accumulator {
    /// Add a record; true when its partition's batch is full.
    fn add(&mut self, partition: i32, r: ProducerRecord, batch_size: usize) -> bool {
        let size = r.approx_size();
        let e = self.batches.entry(partition).or_default();
        e.0.push(r);
        e.1 += size;
        self.first_at.get_or_insert_with(Instant::now);
        e.1 >= batch_size
    }

    fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    fn take(&mut self) -> BTreeMap<i32, (Vec<ProducerRecord>, usize)> {
        self.first_at = None;
        std::mem::take(&mut self.batches)
    }
}

struct Stats {
    records: u64,
    partitions: BTreeSet<i32>,
}

pub async fn run(args: ProduceArgs, client: &Client) -> Result<i32> {
    let topic = args.topic.clone();
    // Fails early, before reading input, if the topic does not exist.
    let meta = client.topic(&topic, true).await.map_err(|e| super::hints::for_topic(e, &topic))?;
    let num_partitions = meta.num_partitions();
    if num_partitions == 0 {
        bail!("topic '{topic}' has no partitions");
    }
    if let Some(p) = args.partition {
        if p < 0 || p >= num_partitions {
            bail!(
                "topic '{topic}' has {num_partitions} partition(s), 0..={}; there is no partition {p}\n  hint: add partitions with `kaskade topic alter {topic} --partitions N`",
                num_partitions - 1
            );
        }
    }
    let compression: Compression = args.compression.into();
    let batch_size = args.batch_size as usize;
    let linger = Duration::from_millis(args.linger_ms);
    let headers: Vec<Header> =
        args.headers.iter().map(|(k, v)| Header::new(k.clone(), Some(Bytes::copy_from_slice(v.as_bytes())))).collect();
    let sep = args.key_separator.as_ref().map(|s| s.as_bytes().to_vec());
    if sep.as_ref().is_some_and(|s| s.is_empty()) {
        bail!("--key-separator must not be empty");
    }

    let mut sticky = StickyPartitioner::new(num_partitions, batch_size);
    let mut acc = Accumulator::default();
    let mut stats = Stats { records: 0, partitions: BTreeSet::new() };
    let mut lines = spawn_stdin_reader();
    let mut line_no: u64 = 0;
    let mut input_error: Option<anyhow::Error> = None;

    'input: loop {
        let deadline = acc.first_at.map(|t| t + linger);
        let chunk = tokio::select! {
            c = lines.recv() => c,
            _ = sleep_until_opt(deadline) => {
                send(client, &args, &topic, compression, acc.take(), &mut stats).await?;
                continue;
            }
        };
        let Some(chunk) = chunk else { break };
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                input_error = Some(anyhow!("reading standard input: {e}"));
                break;
            }
        };
        let mut full = false;
        for line in chunk {
            line_no += 1;
            let (key, value) = match &sep {
                None => (None, Bytes::from(line)),
                Some(sep) => match split_key(&line, sep) {
                    Some((k, v)) => (Some(k), v),
                    None => {
                        input_error = Some(anyhow!(
                            "line {line_no} has no key separator '{}'; every line must be KEY{}VALUE when --key-separator is given",
                            args.key_separator.as_deref().unwrap_or_default(),
                            args.key_separator.as_deref().unwrap_or_default()
                        ));
                        break 'input;
                    }
                },
            };
            let record = ProducerRecord { key, value: Some(value), headers: headers.clone(), timestamp: now_ms() };
            let partition = match (args.partition, &record.key) {
                (Some(p), _) => p,
                (None, Some(k)) => partition_for_key(k, num_partitions),
                (None, None) => sticky.next(record.approx_size()),
            };
            full |= acc.add(partition, record, batch_size);
        }
        if full {
            send(client, &args, &topic, compression, acc.take(), &mut stats).await?;
        }
    }
    // Send what was read before EOF (or before a bad line).
    if !acc.is_empty() {
        send(client, &args, &topic, compression, acc.take(), &mut stats).await?;
    }
    if stats.records > 0 || input_error.is_none() {
        summary(&topic, &stats, args.acks);
    }
    match input_error {
        Some(e) => Err(e),
        None => Ok(0),
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn summary(topic: &str, stats: &Stats, acks: i16) {
    let parts: Vec<String> = stats.partitions.iter().map(i32::to_string).collect();
    let verb = if acks == 0 { "Sent (acks=0, not acknowledged)" } else { "Produced" };
    eprintln!(
        "{verb} {} record{} to topic '{topic}' ({} partition{}{}).",
        stats.records,
        if stats.records == 1 { "" } else { "s" },
        parts.len(),
        if parts.len() == 1 { "" } else { "s" },
        if parts.is_empty() { String::new() } else { format!(": {}", parts.join(", ")) }
    );
}

async fn send(
    client: &Client,
    args: &ProduceArgs,
    topic: &str,
    compression: Compression,
    batches: BTreeMap<i32, (Vec<ProducerRecord>, usize)>,
    stats: &mut Stats,
) -> Result<()> {
    if batches.is_empty() {
        return Ok(());
    }
    let mut encoded = Vec::with_capacity(batches.len());
    for (partition, (records, _)) in &batches {
        encoded.push(PartitionBatch {
            partition: *partition,
            records: records.len(),
            data: encode_batch(records, compression)?,
        });
    }
    let results = producer::produce(client, topic, args.acks, args.request_timeout_ms, encoded).await?;
    let mut first_error = None;
    for r in results {
        match r.outcome {
            Ok(_) => {
                stats.records += r.records as u64;
                stats.partitions.insert(r.partition);
            }
            Err(e) => {
                if first_error.is_none() {
                    first_error = Some(e);
                }
            }
        }
    }
    match first_error {
        None => Ok(()),
        Some(e) => {
            if stats.records > 0 {
                summary(topic, stats, args.acks);
            }
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_values() {
        assert_eq!(parse_acks("all").unwrap(), -1);
        assert_eq!(parse_acks("ALL").unwrap(), -1);
        assert_eq!(parse_acks("-1").unwrap(), -1);
        assert_eq!(parse_acks("1").unwrap(), 1);
        assert_eq!(parse_acks("0").unwrap(), 0);
        assert!(parse_acks("2").is_err());
    }

    #[test]
    fn key_split_at_first_separator() {
        let (k, v) = split_key(b"user1:hello:world", b":").unwrap();
        assert_eq!((&k[..], &v[..]), (&b"user1"[..], &b"hello:world"[..]));
        let (k, v) = split_key(b"a::b", b"::").unwrap();
        assert_eq!((&k[..], &v[..]), (&b"a"[..], &b"b"[..]));
        let (k, v) = split_key(b":v", b":").unwrap();
        assert_eq!((&k[..], &v[..]), (&b""[..], &b"v"[..]));
        assert!(split_key(b"no separator", b":").is_none());
        assert!(split_key(b"", b":").is_none());
    }

    #[test]
    fn accumulator_reports_full_batches() {
        let mut acc = Accumulator::default();
        let r =
            ProducerRecord { key: None, value: Some(Bytes::from_static(b"0123456789")), headers: vec![], timestamp: 0 };
        // Each record counts 16 + 10 bytes.
        assert!(!acc.add(0, r.clone(), 50));
        assert!(!acc.add(1, r.clone(), 50));
        assert!(acc.add(0, r.clone(), 50));
        let taken = acc.take();
        assert_eq!(taken[&0].0.len(), 2);
        assert!(acc.is_empty() && acc.first_at.is_none());
    }
}
