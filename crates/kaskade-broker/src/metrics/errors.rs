//! Responses per error code, as Kafka's
//! `kafka.network:type=RequestMetrics,name=ErrorsPerSec,request=*,error=*`:
//! every error code a response carries is counted, the top-level one where
//! the response has one and each per-topic, per-partition, per-group or
//! per-resource one; `NONE` counts those without an error, as in Kafka.
//!
//! Counted where the response is complete and typed, in
//! `network::connection` (through [`super::requests::record`]): the route
//! macro sees only `Result<Response, BrokerError>`, and an `Err` closes the
//! connection without a response, so it has no error code (those are
//! `kaskade_request_failures_total`). Per-partition codes need the response,
//! so walking it once per response is the cheapest place: the walk reads
//! only `error_code` fields (no allocation), gathers the codes in a few local
//! slots, and adds each distinct code once to a fixed table of atomics
//! indexed by (API key, code): no lock, no map.

use std::sync::atomic::{AtomicU64, Ordering};

use kafka_protocol::messages::{ApiKey, ResponseKind};
use kafka_protocol::ResponseError;

use super::text::Exposition;

/// Codes -1 ..= 158: every code Kafka has defined so far, with room.
const CODES: usize = 160;
/// Kafka's lowest code, UNKNOWN_SERVER_ERROR (-1), is slot 0.
const FIRST_CODE: i16 = -1;
/// API keys beyond are never routed (the connection closes on them).
const MAX_API_KEYS: usize = 128;

static COUNTS: [[AtomicU64; CODES]; MAX_API_KEYS] = [const { [const { AtomicU64::new(0) }; CODES] }; MAX_API_KEYS];

fn slot(code: i16) -> Option<usize> {
    usize::try_from(i32::from(code) - i32::from(FIRST_CODE)).ok().filter(|&i| i < CODES)
}

/// A response's codes, gathered before touching the shared table: a Fetch
/// of 1,000 partitions adds to its `NONE` counter once, not 1,000 times.
struct Tally<'a> {
    row: &'a [AtomicU64; CODES],
    slots: [(i16, u64); 4],
    used: usize,
}

impl Tally<'_> {
    fn add(&mut self, code: i16) {
        if let Some(s) = self.slots[..self.used].iter_mut().find(|(c, _)| *c == code) {
            s.1 += 1;
        } else if self.used < self.slots.len() {
            self.slots[self.used] = (code, 1);
            self.used += 1;
        } else {
            Self::flush_one(self.row, code, 1);
        }
    }

    fn flush_one(row: &[AtomicU64; CODES], code: i16, n: u64) {
        // A code outside Kafka's range is no error Kafka names: not counted.
        if let Some(i) = slot(code) {
            row[i].fetch_add(n, Ordering::Relaxed);
        }
    }
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        for &(code, n) in &self.slots[..self.used] {
            Self::flush_one(self.row, code, n);
        }
    }
}

/// Counts the error codes of one response of `api`.
pub(super) fn record(api: ApiKey, response: super::requests::Answer<'_>) {
    let Some(row) = COUNTS.get(api as i16 as usize) else { return };
    let mut tally = Tally { row, slots: [(0, 0); 4], used: 0 };
    match response {
        super::requests::Answer::Body(r) => each_code(r, &mut |code| tally.add(code)),
        super::requests::Answer::Fetch(r) => fetch_codes(r, &mut |code| tally.add(code)),
    }
}

fn fetch_codes(r: &kafka_protocol::messages::FetchResponse, f: &mut dyn FnMut(i16)) {
    f(r.error_code);
    r.responses.iter().flat_map(|t| &t.partitions).for_each(|p| f(p.error_code));
}

