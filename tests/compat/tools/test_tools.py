"""Apache Kafka 4.4.0's own command-line tools against the broker at
KASKADE_BOOTSTRAP. Every command runs unchanged in its own JVM; what it prints
is parsed and checked (values, counts, offsets), not only its exit status.

Tests run in file order; a group of tests shares one topic made by a fixture.
"""

import json
import re
import subprocess
import time

import pytest

from kafkatools import (BOOTSTRAP, CONFIGS, CONSOLE_CONSUMER, CONSOLE_PRODUCER, CONSUMER_PERF,
                        DELETE_RECORDS, DESCRIBE_PART, GET_OFFSETS, GROUPS, LOG_DIRS, PRODUCER_PERF,
                        PYTHON, TIMEOUT_S, TOPICS, TRANSACTIONS, HERE, Result, check, name, ok,
                        partition_for, poll, table, tool, topic_list)

B = ["--bootstrap-server", BOOTSTRAP]


def create_topic(topic: str, partitions: int, *extra: str) -> Result:
    res = ok(tool(TOPICS, *B, "--create", "--topic", topic, "--partitions", str(partitions),
                  "--replication-factor", "1", *extra))
    check(f"Created topic {topic}." in res.out, "kafka-topics --create did not confirm", res)
    return res


def produce_keyed(topic: str, pairs) -> Result:
    """kafka-console-producer with parse.key, fed key:value lines on stdin."""
    stdin = "".join(f"{k}:{v}\n" for k, v in pairs)
    return ok(tool(CONSOLE_PRODUCER, *B, "--topic", topic, "--property", "parse.key=true",
                   "--property", "key.separator=:", stdin=stdin))


def offsets(*args: str) -> tuple[Result, dict]:
    """kafka-get-offsets: {(topic, partition): offset} from its topic:partition:offset lines."""
    res = ok(tool(GET_OFFSETS, *B, *args))
    found = {}
    for line in res.lines:
        m = re.fullmatch(r"(.+):(\d+):(-?\d+)", line.strip())
        check(m is not None, f"unexpected kafka-get-offsets line {line!r}", res)
        found[(m.group(1), int(m.group(2)))] = int(m.group(3))
    return res, found


def stdout_records(res: Result):
    """The console consumer's stdout lines, less the deprecation notice it prints there."""
    return [line for line in res.out.splitlines()
            if line and not re.fullmatch(r"Option --\S+ is deprecated and will be removed in a future "
                                         r"version\. Use --\S+ instead\.", line)]


def describe_topic(topic: str):
    """kafka-topics --describe: (result, header fields, {partition: (leader, replicas, isr)})."""
    res = ok(tool(TOPICS, *B, "--describe", "--topic", topic))
    header = {}
    parts = {}
    for line in res.out.splitlines():
        s = line.strip()
        if s.startswith(f"Topic: {topic}") and "PartitionCount:" in s:
            for field in s.split("\t"):
                if ":" in field:
                    k, v = field.split(":", 1)
                    header[k.strip()] = v.strip()
        m = DESCRIBE_PART.search(s)
        if m and s.startswith(f"Topic: {topic}"):
            parts[int(m.group(1))] = (int(m.group(2)), m.group(3), m.group(4))
    return res, header, parts


def describe_group(group: str):
    """kafka-consumer-groups --describe: rows keyed by (topic, partition)."""
    res = ok(tool(GROUPS, *B, "--describe", "--group", group))
    _, rows = table(res, "GROUP")
    return res, {(r["TOPIC"], int(r["PARTITION"])): r for r in rows if r["GROUP"] == group}


def configs_describe(entity_type: str, entity: str, *extra: str):
    """kafka-configs --describe: {key: (value, rest-of-line)} of the dynamic configs (or --all)."""
    res = ok(tool(CONFIGS, *B, "--entity-type", entity_type, "--entity-name", entity, "--describe", *extra))
    found = {}
    for line in res.out.splitlines():
        m = re.match(r"^\s+([a-z0-9._-]+)=(\S*) (sensitive=.*)$", line)
        if m:
            found[m.group(1)] = (m.group(2), m.group(3))
    return res, found


