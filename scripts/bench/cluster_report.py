#!/usr/bin/env python3
"""Markdown report for bench-cluster.sh: medians (min-max) over rounds,
ratios against the same run's baseline, the load average of every figure.

usage: cluster_report.py results.jsonl
"""
import json
import statistics
import sys
from collections import defaultdict

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
by = defaultdict(list)  # (scenario, variant) -> rows
for r in rows:
    by[(r["scenario"], r["variant"])].append(r)


def ok(rs):
    return [r for r in rs if r["result"].get("ok")]


def med(values):
    return statistics.median(values) if values else None


def span(values, unit="", digits=2):
    """median (min-max) of values"""
    if not values:
        return "-"
    f = f"{{:.{digits}f}}"
    m = f.format(med(values))
    if len(values) == 1:
        return f"{m}{unit}"
    return f"{m}{unit} ({f.format(min(values))}-{f.format(max(values))})"


def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"


def loads(rs):
    firsts = [float(x) for r in rs for x in (r["load_before"].split()[0], r["load_after"].split()[0])]
    return f"{min(firsts):.1f}-{max(firsts):.1f}" if firsts else "-"


def failures(rs):
    bad = [r for r in rs if not r["result"].get("ok")]
    for r in bad:
        print(f"- **FAILED** {r['scenario']} {r['variant']} round {r['round']}: {r['result'].get('error')}")
    if bad:
        print()


def ms(s):
    return s * 1000.0


out = print

if any(s == "create" for s, _ in by):
    out("## Creating many partitions (issue 13)\n")
    out("One node (node 1) receives the CreateTopics requests, one after the other; \"every node\" is the time from")
    out("the first request until the Metadata of each of the 3 nodes lists every partition with a leader.")
    out("A fresh cluster per row and round.\n")
    out("| variant | rounds | answered, s | every node shows all leaders, s | vs RF 1 | load avg (1 min) |")
    out("|---|---|---|---|---|---|")
    base = med([r["result"]["all_leaders_s"] for r in ok(by[("create", "rf1")])])
    for v in ("one", "ten", "rf1"):
        rs = ok(by[("create", v)])
        if not rs:
            continue
        x = rs[0]["result"]
        t, n, rf = {"one": (1, "N", 3), "ten": (10, "N/10", 3), "rf1": (1, "N", 1)}[v]
        name = f"{x.get('topics', t)} x {x.get('partitions', n)} partitions, RF {x.get('rf', rf)}"
        names = {v: name + (" (baseline)" if v == "rf1" else "")}
        allv = [r["result"]["all_leaders_s"] for r in rs]
        out(f"| {names[v]} | {len(rs)} | {span([r['result']['ack_s'] for r in rs])} | {span(allv)} | "
            f"{ratio(med(allv), base)} | {loads(by[('create', v)])} |")
    out()
    failures(sum((by[("create", v)] for v in ("one", "ten", "rf1")), []))