/// Calls `f` with every error code in `response` (Kafka's
/// `AbstractResponse.errorCounts`).
fn each_code(response: &ResponseKind, f: &mut dyn FnMut(i16)) {
    use ResponseKind as R;
    match response {
        R::Produce(r) => r.responses.iter().flat_map(|t| &t.partition_responses).for_each(|p| f(p.error_code)),
        R::Fetch(r) => fetch_codes(r, f),
        R::ListOffsets(r) => r.topics.iter().flat_map(|t| &t.partitions).for_each(|p| f(p.error_code)),
        R::Metadata(r) => {
            for t in &r.topics {
                f(t.error_code);
                t.partitions.iter().for_each(|p| f(p.error_code));
            }
        }
        R::OffsetCommit(r) => r.topics.iter().flat_map(|t| &t.partitions).for_each(|p| f(p.error_code)),
        R::OffsetFetch(r) if !r.groups.is_empty() => {
            // v8+: per group.
            for g in &r.groups {
                f(g.error_code);
                g.topics.iter().flat_map(|t| &t.partitions).for_each(|p| f(p.error_code));
            }
        }
        R::OffsetFetch(r) => {
            f(r.error_code);
            r.topics.iter().flat_map(|t| &t.partitions).for_each(|p| f(p.error_code));
        }
        R::FindCoordinator(r) if !r.coordinators.is_empty() => r.coordinators.iter().for_each(|c| f(c.error_code)),
        R::FindCoordinator(r) => f(r.error_code),
        R::JoinGroup(r) => f(r.error_code),
        R::Heartbeat(r) => f(r.error_code),
        R::LeaveGroup(r) => {
            f(r.error_code);
            r.members.iter().for_each(|m| f(m.error_code));
        }
        R::SyncGroup(r) => f(r.error_code),
        R::DescribeGroups(r) => r.groups.iter().for_each(|g| f(g.error_code)),
        R::ListGroups(r) => f(r.error_code),
        R::ApiVersions(r) => f(r.error_code),
        R::CreateTopics(r) => r.topics.iter().for_each(|t| f(t.error_code)),
        R::DeleteTopics(r) => r.responses.iter().for_each(|t| f(t.error_code)),
        R::DeleteRecords(r) => r.topics.iter().flat_map(|t| &t.partitions).for_each(|p| f(p.error_code)),
        R::InitProducerId(r) => f(r.error_code),
        R::OffsetForLeaderEpoch(r) => r.topics.iter().flat_map(|t| &t.partitions).for_each(|p| f(p.error_code)),
        R::AddPartitionsToTxn(r) => {
            f(r.error_code);
            for t in &r.results_by_topic_v3_and_below {
                t.results_by_partition.iter().for_each(|p| f(p.partition_error_code));
            }
            for x in &r.results_by_transaction {
                for t in &x.topic_results {
                    t.results_by_partition.iter().for_each(|p| f(p.partition_error_code));
                }
            }
        }
        R::AddOffsetsToTxn(r) => f(r.error_code),
        R::EndTxn(r) => f(r.error_code),
        R::WriteTxnMarkers(r) => {
            r.markers.iter().flat_map(|m| &m.topics).flat_map(|t| &t.partitions).for_each(|p| f(p.error_code))
        }
        R::TxnOffsetCommit(r) => r.topics.iter().flat_map(|t| &t.partitions).for_each(|p| f(p.error_code)),
        R::DescribeAcls(r) => f(r.error_code),
        R::CreateAcls(r) => r.results.iter().for_each(|x| f(x.error_code)),
        R::DeleteAcls(r) => r.filter_results.iter().for_each(|x| f(x.error_code)),
        R::DescribeConfigs(r) => r.results.iter().for_each(|x| f(x.error_code)),
        R::AlterConfigs(r) => r.responses.iter().for_each(|x| f(x.error_code)),
        R::IncrementalAlterConfigs(r) => r.responses.iter().for_each(|x| f(x.error_code)),
        R::AlterReplicaLogDirs(r) => r.results.iter().flat_map(|t| &t.partitions).for_each(|p| f(p.error_code)),
        R::DescribeLogDirs(r) => {
            f(r.error_code);
            r.results.iter().for_each(|d| f(d.error_code));
        }
        R::CreatePartitions(r) => r.results.iter().for_each(|t| f(t.error_code)),
        R::DeleteGroups(r) => r.results.iter().for_each(|g| f(g.error_code)),
        R::ElectLeaders(r) => {
            f(r.error_code);
            r.replica_election_results.iter().flat_map(|t| &t.partition_result).for_each(|p| f(p.error_code));
        }
        R::AlterPartitionReassignments(r) => {
            f(r.error_code);
            r.responses.iter().flat_map(|t| &t.partitions).for_each(|p| f(p.error_code));
        }
        R::ListPartitionReassignments(r) => f(r.error_code),
        R::OffsetDelete(r) => {
            f(r.error_code);
            r.topics.iter().flat_map(|t| &t.partitions).for_each(|p| f(p.error_code));
        }
        R::DescribeUserScramCredentials(r) => {
            f(r.error_code);
            r.results.iter().for_each(|x| f(x.error_code));
        }
        R::AlterUserScramCredentials(r) => r.results.iter().for_each(|x| f(x.error_code)),
        R::DescribeQuorum(r) => {
            f(r.error_code);
            r.topics.iter().flat_map(|t| &t.partitions).for_each(|p| f(p.error_code));
        }
        R::DescribeCluster(r) => f(r.error_code),
        R::DescribeProducers(r) => r.topics.iter().flat_map(|t| &t.partitions).for_each(|p| f(p.error_code)),
        R::DescribeTransactions(r) => r.transaction_states.iter().for_each(|t| f(t.error_code)),
        R::ListTransactions(r) => f(r.error_code),
        R::DescribeTopicPartitions(r) => {
            for t in &r.topics {
                f(t.error_code);
                t.partitions.iter().for_each(|p| f(p.error_code));
            }
        }
        // APIs the broker does not route: never answered.
        _ => {}
    }
}

