//! End-to-end tests of the `kaskade` binary: a real broker (`kaskade serve`
//! as a child process on 127.0.0.1:0 with a temp data dir) driven by the
//! CLI subcommands, also run as child processes. Every child runs under a
//! deadline, so a hang fails the test instead of stalling the suite.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_kaskade");
/// Longest a broker may take to print its listening address.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest a CLI command may run.
const CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// A command for the binary with no KAFKA_* / KASKADE_* variables inherited
/// from the environment running the tests.
fn kaskade() -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("KAFKA_") || k.starts_with("KASKADE_") {
            c.env_remove(&*k);
        }
    }
    c
}

/// Output of a finished command.
#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(self) -> Out {
        assert_eq!(self.code, Some(0), "command failed: {self:#?}");
        self
    }

    fn fails(self) -> Out {
        assert!(
            self.code.is_some() && self.code != Some(0),
            "command should have failed with a non-zero exit: {self:#?}"
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }

    /// stdout as one JSON value per line.
    fn json_lines(&self) -> Vec<Value> {
        self.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {l:?}: {e}"))).collect()
    }
}

fn drain<R: Read + Send + 'static>(r: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = Vec::new();
        let mut r = r;
        let _ = r.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    })
}

/// Wait for `child` until `timeout`; kill it and panic when it is late.
fn wait_deadline(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?} (killed)");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Run `cmd` with `stdin`, under `timeout`.
fn run_cmd(mut cmd: Command, stdin: &str, timeout: Duration) -> Out {
    let what = format!("{cmd:?}");
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn kaskade");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_string();
    let writer = thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
        // Dropping `input` closes stdin: EOF for `produce`.
    });
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let status = wait_deadline(&mut child, timeout, &what);
    let _ = writer.join();
    Out { code: status.code(), stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

/// A broker process.
struct Broker {
    child: Child,
    addr: String,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

/// How to start a broker.
#[derive(Default, Clone)]
struct BrokerOpts {
    /// Extra `serve` arguments.
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Pass `--data-dir` and `--listeners` (false when a properties file
    /// names them).
    no_default_flags: bool,
}

fn collect<R: Read + Send + 'static>(r: R, into: Arc<Mutex<String>>, addr_tx: Option<mpsc::Sender<Option<String>>>) {
    thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            {
                let mut s = into.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
            // The address comes first; "data in" is the last start-up line.
            if let Some(tx) = &addr_tx {
                if let Some(a) = line.strip_prefix("kaskade: listening on ") {
                    let _ = tx.send(Some(a.trim().to_string()));
                } else if line.starts_with("kaskade: data in ") {
                    let _ = tx.send(None);
                }
            }
        }
    });
}

impl Broker {
    fn start(data_dir: &Path) -> Broker {
        Broker::start_with(data_dir, BrokerOpts::default()).unwrap_or_else(|o| panic!("broker did not start: {o:#?}"))
    }

    /// Start `kaskade serve`; `Err` with its output if it exits first.
    fn start_with(data_dir: &Path, opts: BrokerOpts) -> Result<Broker, Out> {
        let mut cmd = kaskade();
        cmd.arg("serve");
        // A free port: tests run in parallel, and the default 9644 is shared.
        cmd.arg("--override").arg("http.listener=127.0.0.1:0");
        if !opts.no_default_flags {
            cmd.arg("--data-dir").arg(data_dir).arg("--listeners").arg("PLAINTEXT://127.0.0.1:0");
        }
        cmd.args(&opts.args);
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kaskade serve");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        collect(child.stdout.take().unwrap(), stdout.clone(), Some(tx));
        collect(child.stderr.take().unwrap(), stderr.clone(), None);
        let deadline = Instant::now() + START_TIMEOUT;
        let mut addr: Option<String> = None;
        loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(Some(a)) => {
                    addr.get_or_insert(a);
                }
                Ok(None) => {
                    let addr = addr.take().expect("'listening on' before 'data in'");
                    return Ok(Broker { child, addr, stdout, stderr });
                }
                Err(_) => {}
            }
            if let Some(status) = child.try_wait().unwrap() {
                // Let the reader threads reach EOF.
                thread::sleep(Duration::from_millis(100));
                return Err(Out {
                    code: status.code(),
                    stdout: stdout.lock().unwrap().clone(),
                    stderr: stderr.lock().unwrap().clone(),
                });
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker did not print its address within {START_TIMEOUT:?}; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        }
    }

    /// Run a client command against this broker.
    fn cli(&self, args: &[&str]) -> Out {
        self.cli_in(args, "")
    }

    /// Run a client command with `stdin`.
    fn cli_in(&self, args: &[&str], stdin: &str) -> Out {
        let mut cmd = kaskade();
        cmd.arg("--bootstrap-server").arg(&self.addr).args(args);
        run_cmd(cmd, stdin, CMD_TIMEOUT)
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM, then wait for the exit. Returns (status, stdout, stderr).
    fn terminate(mut self) -> (ExitStatus, String, String) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let status = wait_deadline(&mut self.child, Duration::from_secs(20), "broker shutdown");
        thread::sleep(Duration::from_millis(100));
        let out = self.stdout.lock().unwrap().clone();
        let err = self.stderr.lock().unwrap().clone();
        (status, out, err)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn temp() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("kaskade-cli-test").tempdir().unwrap()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// `topic describe NAME -o json`, the one topic.
fn describe_json(b: &Broker, name: &str) -> Value {
    let v = b.cli(&["topic", "describe", name, "-o", "json"]).ok().json();
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), 1, "{v:#}");
    arr[0].clone()
}

fn assert_contains(haystack: &str, needles: &[&str]) {
    for n in needles {
        assert!(haystack.contains(n), "expected {n:?} in:\n{haystack}");
    }
}

// ---------------------------------------------------------------- topics