# --------------------------------------------------------------------------------------------
# kafka-topics
# --------------------------------------------------------------------------------------------

TOPIC_T = name("topics")


def test_topics_create():
    res = create_topic(TOPIC_T, 3, "--config", "retention.ms=86400000", "--config", "cleanup.policy=delete")
    check(res.rc == 0, "exit status", res)


def test_topics_create_existing_fails():
    res = tool(TOPICS, *B, "--create", "--topic", TOPIC_T, "--partitions", "3", "--replication-factor", "1")
    check(res.rc != 0, "creating an existing topic must fail", res)
    check(f"Topic '{TOPIC_T}' already exists" in res.err + res.out,
          "expected the TopicExistsException message", res)


def test_topics_list():
    res = poll(lambda: (lambda r: (TOPIC_T in topic_list(r), r))(ok(tool(TOPICS, *B, "--list"))),
               f"{TOPIC_T} in kafka-topics --list")
    check(TOPIC_T in topic_list(res), "topic listed", res)


def test_topics_describe():
    res, header, parts = describe_topic(TOPIC_T)
    check(header.get("PartitionCount") == "3", "PartitionCount: 3", res)
    check(header.get("ReplicationFactor") == "1", "ReplicationFactor: 1", res)
    cfgs = dict(kv.split("=", 1) for kv in header.get("Configs", "").split(",") if "=" in kv)
    check(cfgs.get("retention.ms") == "86400000", "Configs shows retention.ms=86400000", res)
    check(cfgs.get("cleanup.policy") == "delete", "Configs shows cleanup.policy=delete", res)
    check(sorted(parts) == [0, 1, 2], "one line per partition 0..2", res)
    for p, (leader, replicas, isr) in parts.items():
        check(leader >= 0, f"partition {p} has a leader", res)
        check(replicas == str(leader) and isr == str(leader),
              f"partition {p}: Replicas and Isr are the leader alone", res)


def test_topics_alter_partitions():
    res = ok(tool(TOPICS, *B, "--alter", "--topic", TOPIC_T, "--partitions", "5"))

    def described():
        r, header, parts = describe_topic(TOPIC_T)
        return header.get("PartitionCount") == "5" and sorted(parts) == [0, 1, 2, 3, 4], r

    check(res.rc == 0, "alter", res)
    poll(described, "PartitionCount: 5 and partitions 0..4 in --describe")


def test_topics_delete():
    ok(tool(TOPICS, *B, "--delete", "--topic", TOPIC_T))
    poll(lambda: (lambda r: (TOPIC_T not in topic_list(r), r))(ok(tool(TOPICS, *B, "--list"))),
         f"{TOPIC_T} gone from kafka-topics --list")


# --------------------------------------------------------------------------------------------
# kafka-console-producer / kafka-console-consumer / kafka-consumer-groups
# --------------------------------------------------------------------------------------------

GROUP_TOPIC = name("console")
GROUP = name("group")
FIRST = [(f"key-{i}", f"value-{i}") for i in range(5)] + [("key-x", "a:b:c")]  # value keeps its ':'
MORE = [(f"key-{i}", f"more-{i}") for i in range(10, 14)]
GP = 3


def per_partition(pairs):
    counts = [0] * GP
    for k, _ in pairs:
        counts[partition_for(k, GP)] += 1
    return counts


@pytest.fixture(scope="module")
def console_topic():
    create_topic(GROUP_TOPIC, GP)
    return GROUP_TOPIC


def test_console_produce_consume(console_topic):
    produce_keyed(console_topic, FIRST)
    res = tool(CONSOLE_CONSUMER, *B, "--topic", console_topic, "--from-beginning", "--group", GROUP,
               "--property", "print.key=true", "--max-messages", str(len(FIRST)),
               "--timeout-ms", str(int(TIMEOUT_S * 1000)))
    ok(res)
    got = [tuple(line.split("\t", 1)) for line in stdout_records(res)]
    check(sorted(got) == sorted(FIRST),
          f"consumer printed exactly the produced key<TAB>value pairs {sorted(FIRST)}; got {sorted(got)}", res)
    # Order within a partition is the produce order.
    for p in range(GP):
        want = [kv for kv in FIRST if partition_for(kv[0], GP) == p]
        have = [kv for kv in got if partition_for(kv[0], GP) == p]
        check(have == want, f"partition {p} order", res)
    check(f"Processed a total of {len(FIRST)} messages" in res.err, "summary line on stderr", res)


