//! The console's JSON API against a real broker in process: every answer
//! comes through the broker's Kafka handlers, and refusals carry Kafka's
//! error name and the broker's message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use kaskade_broker::router::Router as Routes;
use kaskade_broker::{Broker, BrokerConfig};
use kaskade_console::{router_with, Options};
use serde_json::{json, Value};
use tower::ServiceExt;

struct Api {
    app: axum::Router,
    broker: Arc<Broker>,
}

impl Api {
    fn new() -> Self {
        let broker = Arc::new(Broker::for_tests(BrokerConfig::default(), Routes::default()));
        Api { app: router_with(broker.clone(), Options { sample_interval: Duration::from_millis(50) }), broker }
    }

    /// Commits `offset` for `group` on `topic`-0 as an admin client does
    /// (no member, generation -1): the group exists, Empty.
    async fn commit(&self, group: &str, topic: &str, offset: i64) {
        use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
        use kafka_protocol::messages::{GroupId, OffsetCommitRequest, TopicName};
        use kaskade_console::kafka::{sb, Kafka};
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(sb(""))
            .with_topics(vec![OffsetCommitRequestTopic::default().with_name(TopicName(sb(topic))).with_partitions(
                vec![OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(offset)],
            )]);
        let resp = Kafka::new(self.broker.clone()).call(req, 8).await.expect("OffsetCommit");
        assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value, String) {
        let mut req = Request::builder().method(method).uri(path);
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let resp = self.app.clone().oneshot(req.body(body).expect("request")).await.expect("infallible");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20).await.expect("body");
        let text = String::from_utf8_lossy(&bytes).to_string();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null), text)
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, json, text) = self.send(method, path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        json
    }
}