#[test]
fn topic_create_list_describe_alter_delete() {
    let dir = temp();
    let b = Broker::start(dir.path());

    let out = b
        .cli(&[
            "topic",
            "create",
            "orders",
            "--partitions",
            "3",
            "--config",
            "retention.ms=86400000",
            "--config",
            "cleanup.policy=compact",
        ])
        .ok();
    assert_eq!(out.stdout, "Created topic orders.\n");

    // Again: TOPIC_ALREADY_EXISTS with a hint, exit 1.
    let out = b.cli(&["topic", "create", "orders"]).fails();
    assert_eq!(out.code, Some(1));
    assert_contains(&out.stderr, &["TOPIC_ALREADY_EXISTS", "hint:", "--if-not-exists"]);
    let out = b.cli(&["topic", "create", "orders", "--if-not-exists"]).ok();
    assert_contains(&out.stdout, &["already exists"]);
    let out = b.cli(&["topic", "create", "orders", "--if-not-exists", "-o", "json"]).ok();
    assert_eq!(out.json()["created"], false);

    // Without --partitions: the broker default (num.partitions=1).
    let created = b.cli(&["topic", "create", "events", "-o", "json"]).ok().json();
    assert_eq!(created["created"], true);
    assert_eq!(created["partitions"], 1);
    assert_eq!(created["replication_factor"], 1);
    assert_eq!(created["topic_id"].as_str().unwrap().len(), 22);

    // list: table and JSON.
    let out = b.cli(&["topic", "list"]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(lines[0].starts_with("NAME") && lines[0].contains("PARTITIONS"));
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..3], &["events", "1", "1"]);
    let row: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(&row[..3], &["orders", "3", "1"]);
    let list = b.cli(&["topic", "list", "--output", "json"]).ok().json();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["events", "orders"]);
    assert_eq!(list[1]["partitions"], 3);
    assert_eq!(list[1]["replication_factor"], 1);
    assert_eq!(list[1]["internal"], false);
    assert_eq!(list[0]["topic_id"], created["topic_id"]);

    // describe: table shows partitions, leader, replicas, ISR and the
    // non-default configs only.
    let out = b.cli(&["topic", "describe", "orders"]).ok();
    assert_contains(&out.stdout, &["Topic: orders", "PartitionCount: 3", "ReplicationFactor: 1"]);
    let configs_line = out.stdout.lines().find(|l| l.starts_with("Configs:")).unwrap();
    assert_contains(configs_line, &["retention.ms=86400000", "cleanup.policy=compact"]);
    assert!(!configs_line.contains("segment.bytes"), "{configs_line}");
    let rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("PARTITION"))
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows, vec![vec!["0", "1", "1", "1"], vec!["1", "1", "1", "1"], vec!["2", "1", "1", "1"]]);
    let d = describe_json(&b, "orders");
    assert_eq!(d["partition_count"], 3);
    assert_eq!(d["configs"]["retention.ms"], "86400000");
    assert_eq!(d["configs"]["cleanup.policy"], "compact");
    assert_eq!(d["configs"].as_object().unwrap().len(), 2, "{d:#}");
    for (i, p) in d["partitions"].as_array().unwrap().iter().enumerate() {
        assert_eq!(p["partition"], i);
        assert_eq!(p["leader"], 1);
        assert_eq!(p["replicas"], serde_json::json!([1]));
        assert_eq!(p["isr"], serde_json::json!([1]));
    }
    let d = describe_json(&b, "events");
    assert_eq!(d["configs"], serde_json::json!({}));
    // A missing name among present ones: the rest is described, exit 1.
    let out = b.cli(&["topic", "describe", "events", "nope"]).fails();
    assert_contains(&out.stdout, &["Topic: events"]);
    assert_contains(&out.stderr, &["UNKNOWN_TOPIC_OR_PARTITION", "nope"]);

    // alter: partitions grow only.
    let out = b.cli(&["topic", "alter", "orders", "--partitions", "5"]).ok();
    assert_contains(&out.stdout, &["partitions 3 -> 5"]);
    assert_eq!(describe_json(&b, "orders")["partition_count"], 5);
    let out = b.cli(&["topic", "alter", "orders", "--partitions", "2"]).fails();
    assert_contains(&out.stderr, &["INVALID_PARTITIONS", "hint:"]);
    let out = b.cli(&["topic", "alter", "orders"]).fails();
    assert_contains(&out.stderr, &["nothing to alter"]);

    // alter: set and delete configs.
    b.cli(&[
        "topic",
        "alter",
        "orders",
        "--config",
        "retention.ms=3600000",
        "--config",
        "max.message.bytes=2000000",
        "--delete-config",
        "cleanup.policy",
    ])
    .ok();
    let d = describe_json(&b, "orders");
    assert_eq!(d["configs"], serde_json::json!({"retention.ms": "3600000", "max.message.bytes": "2000000"}));
    let out = b.cli(&["topic", "alter", "orders", "--config", "retention.ms=soon"]).fails();
    assert_contains(&out.stderr, &["INVALID_CONFIG", "retention.ms"]);
    let out = b.cli(&["topic", "alter", "nope", "--config", "retention.ms=1"]).fails();
    assert_contains(&out.stderr, &["UNKNOWN_TOPIC_OR_PARTITION"]);

    // delete, then delete again, then --if-exists.
    let out = b.cli(&["topic", "delete", "orders"]).ok();
    assert_eq!(out.stdout, "Deleted topic orders.\n");
    let list = b.cli(&["topic", "list", "-o", "json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let out = b.cli(&["topic", "delete", "orders"]).fails();
    assert_contains(&out.stderr, &["UNKNOWN_TOPIC_OR_PARTITION", "hint:", "--if-exists"]);
    let out = b.cli(&["topic", "delete", "orders", "--if-exists"]).ok();
    assert_contains(&out.stdout, &["does not exist"]);
    let out = b.cli(&["topic", "delete", "events", "orders", "-o", "json"]).fails();
    let v = out.json();
    assert_eq!(v[0]["name"], "events");
    assert_eq!(v[0]["deleted"], true);
    assert_eq!(v[1]["error"], "UNKNOWN_TOPIC_OR_PARTITION");
    let out = b.cli(&["topic", "list"]).ok();
    assert_eq!(out.stdout, "");
    assert_contains(&out.stderr, &["No topics"]);
    assert_eq!(b.cli(&["topic", "list", "-o", "json"]).ok().json(), serde_json::json!([]));
}

#[test]
fn topic_create_rejections_name_the_problem() {
    let dir = temp();
    let b = Broker::start(dir.path());
    let out = b.cli(&["topic", "create", "x", "--config", "retention.ms=abc"]).fails();
    assert_contains(&out.stderr, &["INVALID_CONFIG", "retention.ms", "abc", "hint:"]);
    let out = b.cli(&["topic", "create", "x", "--config", "no.such.config=1"]).fails();
    assert_contains(&out.stderr, &["INVALID_CONFIG", "no.such.config"]);
    let out = b.cli(&["topic", "create", "a/b"]).fails();
    assert_contains(&out.stderr, &["INVALID_TOPIC_EXCEPTION", "hint:"]);
    let out = b.cli(&["topic", "create", "x", "--replication-factor", "3"]).fails();
    assert_contains(&out.stderr, &["INVALID_REPLICATION_FACTOR", "--replication-factor 1"]);
    // '.' and '_' collide (Kafka's rule); the hint must be about that,
    // not about which characters a name may have.
    b.cli(&["topic", "create", "a.b"]).ok();
    let out = b.cli(&["topic", "create", "a_b"]).fails();
    assert_contains(&out.stderr, &["INVALID_TOPIC_EXCEPTION", "collides", "hint:"]);
    assert!(!out.stderr.contains("1-249 characters"), "misleading hint: {}", out.stderr);
    // Usage errors are clap's: exit 2 before any connection.
    let out = b.cli(&["topic", "create", "x", "--partitions", "0"]);
    assert_eq!(out.code, Some(2), "{out:#?}");
    // Nothing was created by the failures.
    let list = b.cli(&["topic", "list", "-o", "json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list:#}");
}

// ------------------------------------------------------ produce / consume

#[test]
fn produce_keys_headers_and_consume_as_json() {
    let dir = temp();
    let b = Broker::start(dir.path());
    b.cli(&["topic", "create", "t", "--partitions", "3"]).ok();

    let before = now_ms();
    let out = b
        .cli_in(
            &["produce", "t", "--key-separator", ":", "--header", "source=cli", "--header", "trace=a=b"],
            "k1:v1\nk2:v2\nk3:v3:with:colons\nk1:again\n",
        )
        .ok();
    let after = now_ms();
    assert_contains(&out.stderr, &["Produced 4 records to topic 't'"]);

    let out = b.cli(&["consume", "t", "--from-beginning", "--max-messages", "4", "--format", "json"]).ok();
    assert_contains(&out.stderr, &["Processed a total of 4 messages"]);
    let mut recs = out.json_lines();
    assert_eq!(recs.len(), 4, "{}", out.stdout);
    recs.sort_by_key(|r| (r["partition"].as_i64(), r["offset"].as_i64()));
    let got: Vec<(i64, i64, &str, &str)> = recs
        .iter()
        .map(|r| {
            (
                r["partition"].as_i64().unwrap(),
                r["offset"].as_i64().unwrap(),
                r["key"].as_str().unwrap(),
                r["value"].as_str().unwrap(),
            )
        })
        .collect();
    // Kafka's default partitioner: toPositive(murmur2(key)) % 3 is
    // k1 -> 2, k2 -> 0, k3 -> 1 (checked against an independent murmur2).
    assert_eq!(
        got,
        vec![(0, 0, "k2", "v2"), (1, 0, "k3", "v3:with:colons"), (2, 0, "k1", "v1"), (2, 1, "k1", "again"),]
    );
    for r in &recs {
        assert_eq!(r["topic"], "t");
        assert_eq!(r["headers"], serde_json::json!({"source": "cli", "trace": "a=b"}));
        let ts = r["timestamp"].as_i64().unwrap();
        assert!((before..=after).contains(&ts), "{ts} not in {before}..={after}");
    }

    // Lines without a key become records with a null key; --partition
    // pins them.
    b.cli_in(&["produce", "t", "--partition", "1"], "x\ny\n").ok();
    let out =
        b.cli(&["consume", "t", "--partition", "1", "--offset", "1", "--max-messages", "2", "--format", "json"]).ok();
    let recs = out.json_lines();
    let got: Vec<(i64, i64, &Value, &str)> = recs
        .iter()
        .map(|r| {
            (r["partition"].as_i64().unwrap(), r["offset"].as_i64().unwrap(), &r["key"], r["value"].as_str().unwrap())
        })
        .collect();
    assert_eq!(got, vec![(1, 1, &Value::Null, "x"), (1, 2, &Value::Null, "y")]);
    assert_eq!(recs[0]["headers"], serde_json::json!({}));
}

#[test]
fn consume_text_fields_offsets_and_limits() {
    let dir = temp();
    let b = Broker::start(dir.path());
    b.cli(&["topic", "create", "t", "--partitions", "2"]).ok();
    let lines: String = (0..10).map(|i| format!("key{i}|value {i}\n")).collect();
    b.cli_in(&["produce", "t", "--partition", "1", "--key-separator", "|", "--header", "h=1"], &lines).ok();

    // Value only by default.
    let out = b.cli(&["consume", "t", "--partition", "1", "--from-beginning", "-n", "3"]).ok();
    assert_eq!(out.stdout, "value 0\nvalue 1\nvalue 2\n");

    // Every field, in Kafka's DefaultMessageFormatter order.
    let out = b
        .cli(&[
            "consume",
            "t",
            "--partition",
            "1",
            "--offset",
            "7",
            "--max-messages",
            "3",
            "--print-key",
            "--print-headers",
            "--print-timestamp",
            "--print-partition",
            "--print-offset",
        ])
        .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    for (i, line) in lines.iter().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 6, "{line}");
        let ts: i64 = f[0].strip_prefix("CreateTime:").unwrap_or_else(|| panic!("{line}")).parse().unwrap();
        assert!(ts > 0);
        let n = 7 + i;
        assert_eq!(
            &f[1..],
            &["Partition:1", &format!("Offset:{n}"), "h:1", &format!("key{n}"), &format!("value {n}"),]
        );
    }

    // --offset earliest / latest, --timeout-ms ends an idle consume.
    let out = b.cli(&["consume", "t", "--offset", "earliest", "--max-messages", "10", "--print-partition"]).ok();
    assert_eq!(out.stdout.lines().count(), 10);
    assert!(out.stdout.lines().all(|l| l.starts_with("Partition:1\t")));
    let out = b.cli(&["consume", "t", "--offset", "latest", "--timeout-ms", "300"]).ok();
    assert_eq!(out.stdout, "");
    assert_contains(&out.stderr, &["Processed a total of 0 messages"]);
    // An empty partition read from the beginning.
    let out = b.cli(&["consume", "t", "--partition", "0", "--from-beginning", "--timeout-ms", "300"]).ok();
    assert_eq!(out.stdout, "");
    // An offset past the end: a warning, then the end.
    let out = b.cli(&["consume", "t", "--partition", "1", "--offset", "100", "--timeout-ms", "300"]).ok();
    assert_contains(&out.stderr, &["out of range", "continuing from 10"]);
}

