#!/usr/bin/env python3
"""The timed scenarios of scripts/bench-cluster.sh (issues 13 and 14) against
a cluster started by scripts/cluster.sh in DIR. Each prints progress to
stderr and one JSON object as its last stdout line ("ok": false and "error"
when a step did not complete within its deadline: that is a finding, the
node logs are in DIR).

  cluster_bench.py create DIR --topics N --partitions P --rf R --prefix X
      N CreateTopics requests one after the other (to node 1), then polls
      every node's Metadata until it lists every partition with a leader.
  cluster_bench.py propagation DIR --changes N --prefix X
      N topics (1 partition, RF 3), each sent to the next node in turn:
      the time from the CreateTopics answer until every node's Metadata
      lists the topic with a leader.
  cluster_bench.py controller-failover DIR --kills N --prefix X
      Baseline: N CreateTopics without faults. Then N rounds: kill -9 of
      the active controller, CreateTopics to the survivors until one
      succeeds (the failover time), restart the killed node.
  cluster_bench.py leader-failover DIR --kills N --topic T [--rate R]
      An idempotent acks=all producer at R records/s on T (1 partition,
      RF 3, min.insync.replicas=2). N rounds: kill -9 of the partition
      leader, the time until a record sent after the kill is acknowledged,
      restart, wait until the node is back in the ISR. Then every
      acknowledged record is read back (lost / duplicated / out of order).
  cluster_bench.py rereplicate DIR --topic T --rounds N
      N rounds: kill -9 of a node that is not the active controller, its
      data directory wiped, restart; the times until it is back in every
      ISR of T and until its copy of every partition holds the same batches
      as another replica's.

Times are time.monotonic() differences on this machine.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwire  # noqa: E402
import replica_files  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTER_SH = os.path.join(HERE, "..", "cluster.sh")


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def pct(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def summary(values):
    if not values:
        return None
    return {"n": len(values), "p50": pct(values, 50), "p99": pct(values, 99), "min": min(values),
            "max": max(values)}


class Failed(Exception):
    pass


def wait_for(what, within_s, check, every_s=0.01):
    """Polls check() until it returns something truthy; raises Failed after within_s."""
    deadline = time.monotonic() + within_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise Failed(f"{what}: not within {within_s:.0f} s")
        time.sleep(every_s)


class Cluster:
    """The nodes of a cluster.sh directory, with one cached connection each."""

    def __init__(self, d):
        self.dir = d
        self.ids = sorted(int(f[5:-5]) for f in os.listdir(d) if f.startswith("node-") and f.endswith(".port"))
        self.conns = {}

    def addr(self, node):
        with open(os.path.join(self.dir, f"node-{node}.port")) as f:
            return f"127.0.0.1:{f.read().strip()}"

    def bootstrap(self):
        return ",".join(self.addr(n) for n in self.ids)

    def pid(self, node):
        try:
            with open(os.path.join(self.dir, f"node-{node}.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def conn(self, node, timeout_s=30.0):
        c = self.conns.get(node)
        if c is None:
            c = kwire.Conn(self.addr(node), timeout_s)
            self.conns[node] = c
        return c

    def drop(self, node):
        c = self.conns.pop(node, None)
        if c:
            c.close()

    def metadata(self, node, topics):
        """The node's Metadata answer, or None if it cannot be had now."""
        try:
            return self.conn(node, 10.0).metadata(topics)
        except (OSError, kwire.WireError, Exception):  # noqa: BLE001 (any failure: not answered)
            self.drop(node)
            return None

    def create(self, node, topics, timeout_ms=60000):
        """CreateTopics on node: {name: (error, message)}; raises on a broken connection."""
        try:
            return self.conn(node, timeout_ms / 1000 + 30).create_topics(topics, timeout_ms)
        except Exception:
            self.drop(node)
            raise

    def kill9(self, node):
        """SIGKILL, then waits until the process is gone (cluster.sh restart starts it again).
        Returns the monotonic time of the signal: the process may take a second or more to
        disappear (here the init process reaps orphans late), and the failure starts at the signal."""
        pid = self.pid(node)
        if pid is None:
            raise Failed(f"node {node} has no pid file")
        self.drop(node)
        t_kill = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        wait_for(f"node {node} (pid {pid}) to exit", 30, lambda: not os.path.exists(f"/proc/{pid}"), 0.005)
        os.remove(os.path.join(self.dir, f"node-{node}.pid"))
        return t_kill

    def restart(self, node):
        self.drop(node)
        r = subprocess.run(["bash", CLUSTER_SH, "restart", self.dir, str(node)], capture_output=True, text=True)
        if r.returncode != 0:
            raise Failed(f"cluster.sh restart {node} failed: {r.stderr[-2000:]}")

    def quorum_leader(self, node):
        """The active controller as node knows it (DescribeQuorum), or None."""
        try:
            leader = self.conn(node, 10.0).quorum_leader()
        except Exception:  # noqa: BLE001 (any failure: not answered)
            self.drop(node)
            return None
        return leader if leader >= 0 else None

    def healthy(self, topics=()):
        """Every node answers, lists every node as a broker (and topics), and
        names the same active controller; returns its id (or None)."""
        controllers = set()
        for n in self.ids:
            m = self.metadata(n, list(topics))
            if m is None or sorted(m["brokers"]) != self.ids:
                return None
            if any(t not in m["topics"] or m["topics"][t][0] != kwire.NONE for t in topics):
                return None
            controllers.add(self.quorum_leader(n))
        return controllers.pop() if len(controllers) == 1 and None not in controllers else None


