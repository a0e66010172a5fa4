//! The HTTP listener of `kaskade serve` end to end: the probes, 404, the
//! body limit, `/metrics` parsed as Prometheus text and its values after a
//! real client (librdkafka) produces, consumes and commits; the log flags.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const WAIT: Duration = Duration::from_secs(30);

/// A `kaskade serve` child, killed when dropped.
struct Node {
    child: Child,
    kafka: String,
    http: Option<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &Path, extra: &[&str]) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kaskade"))
        .args(["serve", "--listeners", "PLAINTEXT://127.0.0.1:0", "--override", "http.listener=127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .env_remove("KASKADE_LOG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kaskade serve");
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (err_pipe, err_into) = (child.stderr.take().expect("stderr"), stderr.clone());
    std::thread::spawn(move || {
        for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
            let mut s = err_into.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Owned by `Node` from here: a failed start-up still kills the child.
    let mut node = Node { child, kafka: String::new(), http: None, stderr };
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        let Ok(line) = rx.recv_timeout(left) else { panic!("no start-up; stderr:\n{}", node.stderr.lock().unwrap()) };
        if let Some(a) = line.strip_prefix("kaskade: listening on ") {
            node.kafka = a.to_string();
        } else if let Some(u) = line.strip_prefix("kaskade: http on http://") {
            node.http = Some(u.to_string());
        } else if line.starts_with("kaskade: data in ") {
            assert!(!node.kafka.is_empty(), "no 'listening on' line before 'data in'");
            return node;
        }
    }
}

/// One HTTP/1.1 exchange: (status, body).
fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the http listener");
    s.set_read_timeout(Some(WAIT)).unwrap();
    let head =
        format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).unwrap();
    // A 413 may come (and the socket close) before the body is sent.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("not HTTP: {text:?}"));
    (head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("status"), body.to_string())
}

type Series = BTreeMap<(String, Vec<(String, String)>), f64>;

/// Parses Prometheus' text format strictly enough to catch what a scraper
/// would reject: every sample's family declared by `# TYPE` before it, valid
/// names, quoted and escaped label values, numeric values, no duplicate
/// series.
fn parse_prometheus(text: &str) -> Series {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut series = Series::new();
    let valid = |n: &str| {
        !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(n), _) => assert!(valid(n), "{line}"),
                (Some("TYPE"), Some(n), Some(t)) => {
                    assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&t), "{line}");
                    assert!(types.insert(n.to_string(), t.to_string()).is_none(), "family declared twice: {line}");
                }
                _ => panic!("bad comment line: {line}"),
            }
            continue;
        }
        assert!(!line.is_empty(), "empty line in the exposition");
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("{line}"));
        let name = &line[..name_end];
        assert!(valid(name), "bad metric name in {line}");
        let family =
            ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).filter(|f| types.contains_key(*f));
        assert!(types.contains_key(name) || family.is_some(), "sample before its # TYPE: {line}");
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            let mut key = String::new();
            let end;
            loop {
                let (i, c) = chars.next().unwrap_or_else(|| panic!("unterminated labels: {line}"));
                match c {
                    '}' if key.is_empty() => {
                        end = i;
                        break;
                    }
                    ',' if key.is_empty() => {}
                    '=' => {
                        assert_eq!(chars.next().map(|x| x.1), Some('"'), "{line}");
                        let mut value = String::new();
                        loop {
                            match chars.next().map(|x| x.1) {
                                Some('\\') => match chars.next().map(|x| x.1) {
                                    Some('n') => value.push('\n'),
                                    Some(e @ ('\\' | '"')) => value.push(e),
                                    other => panic!("bad escape {other:?} in {line}"),
                                },
                                Some('"') => break,
                                Some(c) => value.push(c),
                                None => panic!("unterminated label value: {line}"),
                            }
                        }
                        assert!(valid(&key), "bad label name in {line}");
                        labels.push((std::mem::take(&mut key), value));
                    }
                    c => key.push(c),
                }
            }
            rest = &r[end + 1..];
        }
        let value = rest.trim();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        labels.sort();
        assert!(series.insert((name.to_string(), labels), value).is_none(), "duplicate series: {line}");
    }
    series
}

fn get(series: &Series, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut l: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    l.sort();
    series.get(&(name.to_string(), l)).copied()
}

