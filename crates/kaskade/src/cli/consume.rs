//! `kaskade consume TOPIC`: print records, reading partitions directly
//! (ListOffsets + Fetch). Without `--group` nothing is committed. With
//! `--group G` it is a member of G: JoinGroup/SyncGroup (the range
//! assignor when it leads), heartbeats, rejoining on a rebalance; it starts
//! each assigned partition at G's committed offset (OffsetFetch), commits
//! the position after the printed records (OffsetCommit with its
//! generation and member id) and leaves the group on exit.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::{Args, ValueEnum};
use kafka_protocol::ResponseError;
use tokio::time::Instant;

use super::output::{format_record, write_stdout, RecordFormat};
use kaskade_client::error::{is_stale_metadata, KafkaError};
use kaskade_client::fetcher::{self, FetchOptions, OffsetSpec};
use kaskade_client::group;
use kaskade_client::records::decode_fetched;
use kaskade_client::Client;
use kaskade_types::Offset;

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topic to consume from.
    pub topic: String,
    /// Start at the earliest offset still in the log (default: only new records).
    #[arg(long, conflicts_with = "offset")]
    pub from_beginning: bool,
    /// Where to start: an offset (needs --partition), `earliest` or `latest`.
    #[arg(long, value_name = "N|earliest|latest", value_parser = parse_offset)]
    pub offset: Option<StartOffset>,
    /// Read only this partition (default: all partitions).
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// Exit after printing this many records.
    #[arg(long, short = 'n')]
    pub max_messages: Option<u64>,
    /// Exit when no record arrives for this long (default: wait forever).
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Print the key before the value (tab-separated).
    #[arg(long)]
    pub print_key: bool,
    /// Print headers as k1:v1,k2:v2 (or NO_HEADERS).
    #[arg(long)]
    pub print_headers: bool,
    /// Print CreateTime:<ms> or LogAppendTime:<ms>.
    #[arg(long)]
    pub print_timestamp: bool,
    /// Print Partition:<n>.
    #[arg(long)]
    pub print_partition: bool,
    /// Print Offset:<n>.
    #[arg(long)]
    pub print_offset: bool,
    /// Record format: text (value, plus the --print-* fields) or json (one
    /// object per line with topic, partition, offset, timestamp, key,
    /// headers, value).
    #[arg(long, value_enum, default_value_t = RecordOutput::Text)]
    pub format: RecordOutput,
    /// Consumer group to join: read the partitions it assigns, from its
    /// committed offsets (partitions without one start as
    /// --from-beginning/--offset say), committing after printing.
    #[arg(long, short = 'g', conflicts_with = "partition")]
    pub group: Option<String>,
    /// Which transactional records to print: read_uncommitted (every
    /// record, as Kafka's console consumer by default) or read_committed
    /// (only committed ones, up to the last stable offset; records of
    /// aborted transactions are skipped). Transaction markers are never
    /// printed.
    #[arg(long, value_enum, default_value_t = Isolation::ReadUncommitted)]
    pub isolation: Isolation,
}

/// `--isolation`, Kafka's `isolation.level` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Isolation {
    #[value(name = "read_uncommitted", alias = "read-uncommitted")]
    ReadUncommitted,
    #[value(name = "read_committed", alias = "read-committed")]
    ReadCommitted,
}

impl Isolation {
    /// The protocol's isolation level.
    pub fn level(self) -> i8 {
        match self {
            Isolation::ReadUncommitted => fetcher::READ_UNCOMMITTED,
            Isolation::ReadCommitted => fetcher::READ_COMMITTED,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordOutput {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    Earliest,
    Latest,
    At(i64),
}

pub fn parse_offset(s: &str) -> std::result::Result<StartOffset, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "earliest" | "beginning" => Ok(StartOffset::Earliest),
        "latest" | "end" => Ok(StartOffset::Latest),
        n => match n.parse::<i64>() {
            Ok(v) if v >= 0 => Ok(StartOffset::At(v)),
            _ => Err(format!("expected a non-negative offset, 'earliest' or 'latest', not '{s}'")),
        },
    }
}

impl ConsumeArgs {
    fn start(&self) -> StartOffset {
        match (self.from_beginning, self.offset) {
            (true, _) => StartOffset::Earliest,
            (false, Some(o)) => o,
            (false, None) => StartOffset::Latest,
        }
    }

