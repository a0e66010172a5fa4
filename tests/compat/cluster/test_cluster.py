"""Apache Kafka's own tools against a 3-node cluster of combined nodes (node ids
1, 2, 3) that scripts/cluster.sh started in CLUSTER_DIR: Kaskade, or Apache
Kafka 4.4.0 as the oracle, with the same tests.

Tests run in file order and share state (a topic, a group, the killed node):
the last ones kill -9 the active controller and check that the tools still work
through the other nodes. CLUSTER_RF (3) is the replication factor of the test
topic; with 1, a killed node's partitions are offline and the checks that need
its data are skipped.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from kafkatools import (  # noqa: E402
    CONFIGS, CONSOLE_CONSUMER, CONSOLE_PRODUCER, GROUPS, PRODUCER_PERF, ROOT, TIMEOUT_S, TOPICS,
    check, name, ok, partition_for, poll, table, tool)

QUORUM = "org.apache.kafka.tools.MetadataQuorumCommand"  # kafka-metadata-quorum.sh
ELECTION = "org.apache.kafka.tools.LeaderElectionCommand"  # kafka-leader-election.sh
REASSIGN = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"  # kafka-reassign-partitions.sh
FEATURES = "org.apache.kafka.tools.FeatureCommand"  # kafka-features.sh
CLUSTER = ROOT / "scripts" / "cluster.sh"
DIR = Path(os.environ["CLUSTER_DIR"])
RF = int(os.environ.get("CLUSTER_RF", "3"))
KIND = (DIR / "kind").read_text().strip() if (DIR / "kind").exists() else "kaskade"
IDS = [1, 2, 3]
PORTS = {i: (DIR / f"node-{i}.port").read_text().strip() for i in IDS}
# Each node's CONTROLLER listener (kafka-metadata-quorum --bootstrap-controller).
CPORTS = {i: (DIR / f"node-{i}.cport").read_text().strip() for i in IDS}
TOPIC = name("spread")
PARTITIONS = 6
RECORDS = [(f"key-{i}", f"value-{i}") for i in range(60)]
STATE = {}
# A kafka-topics --describe partition line; a partition without a leader
# prints "Leader: none".
DESCRIBE_PART = re.compile(r"Partition:\s*(\d+)\s+Leader:\s*(-?\d+|none)\s+Replicas:\s*([\d,]*)\s+Isr:\s*([\d,]*)")


def addr(node: int) -> str:
    return f"127.0.0.1:{PORTS[node]}"


def boot(*nodes: int) -> list:
    return ["--bootstrap-server", ",".join(addr(n) for n in nodes)]


def alive() -> list:
    return [i for i in IDS if i != STATE.get("killed")]


def status_fields(res):
    return dict(line.split(":", 1) for line in res.out.splitlines() if ":" in line)


def boot_controller(node: int) -> list:
    return ["--bootstrap-controller", f"127.0.0.1:{CPORTS[node]}"]


def quorum_status(node: int, through=boot):
    """kafka-metadata-quorum describe --status through `node` (its client
    listener, or with through=boot_controller its controller listener):
    (result, fields)."""
    res = tool(QUORUM, *through(node), "describe", "--status")
    fields = {k.strip(): v.strip() for k, v in status_fields(res).items()} if res.rc == 0 else {}
    return res, fields


def voter_ids(fields) -> list:
    return sorted(int(i) for i in re.findall(r'"id":\s*(\d+)', fields.get("CurrentVoters", "")))


def describe_topic(node: int, topic: str):
    """kafka-topics --describe through `node`: (result, {partition: (leader, replicas, isr)})."""
    res = tool(TOPICS, *boot(node), "--describe", "--topic", topic)
    parts = {}
    for m in DESCRIBE_PART.finditer(res.out):
        ids = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
        leader = -1 if m.group(2) == "none" else int(m.group(2))
        parts[int(m.group(1))] = (leader, ids(m.group(3)), ids(m.group(4)))
    return res, parts


def java_hash(s: str) -> int:
    """Java's String.hashCode (what Kafka places a group's offsets by)."""
    h = 0
    for ch in s:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def offsets_partition(group: str, partitions: int) -> int:
    h = java_hash(group)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def consume_all(node_list, group, expect: int):
    res = tool(CONSOLE_CONSUMER, *boot(*node_list), "--topic", TOPIC, "--from-beginning", "--group", group,
               "--property", "print.key=true", "--max-messages", str(expect),
               "--timeout-ms", str(int(TIMEOUT_S * 1000)))
    got = sorted(tuple(line.split("\t", 1)) for line in res.out.splitlines() if "\t" in line)
    return res, got


# --- the quorum -------------------------------------------------------------

def test_quorum_status_through_every_node():
    leaders = set()
    for node in IDS:
        res, fields = quorum_status(node)
        ok(res)
        check(voter_ids(fields) == IDS, f"CurrentVoters are nodes {IDS} through node {node}", res)
        check(fields.get("CurrentObservers") == "[]", "no observers (every node is a voter)", res)
        for key in ("ClusterId", "LeaderId", "LeaderEpoch", "HighWatermark", "MaxFollowerLag",
                    "MaxFollowerLagTimeMs"):
            check(key in fields, f"{key} printed", res)
        check(int(fields["LeaderId"]) in IDS and int(fields["LeaderEpoch"]) >= 1 and
              int(fields["HighWatermark"]) > 0, "a voter leads, epoch >= 1, high watermark > 0", res)
        leaders.add(int(fields["LeaderId"]))
    check(len(leaders) == 1, f"every node names the same leader: {leaders}")
    STATE["leader"] = leaders.pop()


def test_quorum_replication_through_a_follower():
    follower = next(i for i in IDS if i != STATE["leader"])
    res = ok(tool(QUORUM, *boot(follower), "describe", "--replication"))
    header, rows = table(res, "NodeId")
    for col in ("NodeId", "DirectoryId", "LogEndOffset", "Lag", "LastFetchTimestamp",
                "LastCaughtUpTimestamp", "Status"):
        check(header is not None and col in header, f"column {col}", res)
    check(sorted(int(r["NodeId"]) for r in rows) == IDS, "one row per voter", res)
    by_status = sorted((r["Status"], int(r["NodeId"])) for r in rows)
    check([s for s, _ in by_status] == ["Follower", "Follower", "Leader"], "one Leader, two Followers", res)
    check(dict((n, s) for s, n in by_status)[STATE["leader"]] == "Leader", "the leader is --status's", res)
    for r in rows:
        check(int(r["LogEndOffset"]) > 0 and int(r["Lag"]) >= 0, f"node {r['NodeId']}: log end and lag", res)


def test_quorum_through_every_controller_listener():
    """--bootstrap-controller (KIP-919): the tool asks a controller listener
    for DescribeCluster (the controllers and the active one), then the active
    controller for DescribeQuorum."""
    _, through_broker = quorum_status(IDS[0])
    for node in IDS:
        res, fields = quorum_status(node, through=boot_controller)
        ok(res)
        check(voter_ids(fields) == IDS, f"CurrentVoters are nodes {IDS} through controller {node}", res)
        check(fields.get("CurrentObservers") == "[]", "no observers (every node is a voter)", res)
        check(fields.get("ClusterId") == through_broker.get("ClusterId"), "the cluster id --bootstrap-server shows", res)
        check(int(fields["LeaderId"]) == STATE["leader"], "the leader --bootstrap-server named", res)
        check(all(f"CONTROLLER://127.0.0.1:{CPORTS[i]}" in fields.get("CurrentVoters", "") for i in IDS),
              "each voter with its controller endpoint", res)
    res = ok(tool(QUORUM, *boot_controller(IDS[-1]), "describe", "--replication"))
    header, rows = table(res, "NodeId")
    check(header is not None and "Status" in header and "LogEndOffset" in header, "the replication table", res)
    check(sorted(int(r["NodeId"]) for r in rows) == IDS, "one row per voter", res)
    statuses = {int(r["NodeId"]): r["Status"] for r in rows}
    check(sorted(statuses.values()) == ["Follower", "Follower", "Leader"] and statuses[STATE["leader"]] == "Leader",
          "one Leader (--status's), two Followers", res)


# kafka-features describe: "Feature: NAME<TAB>SupportedMinVersion: ...<TAB>..."
FEATURE_LINE = re.compile(r"Feature:\s*(\S+)\s+SupportedMinVersion:\s*(\S+)\s+SupportedMaxVersion:\s*(\S+)"
                          r"\s+FinalizedVersionLevel:\s*(\S+)\s+Epoch:\s*(\S+)")


def features(res) -> dict:
    """name -> (supported min, supported max, finalized level) of a describe."""
    return {m.group(1): (m.group(2), m.group(3), m.group(4))
            for m in (FEATURE_LINE.search(line) for line in res.lines) if m}


def test_features_describe_through_every_broker_and_controller_listener():
    """kafka-features describe (ApiVersions' KIP-584 features) through every
    node's client listener and, with --bootstrap-controller, its CONTROLLER
    listener: the same features everywhere (a cluster's, as Kafka's
    controllers report them); metadata.version finalized within its range;
    kraft.version 0..1 finalized at 0 for this static quorum. Kaskade leaves
    out the features it does not implement (DIFFERENCES.md)."""
    seen = {}  # (listener, node) -> features
    for node in IDS:
        for how, args in (("broker", boot(node)), ("controller", boot_controller(node))):
            res = ok(tool(FEATURES, *args, "describe"))
            seen[(how, node)] = features(res)
            check("metadata.version" in seen[(how, node)], f"metadata.version through {how} {node}", res)
    first = seen[("broker", IDS[0])]
    check(all(f == first for f in seen.values()), f"the same features through every listener: {seen}")
    check(first.get("kraft.version") == ("0", "1", "0"), f"kraft.version 0..1, static voters at 0: {first}")
    lo, hi, level = first["metadata.version"]
    check(lo <= level <= hi, f"metadata.version {level} within {lo}..{hi}")
    if KIND == "kaskade":
        for absent in ("eligible.leader.replicas.version", "share.version", "streams.version"):
            check(absent not in first, f"{absent} is not implemented, so not advertised: {first}")


def test_feature_updates_are_decided_by_the_controller_with_kafkas_answers():
    """kafka-features upgrade / downgrade / disable (UpdateFeatures), through a
    broker (forwarded to the active controller) and through a CONTROLLER
    listener: metadata.version again at its finalized level is accepted; a
    metadata.version downgrade, a level outside the supported range, an
    unsupported feature and an unknown one are refused with Kafka's messages
    and change nothing. The finalized-features epoch (the metadata offset the
    answer was built from) moves on when the metadata changes."""
    first = features(ok(tool(FEATURES, *boot(IDS[0]), "describe")))
    epoch = lambda res: max(int(m.group(5)) for m in (FEATURE_LINE.search(l) for l in res.lines) if m)
    before = epoch(ok(tool(FEATURES, *boot(IDS[0]), "describe")))
    for args in (boot(IDS[1]), boot_controller(IDS[2])):
        same = tool(FEATURES, *args, "upgrade", "--metadata", first["metadata.version"][2])
        check(same.rc == 0 and "metadata.version was upgraded to" in same.out,
              "metadata.version at its finalized level is accepted", same)
        refusals = [
            (("downgrade", "--feature", "metadata.version=7"),
             "Refusing to perform the requested downgrade because it might delete metadata information."),
            (("upgrade", "--feature", "kraft.version=2"),
             "Invalid update version 2 for feature kraft.version. Local controller"),
            (("upgrade", "--feature", "nosuch.version=1"),
             "Invalid update version 1 for feature nosuch.version. Local controller"),
            (("disable", "--feature", "nosuch.version"), "Feature nosuch.version not found."),
        ]
        for cmd, says in refusals:
            res = tool(FEATURES, *args, *cmd)
            check(res.rc != 0 and says in res.out + res.err
                  and "The update failed for all features since the following feature had an error" in res.out,
                  f"{' '.join(cmd)} refused: {says}", res)
        check("does not support this feature" in tool(FEATURES, *args, "upgrade", "--feature",
                                                       "nosuch.version=1").out, "nosuch.version unsupported")
    check(features(ok(tool(FEATURES, *boot(IDS[0]), "describe"))) == first, "no level changed")
    ok(tool(TOPICS, *boot(IDS[0]), "--create", "--topic", name("features-epoch"), "--partitions", "1",
            "--replication-factor", "1"))
    poll(lambda: (lambda r: (epoch(r) > before, r))(ok(tool(FEATURES, *boot(IDS[0]), "describe"))),
         f"the finalized-features epoch to move on from {before} after a topic creation")


# --- topics, produce, consume -----------------------------------------------

def test_add_and_remove_controller_are_refused_by_a_static_quorum(tmp_path):
    """KIP-853's add-controller / remove-controller against a quorum formed
    from controller.quorum.voters (kraft.version 0), sent to the active
    controller and to a broker (forwarded): UNSUPPORTED_VERSION, the voters
    unchanged. (A dynamic quorum's changes: crates/kaskade/tests/
    dynamic_quorum.rs.)"""
    res, fields = quorum_status(IDS[0], through=boot_controller)
    ok(res)
    leader = int(fields["LeaderId"])
    # The new controller's identity, as kafka-storage format would write it.
    (tmp_path / "meta.properties").write_text(
        f"version=1\nnode.id=4\ndirectory.id=qZ8cKc3iQmWb1v7tPzV3kA\ncluster.id={fields['ClusterId']}\n")
    config = tmp_path / "controller.properties"
    config.write_text("\n".join([
        "node.id=4", "process.roles=controller", "controller.listener.names=CONTROLLER",
        "listeners=CONTROLLER://127.0.0.1:19999", "listener.security.protocol.map=CONTROLLER:PLAINTEXT",
        f"controller.quorum.bootstrap.servers=127.0.0.1:{CPORTS[leader]}", f"log.dirs={tmp_path}", ""]))
    # Through the leader's CONTROLLER listener, and through a broker (which
    # forwards both requests to the active controller).
    for through in (boot_controller(leader), boot(IDS[0])):
        add = tool(QUORUM, *through, "--command-config", str(config), "add-controller")
        check(add.rc != 0 and "UnsupportedVersionException" in add.out + add.err,
              "add-controller is refused with UNSUPPORTED_VERSION", add)
        remove = tool(QUORUM, *through, "remove-controller", "--controller-id", str(IDS[-1]),
                      "--controller-directory-id", "qZ8cKc3iQmWb1v7tPzV3kA")
        check(remove.rc != 0 and "UnsupportedVersionException" in remove.out + remove.err,
              "remove-controller is refused with UNSUPPORTED_VERSION", remove)
    res, fields = quorum_status(leader, through=boot_controller)
    ok(res)
    check(voter_ids(fields) == IDS, f"CurrentVoters still {IDS}", res)


def test_topics_create_spread_over_the_cluster():
    ok(tool(TOPICS, *boot(1), "--create", "--topic", TOPIC, "--partitions", str(PARTITIONS),
            "--replication-factor", str(RF)))

    def described():
        res, parts = describe_topic(2, TOPIC)
        full = len(parts) == PARTITIONS and all(len(isr) == RF for _, _, isr in parts.values())
        return full, res

    res = poll(described, f"node 2 describes {PARTITIONS} partitions with a full ISR")
    _, parts = describe_topic(2, TOPIC)
    for p, (leader, replicas, isr) in parts.items():
        check(len(set(replicas)) == RF and set(replicas) <= set(IDS), f"partition {p}: {RF} replicas", res)
        check(sorted(isr) == sorted(replicas), f"partition {p}: ISR = replicas", res)
        check(leader in replicas, f"partition {p}: the leader is a replica", res)
    leaders = [parts[p][0] for p in range(PARTITIONS)]
    STATE["leaders"] = leaders
    check(all(leaders.count(n) == PARTITIONS // len(IDS) for n in IDS), f"leaders spread evenly: {leaders}", res)


def test_console_produce_through_one_node_consume_through_another():
    text = "".join(f"{k}:{v}\n" for k, v in RECORDS)
    ok(tool(CONSOLE_PRODUCER, *boot(1), "--topic", TOPIC, "--property", "parse.key=true",
            "--property", "key.separator=:", "--producer-property", "acks=all", stdin=text))
    res, got = consume_all([3], name("reader"), len(RECORDS))
    ok(res)
    check(got == sorted(RECORDS), f"node 3's consumer read the {len(RECORDS)} records node 1 took", res)


def test_groups_describe_with_the_coordinator_on_another_node():
    # __consumer_offsets exists now (the reader's group): place a new group
    # on a partition led by another node than the one the tools bootstrap from.
    res, parts = describe_topic(1, "__consumer_offsets")
    check(len(parts) > 0, "__consumer_offsets described", res)
    group = next((g for g in (name(f"remote-{i}") for i in range(500))
                  if parts[offsets_partition(g, len(parts))][0] not in (1, -1)), None)
    check(group is not None, "a group coordinated away from node 1", res)
    coordinator = parts[offsets_partition(group, len(parts))][0]
    STATE["group"], STATE["coordinator"] = group, coordinator
    ok(consume_all([1], group, len(RECORDS))[0])
    d = ok(tool(GROUPS, *boot(1), "--describe", "--group", group))
    _, rows = table(d, "GROUP")
    mine = {int(r["PARTITION"]): r for r in rows if r.get("TOPIC") == TOPIC}
    check(sorted(mine) == list(range(PARTITIONS)), "one row per partition", d)
    per = [sum(1 for k, _ in RECORDS if partition_for(k, PARTITIONS) == p) for p in range(PARTITIONS)]
    for p, r in mine.items():
        have = (r["CURRENT-OFFSET"], r["LOG-END-OFFSET"], r["LAG"])
        check(have == (str(per[p]), str(per[p]), "0"), f"partition {p}: committed = end, lag 0: {have}", d)
    s = ok(tool(GROUPS, *boot(1), "--describe", "--group", group, "--state"))
    check(re.search(rf"\({coordinator}\)", s.out) is not None, f"COORDINATOR (ID) is node {coordinator}", s)


# --- kafka-reassign-partitions ------------------------------------------------

def write_json(path: Path, value) -> str:
    path.write_text(json.dumps(value))
    return str(path)


def json_after(res, heading: str):
    """The JSON object printed on the line after `heading` (--generate, --execute)."""
    lines = res.out.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(heading):
            for candidate in lines[i + 1:]:
                if candidate.strip().startswith("{"):
                    return json.loads(candidate)
    return None


def throttled_replicas(res, key: str) -> set:
    m = re.search(rf"{re.escape(key)}=([\d:,]*)", res.out)
    return set(m.group(1).split(",")) - {""} if m else set()


def test_reassign_generate_execute_verify_with_a_throttle(tmp_path):
    topic = name("moved")
    ok(tool(TOPICS, *boot(1), "--create", "--topic", topic, "--replica-assignment", "1"))
    text = "".join(f"{k}:{v}\n" for k, v in RECORDS)
    ok(tool(CONSOLE_PRODUCER, *boot(1), "--topic", topic, "--property", "parse.key=true",
            "--property", "key.separator=:", "--producer-property", "acks=all", stdin=text))

    # --generate proposes a placement on the listed brokers, same replication factor.
    to_move = write_json(tmp_path / "topics.json", {"version": 1, "topics": [{"topic": topic}]})
    gen = ok(tool(REASSIGN, *boot(2), "--generate", "--topics-to-move-json-file", to_move, "--broker-list", "2,3"))
    current = json_after(gen, "Current partition replica assignment")
    proposed = json_after(gen, "Proposed partition reassignment configuration")
    check(current is not None and [(p["topic"], p["partition"], p["replicas"]) for p in current["partitions"]]
          == [(topic, 0, [1])], "the current assignment: partition 0 on node 1", gen)
    check(proposed is not None and len(proposed["partitions"]) == 1
          and len(proposed["partitions"][0]["replicas"]) == 1
          and proposed["partitions"][0]["replicas"][0] in (2, 3), "one replica proposed on node 2 or 3", gen)

    # --execute a move to nodes 2 and 3 with a throttle, through node 3.
    plan = write_json(tmp_path / "plan.json",
                      {"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [2, 3]}]})
    ex = ok(tool(REASSIGN, *boot(3), "--execute", "--reassignment-json-file", plan, "--throttle", "1048576"))
    check(json_after(ex, "Current partition replica assignment") is not None, "the rollback plan printed", ex)
    check("The inter-broker throttle limit was set to 1048576 B/s" in ex.out, "the throttle is reported", ex)
    check(f"Successfully started partition reassignment for {topic}-0" in ex.out, "the move started", ex)
    # The throttles it set: the rates on the brokers of the move, the
    # replica lists on the topic (leaders: the old replicas, followers: the new).
    tc = ok(tool(CONFIGS, *boot(1), "--describe", "--entity-type", "topics", "--entity-name", topic))
    check(throttled_replicas(tc, "leader.replication.throttled.replicas") == {"0:1"}, "leader throttle 0:1", tc)
    check(throttled_replicas(tc, "follower.replication.throttled.replicas") == {"0:2", "0:3"},
          "follower throttle 0:2,0:3", tc)
    bc = ok(tool(CONFIGS, *boot(1), "--describe", "--entity-type", "brokers", "--entity-name", "2"))
    for key in ("leader.replication.throttled.rate", "follower.replication.throttled.rate"):
        check(f"{key}=1048576" in bc.out, f"broker 2's {key}", bc)

    # --verify until complete; then it clears the throttles.
    def verified():
        res = ok(tool(REASSIGN, *boot(2), "--verify", "--reassignment-json-file", plan))
        return re.search(rf"Reassignment of partition {re.escape(topic)}-0 is complete", res.out) is not None, res

    done = poll(verified, "--verify reports the move complete", timeout=TIMEOUT_S * 2)
    check("Clearing broker-level throttles on brokers" in done.out, "broker throttles cleared", done)
    check(f"Clearing topic-level throttles on topic {topic}" in done.out, "topic throttles cleared", done)
    tc = ok(tool(CONFIGS, *boot(1), "--describe", "--entity-type", "topics", "--entity-name", topic))
    check("throttled.replicas" not in tc.out, "no throttled replica lists left", tc)
    bc = ok(tool(CONFIGS, *boot(1), "--describe", "--entity-type", "brokers", "--entity-name", "2"))
    check("throttled.rate" not in bc.out, "no throttle rates left", bc)

    def moved():
        res, parts = describe_topic(1, topic)
        leader, replicas, isr = parts.get(0, (-1, [], []))
        return replicas == [2, 3] and sorted(isr) == [2, 3] and leader in (2, 3), res

    poll(moved, "the partition on nodes 2 and 3, both in the ISR, one of them leading")
    res = ok(tool(CONSOLE_CONSUMER, *boot(2), "--topic", topic, "--from-beginning", "--property", "print.key=true",
                  "--max-messages", str(len(RECORDS)), "--timeout-ms", str(int(TIMEOUT_S * 1000))))
    got = sorted(tuple(line.split("\t", 1)) for line in res.out.splitlines() if "\t" in line)
    check(got == sorted(RECORDS), "every record moved", res)


def test_reassign_list_and_cancel_a_move_held_back_by_its_throttle(tmp_path):
    topic = name("held")
    ok(tool(TOPICS, *boot(1), "--create", "--topic", topic, "--replica-assignment", "1"))
    # 5 MiB: more than one replica fetch (1 MiB) can take, at 1 B/s.
    ok(tool(PRODUCER_PERF, "--topic", topic, "--num-records", "5120", "--record-size", "1024",
            "--throughput", "-1", "--producer-props", "acks=all", f"bootstrap.servers={addr(1)}", timeout=180))
    plan = write_json(tmp_path / "plan.json",
                      {"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [2]}]})
    ok(tool(REASSIGN, *boot(2), "--execute", "--reassignment-json-file", plan, "--throttle", "1"))
    ls = ok(tool(REASSIGN, *boot(3), "--list"))
    check(f"{topic}-0: replicas: 2,1. adding: 2. removing: 1." in ls.out, "--list shows the move", ls)
    ve = ok(tool(REASSIGN, *boot(3), "--verify", "--reassignment-json-file", plan))
    check(re.search(rf"Reassignment of partition {re.escape(topic)}-0 is still in progress", ve.out) is not None,
          "--verify: still in progress", ve)
    ca = ok(tool(REASSIGN, *boot(1), "--cancel", "--reassignment-json-file", plan))
    check(f"Successfully cancelled partition reassignment for: {topic}-0" in ca.out, "the move cancelled", ca)
    check("Clearing broker-level throttles on brokers" in ca.out, "the cancel clears the throttles", ca)
    ls = ok(tool(REASSIGN, *boot(3), "--list"))
    check("No partition reassignments found." in ls.out, "--list: nothing in progress", ls)

    def back():
        res, parts = describe_topic(2, topic)
        return parts.get(0, (-1, [], []))[:2] == (1, [1]), res

    poll(back, "the partition back on node 1 alone")


# --- kill -9 the active controller -------------------------------------------

def test_kill9_the_active_controller():
    killed = STATE["leader"]
    subprocess.run(["bash", str(CLUSTER), "kill9", str(DIR), str(killed)], check=True)
    STATE["killed"] = killed

    def elected():
        res, fields = quorum_status(alive()[0])
        leader = int(fields.get("LeaderId", "-1") or -1)
        return leader in alive(), res

    res = poll(elected, "a surviving node leads the quorum", timeout=TIMEOUT_S * 2)
    _, fields = quorum_status(alive()[1])
    check(int(fields.get("LeaderId", "-1")) in alive(), "both survivors name a surviving leader", res)
    check(voter_ids(fields) == IDS, "the killed node is still a voter", res)


def test_topics_describe_after_the_kill_rf1():
    if RF >= 2:
        pytest.skip("replication factor above 1: see test_topics_describe_after_the_kill")
    killed = STATE["killed"]
    want = {p: (-1 if leader == killed else leader) for p, leader in enumerate(STATE["leaders"])}

    def offline():
        res, parts = describe_topic(alive()[0], TOPIC)
        return {p: leader for p, (leader, _, _) in parts.items()} == want, res

    poll(offline, f"node {killed}'s partitions without a leader (Leader: none), the others kept theirs: {want}",
         timeout=TIMEOUT_S * 2)


def test_topics_describe_after_the_kill():
    if RF < 2:
        pytest.skip("replication factor 1: the killed node's partitions stay offline")
    killed = STATE["killed"]

    def moved():
        res, parts = describe_topic(alive()[0], TOPIC)
        done = len(parts) == PARTITIONS and all(
            leader in alive() and killed not in isr for leader, _, isr in parts.values())
        return done, res

    poll(moved, f"every leader moved off node {killed} and it left every ISR", timeout=TIMEOUT_S * 2)


def test_consume_everything_after_the_kill():
    if RF < 2:
        pytest.skip("replication factor 1: the killed node's records are unavailable")
    res, got = consume_all(alive(), name("after-kill"), len(RECORDS))
    ok(res)
    check(got == sorted(RECORDS), "a new group read every record through the survivors", res)


def test_groups_describe_after_the_kill():
    if RF < 2:
        pytest.skip("replication factor 1: the log end offsets of the killed node's partitions are unknown")
    internal_rf = int((DIR / "internal_rf").read_text())
    if internal_rf < 2 and STATE["coordinator"] == STATE["killed"]:
        pytest.skip("__consumer_offsets has 1 replica and its leader for the group was killed")
    res = ok(tool(GROUPS, *boot(*alive()), "--describe", "--group", STATE["group"]))
    _, rows = table(res, "GROUP")
    check(sorted(int(r["PARTITION"]) for r in rows if r.get("TOPIC") == TOPIC) == list(range(PARTITIONS)),
          "the group's committed offsets, described through the survivors", res)


def test_restarted_node_rejoins_the_quorum():
    killed = STATE["killed"]
    subprocess.run(["bash", str(CLUSTER), "restart", str(DIR), str(killed)], check=True)

    def caught_up():
        res = tool(QUORUM, *boot(killed), "describe", "--replication")
        if res.rc != 0:
            return False, res
        _, rows = table(res, "NodeId")
        lag = {int(r["NodeId"]): int(r["Lag"]) for r in rows if r["Lag"].lstrip("-").isdigit()}
        return sorted(lag) == IDS and lag[killed] == 0, res

    poll(caught_up, f"node {killed} back with lag 0", timeout=TIMEOUT_S * 2)
    STATE["restarted"] = STATE.pop("killed")


# --- preferred leader election -----------------------------------------------

ELECTED = "Successfully completed leader election (PREFERRED) for partitions "


def elected_partitions(res) -> set:
    """The partitions kafka-leader-election printed as elected (one line, a HashSet's order)."""
    lines = [line for line in res.out.splitlines() if line.startswith(ELECTED)]
    return set(lines[0][len(ELECTED):].split(", ")) if lines else set()


def test_leader_election_preferred_moves_leadership_back():
    if RF < 2:
        pytest.skip("replication factor 1: leadership never moved")
    restarted = STATE["restarted"]

    def back_in_sync():
        # Every topic's (the internal ones too): --all-topic-partitions
        # fails on a partition whose preferred replica is out of sync.
        res = tool(TOPICS, *boot(1), "--describe")
        rows = [([int(x) for x in m.group(3).split(",") if x], [int(x) for x in m.group(4).split(",") if x])
                for m in DESCRIBE_PART.finditer(res.out)]
        done = res.rc == 0 and len(rows) >= PARTITIONS and all(
            restarted in isr for replicas, isr in rows if restarted in replicas)
        return done, res

    res = poll(back_in_sync, f"node {restarted} back in the ISR of every partition it holds", timeout=TIMEOUT_S * 2)
    _, parts = describe_topic(1, TOPIC)
    # leader.imbalance.check.interval.seconds (300 s) has not passed: the
    # restarted node's preferred partitions are still led elsewhere.
    moved = sorted(p for p, (leader, replicas, _) in parts.items() if leader != replicas[0])
    check(len(moved) > 0 and all(parts[p][1][0] == restarted for p in moved),
          f"partitions {moved} wait for their preferred replica, node {restarted}", res)

    first = moved[0]
    res = ok(tool(ELECTION, *boot(2), "--election-type", "preferred", "--topic", TOPIC, "--partition", str(first)))
    check(res.out.strip() == f"{ELECTED}{TOPIC}-{first}", f"{TOPIC}-{first} elected", res)
    res = ok(tool(ELECTION, *boot(3), "--election-type", "PREFERRED", "--topic", TOPIC, "--partition", str(first)))
    check(res.out.strip() == f"Valid replica already elected for partitions {TOPIC}-{first}",
          f"{TOPIC}-{first}: nothing to do the second time", res)

    res = ok(tool(ELECTION, *boot(1), "--election-type", "preferred", "--all-topic-partitions"))
    mine = {p for p in elected_partitions(res) if p.rsplit("-", 1)[0] == TOPIC}
    check(mine == {f"{TOPIC}-{p}" for p in moved[1:]}, f"the other partitions of {TOPIC} elected: {moved[1:]}", res)
    check("Valid replica already elected" not in res.out and "Error" not in res.out,
          "every partition: only the elected ones are reported", res)

    _, parts = describe_topic(2, TOPIC)
    check(all(leader == replicas[0] for leader, replicas, _ in parts.values()),
          "every partition is led by its preferred replica", res)
    res = ok(tool(ELECTION, *boot(3), "--election-type", "preferred", "--all-topic-partitions"))
    check(elected_partitions(res) == set() and "Error" not in res.out, "nothing left to elect", res)
