"""confluent-kafka (librdkafka) against a broker at KASKADE_BOOTSTRAP.

Covers: AdminClient create (3 partitions) / list / describe / duplicate create /
delete; Producer with acks=all, keyed JSON values and headers, delivery reports;
Consumer reading back with assign() at explicit offsets; a consumer group
(group.id + auto.offset.reset=earliest + subscribe) reading everything back;
manual commit after processing (enable.auto.commit=False) and a new member of
the group resuming exactly after the committed offsets; watermarks; null key,
empty and null value.

The tests of this module run in file order and share one topic (created by the
`topic` fixture and deleted by the last test).
"""

import json
import time

import pytest
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TIMESTAMP_CREATE_TIME,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BOOTSTRAP, TIMEOUT_S, unique_topic, wait_until

PARTITIONS = 3
N_KEYS = 6
PER_KEY = 4


def _admin() -> AdminClient:
    return AdminClient({"bootstrap.servers": BOOTSTRAP, "socket.timeout.ms": 10000})


def _partitions_with_leaders(admin: AdminClient, topic: str):
    md = admin.list_topics(topic=topic, timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    if len(t.partitions) != PARTITIONS:
        return None
    if any(p.error is not None or p.leader < 0 for p in t.partitions.values()):
        return None
    return t


@pytest.fixture(scope="module")
def admin():
    return _admin()


@pytest.fixture(scope="module")
def topic(admin):
    name = unique_topic("confluent")
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)],
        operation_timeout=TIMEOUT_S,
        request_timeout=TIMEOUT_S,
    )
    futures[name].result(timeout=TIMEOUT_S)  # raises KafkaException on error
    wait_until(lambda: _partitions_with_leaders(admin, name),
               f"topic {name} with {PARTITIONS} partitions and leaders in metadata")
    yield name
    # Best effort clean-up if test_delete_topic did not run or failed.
    try:
        admin.delete_topics([name], operation_timeout=10)[name].result(timeout=15)
    except Exception:  # noqa: BLE001
        pass


def _expected_records(topic: str):
    """Keyed JSON records as in the seed snippets, plus headers."""
    recs = []
    for i in range(1, N_KEYS * PER_KEY + 1):
        cust = (i - 1) % N_KEYS + 1
        recs.append({
            "key": f"customer-{cust}".encode(),
            "value": json.dumps({"orderId": i, "amount": i * 10}).encode(),
            # Repeated header names are legal in Kafka and their order matters.
            "headers": [("trace-id", f"trace-{i}".encode()),
                        ("tag", b"first"),
                        ("tag", b"second")],
        })
    return recs


@pytest.fixture(scope="module")
def produced(topic):
    """Produces the records once; returns [(record, partition, offset, err)]."""
    p = Producer({
        "bootstrap.servers": BOOTSTRAP,
        "acks": "all",
        "message.timeout.ms": int(TIMEOUT_S * 1000),
        "linger.ms": 5,
    })
    results = []
    records = _expected_records(topic)

    def make_cb(rec):
        def delivered(err, msg):
            results.append((rec, msg.partition(), msg.offset(), err))
        return delivered

    start_ms = int(time.time() * 1000)
    for rec in records:
        p.produce(topic, key=rec["key"], value=rec["value"], headers=rec["headers"],
                  callback=make_cb(rec))
        p.poll(0)
    remaining = p.flush(TIMEOUT_S)
    assert remaining == 0, f"{remaining} messages not delivered within {TIMEOUT_S}s"
    # Delivery callbacks fire in produce order per partition; keep produce order.
    order = {id(r): n for n, r in enumerate(records)}
    results.sort(key=lambda r: order[id(r[0])])
    return {"results": results, "start_ms": start_ms}


def _consume(topic, assignments, expected_count, timeout=TIMEOUT_S):
    """assign() the given TopicPartitions (with offsets) and read expected_count messages."""
    c = Consumer({
        "bootstrap.servers": BOOTSTRAP,
        # Required by confluent's Consumer even without subscribe(); nothing joins a group.
        "group.id": unique_topic("unused-group"),
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
        "enable.partition.eof": False,
    })
    msgs, errors = [], []
    try:
        c.assign(assignments)
        deadline = time.monotonic() + timeout
        while len(msgs) < expected_count and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                errors.append(str(m.error()))
                if m.error().fatal():
                    break
                continue
            msgs.append(m)
        # Anything beyond what we expect would be a bug too: give it a moment.
        extra_deadline = time.monotonic() + 1.0
        while time.monotonic() < extra_deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                msgs.append(m)
    finally:
        c.close()
    assert len(msgs) == expected_count, (
        f"consumed {len(msgs)} of {expected_count} messages; consumer errors: {errors[:5]}")
    return msgs