def test_groups_list(console_topic):
    res = ok(tool(GROUPS, *B, "--list"))
    check(GROUP in topic_list(res), f"group {GROUP} in kafka-consumer-groups --list", res)


def test_groups_describe_lag(console_topic):
    produce_keyed(console_topic, MORE)
    committed = per_partition(FIRST)
    end = [a + b for a, b in zip(committed, per_partition(MORE))]
    res, rows = describe_group(GROUP)
    check(sorted(rows) == [(console_topic, p) for p in range(GP)], f"one row per partition of {console_topic}", res)
    for p in range(GP):
        row = rows[(console_topic, p)]
        want = (str(committed[p]), str(end[p]), str(end[p] - committed[p]))
        have = (row["CURRENT-OFFSET"], row["LOG-END-OFFSET"], row["LAG"])
        check(have == want, f"partition {p}: CURRENT-OFFSET/LOG-END-OFFSET/LAG {want}, got {have}", res)


def test_groups_describe_state(console_topic):
    res = ok(tool(GROUPS, *B, "--describe", "--group", GROUP, "--state"))
    header = None
    for line in res.out.splitlines():
        if line.startswith("GROUP "):
            header = line
        elif header and line.startswith(GROUP + " "):
            state = line[header.index("STATE"):].split()
            check(state == ["Empty", "0"], f"STATE Empty, #MEMBERS 0: got {state}", res)
            check(re.search(r"\(\d+\)", line) is not None, "COORDINATOR (ID) shown", res)
            return
    check(False, f"a row for {GROUP} under a GROUP ... STATE #MEMBERS header", res)


def test_groups_reset_offsets_to_earliest(console_topic):
    end = [a + b for a, b in zip(per_partition(FIRST), per_partition(MORE))]
    res = ok(tool(GROUPS, *B, "--reset-offsets", "--group", GROUP, "--topic", console_topic,
                  "--to-earliest", "--execute"))
    _, rows = table(res, "GROUP")
    new = {int(r["PARTITION"]): r["NEW-OFFSET"] for r in rows if r.get("TOPIC") == console_topic}
    check(new == {p: "0" for p in range(GP)}, "reset output: NEW-OFFSET 0 for every partition", res)
    d, rows = describe_group(GROUP)
    for p in range(GP):
        row = rows.get((console_topic, p))
        check(row is not None, f"partition {p} described", d)
        have = (row["CURRENT-OFFSET"], row["LOG-END-OFFSET"], row["LAG"])
        check(have == ("0", str(end[p]), str(end[p])), f"partition {p} after reset: got {have}", d)


def test_groups_delete(console_topic):
    res = ok(tool(GROUPS, *B, "--delete", "--group", GROUP))
    check(f"Deletion of requested consumer groups ('{GROUP}') was successful." in res.out,
          "deletion confirmed", res)
    after = ok(tool(GROUPS, *B, "--list"))
    check(GROUP not in topic_list(after), "group gone from --list", after)


# --------------------------------------------------------------------------------------------
# kafka-configs
# --------------------------------------------------------------------------------------------

def test_configs_topic(console_topic):
    res, before = configs_describe("topics", console_topic)
    check(f"Dynamic configs for topic {console_topic} are:" in res.out, "describe header", res)
    check("retention.ms" not in before and "max.message.bytes" not in before, "no overrides yet", res)
    alt = ok(tool(CONFIGS, *B, "--entity-type", "topics", "--entity-name", console_topic, "--alter",
                  "--add-config", "retention.ms=3600000,max.message.bytes=200000"))
    check(f"Completed updating config for topic {console_topic}." in alt.out, "alter confirmed", alt)
    res, after = configs_describe("topics", console_topic)
    check(after.get("retention.ms", ("",))[0] == "3600000", "retention.ms=3600000 described", res)
    check(after.get("max.message.bytes", ("",))[0] == "200000", "max.message.bytes=200000 described", res)
    check("DYNAMIC_TOPIC_CONFIG:retention.ms=3600000" in after["retention.ms"][1],
          "retention.ms synonyms name its DYNAMIC_TOPIC_CONFIG source", res)
    alt = ok(tool(CONFIGS, *B, "--entity-type", "topics", "--entity-name", console_topic, "--alter",
                  "--delete-config", "max.message.bytes"))
    check(f"Completed updating config for topic {console_topic}." in alt.out, "alter confirmed", alt)
    res, last = configs_describe("topics", console_topic)
    check("max.message.bytes" not in last, "max.message.bytes gone after --delete-config", res)
    check(last.get("retention.ms", ("",))[0] == "3600000", "retention.ms still 3600000", res)


