"""kafka-python (pure-Python protocol implementation) against KASKADE_BOOTSTRAP.

Covers: KafkaAdminClient create / describe / delete; KafkaProducer send with
key, value and headers, RecordMetadata (partition, offset); KafkaConsumer with
group_id=None, assign() + seek() to the reported offsets, read back and
compare; KafkaConsumer with a group_id, subscribe(), commit() after
processing and a new group member resuming after the committed offsets; the
producer's default settings (kafka-python enables idempotence by
default, so that one test needs InitProducerId and producer-id sequencing).

Tests of this module run in file order and share one topic; the last test
deletes it.
"""

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from conftest import BOOTSTRAP, TIMEOUT_S, unique_topic, wait_until

PARTITIONS = 2
TIMEOUT_MS = int(TIMEOUT_S * 1000)


@pytest.fixture(scope="module")
def admin():
    a = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=TIMEOUT_MS,
                         client_id="kaskade-compat-admin")
    yield a
    a.close()


def _topic_ready(admin, topic):
    topics = admin.describe_topics([topic])
    by_name = {t.get("name"): t for t in topics}
    t = by_name.get(topic)
    if not t or t.get("error_code") != 0:
        return None
    parts = t.get("partitions") or []
    if len(parts) != PARTITIONS:
        return None
    if any(p.get("error_code") != 0 or p.get("leader_id", -1) < 0 for p in parts):
        return None
    return t


@pytest.fixture(scope="module")
def topic(admin):
    name = unique_topic("kafka-python")
    admin.create_topics({name: {"num_partitions": PARTITIONS, "replication_factor": 1}},
                        timeout_ms=TIMEOUT_MS)
    wait_until(lambda: _topic_ready(admin, name), f"{name} ready in metadata")
    yield name
    try:
        admin.delete_topics([name], timeout_ms=10000, raise_errors=False)
    except Exception:  # noqa: BLE001
        pass


def _records():
    return [
        {"key": f"user-{i % 4}".encode(),
         "value": f'{{"seq":{i},"payload":"{"x" * i}"}}'.encode(),
         "headers": [("seq", str(i).encode()), ("origin", b"kafka-python")]}
        for i in range(20)
    ]


@pytest.fixture(scope="module")
def sent(topic):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all",
                             enable_idempotence=False, linger_ms=5,
                             request_timeout_ms=TIMEOUT_MS, max_block_ms=TIMEOUT_MS,
                             client_id="kaskade-compat-producer")
    try:
        recs = _records()
        futures = [producer.send(topic, key=r["key"], value=r["value"], headers=r["headers"])
                   for r in recs]
        producer.flush(timeout=TIMEOUT_S)
        metas = [f.get(timeout=TIMEOUT_S) for f in futures]
    finally:
        producer.close(timeout=10)
    return list(zip(recs, metas))


def _read(topic, start_offsets, expected):
    """Reads `expected` records from {partition: offset} with assign() + seek()."""
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             request_timeout_ms=TIMEOUT_MS + 5000,
                             client_id="kaskade-compat-consumer")
    got = []
    try:
        tps = [TopicPartition(topic, p) for p in sorted(start_offsets)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start_offsets[tp.partition])
        deadline = time.monotonic() + TIMEOUT_S
        while len(got) < expected and time.monotonic() < deadline:
            for _, batch in consumer.poll(timeout_ms=500).items():
                got.extend(batch)
        for _, batch in consumer.poll(timeout_ms=500).items():  # nothing more expected
            got.extend(batch)
    finally:
        consumer.close()
    assert len(got) == expected, f"read {len(got)} of {expected} records"
    return got


# ------------------------------------------------------------------ admin

def test_create_and_describe_topic(admin, topic):
    assert topic in admin.list_topics()
    t = _topic_ready(admin, topic)
    assert t is not None
    assert sorted(p["partition_index"] for p in t["partitions"]) == list(range(PARTITIONS))


def test_create_existing_topic_fails(admin, topic):
    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}},
                            timeout_ms=TIMEOUT_MS)


# ------------------------------------------------------------------ produce / read back

def test_send_record_metadata(sent):
    by_part = {}
    for rec, md in sent:
        assert 0 <= md.partition < PARTITIONS
        assert md.offset >= 0
        by_part.setdefault(md.partition, []).append(md.offset)
    for part, offs in by_part.items():
        assert offs == list(range(len(offs))), f"partition {part} offsets {offs}"
    keys_parts = {}
    for rec, md in sent:
        keys_parts.setdefault(rec["key"], set()).add(md.partition)
    assert all(len(v) == 1 for v in keys_parts.values()), keys_parts