def everyone_sees(cl, topics, partitions, t_from, within_s, nodes=None):
    """Polls each node's Metadata until it lists every partition of topics
    with a leader: {node: seconds after t_from}."""
    pending = set(nodes or cl.ids)
    seen = {}
    deadline = time.monotonic() + within_s
    while pending:
        for n in sorted(pending):
            m = cl.metadata(n, list(topics))
            if m is not None and kwire.all_leaders(m, topics, partitions):
                seen[n] = time.monotonic() - t_from
                pending.discard(n)
        if pending:
            if time.monotonic() >= deadline:
                raise Failed(f"nodes {sorted(pending)} did not list {len(topics)} topic(s) with leaders "
                             f"within {within_s:.0f} s")
            time.sleep(0.002)
    return seen


def must_create(cl, node, topics, timeout_ms=60000):
    res = cl.create(node, topics, timeout_ms)
    bad = {k: v for k, v in res.items() if v[0] != kwire.NONE}
    if bad or len(res) != len(topics):
        raise Failed(f"CreateTopics on node {node}: {bad or res}")


def cmd_create(a):
    cl = Cluster(a.dir)
    names = [f"{a.prefix}-{i}" for i in range(a.topics)]
    t0 = time.monotonic()
    for name in names:
        must_create(cl, cl.ids[0], [(name, a.partitions, a.rf, {})], timeout_ms=600000)
    ack = time.monotonic() - t0
    log(f"{a.topics} x {a.partitions} partitions RF {a.rf} acknowledged in {ack:.3f} s")
    seen = everyone_sees(cl, names, a.partitions, t0, a.within)
    return {"topics": a.topics, "partitions": a.partitions, "rf": a.rf, "ack_s": ack,
            "all_leaders_s": max(seen.values()), "per_node_s": seen}


def cmd_propagation(a):
    cl = Cluster(a.dir)
    rf = min(3, len(cl.ids))
    acks, spread, at_ack = [], [], 0
    for i in range(a.changes):
        via = cl.ids[i % len(cl.ids)]
        name = f"{a.prefix}-{i}"
        t0 = time.monotonic()
        must_create(cl, via, [(name, 1, rf, {})])
        t_ack = time.monotonic()
        acks.append(t_ack - t0)
        seen = everyone_sees(cl, [name], 1, t_ack, a.within)
        spread.append(max(seen.values()))
        # A node that lists the topic at its first poll had it at the answer.
        at_ack += sum(1 for s in seen.values() if s < 0.002)
    return {"ack": summary(acks), "every_node": summary(spread), "ack_s": acks, "every_node_s": spread,
            "nodes_listing_at_first_poll": at_ack}


ERRORS = {7: "REQUEST_TIMED_OUT", 41: "NOT_CONTROLLER", 8: "BROKER_NOT_AVAILABLE", 38: "INVALID_REPLICATION_FACTOR"}