# ------------------------------------------------------------------ admin

def test_create_topic_visible_in_list(admin, topic):
    md = admin.list_topics(timeout=10)
    assert topic in md.topics, f"{topic} missing from list_topics: {sorted(md.topics)[:20]}"
    t = md.topics[topic]
    assert t.error is None
    assert sorted(t.partitions) == list(range(PARTITIONS))
    broker_ids = set(md.brokers)
    assert broker_ids, "metadata lists no brokers"
    for p in t.partitions.values():
        assert p.leader in broker_ids, f"partition {p.id} leader {p.leader} not a listed broker"
        assert p.leader in p.replicas and p.leader in p.isrs


def test_describe_topic(admin, topic):
    futures = admin.describe_topics(TopicCollection([topic]), request_timeout=TIMEOUT_S)
    desc = futures[topic].result(timeout=TIMEOUT_S)
    assert desc.name == topic
    assert not desc.is_internal
    assert sorted(p.id for p in desc.partitions) == list(range(PARTITIONS))
    for p in desc.partitions:
        assert p.leader is not None and p.leader.id >= 0
        assert [n.id for n in p.replicas] == [p.leader.id]


def test_create_existing_topic_fails(admin, topic):
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)],
                                  request_timeout=TIMEOUT_S)
    with pytest.raises(KafkaException) as info:
        futures[topic].result(timeout=TIMEOUT_S)
    assert info.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS


# ------------------------------------------------------------------ produce

def test_delivery_reports(produced):
    results = produced["results"]
    assert len(results) == N_KEYS * PER_KEY
    errs = [(r[0]["key"], r[3]) for r in results if r[3] is not None]
    assert not errs, f"delivery errors: {errs[:5]}"
    by_part = {}
    for rec, part, off, _ in results:
        assert 0 <= part < PARTITIONS
        by_part.setdefault(part, []).append(off)
    # Fresh topic: each partition's offsets are exactly 0..n-1, in produce order.
    for part, offs in by_part.items():
        assert offs == list(range(len(offs))), f"partition {part} offsets {offs}"
    assert len(by_part) > 1, "all keys landed in one partition: partitioner saw 1 partition?"


def test_same_key_same_partition(produced):
    parts_by_key = {}
    for rec, part, _, _ in produced["results"]:
        parts_by_key.setdefault(rec["key"], set()).add(part)
    spread = {k: v for k, v in parts_by_key.items() if len(v) != 1}
    assert not spread, f"keys spread over several partitions: {spread}"


def test_watermarks_match_deliveries(topic, produced):
    counts = {p: 0 for p in range(PARTITIONS)}
    for _, part, _, _ in produced["results"]:
        counts[part] += 1
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique_topic("unused-group"),
                  "enable.auto.commit": False})
    try:
        for p in range(PARTITIONS):
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT_S)
            assert (low, high) == (0, counts[p]), f"partition {p}"
    finally:
        c.close()


# ------------------------------------------------------------------ read back

def test_read_back_exact(topic, produced):
    results = produced["results"]
    msgs = _consume(topic, [TopicPartition(topic, p, 0) for p in range(PARTITIONS)],
                    len(results))
    got = {(m.partition(), m.offset()): m for m in msgs}
    assert len(got) == len(msgs), "duplicate (partition, offset) pairs consumed"
    now_ms = int(time.time() * 1000)
    for rec, part, off, _ in results:
        m = got.get((part, off))
        assert m is not None, f"nothing read at partition {part} offset {off}"
        assert m.topic() == topic
        assert m.key() == rec["key"]
        assert m.value() == rec["value"]
        assert json.loads(m.value()) == json.loads(rec["value"])
        assert m.headers() == rec["headers"], f"headers at {part}/{off}"
        ts_type, ts = m.timestamp()
        assert ts_type == TIMESTAMP_CREATE_TIME
        assert produced["start_ms"] - 60_000 <= ts <= now_ms + 60_000, f"timestamp {ts}"
    # Within a partition, offsets come back in order.
    for p in range(PARTITIONS):
        offs = [m.offset() for m in msgs if m.partition() == p]
        assert offs == sorted(offs)


def test_read_from_middle_offset(topic, produced):
    # Pick the partition with most records and start reading inside it.
    by_part = {}
    for rec, part, off, _ in produced["results"]:
        by_part.setdefault(part, []).append((off, rec))
    part, recs = max(by_part.items(), key=lambda kv: len(kv[1]))
    assert len(recs) >= 2
    start = len(recs) // 2
    msgs = _consume(topic, [TopicPartition(topic, part, start)], len(recs) - start)
    assert [m.offset() for m in msgs] == list(range(start, len(recs)))
    for m, (off, rec) in zip(msgs, recs[start:]):
        assert (m.key(), m.value()) == (rec["key"], rec["value"])


