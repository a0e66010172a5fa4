//! The records of `__consumer_offsets`, with Kafka's key and value schemas
//! (`OffsetCommitKey` v1, `OffsetCommitValue` v3; a null value is a
//! tombstone), and Kafka's choice of a group's partition.

use bytes::{BufMut, Bytes, BytesMut};

use super::state::{CommittedOffset, Group, GroupState, Member, OffsetChange};
use super::types::{committed_leader_epoch, wire_leader_epoch, Protocol};

/// The internal topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Key versions 0 and 1 are offset commits; 2 is group metadata.
const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
const GROUP_METADATA_KEY_VERSION: i16 = 2;
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// Java's `String.hashCode` (over UTF-16 code units).
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The `__consumer_offsets` partition of a group, as Kafka picks it:
/// `Utils.abs(groupId.hashCode) % offsets.topic.num.partitions`.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let h = java_string_hash(group_id);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len().min(i16::MAX as usize) as i16);
    buf.put_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
}

/// The record key of a committed offset.
pub fn offset_key(group_id: &str, topic: &str, partition: i32) -> Bytes {
    let mut buf = BytesMut::with_capacity(12 + group_id.len() + topic.len());
    buf.put_i16(OFFSET_COMMIT_KEY_VERSION);
    put_string(&mut buf, group_id);
    put_string(&mut buf, topic);
    buf.put_i32(partition);
    buf.freeze()
}

/// The record value of a committed offset.
pub fn offset_value(c: &CommittedOffset) -> Bytes {
    let mut buf = BytesMut::with_capacity(28 + c.metadata.len());
    buf.put_i16(OFFSET_COMMIT_VALUE_VERSION);
    buf.put_i64(c.offset.get());
    buf.put_i32(wire_leader_epoch(c.leader_epoch));
    put_string(&mut buf, &c.metadata);
    buf.put_i64(c.commit_timestamp);
    buf.freeze()
}

fn put_nullable_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(b.len() as i32);
    buf.put_slice(b);
}

/// The record key of a group's metadata.
pub fn group_key(group_id: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + group_id.len());
    buf.put_i16(GROUP_METADATA_KEY_VERSION);
    put_string(&mut buf, group_id);
    buf.freeze()
}

/// `GroupMetadataValue` v3 of a group: its generation, protocol, leader and
/// members with their subscription (the selected protocol's metadata) and
/// assignment.
pub fn group_value(group: &Group) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(GROUP_METADATA_VALUE_VERSION);
    put_string(&mut buf, group.protocol_type.as_deref().unwrap_or(""));
    buf.put_i32(group.generation_id);
    put_nullable_string(&mut buf, group.protocol_name.as_deref());
    put_nullable_string(&mut buf, group.leader_id.as_deref());
    buf.put_i64(group.state_timestamp);
    buf.put_i32(group.members.len() as i32);
    let protocol = group.protocol_name.as_deref().unwrap_or("");
    for m in group.members.values() {
        put_string(&mut buf, &m.member_id);
        put_nullable_string(&mut buf, m.group_instance_id.as_deref());
        put_string(&mut buf, &m.client_id);
        put_string(&mut buf, &m.client_host);
        buf.put_i32(m.rebalance_timeout_ms);
        buf.put_i32(m.session_timeout_ms);
        put_bytes(&mut buf, m.metadata(protocol).map_or(&[][..], |b| &b[..]));
        put_bytes(&mut buf, &m.assignment);
    }
    buf.freeze()
}

/// (key, value) of a change.
pub fn encode_change(change: &OffsetChange) -> (Bytes, Option<Bytes>) {
    (offset_key(&change.group_id, &change.topic, change.partition), change.value.as_ref().map(offset_value))
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
    fn nullable_string(&mut self) -> Option<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Some(None);
        }
        Some(Some(String::from_utf8(self.take(usize::try_from(len).ok()?)?.to_vec()).ok()?))
    }
    fn bytes(&mut self) -> Option<Bytes> {
        let len = self.i32()?;
        if len < 0 {
            return Some(Bytes::new());
        }
        Some(Bytes::copy_from_slice(self.take(usize::try_from(len).ok()?)?))
    }
}

