#!/usr/bin/env bash
# Two Kaskade binaries side by side (a change's before and after), with kbench.
#
#   scripts/bench-ab.sh BASE_BIN NEW_BIN [--rounds N] [--records N] [--e2e-s S]
#
# Each round runs, for each binary in turn (the first alternates from round to
# round), from a fresh data dir:
#   produce  kbench produce, N x 1 KiB, 6 partitions, acks=all, linger 5 ms
#   consume  kbench consume of those N records (assign, no group)
#   group    the same through a consumer group (subscribe, --group); its
#            MiB/s includes the group join (group.initial.rebalance.delay.ms),
#            so the rate from the first record is shown too
#   e2e      kbench e2e at 20,000 records/s of 1 KiB, acks=all, linger 1 ms,
#            (partitions assigned, kbench's e2e has no group), for S seconds
# and prints one table of medians: MiB/s, broker CPU-s per GiB, e2e p99/p99.9,
# and the NEW/BASE ratio. Defaults: 3 rounds, 1,000,000 records, 20 s of e2e.
# KBENCH_BIN: kbench (built from ../shared/bench into target/kbench if missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KBENCH_BIN="${KBENCH_BIN:-$ROOT/target/kbench/release/kbench}"
usage() { awk 'NR>1 && !/^#/ {exit} NR>1 {sub(/^# ?/, ""); print}' "$0"; }
[ $# -ge 2 ] || { usage >&2; exit 2; }
BASE="$(realpath "$1")"; NEW="$(realpath "$2")"; shift 2
ROUNDS=3; RECORDS=1000000; E2E_S=20
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="${2:?}"; shift 2 ;;
        --records) RECORDS="${2:?}"; shift 2 ;;
        --e2e-s) E2E_S="${2:?}"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-ab: unknown argument: $1" >&2; exit 2 ;;
    esac
done
for b in "$BASE" "$NEW"; do [ -x "$b" ] || { echo "bench-ab: not executable: $b" >&2; exit 2; }; done
if [ ! -x "$KBENCH_BIN" ]; then
    (cd "$ROOT/../shared/bench" && CARGO_TARGET_DIR="$ROOT/target/kbench" cargo build --release -q) \
        || { echo "bench-ab: building kbench failed" >&2; exit 1; }
fi

WORK="$(mktemp -d "${BENCH_WORKDIR:-/tmp}/bench-ab.XXXXXX")"
RAW="$WORK/results.jsonl"
: >"$RAW"
PID=""
cleanup() {
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true
    rm -rf "$WORK"/data
}
trap cleanup EXIT
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run LABEL ROUND BIN: one broker, three phases; one JSON line per phase.
run() {
    local label=$1 round=$2 bin=$3 port out
    port=$(free_port)
    rm -rf "$WORK/data"
    # A free HTTP port too: other brokers on the machine may hold the default.
    "$bin" serve --data-dir "$WORK/data" --listeners "PLAINTEXT://127.0.0.1:$port" \
        --override "http.listener=127.0.0.1:$(free_port)" >"$WORK/$label-$round.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 100); do
        grep -q "listening on" "$WORK/$label-$round.log" && break
        sleep 0.05
    done
    local common=(--bootstrap "127.0.0.1:$port" --broker-pid "$PID")
    for phase in produce consume group e2e; do
        case $phase in
            produce) out=$("$KBENCH_BIN" produce "${common[@]}" --topic t --partitions 6 --records "$RECORDS" \
                --record-size 1024 --acks all --linger-ms 5 --batch-size 1000000 | tail -1) ;;
            consume) out=$("$KBENCH_BIN" consume "${common[@]}" --topic t --records "$RECORDS" | tail -1) ;;
            group) out=$("$KBENCH_BIN" consume "${common[@]}" --topic t --records "$RECORDS" --group "g$round" | tail -1) ;;
            e2e) out=$("$KBENCH_BIN" e2e "${common[@]}" --topic e --rate 20000 --duration-s "$E2E_S" \
                --record-size 1024 --acks all --linger-ms 1 | tail -1) ;;
        esac
        printf '{"label":"%s","round":%s,"phase":"%s","r":%s}\n' "$label" "$round" "$phase" "$out" >>"$RAW"
        log "$label round $round $phase: $out"
    done
    kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=""
}

for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then run base "$round" "$BASE"; run new "$round" "$NEW"
    else run new "$round" "$NEW"; run base "$round" "$BASE"; fi
done

python3 - "$RAW" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
GIB = 2**30
def fig(r, key):
    """One figure of a kbench result line, or None."""
    cpu = (r.get("cpu") or {}).get("broker_cpu_s")
    if key in ("mib_per_s", "fetch_mib_per_s"):
        return r.get(key)
    if key == "cpu_per_gib":
        moved = r.get("bytes") or (r.get("acked") or 0) * 1024
        return cpu / (moved / GIB) if cpu is not None and moved else None
    if key in ("p99", "p999"):
        return (r.get("e2e_latency_ms") or {}).get(key)
    return None
metrics = [
    ("produce", "MiB/s", "mib_per_s"),
    ("produce", "broker CPU-s/GiB", "cpu_per_gib"),
    ("consume", "MiB/s", "mib_per_s"),
    ("consume", "broker CPU-s/GiB", "cpu_per_gib"),
    ("group", "MiB/s (join included)", "mib_per_s"),
    ("group", "MiB/s from the first record", "fetch_mib_per_s"),
    ("group", "broker CPU-s/GiB", "cpu_per_gib"),
    ("e2e", "p99 ms", "p99"),
    ("e2e", "p99.9 ms", "p999"),
    ("e2e", "broker CPU-s/GiB", "cpu_per_gib"),
]
bad = [r for r in rows if not r["r"].get("ok")]
for r in bad:
    print(f"FAILED: {r['label']} round {r['round']} {r['phase']}: {r['r'].get('error')}")
print("| phase | figure | base (median) | new (median) | new/base |")
print("|---|---|---|---|---|")
for phase, name, key in metrics:
    med = {}
    for label in ("base", "new"):
        vals = [fig(r["r"], key) for r in rows if r["label"] == label and r["phase"] == phase]
        vals = [v for v in vals if v is not None]
        med[label] = statistics.median(vals) if vals else None
    b, n = med["base"], med["new"]
    ratio = f"{n / b:.2f}" if b and n is not None else "-"
    fmt = lambda v: "-" if v is None else f"{v:.2f}"
    print(f"| {phase} | {name} | {fmt(b)} | {fmt(n)} | {ratio} |")
sys.exit(1 if bad else 0)
EOF