def test_configs_topic_describe_all(console_topic):
    res, cfg = configs_describe("topics", console_topic, "--all")
    check(f"All configs for topic {console_topic} are:" in res.out, "describe --all header", res)
    want = {"retention.ms": "3600000", "cleanup.policy": "delete", "compression.type": "producer",
            "segment.bytes": "1073741824", "retention.bytes": "-1", "max.message.bytes": "1048588",
            "min.insync.replicas": "1", "message.timestamp.type": "CreateTime", "segment.ms": "604800000",
            "delete.retention.ms": "86400000", "unclean.leader.election.enable": "false"}
    have = {k: cfg.get(k, ("<missing>",))[0] for k in want}
    check(have == want, f"topic configs (override and Kafka's defaults) {want}, got {have}", res)


def test_configs_broker(console_topic):
    # A broker's node id: the leader of a partition (on a cluster, any broker does).
    _, _, parts = describe_topic(console_topic)
    node = str(parts[0][0])
    key = "log.cleaner.threads"  # the example of Kafka's docs for a per-broker dynamic update
    res, before = configs_describe("brokers", node)
    check(f"Dynamic configs for broker {node} are:" in res.out, "describe header", res)
    check(key not in before, f"no dynamic {key} yet", res)
    deleted = False
    try:
        alt = ok(tool(CONFIGS, *B, "--entity-type", "brokers", "--entity-name", node, "--alter",
                      "--add-config", f"{key}=2"))
        check(f"Completed updating config for broker {node}." in alt.out, "alter confirmed", alt)
        res, after = configs_describe("brokers", node)
        check(after.get(key, ("",))[0] == "2", f"{key}=2 described", res)
        check(f"DYNAMIC_BROKER_CONFIG:{key}=2" in after[key][1], "synonyms name DYNAMIC_BROKER_CONFIG", res)
        alt = ok(tool(CONFIGS, *B, "--entity-type", "brokers", "--entity-name", node, "--alter",
                      "--delete-config", key))
        deleted = True
        check(f"Completed updating config for broker {node}." in alt.out, "alter confirmed", alt)
        res, last = configs_describe("brokers", node)
        check(key not in last, f"{key} gone after --delete-config", res)
    finally:
        if not deleted:
            tool(CONFIGS, *B, "--entity-type", "brokers", "--entity-name", node, "--alter",
                 "--delete-config", key)


def test_configs_broker_describe_all(console_topic):
    _, _, parts = describe_topic(console_topic)
    node = str(parts[0][0])
    res, cfg = configs_describe("brokers", node, "--all")
    check(f"All configs for broker {node} are:" in res.out, "describe --all header", res)
    # broker.id: in KRaft mode Kafka reports the node id there.
    want = {"broker.id": node, "num.partitions": "1", "message.max.bytes": "1048588", "log.retention.hours": "168",
            "log.segment.bytes": "1073741824", "auto.create.topics.enable": "true",
            "default.replication.factor": "1", "log.cleaner.threads": "1", "offsets.topic.num.partitions": "50"}
    have = {k: cfg.get(k, ("<missing>",))[0] for k in want}
    check(have == want, f"broker configs (Kafka's defaults) {want}, got {have}", res)


# --------------------------------------------------------------------------------------------
# kafka-get-offsets / kafka-delete-records / kafka-log-dirs
# --------------------------------------------------------------------------------------------