def create_until_ok(cl, nodes, name, within_s, t0=None):
    """CreateTopics (1 partition, RF 1) to the nodes in turn until one
    answers success (or TOPIC_ALREADY_EXISTS: an earlier try that timed out
    on our side went through). Returns (seconds since t0, default now; errors seen)."""
    errors = {}
    t0 = time.monotonic() if t0 is None else t0
    i = 0
    while time.monotonic() - t0 < within_s:
        node = nodes[i % len(nodes)]
        i += 1
        try:
            res = cl.create(node, [(name, 1, 1, {})], timeout_ms=30000)
            err = res.get(name, (-1, "no answer for the topic"))[0]
        except Exception as e:  # noqa: BLE001 (a refused or broken connection: try the next node)
            err = type(e).__name__
        if err in (kwire.NONE, kwire.TOPIC_ALREADY_EXISTS):
            return time.monotonic() - t0, errors
        key = ERRORS.get(err, str(err))
        errors[key] = errors.get(key, 0) + 1
        time.sleep(0.01)
    raise Failed(f"no CreateTopics of {name} succeeded within {within_s:.0f} s (errors: {errors})")


def cmd_controller_failover(a):
    cl = Cluster(a.dir)
    base = []
    for i in range(a.kills):
        base.append(create_until_ok(cl, [cl.ids[i % len(cl.ids)]], f"{a.prefix}-base-{i}", 60)[0])
    rounds = []
    for i in range(a.kills):
        controller = wait_for("a healthy cluster with one active controller", 180, cl.healthy, 0.05)
        t_kill = cl.kill9(controller)
        reaped = time.monotonic() - t_kill
        survivors = [n for n in cl.ids if n != controller]
        # From the signal, not from the moment the process was gone.
        took, errors = create_until_ok(cl, survivors, f"{a.prefix}-{i}", a.within, t0=t_kill)
        new = wait_for("a new controller named", 30, lambda: cl.quorum_leader(survivors[0]))
        t_restart = time.monotonic()
        cl.restart(controller)
        restart_s = time.monotonic() - t_restart
        wait_for("the restarted node back with the new topic", 180,
                 lambda name=f"{a.prefix}-{i}": cl.healthy([name]), 0.05)
        log(f"kill {i + 1}/{a.kills}: controller {controller} killed, CreateTopics ok after {took:.3f} s "
            f"(process gone after {reaped:.3f} s; new controller {new}, errors {errors}); restart {restart_s:.1f} s")
        rounds.append({"killed": controller, "new": new, "s": took, "errors": errors, "restart_s": restart_s,
                       "reaped_s": reaped})
    return {"baseline": summary(base), "failover": summary([r["s"] for r in rounds]), "baseline_s": base,
            "rounds": rounds}


class Producing:
    """An idempotent acks=all producer sending one sequence-numbered record
    every 1/rate s from its own thread."""

    def __init__(self, bootstrap, topic, rate, size):
        from confluent_kafka import Producer
        self.p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                           "linger.ms": 1, "log_level": 2})
        self.topic, self.rate, self.size = topic, rate, size
        self.lock = threading.Lock()
        self.sent = []      # send time by sequence number
        self.acked = []     # (ack time, seq)
        self.errors = []    # (seq, error)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        step = 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_at:
                with self.lock:
                    seq = len(self.sent)
                    self.sent.append(now)
                value = seq.to_bytes(8, "big") + b"x" * (self.size - 8)
                while True:
                    try:
                        self.p.produce(self.topic, value, partition=0,
                                       on_delivery=lambda err, msg, seq=seq: self.delivered(seq, err))
                        break
                    except BufferError:
                        self.p.poll(0.01)
                next_at += step
            self.p.poll(max(0.0, min(step, next_at - time.monotonic())))
        self.p.flush(120)

    def delivered(self, seq, err):
        now = time.monotonic()
        with self.lock:
            if err is None:
                self.acked.append((now, seq))
            else:
                self.errors.append((seq, str(err)))

    def first_ack_of_sent_after(self, t):
        """The ack time of the first acknowledged record sent after t, or None.
        Acks are appended in time order and a record acknowledged by t was
        sent before t, so only the acks after t are looked at."""
        best = None
        with self.lock:
            for (at, seq) in reversed(self.acked):
                if at <= t:
                    break
                if self.sent[seq] > t:
                    best = at
        return best

    def latencies(self, t_from, t_to):
        with self.lock:
            return [at - self.sent[seq] for (at, seq) in self.acked if t_from <= self.sent[seq] < t_to]

    def finish(self):
        self.stop.set()
        self.thread.join(180)


