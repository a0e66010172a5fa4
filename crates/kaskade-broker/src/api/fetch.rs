//! Fetch: read whole batches from partition logs up to the high watermark,
//! with long polling (`min_bytes` / `max_wait_ms`) woken by the logs' high
//! watermark notifications, byte limits per partition and per response
//! (KIP-74), and incremental fetch sessions (KIP-227).
//!
//! Reads run on the blocking pool (`spawn_blocking`): a consumer far
//! behind reads segments that may not be in the page cache.

use kafka_protocol::ResponseError;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use kaskade_log::{Log, LogError};
use tokio::time::Instant;

use super::fetch_session::{PartKey, PartState, SessionMode};
use crate::broker::Broker;
use crate::error::BrokerError;

/// One partition of this fetch, resolved.
struct Wanted {
    key: PartKey,
    topic_id: uuid::Uuid,
    fetch_offset: i64,
    max_bytes: i32,
    log: Option<Arc<Log>>,
    /// Set when the partition cannot be served at all.
    error: Option<i16>,
}

struct Got {
    error: i16,
    hw: i64,
    lso: i64,
    log_start: i64,
    records: Option<Bytes>,
    /// read_committed: the aborted transactions the records overlap.
    aborted: Vec<kaskade_log::txn::AbortedTxn>,
}

/// The offset after the last whole batch in `records`.
fn next_offset_after(records: &Bytes) -> i64 {
    kaskade_log::batch::headers(records).last().map_or(-1, |h| h.next_offset())
}

/// Reads every partition within `max_bytes`. Under read_committed a read
/// stops at the last stable offset and names the aborted transactions it
/// overlaps, so the client can drop their records.
fn read_all(wanted: &[(Option<Arc<Log>>, i64, i32)], max_bytes: i32, read_committed: bool) -> Vec<Got> {
    let mut budget = max_bytes.max(0) as usize;
    let mut any = false;
    wanted
        .iter()
        .map(|(log, offset, pmax)| {
            let Some(log) = log else {
                return Got {
                    error: ResponseError::UnknownTopicOrPartition.code(),
                    hw: -1,
                    lso: -1,
                    log_start: -1,
                    records: None,
                    aborted: Vec::new(),
                };
            };
            let hw = log.high_watermark();
            let lso = log.last_stable_offset();
            let upper = if read_committed { lso } else { hw };
            let limit = (*pmax).max(0) as usize;
            let want = limit.min(budget);
            let res = if want == 0 && any {
                // Budget spent: report positions only.
                match (log.log_start_offset(), log.log_end_offset()) {
                    (s, e) if *offset < s || *offset > e => {
                        Err(LogError::OffsetOutOfRange { offset: *offset, start: s, end: e })
                    }
                    (s, _) => Ok((None, s)),
                }
            } else {
                log.read(*offset, want.max(1), Some(upper)).map(|r| (r.records, r.log_start_offset))
            };
            match res {
                Ok((records, log_start)) => {
                    let records = records.filter(|r| !any || r.len() <= budget);
                    if let Some(r) = &records {
                        budget = budget.saturating_sub(r.len());
                        any = true;
                    }
                    // Kafka bounds the list by what the read returned, not by
                    // the LSO: the answer stays proportional to the data.
                    let aborted = match &records {
                        Some(r) if read_committed => log.aborted_transactions(*offset, next_offset_after(r)),
                        _ => Vec::new(),
                    };
                    Got { error: 0, hw, lso, log_start, records, aborted }
                }
                Err(e) => Got {
                    error: crate::partition::storage_error(&e).code(),
                    hw,
                    lso,
                    log_start: log.log_start_offset(),
                    records: None,
                    aborted: Vec::new(),
                },
            }
        })
        .collect()
}