#[test]
fn produce_every_compression_and_acks() {
    let dir = temp();
    let b = Broker::start(dir.path());
    b.cli(&["topic", "create", "c"]).ok();
    let mut expected = Vec::new();
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    for codec in codecs {
        for acks in ["0", "1", "all"] {
            // Enough repetition for the codecs to have something to do.
            let input: String = (0..3)
                .map(|j| {
                    let v = format!("{codec}-acks{acks}-{j}-{}", "x".repeat(100));
                    expected.push(v.clone());
                    v + "\n"
                })
                .collect();
            let out = b.cli_in(&["produce", "c", "--compression", codec, "--acks", acks], &input).ok();
            if acks == "0" {
                assert_contains(&out.stderr, &["Sent (acks=0, not acknowledged) 3 records"]);
            } else {
                assert_contains(&out.stderr, &["Produced 3 records"]);
            }
        }
    }
    let out = b
        .cli(&["consume", "c", "--from-beginning", "--max-messages", &expected.len().to_string(), "--format", "json"])
        .ok();
    let recs = out.json_lines();
    let values: Vec<&str> = recs.iter().map(|r| r["value"].as_str().unwrap()).collect();
    assert_eq!(values, expected);
    let offsets: Vec<i64> = recs.iter().map(|r| r["offset"].as_i64().unwrap()).collect();
    assert_eq!(offsets, (0..expected.len() as i64).collect::<Vec<_>>());
    let out = b.cli_in(&["produce", "c", "--compression", "brotli"], "x\n");
    assert_eq!(out.code, Some(2), "{out:#?}");
    let out = b.cli_in(&["produce", "c", "--acks", "2"], "x\n");
    assert_eq!(out.code, Some(2), "{out:#?}");
}

