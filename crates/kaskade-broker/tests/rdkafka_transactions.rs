//! Transactions with a real client (librdkafka via `rdkafka`): commit and
//! abort visibility under read_committed and read_uncommitted, fencing by
//! transactional.id, the broker aborting a transaction past its timeout,
//! and a consume-transform-produce loop committing its input offsets in
//! the transaction.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};

fn txn_producer(bootstrap: &str, id: &str, extra: &[(&str, &str)]) -> ThreadedProducer<DefaultProducerContext> {
    let mut c = client_config(bootstrap, &[("transactional.id", id), ("linger.ms", "1")]);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    let p: ThreadedProducer<DefaultProducerContext> = c.create().expect("transactional producer");
    p.init_transactions(WAIT).expect("init_transactions");
    p
}

fn send_values(p: &ThreadedProducer<DefaultProducerContext>, topic: &str, partition: i32, values: &[&str]) {
    for v in values {
        p.send(BaseRecord::<[u8], [u8]>::to(topic).partition(partition).payload(v.as_bytes())).expect("enqueue");
    }
    p.flush(WAIT).expect("flush");
}

/// Every value a consumer with `isolation` reads from partition 0 of
/// `topic`, from the start up to its (isolation's) end.
fn values(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    let c = consumer(bootstrap, &[("isolation.level", isolation), ("enable.partition.eof", "true")]);
    assign(&c, &[(topic, 0, Offset::Beginning)]);
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "no end of partition within {WAIT:?}; got {out:?}");
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
}

#[test]
fn committed_and_aborted_transactions_as_each_isolation_level_sees_them() {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique("txn");
    create_topic(&admin(&bootstrap), &topic, 1, &[]);
    let p = txn_producer(&bootstrap, &unique("tx"), &[]);
    p.begin_transaction().unwrap();
    send_values(&p, &topic, 0, &["c1", "c2", "c3"]);
    p.commit_transaction(WAIT).expect("commit");
    p.begin_transaction().unwrap();
    send_values(&p, &topic, 0, &["a1", "a2"]);
    p.abort_transaction(WAIT).expect("abort");
    p.begin_transaction().unwrap();
    send_values(&p, &topic, 0, &["c4"]);
    p.commit_transaction(WAIT).expect("commit");
    assert_eq!(values(&bootstrap, &topic, "read_committed"), ["c1", "c2", "c3", "c4"]);
    assert_eq!(values(&bootstrap, &topic, "read_uncommitted"), ["c1", "c2", "c3", "a1", "a2", "c4"]);
    // Three markers among the records: 6 records + 3 markers.
    let c = consumer(&bootstrap, &[]);
    assert_eq!(c.fetch_watermarks(&topic, 0, WAIT).expect("watermarks"), (0, 9));
}

#[test]
fn the_state_topic_has_the_configured_partitions_and_survives_a_restart() {
    let mut broker = TestBroker::start_with(&[("transaction.state.log.num.partitions", "3")]);
    let bootstrap = broker.bootstrap();
    let topic = unique("txn-parts");
    create_topic(&admin(&bootstrap), &topic, 1, &[]);
    let id = unique("tx-parts");
    let p = txn_producer(&bootstrap, &id, &[]);
    p.begin_transaction().unwrap();
    send_values(&p, &topic, 0, &["before"]);
    p.commit_transaction(WAIT).expect("commit");
    drop(p);
    let c = consumer(&bootstrap, &[]);
    let md = c.fetch_metadata(Some("__transaction_state"), WAIT).expect("metadata");
    assert_eq!(md.topics()[0].partitions().len(), 3);
    // After a restart the id is known (its epoch moves on) and works.
    broker.restart();
    let bootstrap = broker.bootstrap();
    let p = txn_producer(&bootstrap, &id, &[]);
    p.begin_transaction().unwrap();
    send_values(&p, &topic, 0, &["after"]);
    p.commit_transaction(WAIT).expect("commit after the restart");
    assert_eq!(values(&bootstrap, &topic, "read_committed"), ["before", "after"]);
}

#[test]
fn an_open_transaction_holds_read_committed_consumers_at_its_first_offset() {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique("txn-open");
    create_topic(&admin(&bootstrap), &topic, 1, &[]);
    let open = txn_producer(&bootstrap, &unique("tx-open"), &[]);
    open.begin_transaction().unwrap();
    send_values(&open, &topic, 0, &["open"]);
    // Committed data after the open transaction's first record.
    let later = txn_producer(&bootstrap, &unique("tx-later"), &[]);
    later.begin_transaction().unwrap();
    send_values(&later, &topic, 0, &["later"]);
    later.commit_transaction(WAIT).expect("commit");
    assert_eq!(values(&bootstrap, &topic, "read_committed"), Vec::<String>::new(), "the LSO is the open first offset");
    assert_eq!(values(&bootstrap, &topic, "read_uncommitted"), ["open", "later"]);
    open.commit_transaction(WAIT).expect("commit");
    assert_eq!(values(&bootstrap, &topic, "read_committed"), ["open", "later"]);
}