if by[("propagation", "changes")]:
    rs = ok(by[("propagation", "changes")])
    out("## A metadata change reaching every broker (issue 13)\n")
    out("CreateTopics (1 partition, RF 3) sent to node 1, 2, 3 in turn; from its answer until the Metadata of")
    out("every node lists the topic with a leader (each node polled on its own connection, ~2 ms apart).\n")
    out("| run | changes | CreateTopics answered, ms p50 / p99 | every node lists it, ms p50 / p99 | max | load avg |")
    out("|---|---|---|---|---|---|")
    pool_ack, pool_all = [], []
    for r in rs:
        res = r["result"]
        pool_ack += res["ack_s"]
        pool_all += res["every_node_s"]
        out(f"| {r['round']} | {res['every_node']['n']} | {ms(res['ack']['p50']):.1f} / {ms(res['ack']['p99']):.1f} | "
            f"{ms(res['every_node']['p50']):.1f} / {ms(res['every_node']['p99']):.1f} | "
            f"{ms(res['every_node']['max']):.1f} | {loads([r])} |")
    if pool_all:
        def p(v, q):
            s = sorted(v)
            return s[max(0, min(len(s) - 1, -(-q * len(s) // 100) - 1))]
        out(f"| all | {len(pool_all)} | {ms(p(pool_ack, 50)):.1f} / {ms(p(pool_ack, 99)):.1f} | "
            f"{ms(p(pool_all, 50)):.1f} / {ms(p(pool_all, 99)):.1f} | {ms(max(pool_all)):.1f} | "
            f"{loads(by[('propagation', 'changes')])} |")
    out()
    failures(by[("propagation", "changes")])

if by[("controller", "kills")]:
    out("## Active-controller failover (issue 13)\n")
    out("kill -9 of the active controller (the metadata quorum's leader, from DescribeQuorum), then CreateTopics")
    out("(1 partition, RF 1) to the two survivors in turn, 10 ms apart, until one succeeds; the killed node is")
    out("restarted and the cluster healthy again before the next round. Baseline: the same CreateTopics without")
    out("a kill, in the same run.\n")
    for r in by[("controller", "kills")]:
        res = r["result"]
        if not res.get("ok"):
            continue
        b, f = res["baseline"], res["failover"]
        out("| | n | p50, s | p99, s | min, s | max, s | load avg |")
        out("|---|---|---|---|---|---|---|")
        out(f"| CreateTopics, no fault (baseline) | {b['n']} | {b['p50']:.3f} | {b['p99']:.3f} | {b['min']:.3f} | "
            f"{b['max']:.3f} | |")
        out(f"| kill -9 of the active controller -> CreateTopics succeeds | {f['n']} | {f['p50']:.3f} | "
            f"{f['p99']:.3f} | {f['min']:.3f} | {f['max']:.3f} | {loads([r])} |")
        errs = defaultdict(int)
        for rd in res["rounds"]:
            for k, v in rd["errors"].items():
                errs[k] += v
        out(f"\nFailover p50 = {ratio(f['p50'], b['p50'])} the baseline's p50. Error answers before the success, "
            f"summed over the rounds: {dict(errs) or 'none (the survivor held the request until it succeeded)'}. Restart of the killed node (exec to serving): "
            f"{span([rd['restart_s'] for rd in res['rounds']], ' s', 1)}.\n")
    failures(by[("controller", "kills")])

if any(s == "produce" for s, _ in by):
    out("## Produce with replication (issue 14)\n")
    out("`kbench produce --records R --record-size 1024 --acks all --partitions 6` (librdkafka, linger 5 ms,")
    out("non-idempotent) with the bootstrap list of all 3 nodes; a new topic per run, the variants interleaved")
    out("within each round on one cluster. Lazy = topic `flush.messages=9223372036854775807` (Kafka's default for")
    out("`log.flush.interval.messages`: no fsync per append, rely on replication); durable = Kaskade's default")
    out("(`flush.messages=1`, set on the topic: on Kaskade an acks=all answer means the batch is fsynced on every")
    out("ISR member; on Kafka each replica fsyncs every append but acks=all does not wait for the followers' fsync).\n")
    out("| variant | runs | MiB/s | vs RF 1 durable | p99 latency, ms | vs RF 1 durable | load avg |")
    out("|---|---|---|---|---|---|---|")
    base_t = med([r["result"]["mib_per_s"] for r in ok(by[("produce", "rf1")])])
    base_l = med([r["result"]["latency_ms"]["p99"] for r in ok(by[("produce", "rf1")])])
    names = {"rf1": "RF 1, durable (baseline)", "rf3": "RF 3, min.insync.replicas=2, durable",
             "rf3-lazy": "RF 3, min.insync.replicas=2, lazy", "rf1-lazy": "RF 1, lazy"}
    for v in ("rf1", "rf3", "rf3-lazy", "rf1-lazy"):
        rs = ok(by[("produce", v)])
        if not by[("produce", v)]:
            continue
        t = [r["result"]["mib_per_s"] for r in rs]
        lat = [r["result"]["latency_ms"]["p99"] for r in rs]
        out(f"| {names[v]} | {len(rs)} | {span(t, '', 1)} | {ratio(med(t), base_t)} | {span(lat, '', 0)} | "
            f"{ratio(med(lat), base_l)} | {loads(by[('produce', v)])} |")
    out()
    failures(sum((by[("produce", v)] for v in ("rf1", "rf3", "rf3-lazy", "rf1-lazy")), []))

if by[("leader", "kills")]:
    out("## Partition-leader failover (issue 14)\n")
    out("One partition, RF 3, min.insync.replicas=2; a confluent-kafka (librdkafka) producer with")
    out("enable.idempotence=true, acks=all, linger.ms=1 sends one 100-byte record every 5 ms. kill -9 of the")
    out("partition leader; the figure is the time until the first record *sent after the kill* is acknowledged.")
    out("The killed node is restarted and back in the ISR before the next round. A leader that was also the")
    out("active controller needs a controller failover first: those rounds are shown apart.")
    out("Baseline: the same producer's acknowledgement latency before the first kill.\n")
    for r in by[("leader", "kills")]:
        res = r["result"]
        if not res.get("ok"):
            continue
        out("| | n | p50, s | p99, s | min, s | max, s | load avg |")
        out("|---|---|---|---|---|---|---|")
        for label, key in (("acknowledgement latency, no fault (baseline)", "baseline_ack"),
                           ("kill -9 of the leader -> acknowledged again (all rounds)", "failover"),
                           ("... leader only", "failover_leader_only"),
                           ("... leader that was also the active controller", "failover_leader_and_controller")):
            s = res.get(key)
            if s:
                out(f"| {label} | {s['n']} | {s['p50']:.3f} | {s['p99']:.3f} | {s['min']:.3f} | {s['max']:.3f} | "
                    f"{loads([r]) if key == 'failover' else ''} |")
        out(f"\nRead back after the last round: {res['sent']} sent, {res['acked']} acknowledged, "
            f"{res['delivery_errors']} delivery errors, {res['read']} read (high watermark {res['high_watermark']}); "
            f"acknowledged but missing: {res['lost_acked']}, duplicates: {res['duplicates']}, "
            f"out of order: {res['out_of_order']}.\n")
    failures(by[("leader", "kills")])

if by[("rereplicate", "wipe")]:
    out("## Re-replicating a wiped replica (issue 14)\n")
    pre = ok(by[("rereplicate", "preload")])
    n = pre[0]["result"]["acked"] if pre else 0
    out(f"Topic of 3 partitions, RF 3, min.insync.replicas=2, filled by `kbench produce --records {n}")
    out(f"--record-size 1024 --acks all` ({n * 1024 / 2**20:.0f} MiB of values). Each round: kill -9 of a node that is not the active")
    out("controller, its data directory removed, wait until it has left every ISR, restart; times from the")
    out("restart. \"Same batches\": its copy of every partition holds the same batches (offsets, epochs, bytes)")
    out("as another replica's, read from the files.\n")
    if pre:
        p = pre[0]["result"]
        out(f"Baseline, same run: producing the data took {p['acked'] * 1024 / 2**20 / p['mib_per_s']:.1f} s "
            f"({p['mib_per_s']:.1f} MiB/s acks=all, load {loads(pre)}).\n")
    for r in by[("rereplicate", "wipe")]:
        res = r["result"]
        if not res.get("ok"):
            continue
        out("| round | node | serving, s | back in every ISR, s | same batches, s | MiB | MiB/s to same |")
        out("|---|---|---|---|---|---|---|")
        for i, rd in enumerate(res["rounds"], 1):
            mib = rd["bytes"] / 2**20
            out(f"| {i} | {rd['victim']} | {rd['serving_s']:.1f} | {rd['in_isr_s']:.1f} | {rd['identical_s']:.1f} | "
                f"{mib:.0f} | {mib / rd['identical_s']:.1f} |")
        out(f"\nMedian: back in every ISR {span([x['in_isr_s'] for x in res['rounds']], ' s', 1)}, same batches "
            f"{span([x['identical_s'] for x in res['rounds']], ' s', 1)}; load {loads([r])}.\n")
    failures(by[("rereplicate", "wipe")] + by[("rereplicate", "preload")])
