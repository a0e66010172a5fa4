#!/usr/bin/env bash
# The cost of Kaskade's metrics, measured in one run (issue 16's benchmark).
#
#   scripts/bench-metrics.sh [--records N] [--rounds R] [--partitions "1000 5000 10000"]
#
# 1. Scrape cost: one broker; topics are added until it holds 1,000, then
#    5,000, then 10,000 partitions (created with `kaskade topic create`);
#    at each step /metrics is scraped 5 times (curl): time, the broker's CPU
#    time per scrape (/proc/PID/stat) and size. Every partition keeps its
#    active segment's files open, so the open-files hard limit (`ulimit -Hn`)
#    may stop creation early: the step reports how many partitions exist and
#    why it stopped.
# 2. Cost on clients: kbench produce (N x 1 KiB, acks=all, 6 partitions)
#    then kbench consume of them, on a fresh broker each time, alternately
#    with the HTTP listener off and with it on and a scraper fetching
#    /metrics every second (odd rounds off first, even rounds on first); R
#    rounds (default 2). The report prints each run's kbench figures and the
#    on/off ratios of the medians.
#
# Environment: KASKADE_BIN (release/kaskade under CARGO_TARGET_DIR or
# target/, built if missing), KBENCH_BIN (kbench from ../shared/bench, built
# into <target>/kbench if missing), BENCH_WORKDIR (/tmp).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
KASKADE_BIN="${KASKADE_BIN:-$TARGET/release/kaskade}"
KBENCH_BIN="${KBENCH_BIN:-$TARGET/kbench/release/kbench}"
RECORDS=200000
ROUNDS=2
STEPS="1000 5000 10000"
while [ $# -gt 0 ]; do
    case "$1" in
        --records) RECORDS="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --partitions) STEPS="$2"; shift 2 ;;
        *) echo "usage: $0 [--records N] [--rounds R] [--partitions \"1000 5000 10000\"]" >&2; exit 2 ;;
    esac
done
if [ ! -x "$KASKADE_BIN" ]; then
    (cd "$ROOT" && cargo build --release -q -p kaskade) || { echo "bench-metrics: building kaskade failed" >&2; exit 1; }
fi
if [ ! -x "$KBENCH_BIN" ]; then
    (cd "$ROOT/../shared/bench" && CARGO_TARGET_DIR="$TARGET/kbench" cargo build --release -q) \
        || { echo "bench-metrics: building kbench (../shared/bench) failed" >&2; exit 1; }
fi
command -v curl >/dev/null || { echo "bench-metrics: needs curl" >&2; exit 1; }

WORK=$(mktemp -d "${BENCH_WORKDIR:-/tmp}/kaskade-bench-metrics.XXXXXX")
BROKER=""
SCRAPER=""
stop_all() {
    # `wait` on a killed job fails: not an error here (set -e).
    if [ -n "$SCRAPER" ]; then
        kill "$SCRAPER" 2>/dev/null || true
        wait "$SCRAPER" 2>/dev/null || true
    fi
    SCRAPER=""
    if [ -n "$BROKER" ]; then
        kill -TERM "$BROKER" 2>/dev/null || true
        wait "$BROKER" 2>/dev/null || true
    fi
    BROKER=""
}
trap 'stop_all; rm -rf "$WORK"' EXIT

