"""Runs Apache Kafka's own command-line tools (the main classes its bin/*.sh
scripts start) as subprocesses, one JVM per command, against KASKADE_BOOTSTRAP.

The jars are the Maven artifacts that scripts/kafka-ref.sh fetches (kafka-tools,
kafka_2.13, kafka-server 4.4.0); nothing of them is changed.
"""

import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
KAFKA_REF = ROOT / "scripts" / "kafka-ref.sh"
VERSION = os.environ.get("KAFKA_REF_VERSION", "4.4.0")
KAFKA_HOME = Path(os.environ.get("KAFKA_REF_HOME", ROOT / "tests" / "compat" / ".kafka" / VERSION))
LOG4J = KAFKA_HOME / "tools-log4j2.properties"

BOOTSTRAP = os.environ.get("KASKADE_BOOTSTRAP", "127.0.0.1:9092")
TIMEOUT_S = float(os.environ.get("KASKADE_COMPAT_TIMEOUT", "30"))
PYTHON = ROOT / "tests" / "compat" / ".venv" / "bin" / "python"

# The main classes of bin/kafka-*.sh in Apache Kafka 4.4 (kafka-tools jar).
TOPICS = "org.apache.kafka.tools.TopicCommand"                        # kafka-topics.sh
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"          # kafka-console-producer.sh
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"  # kafka-console-consumer.sh
GROUPS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"  # kafka-consumer-groups.sh
CONFIGS = "org.apache.kafka.tools.ConfigCommand"                      # kafka-configs.sh
GET_OFFSETS = "org.apache.kafka.tools.GetOffsetShell"                 # kafka-get-offsets.sh
DELETE_RECORDS = "org.apache.kafka.tools.DeleteRecordsCommand"        # kafka-delete-records.sh
TRANSACTIONS = "org.apache.kafka.tools.TransactionsCommand"           # kafka-transactions.sh
LOG_DIRS = "org.apache.kafka.tools.LogDirsCommand"                    # kafka-log-dirs.sh
PRODUCER_PERF = "org.apache.kafka.tools.ProducerPerformance"          # kafka-producer-perf-test.sh
CONSUMER_PERF = "org.apache.kafka.tools.ConsumerPerformance"          # kafka-consumer-perf-test.sh

SHORT = {v: k for k, v in {
    "kafka-topics": TOPICS, "kafka-console-producer": CONSOLE_PRODUCER,
    "kafka-console-consumer": CONSOLE_CONSUMER, "kafka-consumer-groups": GROUPS,
    "kafka-configs": CONFIGS, "kafka-get-offsets": GET_OFFSETS,
    "kafka-delete-records": DELETE_RECORDS, "kafka-transactions": TRANSACTIONS,
    "kafka-log-dirs": LOG_DIRS, "kafka-producer-perf-test": PRODUCER_PERF,
    "kafka-consumer-perf-test": CONSUMER_PERF}.items()}


def _classpath() -> str:
    out = subprocess.run(["bash", str(KAFKA_REF), "classpath"], capture_output=True, text=True, check=False)
    if out.returncode != 0 or not out.stdout.strip():
        raise RuntimeError(f"kafka-ref.sh classpath failed: {out.stderr}")
    return out.stdout.strip().splitlines()[-1]


CLASSPATH = _classpath()
JAVA = ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
        f"-Dlog4j2.configurationFile={LOG4J}", "-cp", CLASSPATH]
# The class-data-sharing archive install.sh dumped (faster JVM start only). JVM
# log lines go to stderr so that nothing of the JVM's lands in a tool's stdout.
_JSA = sorted((HERE / ".cds").glob("tools-*.jsa"))
if _JSA:
    JAVA[1:1] = [f"-XX:SharedArchiveFile={_JSA[-1]}", "-Xshare:auto", "-Xlog:disable", "-Xlog:all=warning:stderr"]

RUN_ID = uuid.uuid4().hex[:8]


def name(kind: str) -> str:
    """A topic/group/transactional id no other run uses."""
    return f"compat-tools-{RUN_ID}-{kind}"


@dataclass
class Result:
    cmd: str
    rc: int
    out: str
    err: str
    secs: float

    @property
    def lines(self):
        return [line for line in self.out.splitlines() if line.strip()]

    def describe(self) -> str:
        return (f"$ {self.cmd}\n[exit {self.rc} after {self.secs:.1f}s]\n"
                f"--- stdout ---\n{self.out.rstrip()}\n--- stderr ---\n{self.err.rstrip()}")


def tool(main: str, *args: str, stdin: str | None = None, timeout: float = 90) -> Result:
    """Runs one Kafka tool in its own JVM (the tools call System.exit)."""
    argv = [*JAVA, main, *args]
    shown = f"{SHORT.get(main, main)} {shlex.join(args)}"
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, input=stdin if stdin is not None else "", capture_output=True,
                           text=True, timeout=timeout, check=False)
        res = Result(shown, p.returncode, p.stdout, p.stderr, time.monotonic() - t0)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        res = Result(shown, -9, out, err + f"\n[killed: still running after {timeout}s]",
                     time.monotonic() - t0)
    # Shown by pytest for a failing test (captured stdout), and in the JUnit XML.
    print(res.describe(), file=sys.stdout)
    return res


def ok(res: Result) -> Result:
    """Fails the test unless the command exited 0."""
    if res.rc != 0:
        pytest.fail(f"command failed\n{res.describe()}", pytrace=False)
    return res


def check(cond: bool, what: str, *results: Result):
    if not cond:
        detail = "\n".join(r.describe() for r in results)
        pytest.fail(f"{what}\n{detail}", pytrace=False)


def poll(fn, what: str, timeout: float = TIMEOUT_S, interval: float = 0.5):
    """Calls fn() -> (done, result) until done or the deadline; fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        done, res = fn()
        if done:
            return res
        if time.monotonic() >= deadline:
            detail = res.describe() if isinstance(res, Result) else repr(res)
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\nlast try:\n{detail}",
                        pytrace=False)
        time.sleep(interval)


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (what the producer's default partitioner applies to keys)."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    n4 = length // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = length % 4
    base = n4 * 4
    if rest == 3:
        h ^= data[base + 2] << 16
    if rest >= 2:
        h ^= data[base + 1] << 8
    if rest >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_for(key: str, partitions: int) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def table(res: Result, first_header: str):
    """Parses a whitespace-separated table whose header row starts with first_header."""
    rows, header = [], None
    for line in res.out.splitlines():
        cols = line.split()
        if not cols:
            continue
        if cols[0] == first_header:
            header = cols
            continue
        if header and len(cols) >= len(header):
            rows.append(dict(zip(header, cols)))
    return header, rows


def topic_list(res: Result):
    return {line.strip() for line in res.out.splitlines() if line.strip()}


DESCRIBE_PART = re.compile(r"Partition:\s*(\d+)\s+Leader:\s*(-?\d+)\s+Replicas:\s*([\d,]*)\s+Isr:\s*([\d,]*)")
