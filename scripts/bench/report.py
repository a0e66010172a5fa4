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
    ("kbg_fetch_mib_s", "kbench consume through a group, MiB/s from the 1st record", "hi"),
    ("kbg_mib_s", "kbench consume through a group, MiB/s incl. the join", "hi"),
    ("kbg_first_record_s", "kbench consume through a group: time to first record, s", "lo"),
    ("kbp_vs_raw", "kbench produce / raw durable write (same round)", "hi"),
    ("e2e_p50_ms", "e2e 20k/s x 1 KiB, acks=all, linger 1 ms: p50, ms", "lo"),
    ("e2e_p99_ms", "e2e 20k/s x 1 KiB, acks=all, linger 1 ms: p99, ms", "lo"),
    ("e2e_p999_ms", "e2e 20k/s x 1 KiB, acks=all, linger 1 ms: p99.9, ms", "lo"),
    ("pp_cpu_per_gib", "broker CPU s per GiB: producer-perf-test", "lo"),
    ("cp_cpu_per_gib", "broker CPU s per GiB: consumer-perf-test", "lo"),
    ("kbp_cpu_per_gib", "broker CPU s per GiB: kbench produce", "lo"),
    ("kbc_cpu_per_gib", "broker CPU s per GiB: kbench consume", "lo"),
    ("kbg_cpu_per_gib", "broker CPU s per GiB: kbench consume through a group", "lo"),
    ("e2e_cpu_per_gib", "broker CPU s per GiB: e2e (of the records produced)", "lo"),
    ("all_cpu_per_gib", "broker CPU s per GiB: all four phases (perf-tests, kbench produce/consume)", "lo"),
    ("idle_rss_mib", "idle RSS (VmRSS 5 s after start), MiB", "lo"),
    ("peak_rss_mib", "peak RSS (VmHWM at the end, after e2e), MiB", "lo"),
    ("first_ack_s", "start-up: process spawn -> first acked record, s", "lo"),
    ("first_ack_setup_s", "start-up incl. storage format (Kafka), s", "lo"),
    ("kbp_client_cpu_s", "(info) kbench produce client CPU s", None),
    ("kbc_client_cpu_s", "(info) kbench consume client CPU s", None),
    ("e2e_rate", "(info) e2e achieved send rate, records/s", None),
    ("e2e_ack_p99_ms", "(info) e2e producer ack p99, ms", None),
    ("e2e_max_ms", "(info) e2e max latency, ms", None),
    ("cp_rebalance_ms", "(info) consumer-perf-test rebalance.time.ms", None),
    ("log_error_lines", "(info) ERROR lines in the broker log", None),
]
PHASES = [("pp", "producer-perf"), ("cp", "consumer-perf"), ("kbp", "kbench produce"), ("kbc", "kbench consume"),
          ("kbg", "kbench consume, group"), ("e2e", "kbench e2e")]

# The raw durable write is measured once per round (broker "disk"); each
# broker's kbench produce is divided by the figure of its own round.
raw = vals["raw_mib_s"].pop("disk", {})
for b, by_round in list(vals["kbp_mib_s"].items()):
    for r, v in by_round.items():
        if raw.get(r):
            vals["kbp_vs_raw"][b][r] = v / raw[r]

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
if raw:
    rv = [raw[r] for r in sorted(raw)]
    print(f"- raw durable write of the work dir's filesystem (1 GiB or the records' size, + fdatasync), "
          f"per round: {', '.join(fmt(v) for v in rv)} MiB/s (median {fmt(statistics.median(rv))})")
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
    if not any(vals[metric].values()):
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

# kbench e2e sends on a timer: if the client fell behind (a loaded machine),
# its latencies are those of an overloaded run, not of the target rate
target = int(env.get("e2e_rate_target", "0") or 0)
for b in ("kaskade", "kafka"):
    for r, v in sorted(vals["e2e_rate"][b].items()):
        if target and v < 0.95 * target:
            notes.append({"broker": b, "round": r, "note": f"e2e sent {v:,.0f} records/s of the {target:,} "
                          "asked: its latencies are of an overloaded run"})

if notes:
    print("\n### Notes (failures, broker log errors, overloaded runs)\n")
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
