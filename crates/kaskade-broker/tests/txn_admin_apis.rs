//! The transaction admin APIs of KIP-664 on the wire (kafka-protocol
//! codecs over raw TCP): DescribeTransactions, ListTransactions (v0 and
//! v1) and DescribeProducers, against state made by real transactional
//! producers (librdkafka), including their error answers.

mod common;

use std::collections::BTreeMap;

use common::wire::Conn;
use common::*;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::describe_producers_response::PartitionResponse;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_REQUEST: i16 = 42;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn txn_producer(bootstrap: &str, id: &str) -> ThreadedProducer<DefaultProducerContext> {
    let p: ThreadedProducer<DefaultProducerContext> =
        client_config(bootstrap, &[("transactional.id", id), ("linger.ms", "1"), ("transaction.timeout.ms", "45000")])
            .create()
            .expect("transactional producer");
    p.init_transactions(WAIT).expect("init_transactions");
    p
}

fn send(p: &ThreadedProducer<DefaultProducerContext>, topic: &str, values: &[(i32, &str)]) {
    for (partition, v) in values {
        p.send(BaseRecord::<[u8], [u8]>::to(topic).partition(*partition).payload(v.as_bytes())).expect("enqueue");
    }
    p.flush(WAIT).expect("flush");
}

/// A broker with a 2-partition topic and three transactional ids: one
/// committed (2 records on partition 0), one aborted (1 record on each
/// partition), one open (1 record on each partition). The producers are
/// returned so the open transaction stays open.
struct Setup {
    broker: TestBroker,
    topic: String,
    ids: [String; 3],
    _producers: Vec<ThreadedProducer<DefaultProducerContext>>,
}

fn setup() -> Setup {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique("txn-admin");
    create_topic(&admin(&bootstrap), &topic, 2, &[]);
    let ids = [unique("committed"), unique("aborted"), unique("open")];
    let committed = txn_producer(&bootstrap, &ids[0]);
    committed.begin_transaction().unwrap();
    send(&committed, &topic, &[(0, "c1"), (0, "c2")]);
    committed.commit_transaction(WAIT).expect("commit");
    let aborted = txn_producer(&bootstrap, &ids[1]);
    aborted.begin_transaction().unwrap();
    send(&aborted, &topic, &[(0, "a1"), (1, "a2")]);
    aborted.abort_transaction(WAIT).expect("abort");
    let open = txn_producer(&bootstrap, &ids[2]);
    open.begin_transaction().unwrap();
    send(&open, &topic, &[(0, "o1"), (1, "o2")]);
    Setup { broker, topic, ids, _producers: vec![committed, aborted, open] }
}

#[test]
fn api_versions_advertises_the_transaction_admin_apis() {
    let broker = TestBroker::start();
    let addr = broker.addr();
    let r: ApiVersionsResponse = block_on(async {
        Conn::connect(addr)
            .await
            .call(
                3,
                &ApiVersionsRequest::default()
                    .with_client_software_name(s("test"))
                    .with_client_software_version(s("1.0")),
            )
            .await
    });
    let range =
        |key: ApiKey| r.api_keys.iter().find(|k| k.api_key == key as i16).map(|k| (k.min_version, k.max_version));
    assert_eq!(range(ApiKey::DescribeProducers), Some((0, 0)));
    assert_eq!(range(ApiKey::DescribeTransactions), Some((0, 0)));
    assert_eq!(range(ApiKey::ListTransactions), Some((0, 1)));
}

