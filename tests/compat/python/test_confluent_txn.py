"""confluent-kafka (librdkafka) transactions against a broker at KASKADE_BOOTSTRAP.

Written the way the client's users write exactly-once code
(`transactional.id`, `init_transactions`, `begin_transaction`, `produce`,
`send_offsets_to_transaction(consumer.position(...),
consumer.consumer_group_metadata())`, `commit_transaction` /
`abort_transaction`, consumers with `isolation.level`):

- commit and abort visibility: read_committed sees only committed values,
  read_uncommitted sees every data record; the offsets the markers take; the
  last stable offset (ListOffsets latest under read_committed) while a
  transaction is open;
- a timestamp lookup (offsets_for_times) under read_committed finds nothing
  at or past the last stable offset;
- consume-transform-produce in transactions of 10 with one transaction aborted
  and redone: the output holds each input exactly once and the group's
  committed offset is the input's end;
- fencing: a second producer with the same transactional.id fences the first,
  whose commit fails with _FENCED and whose open transaction is aborted;
- the broker aborts a transaction left open past transaction.timeout.ms, which
  unblocks read_committed consumers.

Every test makes its own topics, groups and transactional ids. librdkafka
purges records still queued when a transaction is aborted, so the tests flush
before abort_transaction() wherever they assert the aborted records are in the log.
"""

import time

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BOOTSTRAP, TIMEOUT_S, unique_topic, wait_until

TIMEOUT_MS = int(TIMEOUT_S * 1000)


@pytest.fixture(scope="module")
def admin():
    return AdminClient({"bootstrap.servers": BOOTSTRAP, "socket.timeout.ms": 10000})


@pytest.fixture
def new_topic(admin):
    """Factory: new_topic(prefix, partitions=1) creates a topic and waits for its leaders."""
    made = []

    def ready(name, partitions):
        t = admin.list_topics(topic=name, timeout=10).topics.get(name)
        return (t is not None and t.error is None and len(t.partitions) == partitions
                and all(p.error is None and p.leader >= 0 for p in t.partitions.values()))

    def make(prefix, partitions=1):
        name = unique_topic(prefix)
        fs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                                 operation_timeout=TIMEOUT_S, request_timeout=TIMEOUT_S)
        fs[name].result(timeout=TIMEOUT_S)
        made.append(name)
        wait_until(lambda: ready(name, partitions), f"{name} with leaders in metadata")
        return name

    yield make
    if made:
        try:
            for f in admin.delete_topics(made, operation_timeout=10).values():
                f.result(timeout=15)
        except Exception:  # noqa: BLE001 - best-effort clean-up
            pass


def _txn_producer(txn_id, **extra):
    conf = {
        "bootstrap.servers": BOOTSTRAP,
        "transactional.id": txn_id,
        "linger.ms": 5,
    }
    conf.update(extra)
    return Producer(conf)


def _consumer(isolation, **extra):
    conf = {
        "bootstrap.servers": BOOTSTRAP,
        # Required by the client even for assign(); nothing joins or commits.
        "group.id": unique_topic("confluent-txn-reader"),
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
        "isolation.level": isolation,
    }
    conf.update(extra)
    return Consumer(conf)


def _read(topic, isolation, expected, partition=0, timeout=TIMEOUT_S):
    """Reads one partition from the beginning with the given isolation.level.

    Returns [(offset, value)] once at least `expected` records were read AND the
    consumer reached the end of the partition (for read_committed that is the
    last stable offset), so records beyond the expected ones are returned too
    and fail the caller's exact comparison. On timeout returns what it has.
    """
    c = _consumer(isolation)
    got = []
    try:
        c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if len(got) >= expected:
                        break
                    continue
                raise KafkaException(m.error())
            got.append((m.offset(), m.value()))
    finally:
        c.close()
    return got


def _high_watermark(topic, isolation, partition=0):
    """ListOffsets latest for the partition, under the consumer's isolation.level."""
    c = _consumer(isolation)
    try:
        low, high = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT_S,
                                            cached=False)
    finally:
        c.close()
    return high


def _eventually_equal(fn, want, what):
    """Polls fn() until it returns want; fails with the last value on timeout."""
    last = []

    def check():
        last[:] = [fn()]
        return last[0] == want

    deadline = time.monotonic() + TIMEOUT_S
    while not check():
        assert time.monotonic() < deadline, f"{what}: got {last[0]!r}, want {want!r}"
        time.sleep(0.1)