    fn record_format(&self) -> RecordFormat {
        RecordFormat {
            json: self.format == RecordOutput::Json,
            print_key: self.print_key,
            print_headers: self.print_headers,
            print_timestamp: self.print_timestamp,
            print_partition: self.print_partition,
            print_offset: self.print_offset,
        }
    }
}

pub async fn run(args: ConsumeArgs, client: &Client) -> Result<i32> {
    let topic = args.topic.clone();
    let start = args.start();
    if matches!(start, StartOffset::At(_)) && args.partition.is_none() {
        bail!("--offset N needs --partition P (an offset belongs to one partition); or use --offset earliest|latest");
    }
    if args.max_messages == Some(0) {
        eprintln!("Processed a total of 0 messages");
        return Ok(0);
    }
    let mut meta = client.topic(&topic, true).await.map_err(|e| super::hints::for_topic(e, &topic))?;
    let partitions: Vec<i32> = match args.partition {
        Some(p) => {
            if meta.partition(p).is_none() {
                bail!("topic '{topic}' has {} partition(s); there is no partition {p}", meta.num_partitions());
            }
            vec![p]
        }
        None => meta.partitions.iter().map(|p| p.partition).collect(),
    };

    let mut membership = match &args.group {
        Some(g) => Some(group::join(client, g, &topic, "").await?),
        None => None,
    };
    let partitions = match &membership {
        Some(m) => m.partitions.clone(),
        None => partitions,
    };
    // `committed`: offsets last committed for --group, per partition.
    let isolation = args.isolation.level();
    let (mut positions, mut committed) =
        start_positions(client, &topic, &partitions, start, args.group.as_deref(), isolation).await?;
    let mut last_heartbeat = Instant::now();

    let format = args.record_format();
    let timeout = args.timeout_ms.map(Duration::from_millis);
    let mut count: u64 = 0;
    let mut last_data = Instant::now();
    let mut backoff = Duration::from_millis(100);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let result: Result<()> = async {
        loop {
            if args.max_messages.is_some_and(|m| count >= m) {
                return Ok(());
            }
            if let (Some(g), Some(m)) = (&args.group, membership.as_mut()) {
                if last_heartbeat.elapsed() >= HEARTBEAT_INTERVAL {
                    last_heartbeat = Instant::now();
                    if !group::heartbeat(client, m).await? {
                        // Rebalance: commit what was printed, join again.
                        let _ = commit_positions(client, Some(m), &topic, &positions, &mut committed).await;
                        *m = group::join(client, g, &topic, &m.member_id.clone()).await?;
                        (positions, committed) =
                            start_positions(client, &topic, &m.partitions, start, Some(g), isolation).await?;
                        last_heartbeat = Instant::now();
                    }
                }
            }
            let mut opts = FetchOptions { isolation_level: isolation, ..FetchOptions::default() };
            if let Some(t) = timeout {
                let left = t.saturating_sub(last_data.elapsed());
                if left.is_zero() {
                    return Ok(());
                }
                opts.max_wait_ms = opts.max_wait_ms.min(left.as_millis() as i32).max(1);
            }
            if positions.is_empty() {
                // No partition assigned (more members than partitions).
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(opts.max_wait_ms as u64)) => {}
                    _ = &mut ctrl_c => return Ok(()),
                }
                continue;
            }
            let results = tokio::select! {
                r = fetcher::fetch(client, &meta, &positions, &opts) => r?,
                _ = &mut ctrl_c => return Ok(()),
            };

            let mut text = String::new();
            let mut refresh = false;
            let mut reset: Vec<(i32, Offset)> = Vec::new();
            for fp in results {
                let p = fp.partition;
                if fp.error.is_none() {
                    let aborted = (isolation == fetcher::READ_COMMITTED).then_some(&fp.aborted_transactions[..]);
                    let decoded = decode_fetched(fp.records, fp.fetch_offset, aborted)
                        .map_err(|e| anyhow!("topic '{topic}' partition {p}: {e:#}"))?;
                    for r in &decoded.records {
                        if args.max_messages.is_some_and(|m| count >= m) {
                            break;
                        }
                        text.push_str(&format_record(&topic, p, r, &format));
                        text.push('\n');
                        count += 1;
                        positions.insert(p, r.offset.next());
                    }
                    if let Some(next) = decoded.next_offset {
                        if args.max_messages.is_none_or(|m| count < m) && next > positions[&p] {
                            positions.insert(p, next);
                        }
                    }
                } else if let Some(error) = fp.error.filter(|e| *e != ResponseError::OffsetOutOfRange) {
                    if is_stale_metadata(error)
                        || error == ResponseError::NetworkException
                        || error == ResponseError::UnknownTopicId
                    {
                        tracing::debug!(partition = p, %error, detail = ?fp.error_detail, "refreshing metadata");
                        refresh = true;
                        continue;
                    }
                    let mut e =
                        KafkaError::new(error, fp.error_detail, format!("fetching topic '{topic}' partition {p}"));
                    if error == ResponseError::TopicAuthorizationFailed {
                        e = e.with_hint("the broker's ACLs deny reading this topic");
                    }
                    return Err(e.into());
                } else {
                    reset.push((p, fp.fetch_offset));
                }
            }
            if !text.is_empty() {
                if !write_stdout(&text) {
                    return Ok(()); // stdout closed (e.g. piped into head)
                }
                last_data = Instant::now();
                if membership.is_some() {
                    commit_positions(client, membership.as_ref(), &topic, &positions, &mut committed).await?;
                }
            }
            for (p, was) in reset {
                let earliest = one_offset(client, &topic, p, OffsetSpec::Earliest, isolation).await?;
                let latest = one_offset(client, &topic, p, OffsetSpec::Latest, isolation).await?;
                let to = if was < earliest { earliest } else { latest };
                eprintln!(
                    "warning: partition {p}: offset {was} is out of range ({earliest}..{latest}); continuing from {to}"
                );
                positions.insert(p, to);
            }
            if refresh {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = &mut ctrl_c => return Ok(()),
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                meta = match client.topic(&topic, true).await {
                    Ok(m) => m,
                    Err(e) if e.is(ResponseError::UnknownTopicOrPartition) => {
                        bail!("topic '{topic}' no longer exists (it was deleted while consuming)")
                    }
                    Err(e) => return Err(e.into()),
                };
            } else {
                backoff = Duration::from_millis(100);
            }
        }
    }
    .await;
    let result = match (&membership, result) {
        (Some(m), Ok(())) => commit_positions(client, Some(m), &topic, &positions, &mut committed).await,
        (_, r) => r,
    };
    if let Some(m) = &membership {
        if let Err(e) = group::leave(client, m).await {
            tracing::debug!(error = %e, "leaving the group");
        }
    }
    // Kafka's console consumer prints the same line.
    eprintln!("Processed a total of {count} messages");
    result.map(|_| 0)
}