def read_back(bootstrap, topic, expect_end_within_s=120):
    """Every record value's sequence number of topic-0, in offset order."""
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-read-back", "enable.auto.commit": False,
                  "enable.partition.eof": True})
    try:
        _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        seqs, last = [], -1
        deadline = time.monotonic() + expect_end_within_s
        while last + 1 < high and time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is None or m.error():
                continue
            last = m.offset()
            seqs.append(int.from_bytes(m.value()[:8], "big"))
        return seqs, high
    finally:
        c.close()


def isr_of(cl, node, topic):
    m = cl.metadata(node, [topic])
    if m is None or topic not in m["topics"] or m["topics"][topic][0] != kwire.NONE:
        return None
    return m["topics"][topic][1]


def cmd_leader_failover(a):
    cl = Cluster(a.dir)
    must_create(cl, cl.ids[0], [(a.topic, 1, 3, {"min.insync.replicas": "2"})])
    everyone_sees(cl, [a.topic], 1, time.monotonic(), 60)
    prod = Producing(cl.bootstrap(), a.topic, a.rate, a.size)
    try:
        wait_for("the first acknowledgement", 60, lambda: prod.first_ack_of_sent_after(0), 0.05)
        t_base = time.monotonic()
        time.sleep(a.baseline_s)  # the producer's steady state, measured below
        baseline = prod.latencies(t_base, time.monotonic())
        rounds = []
        for i in range(a.kills):
            def full_isr():
                for n in cl.ids:
                    parts = isr_of(cl, n, a.topic)
                    if parts and len(parts[0][4]) == 3 and parts[0][2] >= 0:
                        return parts[0][2]
                return None
            leader = wait_for("partition 0 with a leader and 3 in its ISR", 300, full_isr, 0.05)
            controller = wait_for("one active controller", 120, cl.healthy, 0.05)
            t0 = time.monotonic()
            wait_for("an acknowledgement before the kill", 60, lambda: prod.first_ack_of_sent_after(t0 - 1), 0.01)
            t0 = time.monotonic()
            cl.kill9(leader)
            t1 = wait_for("a record sent after the kill acknowledged", a.within,
                          lambda: prod.first_ack_of_sent_after(t0), 0.002)
            took = t1 - t0
            t_restart = time.monotonic()
            cl.restart(leader)
            restart_s = time.monotonic() - t_restart
            log(f"kill {i + 1}/{a.kills}: leader {leader} (controller {controller}) killed, acknowledged again "
                f"after {took:.3f} s; restart {restart_s:.1f} s")
            rounds.append({"killed": leader, "was_controller": leader == controller, "s": took,
                           "restart_s": restart_s})
    finally:
        prod.finish()
    with prod.lock:
        acked = {seq for (_, seq) in prod.acked}
        errors = list(prod.errors)
        sent = len(prod.sent)
    seqs, high = read_back(cl.bootstrap(), a.topic)
    present = set(seqs)
    lost = sorted(acked - present)
    dups = len(seqs) - len(present)
    out_of_order = sum(1 for x, y in zip(seqs, seqs[1:]) if y <= x)
    fo = [r["s"] for r in rounds]
    return {"baseline_ack": summary(baseline), "failover": summary(fo),
            "failover_leader_only": summary([r["s"] for r in rounds if not r["was_controller"]]),
            "failover_leader_and_controller": summary([r["s"] for r in rounds if r["was_controller"]]),
            "rounds": rounds, "sent": sent, "acked": len(acked), "delivery_errors": len(errors),
            "first_errors": errors[:5], "read": len(seqs), "high_watermark": high, "lost_acked": len(lost),
            "first_lost": lost[:10], "duplicates": dups, "out_of_order": out_of_order,
            "ok_data": not lost and dups == 0 and out_of_order == 0}


