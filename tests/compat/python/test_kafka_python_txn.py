"""kafka-python 3.0.12 transactions against a broker at KASKADE_BOOTSTRAP.

kafka-python 3.x implements KIP-98 transactions: KafkaProducer(transactional_id=...)
with init_transactions / begin_transaction / commit_transaction /
abort_transaction, and KafkaConsumer(isolation_level='read_committed'), which
filters aborted records with the Fetch response's aborted_transactions.

Covers: a transactional producer commits 3 records, aborts 2 (flushed first, so
they are in the log), commits 1; a read_committed consumer reads exactly the 4
committed values and a read_uncommitted one all 6; each commit/abort marker
takes one offset; while a transaction is open, end_offsets under
read_committed is the last stable offset, under read_uncommitted the high
watermark.
"""

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient

from conftest import BOOTSTRAP, TIMEOUT_S, unique_topic, wait_until

TIMEOUT_MS = int(TIMEOUT_S * 1000)

# Skip (not fail) with a clear reason if a future pin drops the API.
if not all(hasattr(KafkaProducer, m) for m in (
        "init_transactions", "begin_transaction", "commit_transaction", "abort_transaction")):
    pytest.skip("this kafka-python has no transactional producer API", allow_module_level=True)


@pytest.fixture(scope="module")
def topic():
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=TIMEOUT_MS,
                             client_id="kaskade-compat-txn-admin")
    name = unique_topic("kafka-python-txn")
    try:
        admin.create_topics({name: {"num_partitions": 1, "replication_factor": 1}},
                            timeout_ms=TIMEOUT_MS)

        def ready():
            t = {t.get("name"): t for t in admin.describe_topics([name])}.get(name)
            parts = (t or {}).get("partitions") or []
            return (t and t.get("error_code") == 0 and len(parts) == 1
                    and parts[0].get("leader_id", -1) >= 0)

        wait_until(ready, f"{name} ready in metadata")
        yield name
    finally:
        try:
            admin.delete_topics([name], timeout_ms=10000, raise_errors=False)
        except Exception:  # noqa: BLE001 - best-effort clean-up
            pass
        admin.close()


def _consumer(isolation_level):
    return KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=None,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         isolation_level=isolation_level,
                         request_timeout_ms=TIMEOUT_MS + 5000,
                         client_id=f"kaskade-compat-txn-{isolation_level}")


def _end_offset(topic, isolation_level):
    c = _consumer(isolation_level)
    try:
        tp = TopicPartition(topic, 0)
        return c.end_offsets([tp], timeout_ms=TIMEOUT_MS)[tp]
    finally:
        c.close()


def _read(topic, isolation_level, expected):
    """Reads partition 0 from the beginning until at least `expected` records
    were returned and the position reached end_offsets (the LSO under
    read_committed), so extra records would be returned too.
    Returns ([(offset, value)], final position, end offset)."""
    c = _consumer(isolation_level)
    tp = TopicPartition(topic, 0)
    got = []
    try:
        c.assign([tp])
        c.seek_to_beginning(tp)
        end = None
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            for _, batch in c.poll(timeout_ms=200).items():
                got.extend((r.offset, r.value) for r in batch)
            if len(got) >= expected:
                # Asked each time: Kafka writes markers after answering EndTxn.
                end = c.end_offsets([tp], timeout_ms=TIMEOUT_MS)[tp]
                if c.position(tp) >= end:
                    break
        position = c.position(tp)
    finally:
        c.close()
    return got, position, end


def test_transactional_producer_commit_abort_visibility(topic):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP,
                             transactional_id=unique_topic("kafka-python-txn-id"),
                             request_timeout_ms=TIMEOUT_MS, max_block_ms=TIMEOUT_MS,
                             client_id="kaskade-compat-txn-producer")
    metas = []
    try:
        producer.init_transactions()

        producer.begin_transaction()
        futs = [producer.send(topic, value=v, partition=0) for v in (b"c1", b"c2", b"c3")]
        producer.commit_transaction()  # flushes first
        metas += [f.get(timeout=TIMEOUT_S) for f in futs]

        producer.begin_transaction()
        futs = [producer.send(topic, value=v, partition=0) for v in (b"a1", b"a2")]
        producer.flush(timeout=TIMEOUT_S)  # so the aborted records are in the log
        metas += [f.get(timeout=TIMEOUT_S) for f in futs]
        producer.abort_transaction()

        producer.begin_transaction()
        fut = producer.send(topic, value=b"c4", partition=0)
        producer.flush(timeout=TIMEOUT_S)
        metas.append(fut.get(timeout=TIMEOUT_S))
        # c4 (offset 7) is in an open transaction: LSO 7, high watermark 8.
        assert _end_offset(topic, "read_committed") == 7
        assert _end_offset(topic, "read_uncommitted") == 8
        producer.commit_transaction()
    finally:
        producer.close(timeout=10)

    # data 0-2, commit marker 3, data 4-5, abort marker 6, data 7, commit marker 8
    assert [m.offset for m in metas] == [0, 1, 2, 4, 5, 7]

    got, position, end = _read(topic, "read_committed", 4)
    assert got == [(0, b"c1"), (1, b"c2"), (2, b"c3"), (7, b"c4")]
    assert (position, end) == (9, 9)

    got, position, end = _read(topic, "read_uncommitted", 6)
    assert got == [(0, b"c1"), (1, b"c2"), (2, b"c3"), (4, b"a1"), (5, b"a2"), (7, b"c4")]
    assert (position, end) == (9, 9)