#[test]
fn consume_from_latest_gets_records_produced_after_it_started() {
    let dir = temp();
    let b = Broker::start(dir.path());
    b.cli(&["topic", "create", "live", "--partitions", "2"]).ok();
    b.cli_in(&["produce", "live"], "old\n").ok();

    let mut cmd = kaskade();
    cmd.args(["--bootstrap-server", &b.addr, "consume", "live", "--max-messages", "1"]);
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    // The consumer starts at the end at some moment we cannot see: keep
    // producing until it has its one record.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        b.cli_in(&["produce", "live"], "new\n").ok();
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("consume did not get a new record");
        }
        thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success());
    assert_eq!(out.join().unwrap(), "new\n");
    assert_contains(&err.join().unwrap(), &["Processed a total of 1 messages"]);
}

// ---------------------------------------------------------------- errors

#[test]
fn missing_topic_and_bad_arguments_are_explained() {
    let dir = temp();
    let b = Broker::start(dir.path());
    for args in [&["produce", "nope"][..], &["consume", "nope", "--from-beginning"][..]] {
        let out = b.cli_in(args, "x\n").fails();
        assert_eq!(out.code, Some(1));
        assert_contains(
            &out.stderr,
            &["UNKNOWN_TOPIC_OR_PARTITION", "'nope' does not exist", "kaskade topic create nope"],
        );
        assert_eq!(out.stdout, "");
    }
    // The CLI never auto-creates.
    let list = b.cli(&["topic", "list", "-o", "json"]).ok().json();
    assert_eq!(list, serde_json::json!([]));

    b.cli(&["topic", "create", "t", "--partitions", "2"]).ok();
    let out = b.cli_in(&["produce", "t", "--partition", "5"], "x\n").fails();
    assert_contains(&out.stderr, &["no partition 5", "topic alter t --partitions"]);
    let out = b.cli(&["consume", "t", "--partition", "5", "--from-beginning"]).fails();
    assert_contains(&out.stderr, &["no partition 5"]);
    let out = b.cli(&["consume", "t", "--offset", "3"]).fails();
    assert_contains(&out.stderr, &["--offset N needs --partition"]);
    let out = b.cli_in(&["produce", "t", "--key-separator", ":"], "a:1\nno separator\n").fails();
    assert_contains(&out.stderr, &["line 2 has no key separator ':'"]);
    // A record over the topic's max.message.bytes.
    b.cli(&["topic", "create", "small", "--config", "max.message.bytes=100"]).ok();
    let out = b.cli_in(&["produce", "small"], &format!("{}\n", "x".repeat(500))).fails();
    assert_contains(&out.stderr, &["MESSAGE_TOO_LARGE", "hint:"]);
}

#[test]
fn no_broker_gives_a_clear_error_without_hanging() {
    // A port nobody listens on.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    for (args, stdin) in [
        (&["topic", "list"][..], ""),
        (&["topic", "create", "t"][..], ""),
        (&["produce", "t"][..], "x\n"),
        (&["consume", "t"][..], ""),
    ] {
        let mut cmd = kaskade();
        cmd.arg("--bootstrap-server").arg(&addr).args(args);
        let started = Instant::now();
        let out = run_cmd(cmd, stdin, Duration::from_secs(20)).fails();
        assert!(started.elapsed() < Duration::from_secs(5), "{args:?} took {:?}", started.elapsed());
        assert_contains(
            &out.stderr,
            &["could not reach any broker", &addr, "is a broker running?", "--bootstrap-server"],
        );
    }
    // The same through KASKADE_BOOTSTRAP.
    let mut cmd = kaskade();
    cmd.env("KASKADE_BOOTSTRAP", &addr).args(["topic", "list"]);
    let out = run_cmd(cmd, "", Duration::from_secs(20)).fails();
    assert_contains(&out.stderr, &[&addr]);

    // Something listens but never answers (not a Kafka broker, or a hung
    // one): connection setup gives up after the connect timeout (10 s)
    // instead of the 30 s request timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let held = Arc::new(Mutex::new(Vec::new()));
    let h = held.clone();
    thread::spawn(move || {
        for s in silent.incoming().flatten() {
            h.lock().unwrap().push(s); // keep it open, say nothing
        }
    });
    let mut cmd = kaskade();
    cmd.arg("--bootstrap-server").arg(&silent_addr).args(["topic", "list"]);
    let started = Instant::now();
    let out = run_cmd(cmd, "", Duration::from_secs(25)).fails();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_contains(&out.stderr, &["timed out", &silent_addr, "is a broker running?"]);
}

// ------------------------------------------------------------------ serve