/// Kafka's name of an error code (`UNKNOWN_TOPIC_OR_PARTITION`, `NONE`).
fn error_name(code: i16) -> String {
    let Some(e) = ResponseError::try_from_code(code) else { return "NONE".to_string() };
    if let ResponseError::Unknown(c) = e {
        return format!("UNKNOWN_CODE_{c}");
    }
    // The enum's names are Kafka's, in camel case.
    let camel = e.to_string();
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Appends `kaskade_request_errors_total`: one series per (API, code) seen.
pub(super) fn render(x: &mut Exposition<'_>) {
    x.family(
        "kaskade_request_errors_total",
        "counter",
        "Error codes in responses, per API and Kafka error name (NONE: entries without an error); a response with several codes counts each.",
    );
    for route in crate::router::routes() {
        let Some(row) = COUNTS.get(route.key as i16 as usize) else { continue };
        let api = format!("{:?}", route.key);
        for (i, count) in row.iter().enumerate() {
            let n = count.load(Ordering::Relaxed);
            if n > 0 {
                let code = i as i16 + FIRST_CODE;
                x.sample("kaskade_request_errors_total", &[("api", &api), ("error", &error_name(code))], n as f64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
    use kafka_protocol::messages::ListOffsetsResponse;

    #[test]
    fn names_are_kafkas() {
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(ResponseError::UnknownTopicOrPartition.code()), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(ResponseError::UnknownServerError.code()), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(ResponseError::KafkaStorageError.code()), "KAFKA_STORAGE_ERROR");
        assert_eq!(error_name(150), "UNKNOWN_CODE_150");
    }

    #[test]
    fn every_partition_code_is_counted_once() {
        // ListOffsets: no other unit test records it.
        let codes = [0, 0, 3, 0, 1, 6, 7, 3, 0, -1, 2000];
        let mut topic = ListOffsetsTopicResponse::default();
        for c in codes {
            let mut p = ListOffsetsPartitionResponse::default();
            p.error_code = c;
            topic.partitions.push(p);
        }
        let mut resp = ListOffsetsResponse::default();
        resp.topics.push(topic);
        record(ApiKey::ListOffsets, super::super::requests::Answer::Body(&ResponseKind::ListOffsets(resp)));
        let mut out = String::new();
        render(&mut Exposition::new(&mut out));
        for (error, n) in [
            ("NONE", 4),
            ("UNKNOWN_TOPIC_OR_PARTITION", 2),
            ("OFFSET_OUT_OF_RANGE", 1),
            ("NOT_LEADER_OR_FOLLOWER", 1),
            ("REQUEST_TIMED_OUT", 1),
            ("UNKNOWN_SERVER_ERROR", 1),
        ] {
            let line = format!("kaskade_request_errors_total{{api=\"ListOffsets\",error=\"{error}\"}} {n}");
            assert!(out.lines().any(|l| l == line), "missing {line} in\n{out}");
        }
        assert!(!out.contains("2000"), "a code outside Kafka's range is not counted");
    }
}