def test_assign_seek_read_back(topic, sent):
    got = _read(topic, {p: 0 for p in range(PARTITIONS)}, len(sent))
    by_pos = {(r.partition, r.offset): r for r in got}
    for rec, md in sent:
        r = by_pos.get((md.partition, md.offset))
        assert r is not None, f"missing record at {md.partition}/{md.offset}"
        assert r.topic == topic
        assert r.key == rec["key"]
        assert r.value == rec["value"]
        assert list(r.headers) == rec["headers"]
        assert r.timestamp_type == 0  # CreateTime
        # CreateTime topic: the broker keeps the producer's timestamp.
        assert r.timestamp == md.timestamp


def test_seek_to_reported_offset(topic, sent):
    rec, md = sent[len(sent) // 2]
    later = [x for x in sent if x[1].partition == md.partition and x[1].offset >= md.offset]
    got = _read(topic, {md.partition: md.offset}, len(later))
    assert [(r.offset, r.key, r.value) for r in got] == \
        [(m.offset, r_["key"], r_["value"]) for r_, m in later]


# ------------------------------------------------------------------ consumer groups

def _group_consumer(group):
    return KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=group,
                         auto_offset_reset="earliest", enable_auto_commit=False,
                         session_timeout_ms=10000, heartbeat_interval_ms=1000,
                         request_timeout_ms=TIMEOUT_MS + 5000,
                         client_id="kaskade-compat-group-consumer")


def _poll_records(consumer, n, timeout=TIMEOUT_S):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        for _, batch in consumer.poll(timeout_ms=500, max_records=n - len(got)).items():
            got.extend(batch)
    return got


def test_group_subscribe_commit_resume(topic, sent):
    """KafkaConsumer with group_id + subscribe reads from the earliest offset;
    commit() after processing; a new consumer in the group resumes exactly
    after the committed offsets."""
    group = unique_topic("kafka-python-group")
    first_n = len(sent) // 2
    c = _group_consumer(group)
    try:
        c.subscribe([topic])
        first = _poll_records(c, first_n)
        assert len(first) == first_n, f"read {len(first)} of {first_n}"
        c.commit()  # the positions after the records returned so far
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        committed = {tp.partition: c.committed(tp) for tp in tps}
    finally:
        c.close(autocommit=False)
    positions = {}
    for r in first:
        positions[r.partition] = max(positions.get(r.partition, 0), r.offset + 1)
    for p, pos in positions.items():
        assert committed[p] == pos, f"committed {committed}, positions {positions}"

    rest = sorted((md.partition, md.offset) for _, md in sent
                  if md.offset >= positions.get(md.partition, 0))
    c2 = _group_consumer(group)
    try:
        c2.subscribe([topic])
        second = _poll_records(c2, len(rest))
        second += _poll_records(c2, 1, timeout=1.0)
    finally:
        c2.close(autocommit=False)
    assert sorted((r.partition, r.offset) for r in second) == rest
    by_pos = {(md.partition, md.offset): rec for rec, md in sent}
    for r in second:
        assert (r.key, r.value) == (by_pos[(r.partition, r.offset)]["key"],
                                    by_pos[(r.partition, r.offset)]["value"])


def test_end_offsets(topic, sent):
    counts = {p: 0 for p in range(PARTITIONS)}
    for _, md in sent:
        counts[md.partition] += 1
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=None,
                             request_timeout_ms=TIMEOUT_MS + 5000)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        assert consumer.beginning_offsets(tps, timeout_ms=TIMEOUT_MS) == {tp: 0 for tp in tps}
        assert consumer.end_offsets(tps, timeout_ms=TIMEOUT_MS) == \
            {tp: counts[tp.partition] for tp in tps}
    finally:
        consumer.close()


def test_default_producer_is_idempotent(topic, sent):
    """kafka-python's defaults (acks=all, idempotence on) as an application uses them."""
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, request_timeout_ms=TIMEOUT_MS,
                             max_block_ms=TIMEOUT_MS)
    try:
        metas = [producer.send(topic, key=b"idem", value=f"v{i}".encode()).get(timeout=TIMEOUT_S)
                 for i in range(3)]
    finally:
        producer.close(timeout=10)
    assert len({m.partition for m in metas}) == 1
    offs = [m.offset for m in metas]
    assert offs == list(range(offs[0], offs[0] + 3))
    got = _read(topic, {metas[0].partition: offs[0]}, 3)
    assert [(r.key, r.value) for r in got] == [(b"idem", f"v{i}".encode()) for i in range(3)]


# ------------------------------------------------------------------ delete (last)

def test_delete_topic(admin, topic):
    admin.delete_topics([topic], timeout_ms=TIMEOUT_MS)
    wait_until(lambda: topic not in admin.list_topics(), f"{topic} to disappear")
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.delete_topics([topic], timeout_ms=TIMEOUT_MS)