#[test]
fn serve_rejects_invalid_config_values_and_warns_on_unknown_keys() {
    let dir = temp();
    let props = dir.path().join("bad.properties");
    std::fs::write(&props, "num.partitions=x\n").unwrap();
    let cases: Vec<(BrokerOpts, &str, &str)> = vec![
        (
            BrokerOpts { args: vec!["--override".into(), "num.partitions=abc".into()], ..Default::default() },
            "abc",
            "override",
        ),
        (
            BrokerOpts { env: vec![("KAFKA_NUM_PARTITIONS".into(), "many".into())], ..Default::default() },
            "many",
            "environment",
        ),
        (
            BrokerOpts { args: vec!["--config".into(), props.display().to_string()], ..Default::default() },
            "x",
            "properties file",
        ),
    ];
    for (opts, value, source) in cases {
        let out = match Broker::start_with(&dir.path().join("data"), opts) {
            Ok(b) => panic!("broker started with an invalid value: {}", b.stderr()),
            Err(out) => out,
        };
        assert_eq!(out.code, Some(1), "{out:#?}");
        assert_contains(&out.stderr, &["num.partitions", &format!("'{value}'"), "expected an integer", source]);
        assert!(!out.stdout.contains("listening"), "{out:#?}");
    }
    let out = Broker::start_with(
        &dir.path().join("data"),
        BrokerOpts { args: vec!["--override".into(), "novalue".into()], ..Default::default() },
    )
    .err()
    .expect("must not start");
    assert_contains(&out.stderr, &["--override novalue", "KEY=VALUE"]);
    let out = Broker::start_with(
        &dir.path().join("data"),
        BrokerOpts {
            args: vec!["--config".into(), dir.path().join("missing.properties").display().to_string()],
            ..Default::default()
        },
    )
    .err()
    .expect("must not start");
    assert_contains(&out.stderr, &["missing.properties", "No such file"]);

    // An unknown key only warns.
    let b = Broker::start_with(
        &dir.path().join("data"),
        BrokerOpts { args: vec!["--override".into(), "no.such.key=1".into()], ..Default::default() },
    )
    .unwrap_or_else(|o| panic!("an unknown key must not stop start-up: {o:#?}"));
    assert_contains(&b.stderr(), &["no.such.key"]);
    b.cli(&["topic", "list"]).ok();
}

#[test]
fn serve_reads_env_and_properties_with_kafka_precedence() {
    let dir = temp();
    // KAFKA_* environment, as in Kafka's container images.
    let b = Broker::start_with(
        &dir.path().join("env"),
        BrokerOpts { env: vec![("KAFKA_NUM_PARTITIONS".into(), "3".into())], ..Default::default() },
    )
    .unwrap();
    let c = b.cli(&["topic", "create", "t", "-o", "json"]).ok().json();
    assert_eq!(c["partitions"], 3);
    assert_eq!(describe_json(&b, "t")["partition_count"], 3);
    drop(b);

    // A server.properties file naming the data dir and the listener too.
    let data = dir.path().join("props-data");
    let props = dir.path().join("server.properties");
    std::fs::write(
        &props,
        format!(
            "# a comment\nnum.partitions = 2\nlog.dirs={}\nlisteners=PLAINTEXT://127.0.0.1:0\nlog.retention.hours=1\n",
            data.display()
        ),
    )
    .unwrap();
    let b = Broker::start_with(
        &data,
        BrokerOpts {
            args: vec!["--config".into(), props.display().to_string()],
            no_default_flags: true,
            ..Default::default()
        },
    )
    .unwrap();
    let c = b.cli(&["topic", "create", "t", "-o", "json"]).ok().json();
    assert_eq!(c["partitions"], 2);
    assert_contains(&b.stdout.lock().unwrap(), &[&format!("data in {}", data.display())]);
    assert!(data.join("t-0").is_dir() && data.join("t-1").is_dir());
    drop(b);

    // file < environment < flags.
    let b = Broker::start_with(
        &data,
        BrokerOpts {
            args: vec!["--config".into(), props.display().to_string()],
            env: vec![("KAFKA_NUM_PARTITIONS".into(), "4".into())],
            no_default_flags: true,
        },
    )
    .unwrap();
    let c = b.cli(&["topic", "create", "u", "-o", "json"]).ok().json();
    assert_eq!(c["partitions"], 4);
    drop(b);
    let b = Broker::start_with(
        &data,
        BrokerOpts {
            args: vec!["--config".into(), props.display().to_string(), "--override".into(), "num.partitions=5".into()],
            env: vec![("KAFKA_NUM_PARTITIONS".into(), "4".into())],
            no_default_flags: true,
        },
    )
    .unwrap();
    let c = b.cli(&["topic", "create", "v", "-o", "json"]).ok().json();
    assert_eq!(c["partitions"], 5);
}

