//! The cleaner's key -> latest offset map over the dirty part of a log
//! (Kafka's `SkimpyOffsetMap`).
//!
//! Keys are not stored: each is reduced to a 128-bit SipHash with two keys
//! drawn at random per map, as Kafka stores an MD5 digest. Random keys make a
//! collision (which would drop the older of two different keys' records) as
//! unlikely as guessing 128 random bits, and impossible to provoke on
//! purpose. An entry costs 24 bytes of payload; the map is bounded by the
//! `log.cleaner.dedupe.buffer.size` budget and reports when it is full, so a
//! pass then cleans only up to the last offset it mapped.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// Bytes per entry in Kafka's accounting (16-byte digest + 8-byte offset).
pub const BYTES_PER_ENTRY: u64 = 24;
/// Kafka's `log.cleaner.io.buffer.load.factor`.
pub const LOAD_FACTOR: f64 = 0.9;

/// The digests are already uniformly random: hash them by identity.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64 ^ (v >> 64) as u64;
    }
}

#[derive(Debug)]
pub struct OffsetMap {
    seeds: (RandomState, RandomState),
    map: HashMap<u128, i64, BuildHasherDefault<DigestHasher>>,
    capacity: usize,
    latest_offset: i64,
}

impl OffsetMap {
    /// A map for a budget of `budget_bytes` (at least 1024 entries).
    pub fn with_budget(budget_bytes: u64) -> OffsetMap {
        let slots = budget_bytes / BYTES_PER_ENTRY;
        let capacity = ((slots as f64 * LOAD_FACTOR) as usize).max(1024);
        OffsetMap::with_capacity(capacity)
    }

    pub fn with_capacity(capacity: usize) -> OffsetMap {
        OffsetMap {
            seeds: (RandomState::new(), RandomState::new()),
            map: HashMap::default(),
            capacity,
            latest_offset: -1,
        }
    }

    fn digest(&self, key: &[u8]) -> u128 {
        (u128::from(self.seeds.0.hash_one(key)) << 64) | u128::from(self.seeds.1.hash_one(key))
    }

    /// How many more distinct keys fit.
    pub fn room(&self) -> usize {
        self.capacity.saturating_sub(self.map.len())
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Records that `key` was seen at `offset` (offsets come in increasing
    /// order, so the last put wins).
    pub fn put(&mut self, key: &[u8], offset: i64) {
        let d = self.digest(key);
        self.map.insert(d, offset);
    }

    /// The latest offset of `key` in the mapped range, if it was seen.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        self.map.get(&self.digest(key)).copied()
    }

    /// The last offset the map covers: every record at or below it that has
    /// a key was put. Records above it are outside this pass.
    pub fn latest_offset(&self) -> i64 {
        self.latest_offset
    }

    pub fn update_latest_offset(&mut self, offset: i64) {
        self.latest_offset = self.latest_offset.max(offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_put_wins_and_room_shrinks() {
        let mut m = OffsetMap::with_capacity(2000);
        assert!(m.is_empty() && m.get(b"a").is_none());
        m.put(b"a", 1);
        m.put(b"b", 2);
        m.put(b"a", 7);
        assert_eq!(m.get(b"a"), Some(7));
        assert_eq!(m.get(b"b"), Some(2));
        assert_eq!(m.get(b"c"), None);
        assert_eq!(m.room(), 1998);
        m.update_latest_offset(9);
        m.update_latest_offset(3);
        assert_eq!(m.latest_offset(), 9);
        // Empty and missing keys are different keys.
        m.put(b"", 11);
        assert_eq!(m.get(b""), Some(11));
    }

    #[test]
    fn budget_follows_kafkas_accounting() {
        let m = OffsetMap::with_budget(128 << 20);
        assert_eq!(m.room(), ((128u64 << 20) / 24) as usize * 9 / 10);
        assert_eq!(OffsetMap::with_budget(0).room(), 1024);
    }

    #[test]
    fn many_keys_do_not_collide() {
        let mut m = OffsetMap::with_capacity(1 << 20);
        for i in 0..100_000i64 {
            m.put(&i.to_be_bytes(), i);
        }
        assert_eq!(m.room(), (1 << 20) - 100_000);
        for i in (0..100_000i64).step_by(997) {
            assert_eq!(m.get(&i.to_be_bytes()), Some(i));
        }
    }
}
