#!/usr/bin/env python3
"""Markdown report for bench-vs-kafka.sh: medians over rounds, Kaskade/Kafka.

usage: report.py results.jsonl commands.log env.txt
"""
import json, statistics, sys
from collections import defaultdict

raw_path, cmds_path, env_path = sys.argv[1:4]
vals = defaultdict(lambda: defaultdict(dict))   # metric -> broker -> round -> value
notes = []
for line in open(raw_path):
    line = line.strip()
    if not line:
        continue
    j = json.loads(line)
    if "note" in j:
        notes.append(j)
    else:
        vals[j["metric"]][j["broker"]][j["round"]] = j["value"]

# (metric, label, better: "hi" | "lo" | None)
ROWS = [
    ("pp_mib_s", "producer-perf-test throughput, MiB/s", "hi"),
    ("pp_rec_s", "producer-perf-test throughput, records/s", "hi"),
    ("pp_p99_ms", "producer-perf-test p99 latency, ms", "lo"),
    ("pp_avg_ms", "producer-perf-test avg latency, ms", "lo"),
    ("cp_mib_s", "consumer-perf-test MB.sec, MiB/s (incl. group join)", "hi"),
    ("cp_fetch_mib_s", "consumer-perf-test fetch.MB.sec, MiB/s", "hi"),
    ("kbp_mib_s", "kbench produce throughput, MiB/s", "hi"),
    ("kbp_rec_s", "kbench produce throughput, records/s", "hi"),
    ("kbp_p99_ms", "kbench produce p99 delivery latency, ms", "lo"),
    ("kbc_mib_s", "kbench consume throughput, MiB/s", "hi"),
    ("kbc_fetch_mib_s", "kbench consume fetch rate (after 1st record), MiB/s", "hi"),
    ("kbc_first_record_s", "kbench consume time to first record, s", "lo"),
    ("pp_cpu_per_gib", "broker CPU s per GiB: producer-perf-test", "lo"),
    ("cp_cpu_per_gib", "broker CPU s per GiB: consumer-perf-test", "lo"),
    ("kbp_cpu_per_gib", "broker CPU s per GiB: kbench produce", "lo"),
    ("kbc_cpu_per_gib", "broker CPU s per GiB: kbench consume", "lo"),
    ("all_cpu_per_gib", "broker CPU s per GiB: all four phases", "lo"),
    ("idle_rss_mib", "idle RSS (VmRSS 5 s after start), MiB", "lo"),
    ("peak_rss_mib", "peak RSS (VmHWM at the end), MiB", "lo"),
    ("first_ack_s", "start-up: process spawn -> first acked record, s", "lo"),
    ("first_ack_setup_s", "start-up incl. storage format (Kafka), s", "lo"),
    ("kbp_client_cpu_s", "(info) kbench produce client CPU s", None),
    ("kbc_client_cpu_s", "(info) kbench consume client CPU s", None),
    ("cp_rebalance_ms", "(info) consumer-perf-test rebalance.time.ms", None),
    ("log_error_lines", "(info) ERROR lines in the broker log", None),
]
PHASES = [("pp", "producer-perf"), ("cp", "consumer-perf"), ("kbp", "kbench produce"), ("kbc", "kbench consume")]

def med(metric, broker):
    v = list(vals[metric][broker].values())
    return statistics.median(v) if v else None

def fmt(x):
    if x is None:
        return "n/a"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"

env = dict(l.rstrip("\n").split("=", 1) for l in open(env_path) if "=" in l)
rounds = sorted({r for m in vals.values() for b in m.values() for r in b})
print("## Kaskade vs Apache Kafka\n")
print(f"- date: {env.get('date')}; machine: {env.get('host')}")
print(f"- load average at start / end: {env.get('load_at_start')} / {env.get('load_at_end')}")
print(f"- Kaskade: {env.get('kaskade')}")
print(f"- Kafka: {env.get('kafka')}")
print(f"- {env.get('records')}; rounds run: {len(rounds)}; total wall time {env.get('wall_s')} s")
print(f"- work dir: {env.get('workdir')}")
print("- figures are medians over the rounds; the first broker alternates each round; one broker runs at a time,")
print("  each from a fresh data dir; clients run on the same machine (MiB = 2^20 B of record values)\n")

print("| metric | Kaskade | Kafka | Kaskade/Kafka |")
print("|---|---:|---:|---:|")
for metric, label, better in ROWS:
    k, a = med(metric, "kaskade"), med(metric, "kafka")
    if k is None and a is None:
        continue
    ratio = "n/a"
    if k is not None and a:
        r = k / a
        tag = ""
        if better == "hi":
            tag = " (better)" if r > 1.05 else (" (WORSE)" if r < 0.95 else "")
        elif better == "lo":
            tag = " (better)" if r < 0.95 else (" (WORSE)" if r > 1.05 else "")
        ratio = (f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x") + tag
    print(f"| {label} | {fmt(k)} | {fmt(a)} | {ratio} |")

print("\n### Per round (Kaskade / Kafka)\n")
print("| metric | " + " | ".join(f"round {r}" for r in rounds) + " |")
print("|---|" + "---:|" * len(rounds))
for metric, label, _ in ROWS:
    if not vals[metric]:
        continue
    cells = []
    for r in rounds:
        cells.append(f"{fmt(vals[metric]['kaskade'].get(r))} / {fmt(vals[metric]['kafka'].get(r))}")
    print(f"| {label} | " + " | ".join(cells) + " |")

print("\n### Machine state at each phase (1-min load average; running rustc processes), Kaskade / Kafka\n")
print("| phase | " + " | ".join(f"round {r}" for r in rounds) + " |")
print("|---|" + "---|" * len(rounds))
for p, name in PHASES:
    cells = []
    for r in rounds:
        def one(b):
            la = vals[f"{p}_load1"][b].get(r)
            rc = vals[f"{p}_rustc"][b].get(r)
            return "n/a" if la is None else f"{la:.2f}; {int(rc)}"
        cells.append(f"{one('kaskade')} / {one('kafka')}")
    print(f"| {name} | " + " | ".join(cells) + " |")

if notes:
    print("\n### Notes (failures, broker log errors)\n")
    for n in notes:
        print(f"- {n['broker']} round {n['round']}: {n['note']}")

print("\n### Commands\n")
print("```sh")
seen = {}
for line in open(cmds_path):
    b, cmd = line.rstrip("\n").split("\t", 1)
    seen.setdefault(cmd, set()).add(b)
for cmd, bs in seen.items():
    who = "both" if len(bs) == 2 else next(iter(bs))
    print(f"# {who}\n{cmd}")
print("```")
print("\nStart-up is measured by scripts/bench/first_ack.py (confluent_kafka/librdkafka, acks=all, one")
print("record to an auto-created topic, retried every few ms from before the spawn); broker CPU is")
print("utime+stime of the broker PID from /proc/PID/stat around each command.")
