//! The service runs requests as of their arrival: a heartbeat that arrived
//! before the member's session deadline keeps the member even when the
//! coordinator task gets to it after the deadline (it waited in the
//! queue), while one that arrived after the deadline finds the member gone.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kaskade_types::ManualClock;

use super::{GroupService, HeartbeatRequest, JoinRequest, Protocol, SyncRequest};
use crate::config::BrokerConfig;
use crate::coordinator::fake::FakePartitions;

const SESSION: i32 = 10_000;
const GROUP: &str = "arrivals";

async fn heartbeat(s: &GroupService, member_id: String) -> Option<ResponseError> {
    let req = HeartbeatRequest { group_id: GROUP.into(), generation_id: 1, member_id, group_instance_id: None };
    s.call(move |engine, now| engine.heartbeat(now, &req)).await.expect("service runs")
}

// One thread: the coordinator task runs only when the test awaits, so a
// request can be queued, the clock moved, and only then processed.
#[tokio::test]
async fn a_heartbeat_counts_as_of_its_arrival_not_of_its_processing() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let mut config = BrokerConfig::default();
    config.group_initial_rebalance_delay_ms = 0;
    let fake = Arc::new(FakePartitions::new(4));
    let s = GroupService::from_config(&config, fake, clock.clone());

    // One member joins and syncs: Stable, its session ends SESSION from now.
    let join = s
        .join(JoinRequest {
            group_id: GROUP.into(),
            session_timeout_ms: SESSION,
            rebalance_timeout_ms: SESSION,
            protocol_type: "consumer".into(),
            protocols: vec![Protocol { name: "range".into(), metadata: Bytes::new() }],
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            ..JoinRequest::default()
        })
        .await
        .expect("join");
    assert_eq!((join.error, join.generation_id), (None, 1));
    let member = join.member_id.clone();
    let sync = s
        .sync(SyncRequest {
            group_id: GROUP.into(),
            generation_id: 1,
            member_id: member.clone(),
            assignments: vec![(member.clone(), Bytes::from_static(b"a"))],
            ..SyncRequest::default()
        })
        .await
        .expect("sync");
    assert_eq!(sync.error, None);

    // A heartbeat arrives 1 s before the session ends and is queued...
    clock.advance(i64::from(SESSION) - 1000);
    let queued = heartbeat(&s, member.clone());
    futures::pin_mut!(queued);
    assert!(futures::poll!(&mut queued).is_pending(), "queued, not yet processed");
    // ...the task gets to it 2 s later, 1 s after the deadline: it counts.
    clock.advance(2000);
    assert_eq!(queued.await, None, "the member was alive when its heartbeat arrived");
    // It renewed the session from its arrival, 9 s ago.
    clock.advance(i64::from(SESSION) - 2001);
    assert_eq!(heartbeat(&s, member.clone()).await, None);

    // A heartbeat that arrives after the deadline finds the member expired.
    clock.advance(i64::from(SESSION) + 1);
    assert_eq!(heartbeat(&s, member.clone()).await, Some(ResponseError::UnknownMemberId));
}
