#!/usr/bin/env python3
"""Results and markdown report of scripts/bench-scaling.sh.

usage:
  scaling_report.py add RAW STEP ROUND [KEY=VALUE ...] [-- KIND EXPECTED FILE ...]
      appends one line to RAW (JSON lines). KEY=VALUE are figures of the step
      (numbers) or note=TEXT. KIND produce|consume reads kbench's JSON (the
      last stdout line) of each FILE: the run counts only if every kbench
      succeeded and they acked (produce) or read (consume) EXPECTED records
      in all; else a note says why.
  scaling_report.py report RAW ENV BASE_PARTITIONS
      medians over the rounds per step, and each figure's per-round ratio to
      the BASE_PARTITIONS-partition step of the same round (median of those).

Steps are "pP" (P partitions, one producer) and "kK" (K producers on
BASE_PARTITIONS partitions). MiB = 2^20 B of record values.
"""
import json, statistics, sys
from collections import defaultdict

MIB, GIB = 2**20, 2**30
BAR = 0.25  # issue 17 target 5: within 25% of the 6-partition figure


def last_json(path):
    with open(path) as f:
        lines = [l for l in f if l.strip().startswith("{")]
    if not lines:
        raise ValueError(f"{path}: no JSON line")
    return json.loads(lines[-1])


def kbench_figures(kind, expected, paths, fig):
    """Figures of one phase's kbench outputs, or raise ValueError."""
    runs = [last_json(p) for p in paths]
    for j in runs:
        if not j.get("ok"):
            raise ValueError(f"kbench {kind} failed: {j.get('error')}")
    out = {}
    if kind == "produce":
        acked = sum(j.get("acked") or 0 for j in runs)
        if acked != expected:
            raise ValueError(f"{acked} records acked, expected {expected}")
        size = runs[0]["config"]["record_size"]
        moved = acked * size
        slowest = max(j["elapsed_s"] for j in runs)
        if slowest <= 0:
            raise ValueError("elapsed_s is 0")
        out["produce_mib_s"] = moved / MIB / slowest
        out["produce_p99_ms"] = max(j["latency_ms"]["p99"] for j in runs)
        if "produce_wall_s" in fig:
            out["produce_wall_mib_s"] = moved / MIB / fig["produce_wall_s"]
    elif kind == "consume":
        if len(runs) != 1:
            raise ValueError("one consumer expected")
        j = runs[0]
        if (j.get("records") or 0) < expected:
            raise ValueError(f"{j.get('records')} records read, expected {expected}")
        moved = j["bytes"]
        out["consume_mib_s"] = j["mib_per_s"]
        out["consume_fetch_mib_s"] = j["fetch_mib_per_s"]
        out["consume_first_record_s"] = j["first_record_s"]
    else:
        raise ValueError(f"unknown kind {kind}")
    cpu = fig.get(f"{kind}_cpu_s")
    if cpu is not None:
        out[f"{kind}_cpu_per_gib"] = cpu / (moved / GIB)
    return out


def add(argv):
    raw, step, rnd = argv[0], argv[1], int(argv[2])
    rest = argv[3:]
    kb = None
    if "--" in rest:
        i = rest.index("--")
        rest, kb = rest[:i], rest[i + 1:]
    fig, notes = {}, []
    for kv in rest:
        k, v = kv.split("=", 1)
        if k == "note":
            notes.append(v)
        else:
            fig[k] = float(v)
    if kb:
        kind, expected, paths = kb[0], int(kb[1]), kb[2:]
        try:
            fig.update(kbench_figures(kind, expected, paths, fig))
        except (ValueError, KeyError, OSError) as e:
            notes.append(f"{kind} not counted: {e}")
            print(f"scaling_report.py: {step} round {rnd}: {kind} not counted: {e}", file=sys.stderr)
    with open(raw, "a") as f:
        f.write(json.dumps({"step": step, "round": rnd, "fig": fig, "notes": notes}) + "\n")


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


def fmt_int(x):
    return "n/a" if x is None else f"{x:,.0f}"