fn scrape(node: &Node) -> Series {
    let (status, body) = http(node.http.as_deref().expect("http listener"), "GET", "/metrics", b"");
    assert_eq!(status, 200);
    parse_prometheus(&body)
}

fn commit(consumer: &BaseConsumer, topic: &str, offset: i64) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset)).unwrap();
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
}

#[test]
fn probes_limits_and_metrics_follow_a_real_client() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), &["--log-format", "json"]);
    let addr = node.http.clone().expect("an http line at start-up");
    assert_eq!(http(&addr, "GET", "/health", b""), (200, "ok\n".into()));
    assert_eq!(http(&addr, "GET", "/ready", b"").0, 200);
    assert_eq!(http(&addr, "GET", "/no/such/page", b"").0, 404);
    assert_eq!(http(&addr, "POST", "/metrics", &vec![b'x'; 3 << 20]).0, 413);

    let topic = "http-metrics";
    let created = Command::new(env!("CARGO_BIN_EXE_kaskade"))
        .args(["--bootstrap-server", &node.kafka, "topic", "create", topic, "--partitions", "1"])
        .output()
        .expect("run topic create");
    assert!(created.status.success(), "{created:?}");
    let producer: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", &node.kafka).set("acks", "all").create().expect("producer");
    for i in 0..10 {
        let value = format!("value-{i:03}-{}", "x".repeat(90));
        producer.send(BaseRecord::to(topic).partition(0).key("k").payload(&value)).expect("enqueue");
    }
    producer.flush(WAIT).expect("flush");

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &node.kafka)
        .set("group.id", "http-group")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let mut seen = 0;
    let deadline = Instant::now() + WAIT;
    while seen < 4 {
        assert!(Instant::now() < deadline, "consumed only {seen}");
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            assert_eq!(m.expect("record").offset(), seen);
            seen += 1;
        }
    }
    commit(&consumer, topic, 4);

    let s = scrape(&node);
    let tp = [("topic", topic), ("partition", "0")];
    assert_eq!(get(&s, "kaskade_log_end_offset", &tp), Some(10.0));
    assert_eq!(get(&s, "kaskade_log_high_watermark", &tp), Some(10.0));
    assert_eq!(get(&s, "kaskade_log_start_offset", &tp), Some(0.0));
    assert_eq!(get(&s, "kaskade_log_segments", &tp), Some(1.0));
    assert!(get(&s, "kaskade_log_size_bytes", &tp).unwrap() > 1000.0, "10 records of 100 bytes");
    let gtp = [("group", "http-group"), ("topic", topic), ("partition", "0")];
    assert_eq!(get(&s, "kaskade_consumergroup_current_offset", &gtp), Some(4.0));
    assert_eq!(get(&s, "kaskade_consumergroup_lag", &gtp), Some(6.0));
    // Assigned, not subscribed: the group has offsets but no members.
    assert_eq!(get(&s, "kaskade_consumergroup_members", &[("group", "http-group")]), Some(0.0));
    assert_eq!(get(&s, "kaskade_consumergroup_state", &[("group", "http-group"), ("state", "Empty")]), Some(1.0));
    assert_eq!(get(&s, "kaskade_consumergroup_state", &[("group", "http-group"), ("state", "Stable")]), Some(0.0));
    assert_eq!(get(&s, "kaskade_transactions_open", &[]), Some(0.0));
    assert!(get(&s, "process_open_fds", &[]).unwrap() > 3.0);
    let produces = get(&s, "kaskade_requests_total", &[("api", "Produce")]).expect("Produce requests counted");
    assert!(produces >= 1.0, "{produces}");
    let inf = [("api", "Produce"), ("le", "+Inf")];
    assert_eq!(get(&s, "kaskade_request_duration_seconds_bucket", &inf), Some(produces));
    assert_eq!(get(&s, "kaskade_request_duration_seconds_count", &[("api", "Produce")]), Some(produces));
    assert!(get(&s, "kaskade_requests_total", &[("api", "OffsetCommit")]).unwrap() >= 1.0);
    assert_eq!(get(&s, "kaskade_request_failures_total", &[("api", "Produce")]), Some(0.0));
    // acks=all: every produce waited for at least one fsync.
    assert!(get(&s, "kaskade_log_flush_duration_seconds_count", &[]).unwrap() >= 1.0);
    // The producer's and the consumer's connections (bootstrap and broker).
    assert!(get(&s, "kaskade_connections", &[]).unwrap() >= 2.0);
    assert!(get(&s, "kaskade_connections_accepted_total", &[]).unwrap() >= 3.0, "topic create, producer, consumer");

    // More records move the end offset and the lag; committing all clears it.
    producer.send(BaseRecord::to(topic).partition(0).key("k").payload("late")).expect("enqueue");
    producer.flush(WAIT).expect("flush");
    let s = scrape(&node);
    assert_eq!(get(&s, "kaskade_log_end_offset", &tp), Some(11.0));
    assert_eq!(get(&s, "kaskade_consumergroup_lag", &gtp), Some(7.0));
    commit(&consumer, topic, 11);
    assert_eq!(get(&scrape(&node), "kaskade_consumergroup_lag", &gtp), Some(0.0));

    // --log-format json: every stderr line is one JSON object.
    let logs = node.stderr.lock().unwrap().clone();
    assert!(logs.lines().count() > 0, "no logs");
    for line in logs.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v.get("level").is_some() && v.get("target").is_some(), "{line}");
    }
}