pub async fn handle(broker: &Arc<Broker>, version: i16, req: FetchRequest) -> Result<FetchResponse, BrokerError> {
    let mut resp = FetchResponse::default();
    let image = broker.topics.image();
    let by_id = version >= 13;
    let resolve = |name: &str, id: &uuid::Uuid| -> Option<(String, uuid::Uuid)> {
        let t = if by_id { image.topic_by_id(id) } else { image.topic(name) };
        t.map(|t| (t.name.clone(), t.id))
    };
    let unknown_code =
        if by_id { ResponseError::UnknownTopicId.code() } else { ResponseError::UnknownTopicOrPartition.code() };

    let mode = match broker.fetch_sessions.begin(req.session_id, req.session_epoch) {
        Ok(m) => m,
        Err(c) => {
            resp.error_code = c.code();
            resp.session_id = req.session_id;
            return Ok(resp);
        }
    };

    // The partitions named in this request.
    let mut named = Vec::new();
    for t in &req.topics {
        let resolved = resolve(t.topic.as_str(), &t.topic_id);
        for p in &t.partitions {
            let (key, id, err) = match &resolved {
                Some((name, id)) => ((name.clone(), p.partition), *id, None),
                None => ((t.topic.to_string(), p.partition), t.topic_id, Some(unknown_code)),
            };
            named.push((key, id, p.fetch_offset, p.partition_max_bytes, err));
        }
    }

    let session_id = match mode {
        SessionMode::Sessionless => 0,
        SessionMode::New(id) | SessionMode::Incremental(id) => id,
    };
    // Session bookkeeping: incremental requests update the remembered set.
    let wanted_keys: Vec<(PartKey, uuid::Uuid, i64, i32, Option<i16>)> = match mode {
        SessionMode::Sessionless => named,
        SessionMode::New(id) | SessionMode::Incremental(id) => {
            let incremental = matches!(mode, SessionMode::Incremental(_));
            let forgotten: Vec<PartKey> = req
                .forgotten_topics_data
                .iter()
                .flat_map(|f| {
                    let name =
                        resolve(f.topic.as_str(), &f.topic_id).map(|(n, _)| n).unwrap_or_else(|| f.topic.to_string());
                    f.partitions.iter().map(move |p| (name.clone(), *p))
                })
                .collect();
            broker
                .fetch_sessions
                .with(id, |s| {
                    if incremental {
                        for k in &forgotten {
                            s.parts.shift_remove(k);
                        }
                    }
                    let mut errors = Vec::new();
                    for (key, tid, off, max, err) in &named {
                        if let Some(e) = err {
                            errors.push((key.clone(), *tid, *off, *max, Some(*e)));
                            continue;
                        }
                        let st = s.parts.entry(key.clone()).or_insert(PartState {
                            fetch_offset: *off,
                            max_bytes: *max,
                            last_hw: -2,
                            last_log_start: -2,
                            topic_id: *tid,
                        });
                        st.fetch_offset = *off;
                        st.max_bytes = *max;
                        st.topic_id = *tid;
                    }
                    let mut all: Vec<_> = s
                        .parts
                        .iter()
                        .map(|(k, st)| (k.clone(), st.topic_id, st.fetch_offset, st.max_bytes, None))
                        .collect();
                    all.extend(errors);
                    all
                })
                .unwrap_or_default()
        }
    };
    let wanted: Vec<Wanted> = wanted_keys
        .into_iter()
        .map(|(key, topic_id, fetch_offset, max_bytes, error)| {
            let log = if error.is_none() { broker.topics.log(&key.0, key.1) } else { None };
            let error =
                error.or(if log.is_none() { Some(ResponseError::UnknownTopicOrPartition.code()) } else { None });
            Wanted { key, topic_id, fetch_offset, max_bytes, log, error }
        })
        .collect();

    // Read, and long-poll until min_bytes or the deadline.
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let min_bytes = req.min_bytes.max(0) as usize;
    let mut watches: Vec<_> =
        wanted.iter().filter_map(|w| w.log.as_ref().map(|l| l.subscribe_high_watermark())).collect();
    let read_committed = req.isolation_level == 1;
    let got = loop {
        for w in &mut watches {
            w.borrow_and_update();
        }
        let plan: Vec<_> = wanted.iter().map(|w| (w.log.clone(), w.fetch_offset, w.max_bytes)).collect();
        let max_bytes = req.max_bytes;
        let got = match tokio::task::spawn_blocking(move || read_all(&plan, max_bytes, read_committed)).await {
            Ok(g) => g,
            Err(_) => {
                resp.error_code = -1;
                return Ok(resp);
            }
        };
        let bytes: usize = got.iter().filter_map(|g| g.records.as_ref().map(Bytes::len)).sum();
        let errors = got.iter().zip(&wanted).any(|(g, w)| g.error != 0 || w.error.is_some());
        if min_bytes == 0 || bytes >= min_bytes || errors || Instant::now() >= deadline || watches.is_empty() {
            break got;
        }
        let changed = futures::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        tokio::select! {
            _ = changed => {}
            // Deadline or shutdown: answer with what is there now.
            _ = tokio::time::sleep_until(deadline) => break got,
            _ = broker.stopping() => break got,
        }
    };

    // Build the response; incremental sessions send only partitions with news.
    let incremental = matches!(mode, SessionMode::Incremental(_));
    let mut entries = Vec::new();
    for (w, g) in wanted.iter().zip(got) {
        let error = w.error.unwrap_or(g.error);
        let has_news = if session_id != 0 {
            broker
                .fetch_sessions
                .with(session_id, |s| match s.parts.get_mut(&w.key) {
                    Some(st) => {
                        let news =
                            error != 0 || g.records.is_some() || st.last_hw != g.hw || st.last_log_start != g.log_start;
                        st.last_hw = g.hw;
                        st.last_log_start = g.log_start;
                        news
                    }
                    None => true,
                })
                .unwrap_or(true)
        } else {
            true
        };
        if incremental && !has_news {
            continue;
        }
        let mut pd = PartitionData::default();
        pd.partition_index = w.key.1;
        pd.error_code = error;
        pd.high_watermark = g.hw;
        pd.last_stable_offset = g.lso;
        pd.log_start_offset = g.log_start;
        pd.aborted_transactions = read_committed.then(|| {
            g.aborted
                .iter()
                .map(|a| {
                    let mut t = AbortedTransaction::default();
                    t.producer_id = ProducerId(a.producer_id);
                    t.first_offset = a.first_offset;
                    t
                })
                .collect()
        });
        crate::metrics::traffic::fetched(w.log.as_ref(), g.records.as_ref());
        pd.records = Some(g.records.unwrap_or_default());
        entries.push((w.key.0.clone(), w.topic_id, pd));
    }
    if incremental {
        // A new session expects epoch 1 next; each incremental fetch moves it on.
        broker.fetch_sessions.with(session_id, |s| s.advance());
    }
    for (name, id, pd) in entries {
        match resp.responses.last_mut() {
            Some(t) if (by_id && t.topic_id == id) || (!by_id && t.topic.as_str() == name) => t.partitions.push(pd),
            _ => {
                let mut t = FetchableTopicResponse::default();
                t.topic = TopicName(StrBytes::from_string(name));
                t.topic_id = id;
                t.partitions.push(pd);
                resp.responses.push(t);
            }
        }
    }
    resp.session_id = session_id;
    Ok(resp)
}

crate::route_to!(Fetch, handle);