def _produce_and_track(p, topic, values, offsets):
    """Produces values to partition 0 and appends (value, offset, error) per delivery."""
    for v in values:
        p.produce(topic, value=v, partition=0,
                  on_delivery=lambda err, msg, v=v: offsets.append((v, msg.offset(), err)))
        p.poll(0)


# ------------------------------------------------------------------ commit / abort visibility

def test_commit_and_abort_visibility(new_topic):
    """Commit 3, abort 2, commit 1: read_committed sees the 4 committed values
    in order, read_uncommitted all 6; each marker takes one offset; while the
    last transaction is open, latest under read_committed is the LSO."""
    topic = new_topic("confluent-txn-vis")
    p = _txn_producer(unique_topic("confluent-txn-vis-id"))
    dr = []
    p.init_transactions(TIMEOUT_S)

    p.begin_transaction()
    _produce_and_track(p, topic, [b"c1", b"c2", b"c3"], dr)
    p.commit_transaction(TIMEOUT_S)  # flushes first

    p.begin_transaction()
    _produce_and_track(p, topic, [b"a1", b"a2"], dr)
    assert p.flush(TIMEOUT_S) == 0, "aborted records not delivered before abort"
    p.abort_transaction(TIMEOUT_S)

    p.begin_transaction()
    _produce_and_track(p, topic, [b"c4"], dr)
    assert p.flush(TIMEOUT_S) == 0
    # c4 is written (offset 7) but its transaction is open: the last stable
    # offset is 7, the high watermark 8.
    assert _high_watermark(topic, "read_committed") == 7
    assert _high_watermark(topic, "read_uncommitted") == 8
    assert _read(topic, "read_committed", 3) == [(0, b"c1"), (1, b"c2"), (2, b"c3")]
    p.commit_transaction(TIMEOUT_S)

    # Data at 0-2, commit marker 3, data 4-5, abort marker 6, data 7, commit marker 8.
    assert [(v, off, err) for v, off, err in dr] == [
        (b"c1", 0, None), (b"c2", 1, None), (b"c3", 2, None),
        (b"a1", 4, None), (b"a2", 5, None), (b"c4", 7, None)]
    # Kafka writes the markers after answering EndTxn: wait for the last one.
    _eventually_equal(lambda: _high_watermark(topic, "read_committed"), 9, "LSO after commit")
    assert _high_watermark(topic, "read_uncommitted") == 9

    assert _read(topic, "read_committed", 4) == [
        (0, b"c1"), (1, b"c2"), (2, b"c3"), (7, b"c4")]
    assert _read(topic, "read_uncommitted", 6) == [
        (0, b"c1"), (1, b"c2"), (2, b"c3"), (4, b"a1"), (5, b"a2"), (7, b"c4")]


def _offset_for_time(topic, isolation, ts, partition=0):
    """ListOffsets by timestamp (offsets_for_times) under the given isolation.level."""
    c = _consumer(isolation)
    try:
        [tp] = c.offsets_for_times([TopicPartition(topic, partition, ts)], timeout=TIMEOUT_S)
    finally:
        c.close()
    assert tp.error is None, tp.error
    return tp.offset


def test_offsets_for_times_read_committed_stops_at_lso(new_topic):
    """A timestamp lookup under read_committed only finds offsets below the last
    stable offset (Kafka: Partition.fetchOffsetForTimestamp keeps a hit only if
    offset < lastFetchableOffset, the LSO for READ_COMMITTED and the high
    watermark for READ_UNCOMMITTED; otherwise offset -1)."""
    topic = new_topic("confluent-txn-times")
    plain = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all"})
    plain.produce(topic, value=b"plain", partition=0, timestamp=1_000)
    assert plain.flush(TIMEOUT_S) == 0

    p = _txn_producer(unique_topic("confluent-txn-times-id"))
    p.init_transactions(TIMEOUT_S)
    p.begin_transaction()
    dr = []
    p.produce(topic, value=b"open", partition=0, timestamp=2_000,
              on_delivery=lambda err, msg: dr.append((msg.offset(), err)))
    assert p.flush(TIMEOUT_S) == 0
    assert dr == [(1, None)]

    # Offset 1 is in an open transaction: LSO 1, high watermark 2.
    try:
        while_open = {
            ("read_committed", 1_000): _offset_for_time(topic, "read_committed", 1_000),
            ("read_uncommitted", 2_000): _offset_for_time(topic, "read_uncommitted", 2_000),
            ("read_committed", 2_000): _offset_for_time(topic, "read_committed", 2_000),
        }
    finally:
        p.commit_transaction(TIMEOUT_S)  # not left open for the broker to time out
    assert while_open == {
        ("read_committed", 1_000): 0,
        ("read_uncommitted", 2_000): 1,
        ("read_committed", 2_000): -1,  # OFFSET_END: no such offset below the LSO
    }
    _eventually_equal(lambda: _offset_for_time(topic, "read_committed", 2_000), 1,
                      "read_committed offset for timestamp 2000 after the commit")