#[test]
fn log_level_filters_per_module_and_the_listener_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    // warn overall, debug for the group coordinator only.
    let node = start(dir.path(), &["--override", "http.listener=", "--log-level", "warn,kaskade_broker::group=debug"]);
    assert_eq!(node.http, None, "an empty http.listener must turn the listener off");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &node.kafka)
        .set("group.id", "log-level-group")
        .create()
        .expect("consumer");
    // A commit starts the coordinator, which logs at info (reads of
    // offsets do not start it while no group exists).
    let created = Command::new(env!("CARGO_BIN_EXE_kaskade"))
        .args(["--bootstrap-server", &node.kafka, "topic", "create", "any", "--partitions", "1"])
        .output()
        .expect("run topic create");
    assert!(created.status.success(), "{created:?}");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("any", 0, Offset::Offset(0)).unwrap();
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
    let deadline = Instant::now() + WAIT;
    loop {
        let logs = node.stderr.lock().unwrap().clone();
        if logs.contains("kaskade_broker::group") {
            assert!(!logs.contains("kaskade_broker::network"), "network info logged at warn:\n{logs}");
            break;
        }
        assert!(Instant::now() < deadline, "no group log at debug:\n{logs}");
        std::thread::sleep(Duration::from_millis(50));
    }

    let bad = Command::new(env!("CARGO_BIN_EXE_kaskade"))
        .args(["serve", "--log-level", "kaskade_broker=loud"])
        .arg("--data-dir")
        .arg(dir.path().join("never"))
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid log level filter"), "{bad:?}");
}

/// Polls a consumer until it returned `n` records of `topic`'s partition 0.
fn consume(consumer: &BaseConsumer, n: i64) {
    let mut seen = 0;
    let deadline = Instant::now() + WAIT;
    while seen < n {
        assert!(Instant::now() < deadline, "consumed only {seen} of {n}");
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            assert_eq!(m.expect("record").offset(), seen);
            seen += 1;
        }
    }
}