#[test]
fn a_second_producer_with_the_same_id_fences_the_first_and_aborts_its_transaction() {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique("txn-fence");
    create_topic(&admin(&bootstrap), &topic, 1, &[]);
    let id = unique("tx-fence");
    let zombie = txn_producer(&bootstrap, &id, &[]);
    zombie.begin_transaction().unwrap();
    send_values(&zombie, &topic, 0, &["zombie"]);
    let successor = txn_producer(&bootstrap, &id, &[]);
    // The zombie's open transaction was aborted when the successor arrived.
    assert_eq!(values(&bootstrap, &topic, "read_committed"), Vec::<String>::new());
    let err = zombie.commit_transaction(WAIT).expect_err("the zombie is fenced");
    assert!(err.to_string().to_lowercase().contains("fenced"), "{err}");
    successor.begin_transaction().unwrap();
    send_values(&successor, &topic, 0, &["successor"]);
    successor.commit_transaction(WAIT).expect("commit");
    assert_eq!(values(&bootstrap, &topic, "read_committed"), ["successor"]);
}

/// A transaction left open with a 1.5 s timeout ("hung"), then another
/// producer's committed one ("after"); both producers are returned.
fn hung_then_committed(
    bootstrap: &str,
    topic: &str,
) -> (ThreadedProducer<DefaultProducerContext>, ThreadedProducer<DefaultProducerContext>) {
    let hung = txn_producer(
        bootstrap,
        &unique("tx-hung"),
        &[("transaction.timeout.ms", "1500"), ("socket.timeout.ms", "1500")],
    );
    hung.begin_transaction().unwrap();
    send_values(&hung, topic, 0, &["hung"]);
    let other = txn_producer(bootstrap, &unique("tx-other"), &[]);
    other.begin_transaction().unwrap();
    send_values(&other, topic, 0, &["after"]);
    other.commit_transaction(WAIT).expect("commit");
    (hung, other)
}

#[test]
fn the_broker_aborts_a_transaction_past_its_timeout() {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique("txn-timeout");
    create_topic(&admin(&bootstrap), &topic, 1, &[]);
    let (hung, _other) = hung_then_committed(&bootstrap, &topic);
    // read_committed consumers move past the hung transaction once the
    // broker aborts it (about 1.5 s after it began).
    let started = Instant::now();
    wait_for("the hung transaction to be aborted", WAIT, || {
        (values(&bootstrap, &topic, "read_committed") == ["after"]).then_some(())
    });
    eprintln!("read_committed moved past the hung transaction after {:?}", started.elapsed());
    assert!(hung.commit_transaction(WAIT).is_err(), "the timed-out producer cannot commit");
}

#[test]
fn consume_transform_produce_commits_input_offsets_in_the_transaction() {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    let (input, output) = (unique("ctp-in"), unique("ctp-out"));
    let admin = admin(&bootstrap);
    create_topic(&admin, &input, 1, &[]);
    create_topic(&admin, &output, 1, &[]);
    let plain = producer(&bootstrap, &[]);
    for i in 0..30 {
        let v = format!("in-{i}");
        send(&plain, rdkafka::producer::FutureRecord::<[u8], [u8]>::to(&input).partition(0).payload(v.as_bytes()))
            .expect("input");
    }
    let group = unique("ctp-g");
    let group_consumer = |extra: &[(&str, &str)]| -> BaseConsumer {
        let mut c = client_config(
            &bootstrap,
            &[
                ("group.id", group.as_str()),
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
                ("isolation.level", "read_committed"),
            ],
        );
        for (k, v) in extra {
            c.set(*k, *v);
        }
        c.create().expect("consumer")
    };
    let c = group_consumer(&[]);
    c.assign(&{
        let mut t = TopicPartitionList::new();
        t.add_partition(&input, 0);
        t
    })
    .expect("assign");
    let p = txn_producer(&bootstrap, &unique("tx-ctp"), &[]);
    // Three transactions of 10; the second is aborted and redone.
    let mut done = 0;
    let mut aborted_once = false;
    while done < 30 {
        p.begin_transaction().unwrap();
        let batch = consume(&c, 10, WAIT);
        for m in &batch {
            let v = format!("out-{}", String::from_utf8_lossy(m.payload().unwrap_or_default()));
            p.send(BaseRecord::<[u8], [u8]>::to(&output).partition(0).payload(v.as_bytes())).expect("enqueue");
        }
        // Delivered before the abort below, so the aborted records are in
        // the log (librdkafka purges what it still holds on abort).
        p.flush(WAIT).expect("flush");
        let next = batch.last().map(|m| m.offset() + 1).expect("a batch");
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset(&input, 0, Offset::Offset(next)).unwrap();
        let meta = c.group_metadata().expect("group metadata");
        p.send_offsets_to_transaction(&offsets, &meta, WAIT).expect("send offsets");
        if done == 20 {
            // The offsets of the open transaction are pending: a
            // read_committed member asking with require_stable is told to
            // wait (UNSTABLE_OFFSET_COMMIT, retried until its timeout).
            let probe = group_consumer(&[]);
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&input, 0);
            let err =
                probe.committed_offsets(tpl.clone(), Duration::from_millis(1500)).expect_err("unstable while open");
            assert!(err.to_string().contains("Timed out"), "{err}");
            // Without require_stable (read_uncommitted) the last committed
            // offset comes back at once.
            let loose = group_consumer(&[("isolation.level", "read_uncommitted")]);
            let got = loose.committed_offsets(tpl, WAIT).expect("read_uncommitted asks without require_stable");
            assert_eq!(got.elements()[0].offset(), Offset::Offset(20));
        }
        if done == 10 && !aborted_once {
            aborted_once = true;
            p.abort_transaction(WAIT).expect("abort");
            // Rewind to the last committed position, as an application does.
            c.seek(&input, 0, Offset::Offset(done), WAIT).expect("seek");
            continue;
        }
        p.commit_transaction(WAIT).expect("commit");
        done = next;
    }
    let committed = values(&bootstrap, &output, "read_committed");
    let expected: Vec<String> = (0..30).map(|i| format!("out-in-{i}")).collect();
    assert_eq!(committed, expected, "each input record exactly once in the committed output");
    assert_eq!(values(&bootstrap, &output, "read_uncommitted").len(), 40, "the aborted ten are in the log");
    // The group's committed offset moved with the transactions only.
    let fresh = group_consumer(&[]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&input, 0);
    let got = fresh.committed_offsets(tpl, WAIT).expect("committed");
    assert_eq!(got.elements()[0].offset(), Offset::Offset(30));
    let _ = fresh.commit_consumer_state(CommitMode::Sync);
}