#[test]
fn describe_transactions_reports_state_timeout_start_and_partitions() {
    let st = setup();
    let [committed, aborted, open] = &st.ids;
    let ids = [open.as_str(), committed, aborted, "no-such-id", ""];
    let req = DescribeTransactionsRequest::default()
        .with_transactional_ids(ids.iter().map(|i| TransactionalId(s(i))).collect());
    let addr = st.broker.addr();
    let resp: DescribeTransactionsResponse = block_on(async { Conn::connect(addr).await.call(0, &req).await });
    let got: Vec<&str> = resp.transaction_states.iter().map(|t| t.transactional_id.0.as_str()).collect();
    assert_eq!(got, ids, "one answer per id, in request order");
    let [o, c, a, unknown, empty] = &resp.transaction_states[..] else { panic!("{resp:?}") };

    assert_eq!((o.error_code, o.transaction_state.as_str()), (0, "Ongoing"));
    assert_eq!(o.transaction_timeout_ms, 45_000);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!(o.transaction_start_time_ms > 0 && o.transaction_start_time_ms <= now, "{o:?}");
    assert!(o.producer_id.0 >= 0 && o.producer_epoch >= 0, "{o:?}");
    let topics: Vec<(&str, Vec<i32>)> = o.topics.iter().map(|t| (t.topic.0.as_str(), t.partitions.clone())).collect();
    assert_eq!(topics, vec![(st.topic.as_str(), vec![0, 1])]);

    assert_eq!((c.error_code, c.transaction_state.as_str()), (0, "CompleteCommit"));
    assert_eq!(a.transaction_state.as_str(), "CompleteAbort");
    for done in [c, a] {
        assert_eq!(done.transaction_start_time_ms, -1, "no open transaction: {done:?}");
        assert!(done.topics.is_empty(), "{done:?}");
    }
    assert_ne!(c.producer_id, o.producer_id);

    assert_eq!(unknown.error_code, TRANSACTIONAL_ID_NOT_FOUND);
    assert_eq!(empty.error_code, INVALID_REQUEST, "Kafka refuses an empty transactional id");
}

/// ListTransactions, and the listed ids.
async fn list(conn: &mut Conn, version: i16, req: ListTransactionsRequest) -> (ListTransactionsResponse, Vec<String>) {
    let r: ListTransactionsResponse = conn.call(version, &req).await;
    assert_eq!(r.error_code, 0, "{r:?}");
    let ids = r.transaction_states.iter().map(|t| t.transactional_id.0.to_string()).collect();
    (r, ids)
}

#[test]
fn list_transactions_filters_by_state_producer_id_and_duration() {
    let st = setup();
    let [committed, aborted, open] = [st.ids[0].as_str(), st.ids[1].as_str(), st.ids[2].as_str()];
    let addr = st.broker.addr();
    block_on(async {
        let mut conn = Conn::connect(addr).await;
        let c = &mut conn;
        for version in [0, 1] {
            let (r, ids) = list(c, version, ListTransactionsRequest::default()).await;
            assert_eq!(ids, [aborted, committed, open], "v{version}: sorted by id");
            let states: BTreeMap<String, (String, i64)> = r
                .transaction_states
                .iter()
                .map(|t| (t.transactional_id.0.to_string(), (t.transaction_state.to_string(), t.producer_id.0)))
                .collect();
            assert_eq!(states[committed].0, "CompleteCommit");
            assert_eq!(states[aborted].0, "CompleteAbort");
            assert_eq!(states[open].0, "Ongoing");
            assert!(r.unknown_state_filters.is_empty());

            // States: known and unknown names.
            let req = ListTransactionsRequest::default().with_state_filters(vec![s("Ongoing"), s("Bogus")]);
            let (r, ids) = list(c, version, req).await;
            assert_eq!(ids, [open]);
            assert_eq!(r.unknown_state_filters, vec![s("Bogus")]);
            let req = ListTransactionsRequest::default().with_state_filters(vec![s("ongoing")]);
            let (r, ids) = list(c, version, req).await;
            assert!(ids.is_empty(), "names are case-sensitive: {ids:?}");
            assert_eq!(r.unknown_state_filters, vec![s("ongoing")]);
            let req =
                ListTransactionsRequest::default().with_state_filters(vec![s("CompleteCommit"), s("CompleteAbort")]);
            assert_eq!(list(c, version, req).await.1, [aborted, committed]);

            // Producer ids.
            let pid = states[committed].1;
            let req = ListTransactionsRequest::default().with_producer_id_filters(vec![pid.into(), 987_654_321.into()]);
            assert_eq!(list(c, version, req).await.1, [committed]);
            let req = ListTransactionsRequest::default()
                .with_producer_id_filters(vec![pid.into()])
                .with_state_filters(vec![s("Ongoing")]);
            assert!(list(c, version, req).await.1.is_empty(), "filters combine");
        }

        // v1: transactions running longer than the duration.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let req = ListTransactionsRequest::default().with_duration_filter(0);
        assert_eq!(list(c, 1, req).await.1, [open], "only the open one is running");
        let req = ListTransactionsRequest::default().with_duration_filter(3_600_000);
        assert!(list(c, 1, req).await.1.is_empty());
        let req = ListTransactionsRequest::default().with_duration_filter(-1);
        assert_eq!(list(c, 1, req).await.1.len(), 3);
    });
}