# ------------------------------------------------------------------ consumer groups

def _group_consumer(group, **extra):
    conf = {
        "bootstrap.servers": BOOTSTRAP,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "session.timeout.ms": 10000,
    }
    conf.update(extra)
    return Consumer(conf)


def _poll_n(c, n, timeout=TIMEOUT_S):
    msgs = []
    deadline = time.monotonic() + timeout
    while len(msgs) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error() is not None:
            raise KafkaException(m.error())
        msgs.append(m)
    return msgs


def test_group_subscribe_reads_back(topic, produced):
    """The seeds' flow: group.id + auto.offset.reset=earliest + subscribe."""
    results = produced["results"]
    c = _group_consumer(unique_topic("confluent-group"))
    try:
        c.subscribe([topic])
        msgs = _poll_n(c, len(results))
        extra = _poll_n(c, 1, timeout=1.0)
    finally:
        c.close()
    assert extra == [], "read more records than were produced"
    got = {(m.partition(), m.offset()): m for m in msgs}
    assert len(got) == len(msgs) == len(results), f"read {len(msgs)} of {len(results)}"
    for rec, part, off, _ in results:
        m = got.get((part, off))
        assert m is not None, f"nothing read at partition {part} offset {off}"
        assert (m.key(), m.value(), m.headers()) == (rec["key"], rec["value"], rec["headers"])


def test_group_manual_commit_then_resume(topic, produced):
    """enable.auto.commit=False, commit after processing; a new member of the
    group resumes exactly after the committed offsets."""
    results = produced["results"]
    group = unique_topic("confluent-commit")
    first_n = len(results) // 2
    c = _group_consumer(group, **{"enable.auto.commit": False})
    try:
        c.subscribe([topic])
        first = []
        deadline = time.monotonic() + TIMEOUT_S
        while len(first) < first_n and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error() is not None:
                raise KafkaException(m.error())
            first.append(m)  # "process" the record, then commit it (as the seed does)
            c.commit(asynchronous=False)
        assert len(first) == first_n
        committed = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)],
                               timeout=TIMEOUT_S)
    finally:
        c.close()
    positions = {}
    for m in first:
        positions[m.partition()] = max(positions.get(m.partition(), 0), m.offset() + 1)
    for tp in committed:
        assert tp.error is None
        # Partitions nothing was read from have no committed offset (-1001).
        want = positions.get(tp.partition, -1001)
        assert tp.offset == want, f"committed {tp.offset} for partition {tp.partition}, want {want}"

    rest = [(part, off) for _, part, off, _ in results if off >= positions.get(part, 0)]
    c2 = _group_consumer(group, **{"enable.auto.commit": False})
    try:
        c2.subscribe([topic])
        second = _poll_n(c2, len(rest))
        second += _poll_n(c2, 1, timeout=1.0)
    finally:
        c2.close()
    assert sorted((m.partition(), m.offset()) for m in second) == sorted(rest)


def test_null_key_empty_and_null_value(topic, produced):
    p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all",
                  "message.timeout.ms": int(TIMEOUT_S * 1000)})
    dr = []
    cases = [
        ("null key, empty value", None, b""),
        ("key, null value (tombstone)", b"tombstone-key", None),
    ]
    for name, key, value in cases:
        p.produce(topic, key=key, value=value, partition=0,
                  callback=lambda err, msg, name=name: dr.append((name, err, msg.offset())))
    assert p.flush(TIMEOUT_S) == 0
    assert [d[1] for d in dr] == [None] * len(cases), dr
    offsets = [d[2] for d in dr]
    assert offsets == list(range(offsets[0], offsets[0] + len(cases)))
    msgs = _consume(topic, [TopicPartition(topic, 0, offsets[0])], len(cases))
    for m, (name, key, value) in zip(msgs, cases):
        assert m.key() == key, name
        assert m.value() == value, name
        assert m.headers() is None, name


# ------------------------------------------------------------------ delete (last)

def test_delete_topic(admin, topic):
    futures = admin.delete_topics([topic], operation_timeout=TIMEOUT_S, request_timeout=TIMEOUT_S)
    futures[topic].result(timeout=TIMEOUT_S)
    wait_until(lambda: topic not in admin.list_topics(timeout=10).topics,
               f"{topic} to disappear from metadata")
    # Deleting again reports UNKNOWN_TOPIC_OR_PART.
    futures = admin.delete_topics([topic], request_timeout=TIMEOUT_S)
    with pytest.raises(KafkaException) as info:
        futures[topic].result(timeout=TIMEOUT_S)
    assert info.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