#[test]
fn traffic_counters_follow_what_clients_produce_and_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), &[]);
    let topic = "traffic";
    let created = Command::new(env!("CARGO_BIN_EXE_kaskade"))
        .args(["--bootstrap-server", &node.kafka, "topic", "create", topic, "--partitions", "2"])
        .output()
        .expect("run topic create");
    assert!(created.status.success(), "{created:?}");
    let p0 = [("topic", topic), ("partition", "0")];
    let p1 = [("topic", topic), ("partition", "1")];
    let s = scrape(&node);
    for name in ["kaskade_partition_bytes_in_total", "kaskade_partition_records_out_total"] {
        assert_eq!(get(&s, name, &p0), Some(0.0), "{name} exists, at 0, before any traffic");
    }

    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &node.kafka)
        .set("acks", "all")
        .set("compression.type", "none")
        .create()
        .expect("producer");
    for (partition, n) in [(0, 10), (1, 3)] {
        for i in 0..n {
            let value = format!("value-{i:03}-{}", "x".repeat(200));
            producer.send(BaseRecord::to(topic).partition(partition).key("k").payload(&value)).expect("enqueue");
        }
        // One flush per partition: batches of known partitions, whatever
        // librdkafka's batching.
        producer.flush(WAIT).expect("flush");
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &node.kafka)
        .set("group.id", "traffic-group")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    consume(&consumer, 10);

    let s = scrape(&node);
    // Batches are stored as producers sent them (no recompression): the
    // bytes in are the log's size, and a consumer reading the partition
    // once from the start fetched each of them once.
    let size0 = get(&s, "kaskade_log_size_bytes", &p0).expect("log size");
    let size1 = get(&s, "kaskade_log_size_bytes", &p1).expect("log size");
    assert!(size0 > 2000.0, "{size0}");
    assert_eq!(get(&s, "kaskade_partition_bytes_in_total", &p0), Some(size0));
    assert_eq!(get(&s, "kaskade_partition_records_in_total", &p0), Some(10.0));
    assert_eq!(get(&s, "kaskade_partition_bytes_in_total", &p1), Some(size1));
    assert_eq!(get(&s, "kaskade_partition_records_in_total", &p1), Some(3.0));
    assert_eq!(get(&s, "kaskade_partition_bytes_out_total", &p0), Some(size0));
    assert_eq!(get(&s, "kaskade_partition_records_out_total", &p0), Some(10.0));
    assert_eq!(get(&s, "kaskade_partition_bytes_out_total", &p1), Some(0.0));
    assert_eq!(get(&s, "kaskade_partition_records_out_total", &p1), Some(0.0));
    assert_eq!(get(&s, "kaskade_bytes_in_total", &[]), Some(size0 + size1));
    assert_eq!(get(&s, "kaskade_records_in_total", &[]), Some(13.0));
    assert_eq!(get(&s, "kaskade_bytes_out_total", &[]), Some(size0));
    assert_eq!(get(&s, "kaskade_records_out_total", &[]), Some(10.0));

    // Responses per error code: every rdkafka Produce above carried one
    // partition and succeeded.
    let produce = |error: &str| get(&s, "kaskade_request_errors_total", &[("api", "Produce"), ("error", error)]);
    let produces = get(&s, "kaskade_requests_total", &[("api", "Produce")]).expect("Produce counted");
    assert_eq!(produce("NONE"), Some(produces));
    // Each of them waited for an fsync (acks=all), once.
    assert_eq!(get(&s, "kaskade_produce_ack_wait_seconds_count", &[]), Some(produces));
    assert_eq!(produce("UNKNOWN_TOPIC_OR_PARTITION"), None, "no series before the first such error");
    assert!(get(&s, "kaskade_request_errors_total", &[("api", "Fetch"), ("error", "NONE")]).unwrap() >= 1.0);
    // One request, two partitions refused: one that does not exist, one
    // without records.
    let answered = raw_produce(&node.kafka, topic, &[(7, Some(b"x")), (0, None)]);
    assert_eq!(answered, vec![(7, 3), (0, 2)], "UNKNOWN_TOPIC_OR_PARTITION, CORRUPT_MESSAGE");
    let s = scrape(&node);
    let produce = |error: &str| get(&s, "kaskade_request_errors_total", &[("api", "Produce"), ("error", error)]);
    assert_eq!(produce("UNKNOWN_TOPIC_OR_PARTITION"), Some(1.0));
    assert_eq!(produce("CORRUPT_MESSAGE"), Some(1.0));
    assert_eq!(produce("NONE"), Some(produces), "nothing succeeded");
    assert_eq!(get(&s, "kaskade_requests_total", &[("api", "Produce")]), Some(produces + 1.0));
    assert_eq!(get(&s, "kaskade_produce_ack_wait_seconds_count", &[]), Some(produces), "nothing appended: no wait");
    assert_eq!(get(&s, "kaskade_partition_records_in_total", &p0), Some(10.0), "refused batches count nothing");

    // Deleting the topic drops its series; the broker totals keep them.
    let deleted = Command::new(env!("CARGO_BIN_EXE_kaskade"))
        .args(["--bootstrap-server", &node.kafka, "topic", "delete", topic])
        .output()
        .expect("run topic delete");
    assert!(deleted.status.success(), "{deleted:?}");
    drop(consumer);
    let deadline = Instant::now() + WAIT;
    let s = loop {
        let s = scrape(&node);
        if get(&s, "kaskade_partition_bytes_in_total", &p0).is_none() {
            break s;
        }
        assert!(Instant::now() < deadline, "the deleted topic's series stayed");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(get(&s, "kaskade_bytes_in_total", &[]), Some(size0 + size1));
    assert_eq!(get(&s, "kaskade_records_out_total", &[]), Some(10.0));
}