#[test]
fn list_and_describe_before_any_transaction_leave_no_state_topic() {
    let broker = TestBroker::start();
    let addr = broker.addr();
    block_on(async {
        let mut conn = Conn::connect(addr).await;
        let r: ListTransactionsResponse = conn.call(1, &ListTransactionsRequest::default()).await;
        assert_eq!((r.error_code, r.transaction_states.len()), (0, 0));
        let req = ListTransactionsRequest::default().with_state_filters(vec![s("Bogus")]);
        let r: ListTransactionsResponse = conn.call(0, &req).await;
        assert_eq!(r.unknown_state_filters, vec![s("Bogus")], "unknown names are reported without state too");
        let req = DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(s("x")), TransactionalId(s(""))]);
        let r: DescribeTransactionsResponse = conn.call(0, &req).await;
        let codes: Vec<i16> = r.transaction_states.iter().map(|t| t.error_code).collect();
        assert_eq!(codes, [TRANSACTIONAL_ID_NOT_FOUND, INVALID_REQUEST]);
        let md: MetadataResponse = conn.call(12, &MetadataRequest::default().with_topics(None)).await;
        let names: Vec<String> = md.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect();
        assert!(!names.iter().any(|n| n == "__transaction_state"), "{names:?}");
    });
}

#[test]
fn describe_producers_reports_each_partitions_producers() {
    let st = setup();
    let addr = st.broker.addr();
    let (pids, resp) = block_on(async {
        let mut conn = Conn::connect(addr).await;
        let r: ListTransactionsResponse = conn.call(0, &ListTransactionsRequest::default()).await;
        let pids: BTreeMap<String, i64> =
            r.transaction_states.iter().map(|t| (t.transactional_id.0.to_string(), t.producer_id.0)).collect();
        let req = DescribeProducersRequest::default().with_topics(vec![
            TopicRequest::default().with_name(TopicName(s(&st.topic))).with_partition_indexes(vec![0, 1, 7]),
            TopicRequest::default().with_name(TopicName(s("no-such-topic"))).with_partition_indexes(vec![0]),
        ]);
        let resp: DescribeProducersResponse = conn.call(0, &req).await;
        (pids, resp)
    });
    let [committed, aborted, open] = &st.ids;
    let (committed, aborted, open) = (pids[committed], pids[aborted], pids[open]);
    assert_eq!(resp.topics.len(), 2);
    assert_eq!(resp.topics[0].name.0.as_str(), st.topic);
    let [p0, p1, p7] = &resp.topics[0].partitions[..] else { panic!("{resp:?}") };
    // producer id -> (epoch, last sequence, current txn start offset,
    // coordinator epoch)
    let by_pid = |p: &PartitionResponse| -> BTreeMap<i64, (i32, i32, i64, i32)> {
        assert_eq!(p.error_code, 0, "{p:?}");
        p.active_producers
            .iter()
            .map(|s| {
                assert!(s.last_timestamp > 0, "{s:?}");
                (s.producer_id.0, (s.producer_epoch, s.last_sequence, s.current_txn_start_offset, s.coordinator_epoch))
            })
            .collect()
    };
    // Partition 0: c1 c2 (0, 1), commit marker (2), a1 (3), abort marker
    // (4), o1 (5, open).
    assert_eq!(p0.partition_index, 0);
    let prod = by_pid(p0);
    assert_eq!(prod.keys().copied().collect::<Vec<_>>(), {
        let mut v = vec![committed, aborted, open];
        v.sort();
        v
    });
    let (epoch, seq, start, _) = prod[&committed];
    assert_eq!((epoch, seq, start), (0, 1, -1), "two records, no open transaction");
    assert_eq!((prod[&aborted].1, prod[&aborted].2), (0, -1));
    let (_, seq, start, coord) = prod[&open];
    assert_eq!((seq, start, coord), (0, 5, -1), "open at offset 5, no marker yet");
    // Partition 1: a2 (0), abort marker (1), o2 (2, open).
    assert_eq!(p1.partition_index, 1);
    let prod = by_pid(p1);
    assert_eq!(prod.len(), 2);
    assert_eq!(prod[&open].2, 2);
    assert_eq!(prod[&aborted].2, -1);
    // Unknown partition, unknown topic.
    assert_eq!((p7.partition_index, p7.error_code), (7, UNKNOWN_TOPIC_OR_PARTITION));
    assert!(p7.active_producers.is_empty());
    let unknown = &resp.topics[1];
    assert_eq!(unknown.name.0.as_str(), "no-such-topic");
    assert_eq!(
        unknown.partitions.iter().map(|p| (p.partition_index, p.error_code)).collect::<Vec<_>>(),
        [(0, UNKNOWN_TOPIC_OR_PARTITION)]
    );
}