/// What a `__consumer_offsets` record is.
#[derive(Clone, Debug)]
pub enum OffsetsRecord {
    /// A committed offset (or its tombstone).
    Offset(OffsetChange),
    /// Group metadata (`None`: a tombstone).
    GroupMetadata(String, Option<Box<Group>>),
}

/// Decodes a record; `None` for keys of other kinds or malformed data.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<OffsetsRecord> {
    let mut k = Reader(key);
    let version = k.i16()?;
    match version {
        0 | 1 => {
            let group_id = k.string()?;
            let topic = k.string()?;
            let partition = k.i32()?;
            let value = match value {
                None => None,
                Some(v) => Some(decode_offset_value(v)?),
            };
            Some(OffsetsRecord::Offset(OffsetChange { group_id, topic, partition, value }))
        }
        GROUP_METADATA_KEY_VERSION => {
            let group_id = k.string()?;
            let group = match value {
                None => None,
                Some(v) => Some(Box::new(decode_group_value(&group_id, v)?)),
            };
            Some(OffsetsRecord::GroupMetadata(group_id, group))
        }
        _ => None,
    }
}

/// `GroupMetadataValue` v0..v3 (v4, flexible, is not read).
fn decode_group_value(group_id: &str, value: &[u8]) -> Option<Group> {
    let mut r = Reader(value);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return None;
    }
    let protocol_type = r.string()?;
    let generation_id = r.i32()?;
    let protocol_name = r.nullable_string()?;
    let leader_id = r.nullable_string()?;
    let state_timestamp = if version >= 2 { r.i64()? } else { -1 };
    let mut group = Group::new(group_id.to_string(), state_timestamp);
    group.protocol_type = (!protocol_type.is_empty()).then_some(protocol_type.clone());
    group.generation_id = generation_id;
    group.protocol_name = protocol_name.clone();
    group.leader_id = leader_id;
    let count = r.i32()?;
    for _ in 0..count.max(0) {
        let member_id = r.string()?;
        let group_instance_id = if version >= 3 { r.nullable_string()? } else { None };
        let client_id = r.string()?;
        let client_host = r.string()?;
        let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout_ms = r.i32()?;
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        if let Some(instance) = &group_instance_id {
            group.static_members.insert(instance.clone(), member_id.clone());
        }
        let member = Member {
            member_id: member_id.clone(),
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms: if rebalance_timeout_ms < 0 { session_timeout_ms } else { rebalance_timeout_ms },
            session_timeout_ms,
            protocol_type: protocol_type.clone(),
            protocols: vec![Protocol { name: protocol_name.clone().unwrap_or_default(), metadata: subscription }],
            assignment,
            join_token: None,
            sync_token: None,
            session_deadline: 0,
        };
        group.members.insert(member_id, member);
    }
    group.state = if group.members.is_empty() { GroupState::Empty } else { GroupState::Stable };
    Some(group)
}