/// Sends `next` for `input` partition 0 as `group`'s offset in the
/// producer's open transaction.
fn send_offsets(p: &ThreadedProducer<DefaultProducerContext>, bootstrap: &str, group: &str, input: &str, next: i64) {
    let c: BaseConsumer = client_config(bootstrap, &[("group.id", group)]).create().expect("consumer");
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset(input, 0, Offset::Offset(next)).unwrap();
    p.send_offsets_to_transaction(&offsets, &c.group_metadata().expect("metadata"), WAIT).expect("send offsets");
}

fn committed_offset(bootstrap: &str, group: &str, input: &str) -> Offset {
    let c: BaseConsumer =
        client_config(bootstrap, &[("group.id", group), ("isolation.level", "read_uncommitted")]).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(input, 0);
    c.committed_offsets(tpl, WAIT).expect("committed").elements()[0].offset()
}

#[test]
fn after_a_restart_a_commit_settles_only_its_own_groups_offsets() {
    let mut broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    let input = unique("txn-in");
    create_topic(&admin(&bootstrap), &input, 1, &[]);
    // Two groups on different __consumer_offsets partitions, the open
    // transaction's (4) replayed before the committed one's (9).
    let (committed, open) = ("restart-group-a", "restart-group-b-1");
    let id = unique("tx-groups");
    let p = txn_producer(&bootstrap, &id, &[]);
    p.begin_transaction().unwrap();
    send_offsets(&p, &bootstrap, committed, &input, 5);
    p.commit_transaction(WAIT).expect("commit");
    p.begin_transaction().unwrap();
    send_offsets(&p, &bootstrap, open, &input, 7);
    drop(p);
    // The replay sees the open transaction's pending offset, then the
    // same producer's commit marker on another partition: that marker
    // must not settle it.
    broker.restart();
    let bootstrap = broker.bootstrap();
    assert_eq!(committed_offset(&bootstrap, committed, &input), Offset::Offset(5));
    assert_eq!(committed_offset(&bootstrap, open, &input), Offset::Invalid, "still pending");
    // The successor fences and aborts the open transaction: no offset.
    let _successor = txn_producer(&bootstrap, &id, &[]);
    assert_eq!(committed_offset(&bootstrap, open, &input), Offset::Invalid);
}

#[test]
fn after_a_restart_an_open_transaction_times_out_without_any_transactional_client() {
    let mut broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique("txn-restart-timeout");
    create_topic(&admin(&bootstrap), &topic, 1, &[]);
    let (hung, other) = hung_then_committed(&bootstrap, &topic);
    drop((hung, other));
    broker.restart();
    let bootstrap = broker.bootstrap();
    // Only plain consumers from here on: the coordinator must load by
    // itself and abort the hung transaction.
    wait_for("the hung transaction to be aborted after the restart", WAIT, || {
        (values(&bootstrap, &topic, "read_committed") == ["after"]).then_some(())
    });
}