#[test]
fn idle_transactional_ids_expire_and_open_ones_stay() {
    let broker = TestBroker::start_with(&[
        ("transactional.id.expiration.ms", "300"),
        ("transaction.remove.expired.transaction.cleanup.interval.ms", "50"),
    ]);
    let bootstrap = broker.bootstrap();
    let topic = unique("txn-expiry");
    create_topic(&admin(&bootstrap), &topic, 1, &[]);
    let (idle, open) = (unique("idle"), unique("open"));
    let done = txn_producer(&bootstrap, &idle);
    done.begin_transaction().unwrap();
    send(&done, &topic, &[(0, "i1")]);
    done.commit_transaction(WAIT).expect("commit");
    // Held open (its transaction timeout is 45 s) through the expiry.
    let running = txn_producer(&bootstrap, &open);
    running.begin_transaction().unwrap();
    send(&running, &topic, &[(0, "o1")]);
    let addr = broker.addr();
    block_on(async {
        let mut conn = Conn::connect(addr).await;
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let (_, ids) = list(&mut conn, 0, ListTransactionsRequest::default()).await;
            if !ids.contains(&idle) {
                assert_eq!(ids, std::slice::from_ref(&open), "the open transaction keeps its id");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the idle id did not expire: {ids:?}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    running.commit_transaction(WAIT).expect("the open transaction still commits");
    // The expiry is durable: a tombstone in __transaction_state.
    drop((done, running));
    let mut broker = broker;
    broker.restart();
    block_on(async {
        let mut conn = Conn::connect(broker.addr()).await;
        let r: DescribeTransactionsResponse =
            conn.call(0, &DescribeTransactionsRequest::default().with_transactional_ids(vec![s(&idle).into()])).await;
        assert_eq!(r.transaction_states[0].error_code, TRANSACTIONAL_ID_NOT_FOUND);
    });
}

#[test]
fn txn_offset_commit_needs_the_groups_partition_in_the_transaction() {
    let broker = TestBroker::start();
    let topic = unique("txn-toc");
    create_topic(&admin(&broker.bootstrap()), &topic, 1, &[]);
    let (id, group) = (unique("tx-toc"), unique("g-toc"));
    let addr = broker.addr();
    block_on(async {
        let mut c = Conn::connect(addr).await;
        let init = InitProducerIdRequest::default()
            .with_transactional_id(Some(s(&id).into()))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1);
        let init: InitProducerIdResponse = c.call(3, &init).await;
        assert_eq!(init.error_code, 0);
        let (pid, epoch) = (init.producer_id, init.producer_epoch);
        let add = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(s(&id).into())
            .with_v3_and_below_producer_id(pid)
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(s(&topic).into())
                .with_partitions(vec![0])]);
        let added: AddPartitionsToTxnResponse = c.call(3, &add).await;
        assert_eq!(added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code, 0);
        let commit = TxnOffsetCommitRequest::default()
            .with_transactional_id(s(&id).into())
            .with_group_id(s(&group).into())
            .with_producer_id(pid)
            .with_producer_epoch(epoch)
            .with_generation_id(-1)
            .with_topics(vec![txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                .with_name(s(&topic).into())
                .with_partitions(vec![txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(3)])]);
        // Without AddOffsetsToTxn no marker would ever settle the offset.
        let r: TxnOffsetCommitResponse = c.call(3, &commit).await;
        assert_eq!(r.topics[0].partitions[0].error_code, 48, "INVALID_TXN_STATE");
        let add_offsets = AddOffsetsToTxnRequest::default()
            .with_transactional_id(s(&id).into())
            .with_producer_id(pid)
            .with_producer_epoch(epoch)
            .with_group_id(s(&group).into());
        let r: AddOffsetsToTxnResponse = c.call(3, &add_offsets).await;
        assert_eq!(r.error_code, 0);
        let r: TxnOffsetCommitResponse = c.call(3, &commit).await;
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
        // A stale epoch is fenced (v3 knows PRODUCER_FENCED).
        let r: TxnOffsetCommitResponse = c.call(3, &commit.clone().with_producer_epoch(epoch + 1)).await;
        assert_eq!(r.topics[0].partitions[0].error_code, 90);
    });
}