OFFSETS_TOPIC = name("offsets")


def keys_for(partition: int, count: int, prefix: str):
    out, i = [], 0
    while len(out) < count:
        k = f"{prefix}-{i}"
        if partition_for(k, 2) == partition:
            out.append(k)
        i += 1
    return out


@pytest.fixture(scope="module")
def offsets_topic():
    """2 partitions: batch one (3 records to p0, 2 to p1), then, after a noted instant,
    batch two (2 records to p0, 4 to p1)."""
    create_topic(OFFSETS_TOPIC, 2)
    b1 = [(k, "one") for k in keys_for(0, 3, "a")] + [(k, "one") for k in keys_for(1, 2, "b")]
    produce_keyed(OFFSETS_TOPIC, b1)
    time.sleep(0.05)
    mid = int(time.time() * 1000)
    time.sleep(0.05)
    b2 = [(k, "two") for k in keys_for(0, 2, "c")] + [(k, "two") for k in keys_for(1, 4, "d")]
    produce_keyed(OFFSETS_TOPIC, b2)
    return {"topic": OFFSETS_TOPIC, "mid": mid, "first": {0: 3, 1: 2}, "end": {0: 5, 1: 6}}


def test_get_offsets_latest(offsets_topic):
    t = offsets_topic["topic"]
    res, got = offsets("--topic", t, "--time", "-1")
    check(got == {(t, 0): 5, (t, 1): 6}, f"--time -1: {t}:0:5 and {t}:1:6", res)


def test_get_offsets_earliest(offsets_topic):
    t = offsets_topic["topic"]
    res, got = offsets("--topic", t, "--time", "-2")
    check(got == {(t, 0): 0, (t, 1): 0}, f"--time -2: {t}:0:0 and {t}:1:0", res)


def test_get_offsets_timestamp(offsets_topic):
    t = offsets_topic["topic"]
    res, got = offsets("--topic", t, "--time", str(offsets_topic["mid"]))
    check(got == {(t, 0): 3, (t, 1): 2},
          f"--time <between the batches>: the first offsets of batch two, {t}:0:3 and {t}:1:2", res)


def test_delete_records(offsets_topic, tmp_path):
    t = offsets_topic["topic"]
    spec = tmp_path / "offsets.json"
    spec.write_text(json.dumps({"partitions": [{"topic": t, "partition": 0, "offset": 2}], "version": 1}))
    res = ok(tool(DELETE_RECORDS, *B, "--offset-json-file", str(spec)))
    check(re.search(rf"partition: {re.escape(t)}-0\s+low_watermark: 2\b", res.out) is not None,
          "tool reports low_watermark: 2 for partition 0", res)
    after, got = offsets("--topic", t, "--time", "-2")
    check(got == {(t, 0): 2, (t, 1): 0}, f"--time -2 after delete: {t}:0:2 and {t}:1:0", after)


def test_log_dirs_describe(offsets_topic):
    t = offsets_topic["topic"]
    res = ok(tool(LOG_DIRS, *B, "--describe", "--topic-list", t))
    js = [line for line in res.out.splitlines() if line.startswith("{")]
    check(len(js) == 1, "one JSON line", res)
    doc = json.loads(js[0])
    check(doc.get("version") == 1 and len(doc.get("brokers", [])) >= 1, "brokers listed", res)
    parts = {}
    for broker in doc["brokers"]:
        for d in broker["logDirs"]:
            check(d.get("error") is None and d.get("logDir"), f"log dir {d.get('logDir')} without error", res)
            for p in d["partitions"]:
                parts[p["partition"]] = p
    check(set(parts) == {f"{t}-0", f"{t}-1"}, f"exactly {t}-0 and {t}-1 listed, got {sorted(parts)}", res)
    for p in parts.values():
        check(isinstance(p["size"], int) and p["size"] > 0, f"{p['partition']} has a size > 0", res)
        check(p["offsetLag"] == 0 and p["isFuture"] is False, f"{p['partition']} offsetLag 0, not future", res)


# --------------------------------------------------------------------------------------------
# kafka-transactions
# --------------------------------------------------------------------------------------------

TXN_TOPIC = name("txn")
TXN_ID = name("tid")