def report(argv):
    raw, env_path, base_p = argv[0], argv[1], int(argv[2])
    data = defaultdict(lambda: defaultdict(dict))  # step -> round -> figure -> value
    notes, order = [], []
    for line in open(raw):
        if not line.strip():
            continue
        j = json.loads(line)
        if j["step"] not in order:
            order.append(j["step"])
        data[j["step"]][j["round"]].update(j["fig"])
        notes += [(j["step"], j["round"], n) for n in j["notes"]]
    base = f"p{base_p}"
    rounds = sorted({r for s in data.values() for r in s})

    def med(step, key):
        v = [f[key] for f in data[step].values() if key in f]
        return statistics.median(v) if v else None

    def ratio(step, key, base_key, better):
        """Median over the rounds of step/base in the same round; marked if beyond the bar."""
        v = []
        for r, f in data[step].items():
            b = data[base].get(r, {}).get(base_key)
            if key in f and b:
                v.append(f[key] / b)
        if not v:
            return "n/a"
        x = statistics.median(v)
        out = x < 1 - BAR if better == "hi" else x > 1 + BAR
        return f"{x:.2f}x" + (" **OUT**" if out else "")

    env = dict(l.rstrip("\n").split("=", 1) for l in open(env_path) if "=" in l)
    print("## Kaskade: produce and consume vs partitions and producers\n")
    print(f"- date: {env.get('date')}; machine: {env.get('host')}")
    print(f"- load average at start / end: {env.get('load_at_start')} / {env.get('load_at_end')}")
    print(f"- Kaskade: {env.get('kaskade')}")
    print(f"- {env.get('records')}; rounds run: {len(rounds)}; total wall time {env.get('wall_s')} s")
    print(f"- work dir: {env.get('workdir')}")
    print("- a fresh broker and data dir per step; figures are medians over the rounds; \"vs 6\" is the median of")
    print(f"  the per-round ratios to the {base_p}-partition, 1-producer step of the same round; **OUT** marks")
    print(f"  a ratio more than {BAR:.0%} worse (issue 17 target 5's bar); broker CPU is per GiB of record values\n")

    psteps = [s for s in order if s.startswith("p")]
    ksteps = [s for s in order if s.startswith("k")]
    if psteps:
        print("### Partitions (1 producer, acks=all; consume with partitions assigned)\n")
        print("| partitions | produce MiB/s | vs 6 | produce CPU-s/GiB | vs 6 | consume MiB/s | vs 6 "
              "| consume CPU-s/GiB | vs 6 | consume: 1st record, s | produce p99, ms | topic create, s "
              "| open files | peak RSS MiB |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for s in psteps:
            cells = [fmt_int(med(s, "partitions"))]
            for key, better in (("produce_mib_s", "hi"), ("produce_cpu_per_gib", "lo"),
                                ("consume_mib_s", "hi"), ("consume_cpu_per_gib", "lo")):
                cells += [fmt(med(s, key)), ratio(s, key, key, better)]
            cells += [fmt(med(s, k)) for k in ("consume_first_record_s", "produce_p99_ms", "create_s")]
            cells += [fmt_int(med(s, k)) for k in ("open_files", "peak_rss_mib")]
            print("| " + " | ".join(cells) + " |")
        print()
    if ksteps:
        print(f"### Producers (K kbench processes at once, N/K records each, {base_p} partitions, acks=all)\n")
        print("| producers | produce MiB/s | vs 6 | produce CPU-s/GiB | vs 6 | MiB/s over the script's wall "
              "| worst process's p99, ms | peak RSS MiB |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for s in ksteps:
            cells = [fmt_int(med(s, "producers"))]
            for key, better in (("produce_mib_s", "hi"), ("produce_cpu_per_gib", "lo")):
                cells += [fmt(med(s, key)), ratio(s, key, key, better)]
            cells += [fmt(med(s, k)) for k in ("produce_wall_mib_s", "produce_p99_ms")]
            cells += [fmt_int(med(s, "peak_rss_mib"))]
            print("| " + " | ".join(cells) + " |")
        print()

    print("### Per round: produce MiB/s, CPU-s/GiB; consume MiB/s, CPU-s/GiB\n")
    print("| step | " + " | ".join(f"round {r}" for r in rounds) + " |")
    print("|---|" + "---|" * len(rounds))
    for s in order:
        cells = []
        for r in rounds:
            f = data[s].get(r, {})
            c = f"{fmt(f.get('produce_mib_s'))}, {fmt(f.get('produce_cpu_per_gib'))}"
            if s.startswith("p"):
                c += f"; {fmt(f.get('consume_mib_s'))}, {fmt(f.get('consume_cpu_per_gib'))}"
            cells.append(c)
        label = f"partitions {s[1:]}" if s.startswith("p") else f"producers {s[1:]}"
        print(f"| {label} | " + " | ".join(cells) + " |")

    errs = [(s, r, f["log_error_lines"]) for s in order for r, f in data[s].items()
            if f.get("log_error_lines")]
    if notes or errs:
        print("\n### Notes (failures, broker log errors)\n")
        for s, r, n in notes:
            print(f"- {s} round {r}: {n}")
        for s, r, n in errs:
            print(f"- {s} round {r}: {int(n)} ERROR lines in the broker log")

    print("\n### Commands\n")
    print("```sh")
    print("kaskade serve --data-dir DIR --listeners PLAINTEXT://$BOOTSTRAP --override http.listener=")
    print("kaskade topic create --bootstrap-server $BOOTSTRAP -p P -r 1 scale-pP    # not counted")
    print("kbench produce --bootstrap $BOOTSTRAP --topic scale-pP --partitions P --records N --record-size 1024 "
          "--acks all --timeout-s 1500 --broker-pid $BROKER_PID")
    print("kbench consume --bootstrap $BOOTSTRAP --topic scale-pP --records N --timeout-s 1500 "
          "--broker-pid $BROKER_PID")
    print(f"# K of these at once, N/K records each, into scale-kK ({base_p} partitions, created first):")
    print(f"kbench produce --bootstrap $BOOTSTRAP --topic scale-kK --partitions {base_p} --records N/K "
          "--record-size 1024 --acks all --timeout-s 1500")
    print("```")


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("add", "report"):
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    (add if sys.argv[1] == "add" else report)(sys.argv[2:])


main()