/// `OffsetCommitValue` v0..v3 (v4 is flexible: its tagged fields follow
/// the v3 fields with compact strings, not read here).
fn decode_offset_value(value: &[u8]) -> Option<CommittedOffset> {
    let mut r = Reader(value);
    let version = r.i16()?;
    let offset = kaskade_types::Offset(r.i64()?);
    // v0-v2 carry no epoch.
    let leader_epoch = if version >= 3 { committed_leader_epoch(r.i32()?) } else { None };
    let metadata = r.string()?;
    let commit_timestamp = r.i64()?;
    (0..=3).contains(&version).then_some(CommittedOffset { offset, leader_epoch, metadata, commit_timestamp })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_and_partition() {
        // Values from Java's "".hashCode(), "a".hashCode(), "hello".hashCode().
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE: abs -> 0.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
        // A negative hash: "Aa\u{ffff}..." style; any string with h < 0.
        let h = java_string_hash("consumer-group-with-a-long-name");
        assert_eq!(partition_for("consumer-group-with-a-long-name", 50), h.unsigned_abs() as i32 % 50);
    }

    #[test]
    fn offset_records_round_trip() {
        let c = CommittedOffset {
            offset: kaskade_types::Offset(42),
            leader_epoch: Some(kaskade_types::LeaderEpoch(3)),
            metadata: "m".into(),
            commit_timestamp: 1234,
        };
        let change = OffsetChange { group_id: "g".into(), topic: "t".into(), partition: 7, value: Some(c) };
        let (k, v) = encode_change(&change);
        assert_eq!(&k[..2], &[0, 1]);
        assert_eq!(&v.as_ref().unwrap()[..2], &[0, 3]);
        assert!(matches!(decode(&k, v.as_deref()), Some(OffsetsRecord::Offset(c)) if c == change));
        let tombstone = OffsetChange { value: None, ..change };
        let (k, v) = encode_change(&tombstone);
        assert!(matches!(decode(&k, v.as_deref()), Some(OffsetsRecord::Offset(c)) if c == tombstone));
        assert!(decode(&[0, 9, 0], None).is_none());
    }

    #[test]
    fn only_minus_one_is_no_committed_leader_epoch() {
        use kaskade_types::LeaderEpoch;
        assert_eq!(committed_leader_epoch(-1), None);
        assert_eq!(committed_leader_epoch(0), Some(LeaderEpoch(0)));
        // Kafka keeps any other value as sent.
        assert_eq!(committed_leader_epoch(-7), Some(LeaderEpoch(-7)));
        assert_eq!(wire_leader_epoch(None), -1);
        assert_eq!(wire_leader_epoch(Some(LeaderEpoch(5))), 5);
        // Without an epoch the value says -1, as Kafka writes it.
        let c = CommittedOffset {
            offset: kaskade_types::Offset(1),
            leader_epoch: None,
            metadata: String::new(),
            commit_timestamp: 0,
        };
        assert_eq!(&offset_value(&c)[10..14], &(-1i32).to_be_bytes());
        assert_eq!(decode_offset_value(&offset_value(&c)), Some(c));
    }

    #[test]
    fn group_records_round_trip() {
        let mut group = Group::new("g".into(), 77);
        group.protocol_type = Some("consumer".into());
        group.protocol_name = Some("range".into());
        group.generation_id = 4;
        group.leader_id = Some("m1".into());
        group.state = GroupState::Stable;
        for (id, instance) in [("m1", None), ("m2", Some("i2"))] {
            group.members.insert(
                id.into(),
                Member {
                    member_id: id.into(),
                    group_instance_id: instance.map(String::from),
                    client_id: "c".into(),
                    client_host: "/1.2.3.4".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 45_000,
                    protocol_type: "consumer".into(),
                    protocols: vec![Protocol { name: "range".into(), metadata: Bytes::from(format!("sub-{id}")) }],
                    assignment: Bytes::from(format!("asg-{id}")),
                    join_token: None,
                    sync_token: None,
                    session_deadline: 0,
                },
            );
        }
        let key = group_key("g");
        let value = group_value(&group);
        let Some(OffsetsRecord::GroupMetadata(id, Some(back))) = decode(&key, Some(&value)) else {
            panic!("not a group record");
        };
        assert_eq!(id, "g");
        assert_eq!(back.generation_id, 4);
        assert_eq!(back.state, GroupState::Stable);
        assert_eq!(back.leader_id.as_deref(), Some("m1"));
        assert_eq!(back.protocol_name.as_deref(), Some("range"));
        assert_eq!(back.static_members.get("i2").map(String::as_str), Some("m2"));
        let m2 = &back.members["m2"];
        assert_eq!(m2.assignment, Bytes::from("asg-m2"));
        assert_eq!(m2.metadata("range"), Some(&Bytes::from("sub-m2")));
        assert_eq!(m2.client_host, "/1.2.3.4");
        assert!(matches!(decode(&key, None), Some(OffsetsRecord::GroupMetadata(id, None)) if id == "g"));
    }
}