/// Partition `p`'s offset for `spec`.
async fn one_offset(client: &Client, topic: &str, p: i32, spec: OffsetSpec, isolation: i8) -> Result<Offset> {
    let offsets = fetcher::list_offsets_isolated(client, topic, &BTreeMap::from([(p, spec)]), isolation).await?;
    offsets.get(&p).copied().ok_or_else(|| anyhow!("ListOffsets did not resolve topic '{topic}' partition {p}"))
}

/// How often a `--group` member heartbeats (a third of its session timeout).
const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(group::SESSION_TIMEOUT_MS as u64 / 3);

/// Where to read `partitions` from: `start`, or with a group its
/// committed offsets where it has them (also returned).
async fn start_positions(
    client: &Client,
    topic: &str,
    partitions: &[i32],
    start: StartOffset,
    group: Option<&str>,
    isolation: i8,
) -> Result<(BTreeMap<i32, Offset>, BTreeMap<i32, Offset>)> {
    if partitions.is_empty() {
        return Ok((BTreeMap::new(), BTreeMap::new()));
    }
    let mut positions: BTreeMap<i32, Offset> = match start {
        StartOffset::At(o) => partitions.iter().map(|&p| (p, Offset(o))).collect(),
        StartOffset::Earliest | StartOffset::Latest => {
            let spec = if start == StartOffset::Earliest { OffsetSpec::Earliest } else { OffsetSpec::Latest };
            let wanted: BTreeMap<i32, OffsetSpec> = partitions.iter().map(|&p| (p, spec)).collect();
            fetcher::list_offsets_isolated(client, topic, &wanted, isolation).await?
        }
    };
    let mut committed: BTreeMap<i32, Offset> = BTreeMap::new();
    if let Some(g) = group {
        let wanted = BTreeMap::from([(topic.to_string(), partitions.to_vec())]);
        for (tp, o) in group::fetch_offsets(client, g, Some(&wanted)).await? {
            if &*tp.topic == topic && positions.contains_key(&tp.partition) {
                committed.insert(tp.partition, o);
                positions.insert(tp.partition, o);
            }
        }
    }
    Ok((positions, committed))
}

/// Commit the positions that moved since the last commit, as `member`.
async fn commit_positions(
    client: &Client,
    member: Option<&group::Membership>,
    topic: &str,
    positions: &BTreeMap<i32, Offset>,
    committed: &mut BTreeMap<i32, Offset>,
) -> Result<()> {
    let changed: BTreeMap<i32, Offset> =
        positions.iter().filter(|(p, o)| committed.get(p).is_none_or(|c| c != *o)).map(|(&p, &o)| (p, o)).collect();
    if changed.is_empty() {
        return Ok(());
    }
    let Some(m) = member else { return Ok(()) };
    group::commit_offsets_as(client, &m.group, topic, &changed, m.generation, &m.member_id).await?;
    committed.extend(changed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("earliest").unwrap(), StartOffset::Earliest);
        assert_eq!(parse_offset("Latest").unwrap(), StartOffset::Latest);
        assert_eq!(parse_offset("42").unwrap(), StartOffset::At(42));
        assert!(parse_offset("-3").is_err());
        assert!(parse_offset("soon").is_err());
    }
}