HANG = r"""
import os, sys
from confluent_kafka import Producer
bootstrap, topic, tid = sys.argv[1:4]
p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid,
              "transaction.timeout.ms": 300000})
p.init_transactions(30)
p.begin_transaction()
for i in range(3):
    p.produce(topic, key=f"k{i}", value=f"v{i}", partition=0)
left = p.flush(30)
print("unflushed", left, flush=True)
os._exit(0 if left == 0 else 3)  # leave without committing: the transaction stays open
"""


@pytest.fixture(scope="module")
def hanging_txn(tmp_path_factory):
    create_topic(TXN_TOPIC, 1)
    script = tmp_path_factory.mktemp("txn") / "hang.py"
    script.write_text(HANG)
    p = subprocess.run([str(PYTHON), str(script), BOOTSTRAP, TXN_TOPIC, TXN_ID], capture_output=True,
                       text=True, timeout=120, check=False)
    print(p.stdout, p.stderr)
    if p.returncode != 0:
        pytest.fail(f"the open-transaction producer failed (exit {p.returncode}):\n{p.stdout}\n{p.stderr}",
                    pytrace=False)
    return {"topic": TXN_TOPIC, "tid": TXN_ID}


def test_transactions_list(hanging_txn):
    res = ok(tool(TRANSACTIONS, *B, "list"))
    header, rows = table(res, "TransactionalId")
    check(header == ["TransactionalId", "Coordinator", "ProducerId", "TransactionState"], "list header", res)
    mine = [r for r in rows if r["TransactionalId"] == TXN_ID]
    check(len(mine) == 1, f"{TXN_ID} listed once", res)
    check(mine[0]["TransactionState"] == "Ongoing", "state Ongoing", res)
    check(mine[0]["ProducerId"].isdigit(), "a producer id", res)
    hanging_txn["pid"] = mine[0]["ProducerId"]


def test_transactions_describe(hanging_txn):
    res = ok(tool(TRANSACTIONS, *B, "describe", "--transactional-id", TXN_ID))
    _, rows = table(res, "CoordinatorId")
    check(len(rows) == 1, "one row", res)
    row = rows[0]
    check(row["TransactionalId"] == TXN_ID and row["TransactionState"] == "Ongoing", "Ongoing", res)
    check(row["TransactionTimeoutMs"] == "300000", "TransactionTimeoutMs 300000", res)
    check(row["TopicPartitions"] == f"{TXN_TOPIC}-0", f"TopicPartitions {TXN_TOPIC}-0", res)
    check(row["CurrentTransactionStartTimeMs"].isdigit(), "a start time", res)
    if "pid" in hanging_txn:
        check(row["ProducerId"] == hanging_txn["pid"], "same producer id as list", res)


def test_transactions_describe_producers(hanging_txn):
    res = ok(tool(TRANSACTIONS, *B, "describe-producers", "--topic", TXN_TOPIC, "--partition", "0"))
    _, rows = table(res, "ProducerId")
    check(len(rows) == 1, "one active producer", res)
    row = rows[0]
    check(row["LastSequence"] == "2", "LastSequence 2 (three records)", res)
    check(row["CurrentTransactionStartOffset"] == "0", "CurrentTransactionStartOffset 0", res)
    if "pid" in hanging_txn:
        check(row["ProducerId"] == hanging_txn["pid"], "same producer id as list", res)


def test_transactions_find_hanging(hanging_txn):
    # The coordinator still has the transaction (Ongoing, on that partition): the tool
    # looks it up (DescribeProducers, ListTransactions by producer id, DescribeTransactions)
    # and must not report it as hanging.
    res = ok(tool(TRANSACTIONS, *B, "find-hanging", "--topic", TXN_TOPIC, "--max-transaction-timeout", "0"))
    header, rows = table(res, "Topic")
    check(header is not None and header[:2] == ["Topic", "Partition"], "find-hanging header", res)
    check(rows == [], "no hanging transaction: the coordinator knows this one", res)


