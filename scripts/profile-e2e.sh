#!/usr/bin/env bash
# Where a broker's CPU goes under kbench's small-batch e2e load (issue 17,
# target 3): 20,000 records/s of 1 KiB, acks=all, linger 1 ms.
#
#   scripts/profile-e2e.sh BIN [--seconds S] [--record]
#
# Starts BIN on a fresh data dir, runs `kbench e2e` for S seconds (default
# 20) and, over the middle of the run, counts the broker's context switches
# and CPU time (`perf stat`) and its Produce and Fetch requests (/metrics).
# Prints broker CPU-s per GiB, e2e p99/p99.9, and per request: CPU
# microseconds and context switches. --record also samples call graphs
# (`perf record -g`) into WORK/perf.data and prints the top symbols.
# KBENCH_BIN: kbench (default: target/kbench/release/kbench);
# BENCH_WORKDIR: where the work dir goes (default /tmp); KASKADE_OVERRIDES:
# space-separated KEY=VALUE passed as `--override` (none by default);
# PERF_EVENTS: more `perf stat` events, comma-separated, printed per second
# (e.g. syscalls:sys_enter_fdatasync,syscalls:sys_enter_syncfs).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KBENCH_BIN="${KBENCH_BIN:-$ROOT/target/kbench/release/kbench}"
usage() { awk 'NR>1 && !/^#/ {exit} NR>1 {sub(/^# ?/, ""); print}' "$0"; }
[ $# -ge 1 ] || { usage >&2; exit 2; }
BIN="$(realpath "$1")"; shift
SECONDS_RUN=20; RECORD=0
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) SECONDS_RUN="${2:?}"; shift 2 ;;
        --record) RECORD=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "profile-e2e: unknown argument: $1" >&2; exit 2 ;;
    esac
done
command -v perf >/dev/null || { echo "profile-e2e: needs perf (apt-get install linux-perf)" >&2; exit 2; }
[ -x "$KBENCH_BIN" ] || { echo "profile-e2e: no kbench at $KBENCH_BIN" >&2; exit 2; }

WORK="$(mktemp -d "${BENCH_WORKDIR:-/tmp}/profile-e2e.XXXXXX")"
PID=""
cleanup() { if [ -n "$PID" ]; then kill -9 "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; rm -rf "$WORK/data"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(free_port); http=$(free_port)
OV=()
for o in ${KASKADE_OVERRIDES:-}; do OV+=(--override "$o"); done
"$BIN" serve --data-dir "$WORK/data" --listeners "PLAINTEXT://127.0.0.1:$port" \
    --override "http.listener=127.0.0.1:$http" "${OV[@]}" >"$WORK/broker.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do grep -q "listening on" "$WORK/broker.log" && break; sleep 0.05; done

"$KBENCH_BIN" e2e --bootstrap "127.0.0.1:$port" --broker-pid "$PID" --topic e --rate 20000 \
    --duration-s "$SECONDS_RUN" --record-size 1024 --acks all --linger-ms 1 >"$WORK/e2e.out" 2>"$WORK/e2e.err" &
KB=$!
# Measure the middle half of the run.
window=$((SECONDS_RUN / 2)); sleep $((SECONDS_RUN / 4 + 2))
requests() { curl -s "127.0.0.1:$http/metrics" | awk -v api="$1" '$1 == "kaskade_requests_total{api=\"" api "\"}" {print $2}'; }
p0=$(requests Produce); f0=$(requests Fetch)
if [ "$RECORD" = 1 ]; then
    perf record -F 999 -g -p "$PID" -o "$WORK/perf.data" -- sleep "$window" 2>/dev/null &
    REC=$!
fi
perf stat -x, -e "context-switches,task-clock${PERF_EVENTS:+,$PERF_EVENTS}" -p "$PID" -- sleep "$window" 2>"$WORK/stat.csv"
p1=$(requests Produce); f1=$(requests Fetch)
[ "$RECORD" = 1 ] && wait "$REC"
wait "$KB" || echo "profile-e2e: kbench e2e failed (see $WORK/e2e.err)" >&2
uptime

python3 - "$WORK" "$window" "$p0" "$p1" "$f0" "$f1" <<'EOF'
import json, sys
work, window = sys.argv[1], float(sys.argv[2])
produce, fetch = int(sys.argv[4]) - int(sys.argv[3]), int(sys.argv[6]) - int(sys.argv[5])
stat = {}
for line in open(f"{work}/stat.csv"):
    f = line.strip().split(",")
    if len(f) > 2 and f[0].replace(".", "").isdigit():
        stat[f[2]] = float(f[0])
r = json.loads(open(f"{work}/e2e.out").read().strip().splitlines()[-1])
cpu = r["cpu"]["broker_cpu_s"]
gib = r["received"] * r["config"]["record_size"] / 2**30
lat = r["e2e_latency_ms"]
cs, task_ms = stat.get("context-switches", 0), stat.get("task-clock", 0)
reqs = produce + fetch
print(json.dumps({
    "ok": r["ok"], "broker_cpu_s_per_gib": round(cpu / gib, 2), "e2e_p99_ms": lat["p99"], "e2e_p999_ms": lat["p999"],
    "window_s": window, "produce_per_s": round(produce / window), "fetch_per_s": round(fetch / window),
    "context_switches_per_s": round(cs / window), "context_switches_per_request": round(cs / max(reqs, 1), 2),
    "cpu_us_per_request": round(task_ms * 1000 / max(reqs, 1), 1),
}))
EOF
if [ -n "${PERF_EVENTS:-}" ]; then
    awk -F, -v w="$window" '$1 ~ /^[0-9.]+$/ {printf "%s: %.0f per second\n", $3, $1 / w}' "$WORK/stat.csv"
fi
if [ "$RECORD" = 1 ]; then
    perf report -i "$WORK/perf.data" --no-children --sort comm,dso,sym --stdio -g none 2>/dev/null | grep '%' | head -40
    echo "call graphs: perf report -i $WORK/perf.data"
fi
