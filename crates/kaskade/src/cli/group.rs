//! `kaskade group ...`: list, describe (committed offsets, log end offsets
//! and lag per partition, as `kafka-consumer-groups --describe`), delete,
//! reset-offsets.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};
use clap::{ArgGroup, Args, Subcommand};
use serde_json::{json, Value};

use super::output::{print_json, write_stdout, OutputFormat, Table};
use kaskade_client::fetcher::{self, OffsetSpec};
use kaskade_client::group::{self, GroupDescription};
use kaskade_client::Client;
use kaskade_types::{Offset, TopicPartition};

#[derive(Debug, Args)]
pub struct GroupArgs {
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    #[command(subcommand)]
    pub command: GroupCommand,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List groups: id, state, protocol type.
    List,
    /// Describe a group: per partition the committed offset, log end
    /// offset, lag and the member it is assigned to.
    Describe {
        /// Group id.
        group: String,
    },
    /// Delete groups (refused while a group has active members).
    Delete {
        /// Group id(s).
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Reset a group's committed offsets for a topic (dry run unless
    /// --execute; refused while the group has active members).
    #[command(group(ArgGroup::new("to").required(true).args(["to_earliest", "to_latest", "to_offset", "shift_by", "to_datetime", "by_duration"])))]
    ResetOffsets {
        /// Group id.
        group: String,
        /// Topic whose offsets to reset (all its partitions).
        #[arg(long, short = 't')]
        topic: String,
        /// Reset to the earliest offset still in the log.
        #[arg(long)]
        to_earliest: bool,
        /// Reset to the log end offset.
        #[arg(long)]
        to_latest: bool,
        /// Reset to this offset (clamped into earliest..latest).
        #[arg(long, value_name = "N")]
        to_offset: Option<i64>,
        /// Move the committed offset by N (may be negative; clamped).
        #[arg(long, value_name = "N", allow_hyphen_values = true)]
        shift_by: Option<i64>,
        /// Reset to the first offset whose timestamp is at or after this
        /// time: YYYY-MM-DDTHH:mm:SS[.sss][Z|+hh:mm] (no zone: UTC).
        #[arg(long, value_name = "ISO", value_parser = parse_datetime)]
        to_datetime: Option<i64>,
        /// Reset to the first offset at or after now minus this duration:
        /// ISO-8601 (PT30M, P1DT2H) or 90s / 15m / 2h / 1d.
        #[arg(long, value_name = "D", value_parser = parse_duration)]
        by_duration: Option<i64>,
        /// Apply the new offsets (default: only show them).
        #[arg(long)]
        execute: bool,
    },
}

pub async fn run(args: GroupArgs, client: &Client) -> Result<i32> {
    let out = args.output;
    match args.command {
        GroupCommand::List => list(client, out).await,
        GroupCommand::Describe { group } => describe(client, out, &group).await,
        GroupCommand::Delete { groups } => delete(client, out, &groups).await,
        GroupCommand::ResetOffsets {
            group,
            topic,
            to_earliest,
            to_latest,
            to_offset,
            shift_by,
            to_datetime,
            by_duration,
            execute,
        } => {
            let target = if to_earliest {
                Target::Earliest
            } else if to_latest {
                Target::Latest
            } else if let Some(n) = to_offset {
                Target::Offset(n)
            } else if let Some(n) = shift_by {
                Target::Shift(n)
            } else if let Some(ts) = to_datetime {
                Target::Timestamp(ts)
            } else if let Some(d) = by_duration {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
                Target::Timestamp(now - d)
            } else {
                bail!("choose one of --to-earliest, --to-latest, --to-offset N, --shift-by N")
            };
            reset_offsets(client, out, &group, &topic, target, execute).await
        }
    }
}

async fn list(client: &Client, out: OutputFormat) -> Result<i32> {
    let groups = group::list_groups(client).await?;
    match out {
        OutputFormat::Table => {
            let mut t = Table::new(["GROUP", "STATE", "PROTOCOL-TYPE"]);
            for g in &groups {
                t.row([
                    g.group_id.clone(),
                    if g.state.is_empty() { "-".into() } else { g.state.clone() },
                    if g.protocol_type.is_empty() { "-".into() } else { g.protocol_type.clone() },
                ]);
            }
            write_stdout(&t.render());
        }
        OutputFormat::Json => print_json(&Value::Array(
            groups
                .iter()
                .map(|g| {
                    json!({
                        "group_id": g.group_id,
                        "state": g.state,
                        "protocol_type": g.protocol_type,
                    })
                })
                .collect(),
        )),
    }
    Ok(0)
}

/// One row of `group describe`.
#[derive(Debug, Clone)]
struct PartitionLag {
    topic: String,
    partition: i32,
    committed: Option<i64>,
    log_end: Option<i64>,
    member: Option<(String, String, String)>,
}

impl PartitionLag {
    fn lag(&self) -> Option<i64> {
        match (self.committed, self.log_end) {
            (Some(c), Some(e)) => Some((e - c).max(0)),
            _ => None,
        }
    }
}

async fn partition_lags(client: &Client, group_id: &str, desc: &GroupDescription) -> Result<Vec<PartitionLag>> {
    let committed = group::fetch_offsets(client, group_id, None).await?;
    let mut owner: BTreeMap<TopicPartition, (String, String, String)> = BTreeMap::new();
    for m in &desc.members {
        for tp in &m.assignment {
            owner.insert(tp.clone(), (m.member_id.clone(), m.client_host.clone(), m.client_id.clone()));
        }
    }
    let keys: BTreeSet<TopicPartition> = committed.keys().chain(owner.keys()).cloned().collect();
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in &keys {
        by_topic.entry(tp.topic.to_string()).or_default().push(tp.partition);
    }
    let mut ends: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    for (t, ps) in &by_topic {
        let wanted: BTreeMap<i32, OffsetSpec> = ps.iter().map(|&p| (p, OffsetSpec::Latest)).collect();
        match fetcher::list_offsets(client, t, &wanted).await {
            Ok(m) => ends.extend(m.into_iter().map(|(p, o)| (TopicPartition::new(t.as_str(), p), o.get()))),
            Err(e) => eprintln!("warning: log end offsets of topic '{t}': {e:#}"),
        }
    }
    Ok(keys
        .into_iter()
        .map(|k| PartitionLag {
            committed: committed.get(&k).map(|o| o.get()),
            log_end: ends.get(&k).copied(),
            member: owner.get(&k).cloned(),
            topic: k.topic.to_string(),
            partition: k.partition,
        })
        .collect())
}

fn opt(v: Option<i64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

async fn describe(client: &Client, out: OutputFormat, group_id: &str) -> Result<i32> {
    let desc = group::describe_group(client, group_id).await?;
    let rows = partition_lags(client, group_id, &desc).await?;
    if desc.state == "Dead" && rows.is_empty() {
        eprintln!("error: consumer group '{group_id}' does not exist");
        return Ok(1);
    }
    match out {
        OutputFormat::Table => {
            let mut s = String::new();
            if desc.members.is_empty() {
                s.push_str(&format!("Consumer group '{group_id}' has no active members (state {}).\n\n", desc.state));
            } else {
                s.push_str(&format!(
                    "Consumer group '{group_id}': state {}, {} member(s), protocol {}.\n\n",
                    desc.state,
                    desc.members.len(),
                    if desc.protocol.is_empty() { "-" } else { &desc.protocol }
                ));
            }
            let mut t = Table::new([
                "GROUP",
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "LOG-END-OFFSET",
                "LAG",
                "CONSUMER-ID",
                "HOST",
                "CLIENT-ID",
            ]);
            for r in &rows {
                let (m, h, c) = r.member.clone().unwrap_or_else(|| ("-".into(), "-".into(), "-".into()));
                t.row([
                    group_id.to_string(),
                    r.topic.clone(),
                    r.partition.to_string(),
                    opt(r.committed),
                    opt(r.log_end),
                    opt(r.lag()),
                    m,
                    h,
                    c,
                ]);
            }
            s.push_str(&t.render());
            write_stdout(&s);
        }
        OutputFormat::Json => print_json(&json!({
            "group_id": group_id,
            "state": desc.state,
            "protocol_type": desc.protocol_type,
            "protocol": desc.protocol,
            "members": desc.members.iter().map(|m| json!({
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "client_id": m.client_id,
                "host": m.client_host,
                "assignment": m.assignment.iter().map(|tp| json!({"topic": &*tp.topic, "partition": tp.partition})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "partitions": rows.iter().map(|r| json!({
                "topic": r.topic,
                "partition": r.partition,
                "committed_offset": r.committed,
                "log_end_offset": r.log_end,
                "lag": r.lag(),
                "member_id": r.member.as_ref().map(|m| &m.0),
                "host": r.member.as_ref().map(|m| &m.1),
                "client_id": r.member.as_ref().map(|m| &m.2),
            })).collect::<Vec<_>>(),
        })),
    }
    Ok(0)
}

async fn delete(client: &Client, out: OutputFormat, groups: &[String]) -> Result<i32> {
    let results = group::delete_groups(client, groups).await?;
    let mut failed = false;
    let mut json_rows = Vec::new();
    for outcome in results {
        let g = outcome.name;
        match outcome.result {
            Ok(()) => match out {
                OutputFormat::Table => {
                    write_stdout(&format!("Deleted group {g}.\n"));
                }
                OutputFormat::Json => json_rows.push(json!({"group_id": g, "deleted": true})),
            },
            Err(e) => {
                failed = true;
                let e = super::hints::kafka(e);
                eprintln!("error: {e}");
                if out == OutputFormat::Json {
                    json_rows.push(json!({"group_id": g, "deleted": false, "error": e.name()}));
                }
            }
        }
    }
    if out == OutputFormat::Json {
        print_json(&Value::Array(json_rows));
    }
    Ok(if failed { 1 } else { 0 })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Earliest,
    Latest,
    Offset(i64),
    Shift(i64),
    /// Resolved with ListOffsets by timestamp into `Target::Offset`.
    Timestamp(i64),
}

/// The new offset of one partition; missing committed offsets shift
/// from the earliest offset.
fn new_offset(target: Target, earliest: i64, latest: i64, committed: Option<i64>) -> i64 {
    let want = match target {
        Target::Earliest => earliest,
        Target::Latest => latest,
        Target::Offset(n) => n,
        Target::Shift(n) => committed.unwrap_or(earliest).saturating_add(n),
        // Resolved before; no record at or after the time: the log end.
        Target::Timestamp(_) => latest,
    };
    want.clamp(earliest, latest.max(earliest))
}

async fn reset_offsets(
    client: &Client,
    out: OutputFormat,
    group_id: &str,
    topic: &str,
    target: Target,
    execute: bool,
) -> Result<i32> {
    let desc = group::describe_group(client, group_id).await?;
    if !desc.members.is_empty() {
        bail!(
            "refusing to reset offsets of group '{group_id}': it has {} active member(s) (state {}); \
             stop its consumers first (Kafka refuses too: offsets can only be reset while the group is inactive)",
            desc.members.len(),
            desc.state
        );
    }
    let meta = client.topic(topic, true).await.map_err(|e| super::hints::for_topic(e, topic))?;
    let parts: Vec<i32> = meta.partitions.iter().map(|p| p.partition).collect();
    let specs = |spec: OffsetSpec| -> BTreeMap<i32, OffsetSpec> { parts.iter().map(|&p| (p, spec)).collect() };
    let earliest = fetcher::list_offsets(client, topic, &specs(OffsetSpec::Earliest)).await?;
    let latest = fetcher::list_offsets(client, topic, &specs(OffsetSpec::Latest)).await?;
    let wanted = BTreeMap::from([(topic.to_string(), parts.clone())]);
    let committed: BTreeMap<i32, i64> = group::fetch_offsets(client, group_id, Some(&wanted))
        .await?
        .into_iter()
        .filter(|(tp, _)| &*tp.topic == topic)
        .map(|(tp, o)| (tp.partition, o.get()))
        .collect();
    let by_time = match target {
        Target::Timestamp(ts) => fetcher::list_offsets(client, topic, &specs(OffsetSpec::Timestamp(ts.max(0)))).await?,
        _ => BTreeMap::new(),
    };
    let mut new: BTreeMap<i32, Offset> = BTreeMap::new();
    for &p in &parts {
        let t = by_time.get(&p).map_or(target, |o| Target::Offset(o.get()));
        let (Some(e), Some(l)) = (earliest.get(&p), latest.get(&p)) else {
            bail!("ListOffsets did not resolve topic '{topic}' partition {p}");
        };
        new.insert(p, Offset(new_offset(t, e.get(), l.get(), committed.get(&p).copied())));
    }
    if execute {
        group::commit_offsets(client, group_id, topic, &new).await?;
    }
    match out {
        OutputFormat::Table => {
            let mut t = Table::new(["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"]);
            for (&p, &o) in &new {
                t.row([
                    group_id.to_string(),
                    topic.to_string(),
                    p.to_string(),
                    opt(committed.get(&p).copied()),
                    o.to_string(),
                ]);
            }
            let mut s = t.render();
            if !execute {
                s.push_str("\nDry run: nothing was changed; add --execute to apply these offsets.\n");
            }
            write_stdout(&s);
        }
        OutputFormat::Json => print_json(&json!({
            "group_id": group_id,
            "topic": topic,
            "executed": execute,
            "partitions": new.iter().map(|(&p, &o)| json!({
                "partition": p,
                "current_offset": committed.get(&p),
                "new_offset": o.get(),
            })).collect::<Vec<_>>(),
        })),
    }
    Ok(0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// `YYYY-MM-DDTHH:mm:SS[.sss][Z|+hh:mm|-hh:mm]` (time optional; no zone
/// means UTC) to milliseconds since the epoch.
pub fn parse_datetime(s: &str) -> std::result::Result<i64, String> {
    let err = || format!("expected YYYY-MM-DDTHH:mm:SS[.sss][Z|+hh:mm], not '{s}'");
    let t = s.trim();
    let (date, rest) = match t.find(['T', ' ']) {
        Some(i) => (&t[..i], &t[i + 1..]),
        None => (t, ""),
    };
    let dp: Vec<&str> = date.split('-').collect();
    if dp.len() != 3 {
        return Err(err());
    }
    let num = |x: &str| x.parse::<i64>().map_err(|_| err());
    let (y, mo, d) = (num(dp[0])?, num(dp[1])?, num(dp[2])?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return Err(err());
    }
    let (time, offset_min) = if let Some(x) = rest.strip_suffix('Z') {
        (x, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (sign, z) = (if &rest[i..i + 1] == "-" { -1 } else { 1 }, &rest[i + 1..]);
        let zp: Vec<&str> = z.split(':').collect();
        let (zh, zm) = match zp.as_slice() {
            [hm] if hm.len() == 4 => (num(&hm[..2])?, num(&hm[2..])?),
            [h] => (num(h)?, 0),
            [h, m] => (num(h)?, num(m)?),
            _ => return Err(err()),
        };
        (&rest[..i], sign * (zh * 60 + zm))
    } else {
        (rest, 0)
    };
    let mut ms = 0i64;
    if !time.is_empty() {
        let (hms, frac) = match time.split_once('.') {
            Some((a, f)) => (a, Some(f)),
            None => (time, None),
        };
        let tp: Vec<&str> = hms.split(':').collect();
        let (h, mi, sec) = match tp.as_slice() {
            [h, m] => (num(h)?, num(m)?, 0),
            [h, m, s] => (num(h)?, num(m)?, num(s)?),
            _ => return Err(err()),
        };
        if h > 23 || mi > 59 || sec > 60 {
            return Err(err());
        }
        ms = ((h * 60 + mi) * 60 + sec) * 1000;
        if let Some(f) = frac {
            let f3: String = f.chars().chain("000".chars()).take(3).collect();
            ms += num(&f3)?;
        }
    }
    Ok(days_from_civil(y, mo, d) * 86_400_000 + ms - offset_min * 60_000)
}

/// A duration in milliseconds: ISO-8601 as Kafka takes it (`PT30M`,
/// `P1DT2H`, `PT1.5S`) or `<n>ms|s|m|h|d`.
pub fn parse_duration(s: &str) -> std::result::Result<i64, String> {
    let err = || format!("expected a duration such as PT30M, P1DT2H, 90s, 15m, 2h or 1d, not '{s}'");
    let t = s.trim().to_ascii_uppercase();
    if let Some(body) = t.strip_prefix('P') {
        let mut total = 0f64;
        let mut in_time = false;
        let mut n = String::new();
        let mut any = false;
        for c in body.chars() {
            match c {
                'T' if !in_time && n.is_empty() => in_time = true,
                '0'..='9' | '.' => n.push(c),
                'D' | 'H' | 'M' | 'S' => {
                    let v: f64 = n.parse().map_err(|_| err())?;
                    let unit = match (c, in_time) {
                        ('D', false) => 86_400_000.0,
                        ('H', true) => 3_600_000.0,
                        ('M', true) => 60_000.0,
                        ('S', true) => 1000.0,
                        _ => return Err(err()),
                    };
                    total += v * unit;
                    n.clear();
                    any = true;
                }
                _ => return Err(err()),
            }
        }
        if !any || !n.is_empty() {
            return Err(err());
        }
        return Ok(total as i64);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let v: i64 = t[..split].parse().map_err(|_| err())?;
    let unit = match &t[split..] {
        "MS" => 1,
        "S" => 1000,
        "M" => 60_000,
        "H" => 3_600_000,
        "D" => 86_400_000,
        _ => return Err(err()),
    };
    Ok(v * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_offsets() {
        assert_eq!(new_offset(Target::Earliest, 3, 10, Some(5)), 3);
        assert_eq!(new_offset(Target::Latest, 3, 10, Some(5)), 10);
        assert_eq!(new_offset(Target::Offset(7), 3, 10, None), 7);
        assert_eq!(new_offset(Target::Offset(70), 3, 10, None), 10);
        assert_eq!(new_offset(Target::Offset(0), 3, 10, None), 3);
        assert_eq!(new_offset(Target::Shift(-2), 3, 10, Some(8)), 6);
        assert_eq!(new_offset(Target::Shift(-20), 3, 10, Some(8)), 3);
        assert_eq!(new_offset(Target::Shift(4), 3, 10, Some(8)), 10);
        assert_eq!(new_offset(Target::Shift(2), 3, 10, None), 5);
        assert_eq!(new_offset(Target::Timestamp(5), 3, 10, None), 10);
    }

    #[test]
    fn datetimes_and_durations() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_datetime("1970-01-01").unwrap(), 0);
        assert_eq!(parse_datetime("2024-02-29T12:34:56.789Z").unwrap(), 1_709_210_096_789);
        assert_eq!(parse_datetime("2024-02-29T12:34:56.789").unwrap(), 1_709_210_096_789);
        assert_eq!(parse_datetime("2024-02-29T14:34:56.789+02:00").unwrap(), 1_709_210_096_789);
        assert_eq!(parse_datetime("2024-02-29T10:34:56.789-0200").unwrap(), 1_709_210_096_789);
        assert!(parse_datetime("yesterday").is_err());
        assert!(parse_datetime("2024-13-01").is_err());
        assert_eq!(parse_duration("PT30M").unwrap(), 1_800_000);
        assert_eq!(parse_duration("P1DT2H").unwrap(), 93_600_000);
        assert_eq!(parse_duration("PT1.5S").unwrap(), 1500);
        assert_eq!(parse_duration("90s").unwrap(), 90_000);
        assert_eq!(parse_duration("2h").unwrap(), 7_200_000);
        assert_eq!(parse_duration("250ms").unwrap(), 250);
        assert!(parse_duration("P").is_err());
        assert!(parse_duration("PT5").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}