#[test]
fn read_committed_fetch_lists_only_the_aborted_transactions_its_data_overlaps() {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique("txn-aborts");
    create_topic(&admin(&bootstrap), &topic, 1, &[]);
    let p = txn_producer(&bootstrap, &unique("tx-aborts"));
    for i in 0..20 {
        p.begin_transaction().unwrap();
        send(&p, &topic, &[(0, &format!("aborted-{i}"))]);
        p.abort_transaction(WAIT).expect("abort");
    }
    let addr = broker.addr();
    block_on(async {
        let mut c = Conn::connect(addr).await;
        let fetch = |offset: i64, max: i32| {
            FetchRequest::default().with_max_wait_ms(0).with_max_bytes(max).with_isolation_level(1).with_topics(vec![
                fetch_request::FetchTopic::default().with_topic(s(&topic).into()).with_partitions(vec![
                    fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(max),
                ]),
            ])
        };
        // One small batch: only its own transaction is listed.
        let r: FetchResponse = c.call(11, &fetch(0, 1)).await;
        let part = &r.responses[0].partitions[0];
        assert_eq!(part.last_stable_offset, 40, "20 records + 20 markers, all ended");
        let aborted = part.aborted_transactions.as_ref().expect("read_committed lists aborted transactions");
        assert_eq!(aborted.len(), 1, "{aborted:?}");
        assert_eq!(aborted[0].first_offset, 0);
        // Everything: all twenty.
        let r: FetchResponse = c.call(11, &fetch(0, 1 << 20)).await;
        assert_eq!(r.responses[0].partitions[0].aborted_transactions.as_ref().map(Vec::len), Some(20));
    });
}