# ------------------------------------------------------------------ consume-transform-produce

N_INPUT = 45
BATCH = 10
ABORTED_BATCH = 2  # the third transaction (inputs 20..29) is aborted once and redone


def test_consume_transform_produce_exactly_once(new_topic):
    """The exactly-once loop: consume a batch, produce the transformed records
    and the consumer's positions in one transaction, commit; one transaction is
    aborted and the consumer rewound to the group's committed offsets."""
    src = new_topic("confluent-txn-in")
    dst = new_topic("confluent-txn-out")
    group = unique_topic("confluent-txn-group")

    plain = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all"})
    for i in range(N_INPUT):
        plain.produce(src, key=f"k{i}".encode(), value=f"in-{i}".encode(), partition=0)
    assert plain.flush(TIMEOUT_S) == 0

    consumer = Consumer({
        "bootstrap.servers": BOOTSTRAP,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "session.timeout.ms": 10000,
    })
    producer = _txn_producer(unique_topic("confluent-txn-ctp-id"))
    transactions = []  # (first input offset, count, "commit"|"abort")
    try:
        consumer.subscribe([src])
        producer.init_transactions(TIMEOUT_S)
        done = 0
        aborted = False
        deadline = time.monotonic() + 2 * TIMEOUT_S
        while done < N_INPUT:
            assert time.monotonic() < deadline, f"processed {done} of {N_INPUT}; {transactions}"
            want = min(BATCH, N_INPUT - done)
            batch = []
            while len(batch) < want and time.monotonic() < deadline:
                m = consumer.poll(0.5)
                if m is None:
                    continue
                if m.error() is not None:
                    raise KafkaException(m.error())
                batch.append(m)
            assert len(batch) == want, f"read {len(batch)} of {want} input records"

            producer.begin_transaction()
            for m in batch:
                producer.produce(dst, key=m.key(), value=m.value().replace(b"in-", b"out-"),
                                 partition=0)
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()),
                consumer.consumer_group_metadata(), TIMEOUT_S)
            if len(transactions) == ABORTED_BATCH and not aborted:
                assert producer.flush(TIMEOUT_S) == 0  # so the aborted copies are in the log
                producer.abort_transaction(TIMEOUT_S)
                aborted = True
                transactions.append((batch[0].offset(), len(batch), "abort"))
                # Rewind to the last committed offsets, as applications do after an abort.
                committed = consumer.committed(consumer.assignment(), timeout=TIMEOUT_S)
                assert [(tp.partition, tp.offset) for tp in committed] == [(0, done)]
                for tp in committed:
                    consumer.seek(tp)
                continue
            producer.commit_transaction(TIMEOUT_S)
            transactions.append((batch[0].offset(), len(batch), "commit"))
            done += len(batch)

        committed = consumer.committed([TopicPartition(src, 0)], timeout=TIMEOUT_S)
    finally:
        consumer.close()

    assert transactions == [(0, 10, "commit"), (10, 10, "commit"), (20, 10, "abort"),
                            (20, 10, "commit"), (30, 10, "commit"), (40, 5, "commit")]
    assert [(tp.topic, tp.partition, tp.offset, tp.error) for tp in committed] == \
        [(src, 0, N_INPUT, None)]

    want = [f"out-{i}".encode() for i in range(N_INPUT)]
    out = _read(dst, "read_committed", N_INPUT)
    assert [v for _, v in out] == want
    # The aborted copies of inputs 20..29 are in the log, but only there.
    raw = _read(dst, "read_uncommitted", N_INPUT + BATCH)
    assert [v for _, v in raw] == want[:30] + want[20:]

    # A new member of the group starts at the committed offset: nothing left.
    c2 = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group,
                   "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        c2.assign([TopicPartition(src, 0)])  # no offset: the group's committed one
        got = c2.committed([TopicPartition(src, 0)], timeout=TIMEOUT_S)
    finally:
        c2.close()
    assert [(tp.partition, tp.offset) for tp in got] == [(0, N_INPUT)]


