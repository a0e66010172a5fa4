#!/usr/bin/env python3
"""Turn one tool's stdout into "metric value" lines for bench-vs-kafka.sh.

usage: parse.py pp|cp|kbp|kbc|kbg|e2e EXPECTED_RECORDS < tool.out
  pp   kafka-producer-perf-test (ProducerPerformance): the final summary line
  cp   kafka-consumer-perf-test (ConsumerPerformance): the CSV line after the header
  kbp  kbench produce (last stdout line: JSON)
  kbc  kbench consume, partitions assigned (last stdout line: JSON)
  kbg  kbench consume --group (last stdout line: JSON)
  e2e  kbench e2e (last stdout line: JSON); EXPECTED_RECORDS = rate x duration
Exits 1 (printing nothing) if the output is not a complete, successful run.
"""
import json, re, sys

kind, expected = sys.argv[1], int(sys.argv[2])
text = sys.stdin.read()
out = {}

def fail(msg):
    print(f"parse.py {kind}: {msg}", file=sys.stderr)
    sys.exit(1)

if kind == "pp":
    # "1000000 records sent, 95238.1 records/sec (93.01 MB/sec), 310.2 ms avg latency,
    #  1234.0 ms max latency, 290 ms 50th, 700 ms 95th, 900 ms 99th, 1100 ms 99.9th."
    lines = [l for l in text.splitlines() if "records sent" in l and "99th" in l]
    if not lines:
        fail("no summary line")
    l = lines[-1]
    n = int(re.search(r"(\d+) records sent", l).group(1))
    if n != expected:
        fail(f"{n} records sent, expected {expected}")
    m = re.search(r"([\d.]+) records/sec \(([\d.]+) MB/sec\)", l)
    out["pp_rec_s"], out["pp_mib_s"] = float(m.group(1)), float(m.group(2))
    out["pp_avg_ms"] = float(re.search(r"([\d.]+) ms avg latency", l).group(1))
    out["pp_p50_ms"] = float(re.search(r"([\d.]+) ms 50th", l).group(1))
    out["pp_p99_ms"] = float(re.search(r"([\d.]+) ms 99th", l).group(1))
    out["pp_max_ms"] = float(re.search(r"([\d.]+) ms max latency", l).group(1))
elif kind == "cp":
    lines = text.splitlines()
    hdr = next((i for i, l in enumerate(lines) if l.startswith("start.time")), None)
    if hdr is None or hdr + 1 >= len(lines):
        fail("no result line")
    cols = [c.strip() for c in lines[hdr].split(",")]
    vals = [v.strip() for v in lines[hdr + 1].split(",")]
    row = dict(zip(cols, vals))
    n = int(float(row["data.consumed.in.nMsg"]))
    if n < expected:
        fail(f"{n} records consumed, expected {expected}")
    out["cp_mib_s"] = float(row["MB.sec"])
    out["cp_rec_s"] = float(row["nMsg.sec"])
    out["cp_fetch_mib_s"] = float(row["fetch.MB.sec"])
    out["cp_rebalance_ms"] = float(row["rebalance.time.ms"])
elif kind in ("kbp", "kbc", "kbg", "e2e"):
    last = [l for l in text.splitlines() if l.strip().startswith("{")]
    if not last:
        fail("no JSON line")
    j = json.loads(last[-1])
    if not j.get("ok"):
        fail(f"kbench failed: {j.get('error')}")
    cpu = j.get("cpu") or {}
    if kind == "kbp":
        if j.get("acked") != expected:
            fail(f"{j.get('acked')} acked, expected {expected}")
        out["kbp_mib_s"] = j["mib_per_s"]
        out["kbp_rec_s"] = j["records_per_s"]
        out["kbp_p50_ms"] = j["latency_ms"]["p50"]
        out["kbp_p99_ms"] = j["latency_ms"]["p99"]
    elif kind == "e2e":
        # kbench fails the run unless every record was sent, acked and
        # received; checked here too, so that a partial run never counts
        for k in ("sent", "acked", "received"):
            if j.get(k) != expected:
                fail(f"{k} {j.get(k)}, expected {expected}")
        lat, ack = j["e2e_latency_ms"], j["ack_latency_ms"]
        out["e2e_p50_ms"] = lat["p50"]
        out["e2e_p99_ms"] = lat["p99"]
        out["e2e_p999_ms"] = lat["p999"]
        out["e2e_max_ms"] = lat["max"]
        out["e2e_ack_p99_ms"] = ack["p99"]
        out["e2e_rate"] = j["achieved_rate"]
    else:
        if j.get("records", 0) < expected:
            fail(f"{j.get('records')} records read, expected {expected}")
        out[f"{kind}_mib_s"] = j["mib_per_s"]
        out[f"{kind}_rec_s"] = j["records_per_s"]
        out[f"{kind}_fetch_mib_s"] = j["fetch_mib_per_s"]
        out[f"{kind}_first_record_s"] = j["first_record_s"]
    if cpu.get("client_cpu_s") is not None:
        out[f"{kind}_client_cpu_s"] = cpu["client_cpu_s"]
    if cpu.get("broker_cpu_s") is not None:
        out[f"{kind}_kbench_broker_cpu_s"] = cpu["broker_cpu_s"]
else:
    fail("unknown kind")

for k, v in out.items():
    print(k, v)