#[tokio::test]
async fn topics_are_created_described_altered_and_deleted_with_kafka_errors() {
    let api = Api::new();
    let created = api.ok("POST", "/api/topics", Some(json!({"name": "orders", "partitions": 3}))).await;
    assert_eq!(created["partitions"], 3);

    let (status, err, _) = api.send("POST", "/api/topics", Some(json!({"name": "orders"}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(err["error"], "TopicAlreadyExists");
    assert!(err["message"].as_str().is_some_and(|m| m.contains("orders")), "{err}");

    let (status, err, _) = api.send("POST", "/api/topics", Some(json!({"name": "bad name!"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "InvalidTopicException");

    let list = api.ok("GET", "/api/topics", None).await;
    let row = list.as_array().and_then(|l| l.iter().find(|t| t["name"] == "orders")).cloned().expect("listed");
    assert_eq!((row["partitions"].as_i64(), row["replication_factor"].as_i64()), (Some(3), Some(1)));

    let t = api.ok("GET", "/api/topics/orders", None).await;
    assert_eq!(t["partitions"].as_array().map(Vec::len), Some(3));
    assert_eq!(t["partitions"][0]["leader"], 1);
    assert_eq!(t["partitions"][0]["end_offset"], 0);
    let retention = |t: &Value| {
        t["configs"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == "retention.ms"))
            .cloned()
            .expect("retention.ms")
    };
    assert_eq!(retention(&t)["is_override"], false);
    assert_eq!(retention(&t)["default_value"], retention(&t)["value"]);

    api.ok("PUT", "/api/topics/orders/configs", Some(json!({"set": {"retention.ms": "60000"}}))).await;
    let r = retention(&api.ok("GET", "/api/topics/orders", None).await);
    assert_eq!((r["value"].as_str(), r["is_override"].as_bool()), (Some("60000"), Some(true)));
    assert_eq!(r["source"], "DYNAMIC_TOPIC_CONFIG");

    let (status, err, _) =
        api.send("PUT", "/api/topics/orders/configs", Some(json!({"set": {"retention.ms": "soon"}}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"], "InvalidConfig");

    api.ok("PUT", "/api/topics/orders/configs", Some(json!({"delete": ["retention.ms"]}))).await;
    assert_eq!(retention(&api.ok("GET", "/api/topics/orders", None).await)["is_override"], false);

    api.ok("DELETE", "/api/topics/orders", None).await;
    let (status, err, _) = api.send("GET", "/api/topics/orders", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error"], "UnknownTopicOrPartition");
    let (status, err, _) = api.send("DELETE", "/api/topics/orders", None).await;
    assert_eq!((status, err["error"].as_str()), (StatusCode::NOT_FOUND, Some("UnknownTopicOrPartition")));
}

#[tokio::test]
async fn messages_are_produced_and_browsed_from_offset_time_and_newest() {
    let api = Api::new();
    api.ok("POST", "/api/topics", Some(json!({"name": "events", "partitions": 2}))).await;
    let before = kaskade_console::history::now_ms();
    for i in 0..5 {
        let r = api
            .ok(
                "POST",
                "/api/topics/events/messages",
                Some(json!({"partition": 1, "key": format!("k{i}"), "value": format!("{{\"n\":{i}}}"),
                    "headers": [{"key": "source", "value": "test"}]})),
            )
            .await;
        assert_eq!(r["offset"], i);
    }
    let page = api.ok("GET", "/api/topics/events/messages?partition=1&limit=2", None).await;
    assert_eq!((page["start_offset"].as_i64(), page["end_offset"].as_i64()), (Some(0), Some(5)));
    let offsets = |p: &Value| -> Vec<i64> {
        p["messages"].as_array().map(|m| m.iter().filter_map(|m| m["offset"].as_i64()).collect()).unwrap_or_default()
    };
    assert_eq!(offsets(&page), vec![3, 4]);
    assert_eq!(page["messages"][1]["value"]["kind"], "json");
    assert_eq!(page["messages"][1]["value"]["text"], "{\n  \"n\": 4\n}");
    assert_eq!(page["messages"][1]["headers"][0][0], "source");

    let page = api.ok("GET", "/api/topics/events/messages?partition=1&from=offset&value=1&limit=2", None).await;
    assert_eq!(offsets(&page), vec![1, 2]);
    assert_eq!(page["next_offset"], 3);
    let page = api.ok("GET", "/api/topics/events/messages?partition=1&from=offset&value=3", None).await;
    assert_eq!(offsets(&page), vec![3, 4]);
    assert_eq!(page["next_offset"], 5);

    let page =
        api.ok("GET", &format!("/api/topics/events/messages?partition=1&from=timestamp&value={before}"), None).await;
    assert_eq!(offsets(&page), vec![0, 1, 2, 3, 4]);
    let future = before + 3_600_000;
    let page =
        api.ok("GET", &format!("/api/topics/events/messages?partition=1&from=timestamp&value={future}"), None).await;
    assert!(offsets(&page).is_empty());

    let page = api.ok("GET", "/api/topics/events/messages?partition=1&from=offset&value=0&filter=K3", None).await;
    assert_eq!(offsets(&page), vec![3]);

    let (status, err, _) = api.send("GET", "/api/topics/events/messages?partition=7", None).await;
    assert_eq!((status, err["error"].as_str()), (StatusCode::NOT_FOUND, Some("UnknownTopicOrPartition")));
    let (status, err, _) = api.send("GET", "/api/topics/nope/messages", None).await;
    assert_eq!((status, err["error"].as_str()), (StatusCode::NOT_FOUND, Some("UnknownTopicOrPartition")));
    let (status, err, _) = api.send("POST", "/api/topics/nope/messages", Some(json!({"value": "x"}))).await;
    assert_eq!((status, err["error"].as_str()), (StatusCode::NOT_FOUND, Some("UnknownTopicOrPartition")));
    let (status, _, _) = api.send("GET", "/api/topics/events/messages?from=sideways", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = api.send("GET", "/api/topics/events/messages?from=timestamp&value=-5", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, err, _) = api.send("GET", "/api/topics/events/messages?partition=x", None).await;
    assert_eq!((status, err["error"].as_str()), (StatusCode::BAD_REQUEST, Some("BadRequest")));

    // Binary values are shown as hex, large ones cut with their size.
    let big = "x".repeat(100_000);
    api.ok("POST", "/api/topics/events/messages", Some(json!({"partition": 0, "value": big}))).await;
    let page = api.ok("GET", "/api/topics/events/messages?partition=0", None).await;
    let v = &page["messages"][0]["value"];
    assert_eq!((v["truncated"].as_bool(), v["size"].as_i64()), (Some(true), Some(100_000)));
}

/// Moves `topic`'s partitions to the leaders `leaders` (None: offline) in
/// the broker's metadata, as the controller's elections would.
fn move_leaders(broker: &Broker, topic: &str, leaders: &[Option<i32>]) {
    use kaskade_broker::topic::TopicError;
    use kaskade_types::NodeId;
    broker
        .topics
        .update(|img| -> Result<(Vec<_>, ()), TopicError> {
            let t = img.topic(topic).expect("the topic");
            let records = leaders
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let p = &t.partitions[i];
                    p.change_record(t.id, i as i32, l.map(NodeId), p.isr.clone())
                })
                .collect();
            Ok((records, ()))
        })
        .expect("leaders moved");
}

/// Registers broker `node` at `port` in the broker's metadata.
fn register(broker: &Broker, node: i32, port: u16) {
    use kaskade_broker::topic::TopicError;
    use kaskade_meta::{BrokerEndpoint, MetadataRecord};
    let record = MetadataRecord::RegisterBroker {
        node_id: node,
        incarnation_id: uuid::Uuid::new_v4(),
        endpoints: vec![BrokerEndpoint {
            listener: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port,
            security_protocol: Some("PLAINTEXT".into()),
        }],
        rack: None,
        fenced: false,
        process: None,
    };
    broker.topics.update(|_| Ok::<_, TopicError>((vec![record.clone()], ()))).expect("registered");
}

#[tokio::test]
async fn a_partition_led_by_an_unreachable_broker_or_by_none_is_refused_with_kafkas_error() {
    let api = Api::new();
    api.ok("POST", "/api/topics", Some(json!({"name": "far", "partitions": 2}))).await;
    // Node 7 registered at a port nobody listens on leads partition 0;
    // partition 1 has no leader.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    register(&api.broker, 7, closed);
    move_leaders(&api.broker, "far", &[Some(7), None]);

    // Browse and produce go to the leader: not reachable, BROKER_NOT_AVAILABLE.
    let (status, err, _) = api.send("GET", "/api/topics/far/messages?partition=0", None).await;
    assert_eq!((status, err["error"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("BrokerNotAvailable")), "{err}");
    assert!(err["message"].as_str().is_some_and(|m| m.contains("broker 7")), "{err}");
    let (status, err, _) =
        api.send("POST", "/api/topics/far/messages", Some(json!({"partition": 0, "value": "x"}))).await;
    assert_eq!((status, err["error"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("BrokerNotAvailable")), "{err}");
    // An offline partition: LEADER_NOT_AVAILABLE, saying so.
    let (status, err, _) = api.send("GET", "/api/topics/far/messages?partition=1", None).await;
    assert_eq!((status, err["error"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("LeaderNotAvailable")), "{err}");
    assert!(err["message"].as_str().is_some_and(|m| m.contains("offline")), "{err}");
    // The topic page still answers: leaders as the metadata has them, the
    // offsets nobody could give left out.
    let t = api.ok("GET", "/api/topics/far", None).await;
    assert_eq!((t["partitions"][0]["leader"].as_i64(), t["partitions"][1]["leader"].as_i64()), (Some(7), Some(-1)));
    assert!(t["partitions"][0]["end_offset"].is_null() && t["partitions"][1]["end_offset"].is_null(), "{t}");
    api.ok("GET", "/api/topics", None).await;
}

#[tokio::test]
async fn groups_show_lag_and_reset_offsets_of_an_inactive_group() {
    let api = Api::new();
    api.ok("POST", "/api/topics", Some(json!({"name": "t", "partitions": 1}))).await;
    for _ in 0..4 {
        api.ok("POST", "/api/topics/t/messages", Some(json!({"value": "v"}))).await;
    }
    // No group yet: nothing to describe, nothing to reset.
    let (status, err, _) = api.send("GET", "/api/groups/g", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    let (status, err, _) = api.send("POST", "/api/groups/g/reset", Some(json!({"to": "earliest"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");

    // A group with a committed offset and no members: its lag, and resets.
    api.commit("g", "t", 1).await;
    let g = api.ok("GET", "/api/groups/g", None).await;
    assert_eq!(g["state"], "Empty");
    assert_eq!(g["offsets"][0], json!({"topic": "t", "partition": 0, "committed": 1, "end_offset": 4, "lag": 3}));
    let list = api.ok("GET", "/api/groups", None).await;
    assert_eq!((list[0]["group_id"].as_str(), list[0]["lag"].as_i64()), (Some("g"), Some(3)));

    let lag = |g: &Value| g["offsets"][0]["lag"].as_i64();
    api.ok("POST", "/api/groups/g/reset", Some(json!({"to": "latest"}))).await;
    assert_eq!(lag(&api.ok("GET", "/api/groups/g", None).await), Some(0));
    api.ok("POST", "/api/groups/g/reset", Some(json!({"to": "earliest", "topic": "t"}))).await;
    assert_eq!(lag(&api.ok("GET", "/api/groups/g", None).await), Some(4));
    api.ok("POST", "/api/groups/g/reset", Some(json!({"to": "offset", "offset": 2}))).await;
    assert_eq!(lag(&api.ok("GET", "/api/groups/g", None).await), Some(2));

    let (status, _, _) = api.send("POST", "/api/groups/g/reset", Some(json!({"to": "offset"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = api.send("POST", "/api/groups/g/reset", Some(json!({"to": "offset", "offset": -1}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = api.send("POST", "/api/groups/g/reset", Some(json!({"to": 3}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = api.send("POST", "/api/groups/g/reset", Some(json!({"to": "latest", "topic": "other"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The lag history is sampled.
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.ok("GET", "/api/groups/g", None).await["lag_history"].as_array().is_none_or(|h| h.is_empty()) {
        assert!(Instant::now() < deadline, "no lag sampled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn overview_shows_a_brokers_version_and_uptime_from_its_registration() {
    use kaskade_broker::topic::TopicError;
    use kaskade_meta::{BrokerProcess, MetadataRecord};
    let api = Api::new();
    // A node of its own has no registration: its own version and uptime.
    let o = api.ok("GET", "/api/overview", None).await;
    let me = &o["brokers"][0];
    assert_eq!(me["version"].as_str(), Some(env!("CARGO_PKG_VERSION")), "{o}");
    assert!(me["uptime_ms"].as_u64().is_some(), "{o}");

    // Registered (as the controller records it in a cluster): the
    // registration's version, and an uptime from its start time.
    let started = kaskade_types::Clock::now_ms(&kaskade_types::SystemClock) - 3_600_000;
    let record = MetadataRecord::RegisterBroker {
        node_id: 1,
        incarnation_id: uuid::Uuid::new_v4(),
        endpoints: vec![],
        rack: None,
        fenced: false,
        process: Some(BrokerProcess { version: "9.9.9-test".into(), start_time_ms: started }),
    };
    api.broker.topics.update(|_| Ok::<_, TopicError>((vec![record.clone()], ()))).expect("registered");
    let o = api.ok("GET", "/api/overview", None).await;
    let me = &o["brokers"][0];
    assert_eq!(me["version"].as_str(), Some("9.9.9-test"), "{o}");
    let uptime = me["uptime_ms"].as_u64().expect("an uptime");
    assert!((3_600_000..3_700_000).contains(&uptime), "an hour and the test's time: {o}");
}

#[tokio::test]
async fn overview_samples_throughput_and_unknown_paths_are_404() {
    let api = Api::new();
    api.ok("POST", "/api/topics", Some(json!({"name": "load", "partitions": 1}))).await;
    let o = api.ok("GET", "/api/overview", None).await;
    assert_eq!(o["brokers"][0]["id"], 1);
    assert_eq!(o["brokers"][0]["controller"], true);
    assert!(o["brokers"][0]["version"].is_string());
    assert!(o["log_dirs"][0]["total_bytes"].as_i64().is_some_and(|b| b > 0), "{o}");
    // Records produced between samples show up as a rate.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        api.ok("POST", "/api/topics/load/messages", Some(json!({"value": "v"}))).await;
        let o = api.ok("GET", "/api/overview", None).await;
        let seen = o["throughput"]
            .as_array()
            .is_some_and(|t| t.iter().any(|p| p["records_in_per_sec"].as_f64().is_some_and(|r| r > 0.0)));
        if seen {
            assert!(o["throughput"].as_array().is_some_and(|t| t.len() <= kaskade_console::history::POINTS));
            break;
        }
        assert!(Instant::now() < deadline, "no throughput sampled: {o}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = api.ok("GET", "/api/topics", None).await;
    assert!(rate[0]["records_per_sec"].is_number(), "{rate}");

    let (status, err, _) = api.send("GET", "/api/nope", None).await;
    assert_eq!((status, err["error"].as_str()), (StatusCode::NOT_FOUND, Some("NotFound")));
    let (status, _, html) = api.send("GET", "/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("/assets/app.js"));
    let (status, _, js) = api.send("GET", "/assets/app.js", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(js.contains("import"));
    let (status, _, _) = api.send("GET", "/assets/../Cargo.toml", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, err, _) = api.send("POST", "/api/topics", Some(json!({"partitions": 1}))).await;
    assert_eq!((status, err["error"].as_str()), (StatusCode::BAD_REQUEST, Some("BadRequest")));
    let t = api.ok("GET", "/api/transactions", None).await;
    assert_eq!(t, json!([]));
}