def test_transactions_abort(hanging_txn):
    res = ok(tool(TRANSACTIONS, *B, "abort", "--topic", TXN_TOPIC, "--partition", "0", "--start-offset", "0"))
    d = ok(tool(TRANSACTIONS, *B, "describe-producers", "--topic", TXN_TOPIC, "--partition", "0"))
    _, rows = table(d, "ProducerId")
    check(all(r["CurrentTransactionStartOffset"] == "None" for r in rows),
          "no open transaction left on the partition", res, d)
    o, got = offsets("--topic", TXN_TOPIC, "--time", "-1")
    check(got == {(TXN_TOPIC, 0): 4}, "end offset 4: three records and the abort marker", o)


# --------------------------------------------------------------------------------------------
# kafka-producer-perf-test / kafka-consumer-perf-test
# --------------------------------------------------------------------------------------------

PERF_TOPIC = name("perf")
PERF_N = 20000


def test_producer_perf_test():
    create_topic(PERF_TOPIC, 3)
    res = ok(tool(PRODUCER_PERF, "--topic", PERF_TOPIC, "--num-records", str(PERF_N), "--record-size", "1024",
                  "--throughput", "-1", "--producer-props", "acks=all", f"bootstrap.servers={BOOTSTRAP}",
                  timeout=180))
    final = [line for line in res.lines if re.match(rf"^{PERF_N} records sent, [\d.]+ records/sec", line)]
    check(len(final) == 1, f"summary line '{PERF_N} records sent, ...'", res)
    check(re.search(r"ms avg latency, [\d.]+ ms max latency", final[0]) is not None, "latencies", res)
    _, got = offsets("--topic", PERF_TOPIC, "--time", "-1")
    check(sum(got.values()) == PERF_N, f"the partitions' end offsets add up to {PERF_N}: {got}", res)


def test_consumer_perf_test():
    res = ok(tool(CONSUMER_PERF, *B, "--topic", PERF_TOPIC, "--num-records", str(PERF_N), timeout=180))
    header, values = None, None
    for line in res.lines:
        cols = [c.strip() for c in line.split(",")]
        if cols[0] == "start.time":
            header = cols
        elif header and len(cols) == len(header):
            values = dict(zip(header, cols))
    check(values is not None, "a stats line under the header", res)
    check(values["data.consumed.in.nMsg"] == str(PERF_N), f"data.consumed.in.nMsg {PERF_N}", res)
    check(values["data.consumed.in.MB"] == "19.5313", "data.consumed.in.MB 19.5313 (20000 x 1024 B)", res)


# --------------------------------------------------------------------------------------------
# Seed 003: the quick-start commands as a user types them
# --------------------------------------------------------------------------------------------

def test_seed003_quickstart():
    topic = name("hello-kafka")
    res = ok(tool(TOPICS, "--create", "--topic", topic, "--bootstrap-server", BOOTSTRAP,
                  "--partitions", "3", "--replication-factor", "1"))
    check(f"Created topic {topic}." in res.out, "created", res)
    ok(tool(CONSOLE_PRODUCER, "--topic", topic, "--bootstrap-server", BOOTSTRAP, stdin='{"hello": "kafka"}\n'))
    before = topic_list(ok(tool(GROUPS, *B, "--list")))
    # As typed, plus --max-messages so it ends (a user presses Ctrl-C).
    res = ok(tool(CONSOLE_CONSUMER, "--topic", topic, "--bootstrap-server", BOOTSTRAP, "--from-beginning",
                  "--max-messages", "1", "--timeout-ms", str(int(TIMEOUT_S * 1000))))
    check(stdout_records(res) == ['{"hello": "kafka"}'], "the consumer prints the record", res)
    # "Monitor kafka-consumer-groups --describe": the console consumer's own group
    # (console-consumer-NNNNN; without --group it commits no offsets).
    lst = ok(tool(GROUPS, *B, "--list"))
    new = sorted(g for g in topic_list(lst) - before if re.fullmatch(r"console-consumer-\d+", g))
    check(len(new) >= 1, "the console consumer's group (console-consumer-NNNNN) is listed", lst)
    d, rows = describe_group(new[0])
    check(f"Consumer group '{new[0]}' has no active members." in d.err + d.out, "no active members", d)
    check(rows == {}, "no committed offsets to show", d)
