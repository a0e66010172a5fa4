//! Many idle partitions under a small open-files limit: the broker runs
//! with `ulimit -n` at 1,000 and holds 400 partitions, which at three
//! descriptors a partition (a `.log`, `.index` and `.timeindex` each) could
//! not even open; with the active segment's indexes opened per operation a
//! partition holds one. Records produced (librdkafka, acks=all) to a sample
//! of the partitions are fetched back, after creation and again after a
//! SIGKILL and restart (recovery of every partition under the same limit).
//!
//! The long mode, 1,000 to 10,000 partitions with start-up times, RSS and
//! scrape times, is `scripts/many-partitions.sh`.

mod process;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use process::{client_config, free_port, BrokerProcess, WAIT};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

const NOFILE: u64 = 1_000;
const TOPICS: usize = 4;
const PARTITIONS_PER_TOPIC: i32 = 100;
const RECORDS_PER_SAMPLE: i64 = 5;

fn topic(t: usize) -> String {
    format!("idle-{t}")
}

/// Every 17th partition of every topic.
fn sample() -> Vec<(String, i32)> {
    (0..TOPICS).flat_map(|t| (0..PARTITIONS_PER_TOPIC).step_by(17).map(move |p| (topic(t), p))).collect()
}

fn open_files(broker: &BrokerProcess) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", broker.pid())).expect("the broker's /proc/PID/fd").count()
}

fn value(topic: &str, partition: i32, i: i64) -> String {
    format!("{topic}/{partition}/{i}")
}

/// Reads the sample back from the beginning: each partition holds exactly
/// its records, in order.
fn check_sample(bootstrap: &str) {
    let mut cfg = client_config(bootstrap);
    cfg.set("group.id", "many-partitions-verifier")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "50");
    let c: BaseConsumer = cfg.create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for (t, p) in sample() {
        tpl.add_partition_offset(&t, p, Offset::Beginning).expect("add partition");
    }
    c.assign(&tpl).expect("assign");
    let want = sample().len() as i64 * RECORDS_PER_SAMPLE;
    let mut got: BTreeMap<(String, i32), Vec<(i64, String)>> = BTreeMap::new();
    let mut n = 0;
    let deadline = Instant::now() + WAIT;
    while n < want {
        assert!(Instant::now() < deadline, "read {n} of {want} records in {WAIT:?}");
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let v = String::from_utf8(m.payload().unwrap_or_default().to_vec()).expect("utf-8 value");
                got.entry((m.topic().to_string(), m.partition())).or_default().push((m.offset(), v));
                n += 1;
            }
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
    for (t, p) in sample() {
        let expected: Vec<(i64, String)> = (0..RECORDS_PER_SAMPLE).map(|i| (i, value(&t, p, i))).collect();
        assert_eq!(got.get(&(t.clone(), p)), Some(&expected), "{t}-{p}");
    }
}

#[test]
fn four_hundred_partitions_fit_in_a_thousand_descriptors_and_survive_a_kill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let log = dir.path().join("broker.log");
    let port = free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let broker = BrokerProcess::start_with_nofile(&data, port, &log, NOFILE);
    let before = open_files(&broker);

    let admin: AdminClient<DefaultClientContext> = client_config(&bootstrap).create().expect("admin");
    let opts = AdminOptions::new().request_timeout(Some(WAIT));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    for t in 0..TOPICS {
        let name = topic(t);
        let new = NewTopic::new(&name, PARTITIONS_PER_TOPIC, TopicReplication::Fixed(1));
        let res = rt.block_on(admin.create_topics([&new], &opts)).expect("create_topics");
        assert!(res[0].is_ok(), "creating {}: {:?}; broker log:\n{}", topic(t), res[0], broker.log_tail());
    }
    let partitions = TOPICS * PARTITIONS_PER_TOPIC as usize;
    let after = open_files(&broker);
    assert!(
        (partitions..partitions + 50).contains(&(after - before)),
        "{partitions} idle partitions hold one descriptor each: {before} open before, {after} after"
    );
    assert!(partitions * 3 > NOFILE as usize, "the test needs more partitions than three descriptors each allow");

    let mut cfg = client_config(&bootstrap);
    cfg.set("acks", "all").set("linger.ms", "5").set("message.timeout.ms", "30000");
    let producer: BaseProducer = cfg.create().expect("producer");
    for (t, p) in sample() {
        for i in 0..RECORDS_PER_SAMPLE {
            let v = value(&t, p, i);
            producer.send(BaseRecord::<(), _>::to(&t).partition(p).payload(&v)).expect("queue a record");
        }
    }
    producer.flush(WAIT).expect("every record acknowledged");
    assert_eq!(producer.in_flight_count(), 0);
    drop(producer);
    check_sample(&bootstrap);

    // An unclean restart recovers every partition under the same limit.
    broker.kill9();
    let broker = BrokerProcess::start_with_nofile(&data, port, &log, NOFILE);
    check_sample(&bootstrap);
    let files = open_files(&broker);
    assert!(files < NOFILE as usize / 2, "{files} open files after recovering {partitions} partitions");
    broker.stop();
}
