//! Incremental fetch sessions (KIP-227): the broker remembers which
//! partitions a consumer fetches, so later requests name only changes and
//! responses carry only partitions with something new.
//!
//! Protocol rules (FetchRequest `session_id`, `session_epoch`):
//! - id 0, epoch -1: sessionless full fetch;
//! - id 0, epoch 0: full fetch that creates a session;
//! - id N, epoch -1: close session N, answer as a sessionless full fetch;
//! - id N, epoch 0: close N and create a new session;
//! - id N, epoch E > 0: incremental; E must be the session's next epoch.

use std::collections::HashMap;

use parking_lot::Mutex;

use kafka_protocol::ResponseError;

/// A partition key within a session: topic name (resolved) and partition.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartKey {
    pub topic: String,
    pub partition: i32,
}

/// What the session remembers of one partition.
#[derive(Clone, Debug, PartialEq)]
pub struct PartState {
    pub fetch_offset: i64,
    pub max_bytes: i32,
    /// What was last sent, to decide whether the partition has news.
    pub last_hw: i64,
    pub last_log_start: i64,
    /// The topic id the client uses for this partition (v13+).
    pub topic_id: uuid::Uuid,
    /// The leader epoch the client last named for it (checked on every
    /// fetch of the session, as Kafka's `CachedPartition` keeps it).
    pub current_leader_epoch: Option<kaskade_types::LeaderEpoch>,
}

#[derive(Debug)]
pub struct Session {
    pub next_epoch: i32,
    /// Insertion order matters: responses list partitions in it.
    pub parts: indexmap::IndexMap<PartKey, PartState>,
    last_used: u64,
}

#[derive(Debug)]
pub struct SessionCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: i32,
    tick: u64,
    sessions: HashMap<i32, Session>,
}

/// How a request relates to sessions.
#[derive(Debug, PartialEq)]
pub enum SessionMode {
    Sessionless,
    /// A full fetch that creates session `id`.
    New(i32),
    /// An incremental fetch on session `id`.
    Incremental(i32),
}

impl SessionCache {
    pub fn new(capacity: usize) -> Self {
        SessionCache { inner: Mutex::new(Inner { next_id: 1, ..Inner::default() }), capacity }
    }

    /// Resolves the request's session fields.
    pub fn begin(&self, id: i32, epoch: i32) -> Result<SessionMode, ResponseError> {
        let mut g = self.inner.lock();
        match (id, epoch) {
            (0, -1) => Ok(SessionMode::Sessionless),
            (0, 0) => Ok(self.create(&mut g)),
            (0, _) => Err(ResponseError::InvalidFetchSessionEpoch),
            (id, -1) => {
                g.sessions.remove(&id);
                Ok(SessionMode::Sessionless)
            }
            (id, 0) => {
                g.sessions.remove(&id);
                Ok(self.create(&mut g))
            }
            (id, e) => {
                g.tick += 1;
                let tick = g.tick;
                let s = g.sessions.get_mut(&id).ok_or(ResponseError::FetchSessionIdNotFound)?;
                if s.next_epoch != e {
                    return Err(ResponseError::InvalidFetchSessionEpoch);
                }
                s.last_used = tick;
                Ok(SessionMode::Incremental(id))
            }
        }
    }

    fn create(&self, g: &mut Inner) -> SessionMode {
        if self.capacity == 0 {
            return SessionMode::Sessionless;
        }
        if g.sessions.len() >= self.capacity {
            if let Some(victim) = g.sessions.iter().min_by_key(|(_, s)| s.last_used).map(|(k, _)| *k) {
                g.sessions.remove(&victim);
            }
        }
        let mut id = g.next_id;
        while id == 0 || g.sessions.contains_key(&id) {
            id = id.wrapping_add(1).max(1);
        }
        g.next_id = id.wrapping_add(1).max(1);
        g.tick += 1;
        let tick = g.tick;
        g.sessions.insert(id, Session { next_epoch: 1, parts: indexmap::IndexMap::new(), last_used: tick });
        SessionMode::New(id)
    }

    /// Runs `f` on a live session (then bumps its epoch when `advance`).
    pub fn with<T>(&self, id: i32, f: impl FnOnce(&mut Session) -> T) -> Option<T> {
        let mut g = self.inner.lock();
        g.sessions.get_mut(&id).map(f)
    }

    pub fn len(&self) -> usize {
        self.inner.lock().sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Session {
    pub fn advance(&mut self) {
        self.next_epoch = if self.next_epoch == i32::MAX { 1 } else { self.next_epoch + 1 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_lifecycle_follows_kip_227() {
        let c = SessionCache::new(2);
        assert_eq!(c.begin(0, -1), Ok(SessionMode::Sessionless));
        let SessionMode::New(id) = c.begin(0, 0).expect("new") else { panic!("expected a new session") };
        assert_eq!(c.begin(id, 2), Err(ResponseError::InvalidFetchSessionEpoch));
        assert_eq!(c.begin(id, 1), Ok(SessionMode::Incremental(id)));
        c.with(id, |s| s.advance());
        assert_eq!(c.begin(id, 1), Err(ResponseError::InvalidFetchSessionEpoch), "epoch 1 was used");
        assert_eq!(c.begin(id, 2), Ok(SessionMode::Incremental(id)));
        assert_eq!(c.begin(id + 100, 1), Err(ResponseError::FetchSessionIdNotFound));
        assert_eq!(c.begin(id, -1), Ok(SessionMode::Sessionless));
        assert_eq!(c.begin(id, 1), Err(ResponseError::FetchSessionIdNotFound));
        // Capacity evicts the least recently used.
        let a = c.begin(0, 0).expect("a");
        let _b = c.begin(0, 0).expect("b");
        let _c = c.begin(0, 0).expect("c");
        assert_eq!(c.len(), 2);
        if let SessionMode::New(a) = a {
            assert_eq!(c.begin(a, 1), Err(ResponseError::FetchSessionIdNotFound));
        }
    }
}