def cmd_rereplicate(a):
    cl = Cluster(a.dir)
    rounds = []
    for i in range(a.rounds):
        def full_isrs():
            parts = isr_of(cl, cl.ids[0], a.topic) or isr_of(cl, cl.ids[-1], a.topic)
            return parts if parts and all(len(p[4]) == len(cl.ids) for p in parts) else None
        parts = wait_for(f"every partition of {a.topic} with a full ISR", 600, full_isrs, 0.1)
        controller = wait_for("one active controller", 120, cl.healthy, 0.05)
        others = [n for n in cl.ids if n != controller]
        victim = others[i % len(others)]
        witness = next(n for n in cl.ids if n != victim)
        cl.kill9(victim)
        data = os.path.join(a.dir, f"node-{victim}")
        shutil.rmtree(data)

        def victim_out():
            p = isr_of(cl, witness, a.topic)
            return p and all(victim not in x[4] for x in p)
        wait_for(f"node {victim} out of every ISR of {a.topic}", 120, victim_out, 0.1)
        t0 = time.monotonic()
        cl.restart(victim)
        ready = time.monotonic() - t0

        def victim_in():
            p = isr_of(cl, witness, a.topic)
            return p and all(victim in x[4] for x in p)
        wait_for(f"node {victim} back in every ISR of {a.topic}", a.within, victim_in, 0.05)
        in_isr = time.monotonic() - t0
        roots = {n: os.path.join(a.dir, f"node-{n}") for n in (victim, witness)}
        pids = [p[0] for p in parts]
        wait_for("the wiped replica's logs end where the witness's do", a.within,
                 lambda: all(replica_files.log_end(roots[victim], a.topic, p)
                             == replica_files.log_end(roots[witness], a.topic, p) for p in pids), 0.05)
        ends = time.monotonic() - t0
        same = all(replica_files.digest(roots[victim], a.topic, p) == replica_files.digest(roots[witness], a.topic, p)
                   for p in pids)
        nbytes = sum(replica_files.size(roots[victim], a.topic, p) for p in pids)
        log(f"round {i + 1}/{a.rounds}: node {victim} wiped; serving {ready:.1f} s, in every ISR {in_isr:.1f} s, "
            f"logs at the same end {ends:.1f} s after the restart ({nbytes / 2**20:.0f} MiB), identical: {same}")
        if not same:
            raise Failed(f"node {victim}'s copy of {a.topic} differs from node {witness}'s after catching up")
        rounds.append({"victim": victim, "serving_s": ready, "in_isr_s": in_isr, "identical_s": ends,
                       "bytes": nbytes})
    return {"rounds": rounds, "in_isr": summary([r["in_isr_s"] for r in rounds]),
            "identical": summary([r["identical_s"] for r in rounds])}


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("--topics", type=int, default=1)
    c.add_argument("--partitions", type=int, default=1000)
    c.add_argument("--rf", type=int, default=3)
    c.add_argument("--prefix", default="many")
    p = sub.add_parser("propagation")
    p.add_argument("--changes", type=int, default=20)
    p.add_argument("--prefix", default="prop")
    f = sub.add_parser("controller-failover")
    f.add_argument("--kills", type=int, default=20)
    f.add_argument("--prefix", default="cf")
    lf = sub.add_parser("leader-failover")
    lf.add_argument("--kills", type=int, default=20)
    lf.add_argument("--topic", default="lf")
    lf.add_argument("--rate", type=float, default=200)
    lf.add_argument("--size", type=int, default=100)
    lf.add_argument("--baseline-s", type=float, default=10)
    r = sub.add_parser("rereplicate")
    r.add_argument("--topic", required=True)
    r.add_argument("--rounds", type=int, default=3)
    for s in (c, p, f, lf, r):
        s.add_argument("dir")
        s.add_argument("--within", type=float, default=300, help="deadline of the timed step, seconds")
    a = ap.parse_args()
    fn = {"create": cmd_create, "propagation": cmd_propagation, "controller-failover": cmd_controller_failover,
          "leader-failover": cmd_leader_failover, "rereplicate": cmd_rereplicate}[a.cmd]
    try:
        out = {"ok": True, **fn(a)}
    except Failed as e:
        log(f"FAILED: {e}")
        out = {"ok": False, "error": str(e)}
    print(json.dumps(out), flush=True)
    sys.exit(0 if out["ok"] else 1)


if __name__ == "__main__":
    main()