# The broker's user + system CPU time, in clock ticks (/proc/PID/stat
# fields 14 and 15; the command name, field 2, has no spaces here).
broker_cpu_ticks() { awk '{print $14 + $15}' "/proc/$BROKER/stat"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_broker NAME HTTP(on|off): sets BROKER, KAFKA, HTTP_URL.
start_broker() {
    local dir="$WORK/$1" http="$2"
    mkdir -p "$dir"
    local port; port=$(free_port)
    local listener="http.listener="
    [ "$http" = on ] && listener="http.listener=127.0.0.1:$(free_port)"
    "$KASKADE_BIN" serve --data-dir "$dir/data" --listeners "PLAINTEXT://127.0.0.1:$port" \
        --override "$listener" --log-level warn >"$dir/out" 2>"$dir/err" &
    BROKER=$!
    KAFKA="127.0.0.1:$port"
    for _ in $(seq 1 600); do
        grep -q '^kaskade: data in' "$dir/out" 2>/dev/null && break
        kill -0 "$BROKER" 2>/dev/null || { cat "$dir/err" >&2; echo "bench-metrics: broker exited" >&2; exit 1; }
        sleep 0.1
    done
    HTTP_URL=$(sed -n 's/^kaskade: http on //p' "$dir/out")
}

echo "# Kaskade metrics cost ($(date -u +%FT%TZ), $(nproc) cores, nofile hard limit $(ulimit -Hn))"
echo
echo "## Scrape time and size"
echo
echo "| partitions | scrape s (min / max of 5) | broker CPU ms per scrape | bytes | process_open_fds |"
echo "|---|---|---|---|---|"
start_broker scrape on
have=0
n=0
for step in $STEPS; do
    stopped=""
    while [ "$have" -lt "$step" ]; do
        # 500-partition topics: one request each, big enough to be quick.
        add=$(( step - have < 500 ? step - have : 500 ))
        if ! "$KASKADE_BIN" --bootstrap-server "$KAFKA" topic create "scrape-$n" --partitions "$add" \
            >"$WORK/create.out" 2>&1; then
            stopped="creation stopped: $(tr '\n' ' ' <"$WORK/create.out" | cut -c1-160)"
            break
        fi
        n=$((n + 1))
        have=$((have + add))
    done
    times=()
    size=0
    cpu_before=$(broker_cpu_ticks)
    for _ in 1 2 3 4 5; do
        if ! out=$(curl -sf -o "$WORK/scrape.txt" -w '%{time_total} %{size_download}' "$HTTP_URL/metrics"); then
            echo "| $have | scrape failed | | | |"
            break 2
        fi
        times+=("${out% *}")
        size="${out#* }"
    done
    cpu_ms=$(( ($(broker_cpu_ticks) - cpu_before) * 1000 / $(getconf CLK_TCK) / 5 ))
    fds=$(sed -n 's/^process_open_fds //p' "$WORK/scrape.txt")
    # The partitions the broker holds (a failed creation may leave some).
    have=$(grep -c '^kaskade_log_end_offset{' "$WORK/scrape.txt" || true)
    sorted=$(printf '%s\n' "${times[@]}" | sort -g)
    echo "| $have | $(head -1 <<<"$sorted") / $(tail -1 <<<"$sorted") | $cpu_ms | $size | $fds |"
    [ -n "$stopped" ] && { echo; echo "At $step: $stopped"; echo; break; }
done
stop_all

echo
echo "## kbench with and without a scraper (N=$RECORDS x 1 KiB, acks=all, 6 partitions)"
echo
echo "| round | listener | produce rec/s | produce p99 ms | consume rec/s | broker CPU s (produce + consume) | scrapes |"
echo "|---|---|---|---|---|---|---|"
RESULTS="$WORK/results"
: >"$RESULTS"
for r in $(seq 1 "$ROUNDS"); do
    # Odd rounds start with the listener off, even ones with it on: the
    # second run of a round finds the page cache and the disk in another
    # state, which alternating cancels out.
    order="off on"
    [ $((r % 2)) -eq 0 ] && order="on off"
    for mode in $order; do
        start_broker "kb-$r-$mode" "$mode"
        scrapes="$WORK/kb-$r-$mode/scrapes"
        : >"$scrapes"
        if [ "$mode" = on ]; then
            ( while true; do curl -s -o /dev/null "$HTTP_URL/metrics" && echo . >>"$scrapes"; sleep 1; done ) &
            SCRAPER=$!
        fi
        p=$("$KBENCH_BIN" produce --bootstrap "$KAFKA" --topic kb --partitions 6 --records "$RECORDS" \
            --record-size 1024 --acks all --broker-pid "$BROKER" 2>/dev/null | tail -1)
        c=$("$KBENCH_BIN" consume --bootstrap "$KAFKA" --topic kb --records "$RECORDS" \
            --broker-pid "$BROKER" 2>/dev/null | tail -1)
        row=$(python3 -c '
import json, sys
p, c = json.loads(sys.argv[1]), json.loads(sys.argv[2])
cpu = p["cpu"]["broker_cpu_s"] + c["cpu"]["broker_cpu_s"]
print(round(p["records_per_s"]), p["latency_ms"]["p99"], round(c["records_per_s"]), round(cpu, 2))' "$p" "$c")
        read -r prate p99 crate cpu <<<"$row"
        echo "$mode $prate $p99 $crate $cpu" >>"$RESULTS"
        echo "| $r | $mode | $prate | $p99 | $crate | $cpu | $(wc -l <"$scrapes") |"
        stop_all
        # N x 1 KiB per run: keep one run's data on disk at a time.
        rm -rf "$WORK/kb-$r-$mode/data"
    done
done

echo
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
if not {"on", "off"} <= {r[0] for r in rows}:
    sys.exit(0)
def med(mode, i):
    return statistics.median(float(r[i]) for r in rows if r[0] == mode)
print("Medians, listener on / off: produce rec/s %.3f, produce p99 %.3f, consume rec/s %.3f, broker CPU s %.3f"
      % tuple(med("on", i) / med("off", i) for i in (1, 2, 3, 4)))
PY