/// Sends one Produce (v9, acks=1) with the given partitions and records
/// through a raw connection: (partition, error code) of the answer.
fn raw_produce(kafka: &str, topic: &str, parts: &[(i32, Option<&'static [u8]>)]) -> Vec<(i32, i16)> {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let data = parts
        .iter()
        .map(|(p, r)| PartitionProduceData::default().with_index(*p).with_records(r.map(bytes::Bytes::from_static)))
        .collect();
    let name = TopicName(StrBytes::from_string(topic.to_string()));
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default().with_name(name).with_partition_data(data)]);
    let resp = raw(kafka, &req, 9);
    resp.responses.iter().flat_map(|t| &t.partition_responses).map(|p| (p.index, p.error_code)).collect()
}

/// One request at `version` on a new raw connection; its response.
fn raw<R: kafka_protocol::protocol::Request>(kafka: &str, req: &R, version: i16) -> R::Response {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let conn = kaskade_client::connection::Connection::connect(kafka, Default::default()).await.expect("connect");
        conn.send(req, version).await.expect("answered")
    })
}

#[test]
fn scrapes_and_group_reads_do_not_create_the_offsets_topic_find_coordinator_does() {
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
    use kafka_protocol::messages::{DescribeGroupsRequest, GroupId, OffsetFetchRequest};
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::ResponseError;
    use rdkafka::producer::BaseProducer;

    const OFFSETS: &str = "__consumer_offsets";
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), &[]);
    let admin: BaseProducer = ClientConfig::new().set("bootstrap.servers", &node.kafka).create().expect("client");
    let has_offsets_topic = || {
        let md = admin.client().fetch_metadata(None, WAIT).expect("metadata");
        md.topics().iter().any(|t| t.name() == OFFSETS)
    };
    let group = || GroupId(StrBytes::from_static_str("reader"));

    // No group exists yet: a scrape shows none, DescribeGroups describes
    // an unknown group, OffsetFetch finds no offsets, and the topic stays
    // absent.
    let s = scrape(&node);
    assert_eq!(get(&s, "kaskade_consumergroup_members", &[("group", "reader")]), None);
    let described = raw(&node.kafka, &DescribeGroupsRequest::default().with_groups(vec![group()]), 6);
    let g = &described.groups[0];
    assert_eq!((g.error_code, g.group_state.as_str()), (ResponseError::GroupIdNotFound.code(), "Dead"));
    let fetched = raw(&node.kafka, &OffsetFetchRequest::default().with_group_id(group()).with_topics(None), 7);
    assert_eq!((fetched.error_code, fetched.topics.len()), (0, 0));
    let batched = OffsetFetchRequest::default()
        .with_groups(vec![OffsetFetchRequestGroup::default().with_group_id(group()).with_topics(None)]);
    let fetched = raw(&node.kafka, &batched, 8);
    assert_eq!((fetched.groups[0].error_code, fetched.groups[0].topics.len()), (0, 0));
    scrape(&node);
    assert!(!has_offsets_topic(), "a read created {OFFSETS}");

    // A real client's lookup of committed offsets starts with FindCoordinator,
    // which creates the topic, as Kafka's does.
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", &node.kafka).set("group.id", "reader").create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("any", 0);
    let committed = consumer.committed_offsets(tpl, WAIT).expect("committed offsets");
    assert_eq!(committed.elements()[0].offset(), Offset::Invalid, "nothing committed");
    assert!(has_offsets_topic(), "FindCoordinator did not create {OFFSETS}");

    // Commits land in it.
    let created = Command::new(env!("CARGO_BIN_EXE_kaskade"))
        .args(["--bootstrap-server", &node.kafka, "topic", "create", "any", "--partitions", "1"])
        .output()
        .expect("run topic create");
    assert!(created.status.success(), "{created:?}");
    commit(&consumer, "any", 0);
    let fetched = raw(&node.kafka, &batched, 8);
    assert_eq!((fetched.groups[0].error_code, fetched.groups[0].topics.len()), (0, 1));
}