# ------------------------------------------------------------------ fencing

def test_fencing_by_transactional_id(new_topic):
    """A second producer with the same transactional.id fences the first: the
    broker aborts the first's open transaction and its commit fails with _FENCED."""
    topic = new_topic("confluent-txn-fence")
    txn_id = unique_topic("confluent-txn-fence-id")
    first = _txn_producer(txn_id)
    first.init_transactions(TIMEOUT_S)
    first.begin_transaction()
    dr = []
    _produce_and_track(first, topic, [b"old-1", b"old-2", b"old-3"], dr)
    assert first.flush(TIMEOUT_S) == 0
    assert [(off, err) for _, off, err in dr] == [(0, None), (1, None), (2, None)]

    second = _txn_producer(txn_id)
    second.init_transactions(TIMEOUT_S)  # fences `first` and aborts its transaction

    with pytest.raises(KafkaException) as info:
        first.commit_transaction(TIMEOUT_S)
    err = info.value.args[0]
    assert err.code() == KafkaError._FENCED, f"{err.name()}: {err.str()}"
    assert err.fatal()

    second.begin_transaction()
    _produce_and_track(second, topic, [b"new-1", b"new-2"], dr)
    second.commit_transaction(TIMEOUT_S)
    # old 0-2, abort marker 3, new 4-5, commit marker 6
    assert [(v, off, e) for v, off, e in dr[3:]] == [(b"new-1", 4, None), (b"new-2", 5, None)]

    assert _read(topic, "read_committed", 2) == [(4, b"new-1"), (5, b"new-2")]
    assert _read(topic, "read_uncommitted", 5) == [
        (0, b"old-1"), (1, b"old-2"), (2, b"old-3"), (4, b"new-1"), (5, b"new-2")]


# ------------------------------------------------------------------ transaction timeout

def test_transaction_timeout_aborts(new_topic):
    """A transaction left open past transaction.timeout.ms is aborted by the
    broker; read_committed consumers then get past it to records committed later."""
    topic = new_topic("confluent-txn-timeout")
    stale = _txn_producer(unique_topic("confluent-txn-stale-id"),
                          **{"transaction.timeout.ms": 2000,
                             # librdkafka requires socket.timeout.ms <= transaction.timeout.ms + 100
                             "socket.timeout.ms": 2000})
    stale.init_transactions(TIMEOUT_S)
    opened = time.monotonic()  # before the transaction starts on the broker
    stale.begin_transaction()
    dr = []
    _produce_and_track(stale, topic, [b"stale-1", b"stale-2"], dr)
    assert stale.flush(TIMEOUT_S) == 0

    live = _txn_producer(unique_topic("confluent-txn-live-id"))
    live.init_transactions(TIMEOUT_S)
    live.begin_transaction()
    _produce_and_track(live, topic, [b"live-1", b"live-2", b"live-3"], dr)
    live.commit_transaction(TIMEOUT_S)
    assert [(v, off, e) for v, off, e in dr] == [
        (b"stale-1", 0, None), (b"stale-2", 1, None),
        (b"live-1", 2, None), (b"live-2", 3, None), (b"live-3", 4, None)]

    # Nothing is readable under read_committed until the broker aborts the
    # stale transaction (Kafka checks every
    # transaction.abort.timed.out.transaction.cleanup.interval.ms, 10 s by default).
    got = _read(topic, "read_committed", 3)
    assert got == [(2, b"live-1"), (3, b"live-2"), (4, b"live-3")]
    assert time.monotonic() - opened >= 2.0, "read_committed got past an open transaction"
    assert _read(topic, "read_uncommitted", 5) == [
        (0, b"stale-1"), (1, b"stale-2"), (2, b"live-1"), (3, b"live-2"), (4, b"live-3")]

    # The coordinator bumped the stale producer's epoch when it aborted the
    # transaction: its EndTxn (v1 from librdkafka) gets INVALID_PRODUCER_EPOCH,
    # which librdkafka reports as the fatal _FENCED.
    with pytest.raises(KafkaException) as info:
        stale.commit_transaction(TIMEOUT_S)
    err = info.value.args[0]
    assert err.code() == KafkaError._FENCED, f"{err.name()}: {err.str()}"
    assert err.fatal()