#[test]
fn sigterm_shuts_down_cleanly_and_restart_keeps_data() {
    let dir = temp();
    let b = Broker::start(dir.path());
    b.cli(&["topic", "create", "keep", "--partitions", "2", "--config", "retention.ms=7200000"]).ok();
    let input: String = (0..100).map(|i| format!("k{i}:v{i}\n")).collect();
    b.cli_in(&["produce", "keep", "--key-separator", ":", "--compression", "zstd"], &input).ok();
    let before = describe_json(&b, "keep");
    let cluster_line = |out: &str| {
        out.lines()
            .find(|l| l.contains("cluster.id="))
            .map(|l| l.split("cluster.id=").nth(1).unwrap().to_string())
            .expect("cluster.id line")
    };
    let cluster_id = cluster_line(&b.stdout.lock().unwrap());

    let (status, stdout, stderr) = b.terminate();
    assert_eq!(status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_contains(&stdout, &["shutting down", "stopped cleanly"]);
    assert!(!stderr.contains("ERROR"), "{stderr}");

    let b = Broker::start(dir.path());
    assert_eq!(cluster_line(&b.stdout.lock().unwrap()), cluster_id);
    let after = describe_json(&b, "keep");
    assert_eq!(after["topic_id"], before["topic_id"]);
    assert_eq!(after["partition_count"], 2);
    assert_eq!(after["configs"], serde_json::json!({"retention.ms": "7200000"}));
    let out = b.cli(&["consume", "keep", "--from-beginning", "--max-messages", "100", "--print-key"]).ok();
    let mut got: Vec<String> = out.stdout.lines().map(str::to_string).collect();
    got.sort();
    let mut want: Vec<String> = (0..100).map(|i| format!("k{i}\tv{i}")).collect();
    want.sort();
    assert_eq!(got, want);
    // New writes continue after the old ones.
    b.cli_in(&["produce", "keep", "--partition", "0"], "more\n").ok();
    let out = b.cli(&["consume", "keep", "--partition", "0", "--offset", "latest", "--timeout-ms", "200"]).ok();
    assert_eq!(out.stdout, "");
    let total: usize = (0..2)
        .map(|p| {
            b.cli(&["consume", "keep", "--partition", &p.to_string(), "--from-beginning", "--timeout-ms", "300"])
                .ok()
                .stdout
                .lines()
                .count()
        })
        .sum();
    assert_eq!(total, 101);
}

// ------------------------------------------- broker behaviours found missing once

/// Kafka rejects a record without a key on a compacted topic
/// (INVALID_RECORD, "Compacted topic cannot accept message without key").
#[test]
fn compacted_topic_rejects_records_without_key() {
    let dir = temp();
    let b = Broker::start(dir.path());
    b.cli(&["topic", "create", "cmp", "--config", "cleanup.policy=compact"]).ok();
    let out = b.cli_in(&["produce", "cmp"], "no key\n").fails();
    assert_contains(&out.stderr, &["INVALID_RECORD"]);
}

/// Kafka holds a lock on each log dir (`.lock`), so a second broker on the
/// same data dir refuses to start.
#[test]
fn second_broker_on_the_same_data_dir_refuses_to_start() {
    let dir = temp();
    let _b = Broker::start(dir.path());
    match Broker::start_with(dir.path(), BrokerOpts::default()) {
        Ok(_) => panic!("a second broker started on the same data dir"),
        Err(out) => assert_ne!(out.code, Some(0)),
    }
}

/// `group describe G -o json` partitions as (topic, partition) ->
/// (committed, log end, lag), checking lag = log end - committed on each.
fn group_offsets(b: &Broker, group: &str) -> Vec<(String, i64, i64, i64, i64)> {
    let v = b.cli(&["group", "describe", group, "-o", "json"]).ok().json();
    let mut rows: Vec<(String, i64, i64, i64, i64)> = v["partitions"]
        .as_array()
        .unwrap_or_else(|| panic!("no partitions: {v:#}"))
        .iter()
        .map(|p| {
            let committed = p["committed_offset"].as_i64().expect("committed");
            let end = p["log_end_offset"].as_i64().expect("log end");
            let lag = p["lag"].as_i64().expect("lag");
            assert_eq!(lag, end - committed, "lag is log end minus committed: {p:#}");
            (p["topic"].as_str().unwrap().to_string(), p["partition"].as_i64().unwrap(), committed, end, lag)
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn consume_with_group_commits_and_describe_shows_lag() {
    let dir = temp();
    let b = Broker::start(dir.path());
    b.cli(&["topic", "create", "t", "--partitions", "3"]).ok();
    let counts = [5i64, 7, 3];
    for (p, n) in counts.iter().enumerate() {
        let input: String = (0..*n).map(|i| format!("p{p}-{i}\n")).collect();
        b.cli_in(&["produce", "t", "--partition", &p.to_string()], &input).ok();
    }
    let total: i64 = counts.iter().sum();

    // Read 6 records as group g: the positions after them are committed.
    let out = b.cli(&["consume", "t", "--group", "g", "--from-beginning", "--max-messages", "6"]).ok();
    assert_eq!(out.stdout.lines().count(), 6, "{out:#?}");
    let rows = group_offsets(&b, "g");
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (t, p, committed, end, _) in &rows {
        assert_eq!(t, "t");
        assert_eq!(*end, counts[*p as usize], "log end of partition {p}");
        assert!((0..=*end).contains(committed), "{rows:?}");
    }
    assert_eq!(rows.iter().map(|r| r.2).sum::<i64>(), 6, "{rows:?}");
    assert_eq!(rows.iter().map(|r| r.4).sum::<i64>(), total - 6, "{rows:?}");

    // The table shows the same numbers, in kafka-consumer-groups' columns.
    let table = b.cli(&["group", "describe", "g"]).ok().stdout;
    assert_contains(&table, &["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID"]);
    for (_, p, committed, end, lag) in &rows {
        let line = table
            .lines()
            .find(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() >= 6 && f[0] == "g" && f[1] == "t" && f[2] == p.to_string()
            })
            .unwrap_or_else(|| panic!("no row for partition {p}:\n{table}"));
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            (f[3], f[4], f[5]),
            (committed.to_string().as_str(), end.to_string().as_str(), lag.to_string().as_str()),
            "{table}"
        );
    }

    // The group resumes exactly after the committed offsets (no
    // --from-beginning needed), reading the rest and nothing more.
    let out =
        b.cli(&["consume", "t", "--group", "g", "--timeout-ms", "1500", "--print-partition", "--print-offset"]).ok();
    assert_eq!(out.stdout.lines().count() as i64, total - 6, "{out:#?}");
    for (_, p, committed, _, _) in &rows {
        for line in out.stdout.lines().filter(|l| l.contains(&format!("Partition:{p}\t"))) {
            let off: i64 = line.split('\t').find_map(|f| f.strip_prefix("Offset:")).unwrap().parse().unwrap();
            assert!(off >= *committed, "re-read offset {off} of partition {p}: {line}");
        }
    }
    let rows = group_offsets(&b, "g");
    for (_, p, committed, end, lag) in &rows {
        assert_eq!((*committed, *end, *lag), (counts[*p as usize], counts[*p as usize], 0));
    }

    // list shows the group.
    let list = b.cli(&["group", "list", "-o", "json"]).ok().json();
    let g = list
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group_id"] == "g")
        .unwrap_or_else(|| panic!("g not listed: {list:#}"))
        .clone();
    assert_eq!(g["state"], "Empty", "{g:#}");
    assert_contains(&b.cli(&["group", "list"]).ok().stdout, &["GROUP", "STATE", "g"]);

    // reset-offsets: a dry run changes nothing; --execute applies.
    let out = b.cli(&["group", "reset-offsets", "g", "--topic", "t", "--to-earliest"]).ok();
    assert_contains(&out.stdout, &["NEW-OFFSET", "Dry run"]);
    assert!(group_offsets(&b, "g").iter().all(|r| r.4 == 0));
    b.cli(&["group", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--execute"]).ok();
    let rows = group_offsets(&b, "g");
    assert!(rows.iter().all(|r| r.2 == 0 && r.4 == r.3), "{rows:?}");
    b.cli(&["group", "reset-offsets", "g", "--topic", "t", "--shift-by", "4", "--execute"]).ok();
    let got: Vec<i64> = group_offsets(&b, "g").iter().map(|r| r.2).collect();
    assert_eq!(got, vec![4, 4, 3], "shift clamps to the log end");
    b.cli(&["group", "reset-offsets", "g", "--topic", "t", "--shift-by", "-1", "--execute"]).ok();
    let got: Vec<i64> = group_offsets(&b, "g").iter().map(|r| r.2).collect();
    assert_eq!(got, vec![3, 3, 2]);
    b.cli(&["group", "reset-offsets", "g", "--topic", "t", "--to-offset", "6", "--execute"]).ok();
    let got: Vec<i64> = group_offsets(&b, "g").iter().map(|r| r.2).collect();
    assert_eq!(got, vec![5, 6, 3]);
    // Replay from the reset offsets: exactly partition 1's last record.
    let out = b.cli(&["consume", "t", "--group", "g", "--timeout-ms", "1000"]).ok();
    assert_eq!(out.stdout, "p1-6\n", "{out:#?}");
    b.cli(&["group", "reset-offsets", "g", "--topic", "t", "--to-latest", "--execute"]).ok();
    assert!(group_offsets(&b, "g").iter().all(|r| r.4 == 0));

    // By time: every record is newer than a day ago and older than 2100.
    b.cli(&["group", "reset-offsets", "g", "--topic", "t", "--by-duration", "P1D", "--execute"]).ok();
    assert!(group_offsets(&b, "g").iter().all(|r| r.2 == 0));
    b.cli(&["group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "2100-01-01T00:00:00Z", "--execute"]).ok();
    assert!(group_offsets(&b, "g").iter().all(|r| r.4 == 0));
    b.cli(&["group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "1970-01-01", "--execute"]).ok();
    assert!(group_offsets(&b, "g").iter().all(|r| r.2 == 0));

    // delete
    b.cli(&["group", "delete", "g"]).ok();
    let list = b.cli(&["group", "list", "-o", "json"]).ok().json();
    assert!(!list.as_array().unwrap().iter().any(|g| g["group_id"] == "g"), "{list:#}");
    b.cli(&["group", "describe", "g"]).fails();
    assert!(b.cli(&["group", "reset-offsets", "g", "--topic", "t"]).fails().stderr.contains("--to-earliest"));
}

#[test]
fn group_with_active_member_is_described_and_protected() {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};

    let dir = temp();
    let b = Broker::start(dir.path());
    b.cli(&["topic", "create", "t", "--partitions", "2"]).ok();
    b.cli_in(&["produce", "t", "--partition", "0"], "a\nb\n").ok();

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &b.addr)
        .set("group.id", "live")
        .set("client.id", "cli-test-member")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&["t"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut read = 0;
    while read < 2 || consumer.assignment().map(|a| a.count()).unwrap_or(0) < 2 {
        assert!(Instant::now() < deadline, "no assignment / records within 30s");
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            m.expect("message");
            read += 1;
        }
    }
    consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync).unwrap();

    let v = b.cli(&["group", "describe", "live", "-o", "json"]).ok().json();
    assert_eq!(v["state"], "Stable", "{v:#}");
    assert_eq!(v["protocol_type"], "consumer", "{v:#}");
    let members = v["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{v:#}");
    assert_eq!(members[0]["client_id"], "cli-test-member");
    let member_id = members[0]["member_id"].as_str().unwrap().to_string();
    let parts = v["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{v:#}");
    for p in parts {
        assert_eq!(p["member_id"], member_id.as_str(), "{p:#}");
        assert_eq!(p["client_id"], "cli-test-member", "{p:#}");
    }
    let p0 = parts.iter().find(|p| p["partition"] == 0).unwrap();
    assert_eq!((p0["committed_offset"].as_i64(), p0["lag"].as_i64()), (Some(2), Some(0)), "{p0:#}");
    assert_contains(&b.cli(&["group", "describe", "live"]).ok().stdout, &[&member_id, "cli-test-member"]);
    let list = b.cli(&["group", "list", "-o", "json"]).ok().json();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["group_id"] == "live" && g["state"] == "Stable" && g["protocol_type"] == "consumer"));

    // Refused while the member is active.
    let out = b.cli(&["group", "reset-offsets", "live", "--topic", "t", "--to-earliest", "--execute"]).fails();
    assert_contains(&out.stderr, &["active member"]);
    let out = b.cli(&["group", "delete", "live"]).fails();
    assert_contains(&out.stderr, &["NON_EMPTY_GROUP"]);
    let v = b.cli(&["group", "describe", "live", "-o", "json"]).ok().json();
    let p0 = v["partitions"].as_array().unwrap().iter().find(|p| p["partition"] == 0).unwrap().clone();
    assert_eq!(p0["committed_offset"].as_i64(), Some(2), "nothing was reset: {p0:#}");

    // Once the member leaves, both work.
    drop(consumer);
    b.cli(&["group", "reset-offsets", "live", "--topic", "t", "--to-earliest", "--execute"]).ok();
    let rows = group_offsets(&b, "live");
    assert!(rows.iter().all(|r| r.2 == 0), "{rows:?}");
    b.cli(&["group", "delete", "live"]).ok();
}

#[test]
fn two_group_consumers_split_the_partitions() {
    let dir = temp();
    let b = Broker::start(dir.path());
    b.cli(&["topic", "create", "t4", "--partitions", "4"]).ok();
    let mut all = Vec::new();
    for p in 0..4 {
        let input: String = (0..5).map(|i| format!("p{p}-{i}\n")).collect();
        all.extend(input.lines().map(str::to_string));
        b.cli_in(&["produce", "t4", "--partition", &p.to_string()], &input).ok();
    }
    let spawn = |addr: String| {
        thread::spawn(move || {
            let mut cmd = kaskade();
            cmd.args([
                "--bootstrap-server",
                &addr,
                "consume",
                "t4",
                "--group",
                "pair",
                "--from-beginning",
                "--timeout-ms",
                "6000",
            ]);
            run_cmd(cmd, "", Duration::from_secs(60))
        })
    };
    let (a, c) = (spawn(b.addr.clone()), spawn(b.addr.clone()));
    let (a, c) = (a.join().unwrap().ok(), c.join().unwrap().ok());
    let mut got: Vec<String> = a.stdout.lines().chain(c.stdout.lines()).map(str::to_string).collect();
    got.sort();
    all.sort();
    assert_eq!(got, all, "every record exactly once: {a:#?} {c:#?}");
    assert!(!a.stdout.is_empty() && !c.stdout.is_empty(), "both members got partitions: {a:#?} {c:#?}");
    let rows = group_offsets(&b, "pair");
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().all(|r| r.2 == 5 && r.4 == 0), "{rows:?}");
}

// ---------------------------------------------------------- transactions

/// An rdkafka transactional producer, initialised.
fn txn_producer(
    b: &Broker,
    id: &str,
) -> rdkafka::producer::ThreadedProducer<rdkafka::producer::DefaultProducerContext> {
    use rdkafka::producer::Producer;
    let p: rdkafka::producer::ThreadedProducer<_> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &b.addr)
        .set("broker.address.family", "v4")
        .set("transactional.id", id)
        .set("linger.ms", "1")
        .create()
        .expect("transactional producer");
    p.init_transactions(CMD_TIMEOUT).expect("init_transactions");
    p
}

/// Send `values` to `topic` partitions in the producer's open transaction.
fn txn_send(
    p: &rdkafka::producer::ThreadedProducer<rdkafka::producer::DefaultProducerContext>,
    topic: &str,
    values: &[(i32, &str)],
) {
    use rdkafka::producer::{BaseRecord, Producer};
    for (partition, v) in values {
        p.send(BaseRecord::<[u8], [u8]>::to(topic).partition(*partition).payload(v.as_bytes())).expect("enqueue");
    }
    p.flush(CMD_TIMEOUT).expect("flush");
}

/// `consume TOPIC --from-beginning --isolation I` until idle, the values sorted.
fn consumed_values(b: &Broker, topic: &str, isolation: &str) -> Vec<String> {
    let out = b
        .cli(&[
            "consume",
            topic,
            "--from-beginning",
            "--isolation",
            isolation,
            "--timeout-ms",
            "2000",
            "--format",
            "json",
        ])
        .ok();
    let mut values: Vec<String> =
        out.json_lines().iter().map(|r| r["value"].as_str().expect("a text value").to_string()).collect();
    values.sort();
    values
}

#[test]
fn transactions_consumed_by_isolation_and_listed_and_described() {
    use rdkafka::producer::Producer;
    let dir = temp();
    let b = Broker::start(dir.path());
    b.cli(&["topic", "create", "t", "--partitions", "2"]).ok();

    let committed = txn_producer(&b, "tx-commit");
    committed.begin_transaction().unwrap();
    txn_send(&committed, "t", &[(0, "c1"), (0, "c2")]);
    committed.commit_transaction(CMD_TIMEOUT).expect("commit");
    let aborted = txn_producer(&b, "tx-abort");
    aborted.begin_transaction().unwrap();
    txn_send(&aborted, "t", &[(0, "a1"), (1, "a2")]);
    aborted.abort_transaction(CMD_TIMEOUT).expect("abort");
    let open = txn_producer(&b, "tx-open");
    open.begin_transaction().unwrap();
    let before_open = now_ms();
    txn_send(&open, "t", &[(0, "o1"), (1, "o2")]);

    // read_committed: the committed values only (the open transaction
    // holds it at its first offset); read_uncommitted: every data value;
    // never a marker (3 markers are in the log).
    assert_eq!(consumed_values(&b, "t", "read_committed"), ["c1", "c2"]);
    assert_eq!(consumed_values(&b, "t", "read_uncommitted"), ["a1", "a2", "c1", "c2", "o1", "o2"]);
    // The default is read_uncommitted, as Kafka's console consumer.
    let out = b.cli(&["consume", "t", "--from-beginning", "--timeout-ms", "2000"]).ok();
    assert_eq!(out.stdout.lines().count(), 6, "{out:#?}");

    // txn list: every id with its state.
    let out = b.cli(&["txn", "list"]).ok();
    assert_contains(&out.stdout, &["TransactionalId", "Coordinator", "ProducerId", "TransactionState"]);
    let rows: Vec<Vec<&str>> = out.stdout.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    let states: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[3])).collect();
    assert_eq!(states, [("tx-abort", "CompleteAbort"), ("tx-commit", "CompleteCommit"), ("tx-open", "Ongoing")]);
    let v = b.cli(&["txn", "list", "--state", "Ongoing", "-o", "json"]).ok().json();
    let listed = v.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{v:#}");
    assert_eq!(
        (listed[0]["transactional_id"].as_str(), listed[0]["state"].as_str()),
        (Some("tx-open"), Some("Ongoing"))
    );
    let out = b.cli(&["txn", "list", "--state", "CompleteCommit", "--state", "CompleteAbort"]).ok();
    assert_eq!(out.stdout.lines().count(), 3, "{out:#?}");
    let out = b.cli(&["txn", "list", "--state", "Bogus"]).fails();
    assert_contains(&out.stderr, &["unknown transaction state(s) Bogus", "hint: states are Empty, Ongoing"]);

    // txn describe: the open one's partitions and start.
    let out = b.cli(&["txn", "describe", "tx-open"]).ok();
    assert_contains(&out.stdout, &["CoordinatorId", "CurrentTransactionStartTimeMs", "TransactionDurationMs"]);
    let row: Vec<&str> = out.stdout.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!((row[1], row[4], row[8]), ("tx-open", "Ongoing", "t-0,t-1"), "{out:#?}");
    let v = b.cli(&["txn", "describe", "tx-open", "-o", "json"]).ok().json();
    assert_eq!(v["partitions"], serde_json::json!([{"topic": "t", "partition": 0}, {"topic": "t", "partition": 1}]));
    let start = v["start_ms"].as_i64().expect("an open transaction has a start");
    assert!(start >= before_open - 1000 && start <= now_ms(), "{v:#}");
    assert_eq!(v["timeout_ms"], 60_000, "librdkafka's default transaction.timeout.ms");
    let v = b.cli(&["txn", "describe", "tx-commit", "-o", "json"]).ok().json();
    assert_eq!(v["state"], "CompleteCommit");
    assert!(v["start_ms"].is_null() && v["partitions"] == serde_json::json!([]), "{v:#}");
    let out = b.cli(&["txn", "describe", "tx-commit"]).ok();
    assert_contains(&out.stdout, &["None"]);
    let out = b.cli(&["txn", "describe", "nosuch"]).fails();
    assert_contains(
        &out.stderr,
        &["describing transactional id 'nosuch': TRANSACTIONAL_ID_NOT_FOUND", "kaskade txn list"],
    );

    // Once committed, read_committed sees the open transaction's values too.
    open.commit_transaction(CMD_TIMEOUT).expect("commit");
    assert_eq!(consumed_values(&b, "t", "read_committed"), ["c1", "c2", "o1", "o2"]);
    let v = b.cli(&["txn", "list", "--state", "Ongoing", "-o", "json"]).ok().json();
    assert_eq!(v, serde_json::json!([]));
}

#[test]
fn txn_commands_before_any_transaction() {
    let dir = temp();
    let b = Broker::start(dir.path());
    let out = b.cli(&["txn", "list"]).ok();
    assert_eq!(out.stdout.trim(), "TransactionalId  Coordinator  ProducerId  TransactionState");
    // Listing (sent to every broker) does not create the transaction state topic.
    let v = b.cli(&["topic", "list", "--internal", "-o", "json"]).ok().json();
    assert!(!v.to_string().contains("__transaction_state"), "{v:#}");
    let out = b.cli(&["txn", "describe", "never-used"]).fails();
    assert_contains(&out.stderr, &["TRANSACTIONAL_ID_NOT_FOUND"]);
    // Describing looks the coordinator up first, and FindCoordinator creates
    // the topic, as Kafka's does.
    let v = b.cli(&["topic", "list", "--internal", "-o", "json"]).ok().json();
    assert!(v.to_string().contains("__transaction_state"), "{v:#}");
}
