#!/usr/bin/env bash
# Idle partitions on one node (issue 17 target 5, issue 16's scrape with
# 10,000 partitions): for each step, a fresh broker (release build, its own
# data dir) gets that many partitions (topics of --per-topic partitions,
# `kaskade topic create`), then the script reports
#
#   - open files (/proc/PID/fd) and RSS (VmRSS) once the partitions exist;
#   - /metrics scrape time (curl -w time_total), median of 5, the broker's
#     CPU time per scrape (/proc/PID/stat, mean of the 5) and the size;
#   - start-up time after a clean stop (SIGTERM, waited for) and after
#     kill -9: from the exec to the broker's "kaskade: data in" line, which
#     `serve` prints once every log is open and the listeners accept;
#   - open files and RSS after each restart.
#
#   scripts/many-partitions.sh [--partitions "1000 5000 10000"] [--per-topic 100] [--no-restarts]
#
# --no-restarts measures open files, RSS and the scrape only.
#
# A step that cannot create all its partitions (the open-files limit,
# `ulimit -Hn`, is the usual reason) reports how many exist and why
# creation stopped, and is measured as it is.
#
# Environment: KASKADE_BIN (release/kaskade under CARGO_TARGET_DIR or
# target/, built if missing), BENCH_WORKDIR (/tmp).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
KASKADE_BIN="${KASKADE_BIN:-$TARGET/release/kaskade}"
STEPS="1000 5000 10000"
PER_TOPIC=100
RESTARTS=1
while [ $# -gt 0 ]; do
    case "$1" in
        --partitions) STEPS="$2"; shift 2 ;;
        --per-topic) PER_TOPIC="$2"; shift 2 ;;
        --no-restarts) RESTARTS=0; shift ;;
        *) echo "usage: $0 [--partitions \"1000 5000 10000\"] [--per-topic 100] [--no-restarts]" >&2; exit 2 ;;
    esac
done
if [ ! -x "$KASKADE_BIN" ]; then
    (cd "$ROOT" && cargo build --release -q -p kaskade) || { echo "many-partitions: building kaskade failed" >&2; exit 1; }
fi
command -v curl >/dev/null || { echo "many-partitions: needs curl" >&2; exit 1; }

WORK=$(mktemp -d "${BENCH_WORKDIR:-/tmp}/kaskade-many-partitions.XXXXXX")
BROKER=""
stop_broker() {
    if [ -n "$BROKER" ]; then
        kill -TERM "$BROKER" 2>/dev/null || true
        wait "$BROKER" 2>/dev/null || true
    fi
    BROKER=""
}
trap 'stop_broker; rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
fds() { ls "/proc/$BROKER/fd" | wc -l; }
rss_mib() { awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$BROKER/status"; }

# start_broker DIR: (re)starts the broker on DIR's data and ports; sets
# BROKER, KAFKA, HTTP_URL and STARTUP_MS.
start_broker() {
    local dir="$1"
    if [ ! -f "$dir/ports" ]; then
        echo "$(free_port) $(free_port)" >"$dir/ports"
    fi
    local kport hport
    read -r kport hport <"$dir/ports"
    : >"$dir/out"
    local t0; t0=$(now_ms)
    KASKADE_LOG=warn "$KASKADE_BIN" serve --data-dir "$dir/data" --listeners "PLAINTEXT://127.0.0.1:$kport" \
        --override "http.listener=127.0.0.1:$hport" >"$dir/out" 2>>"$dir/err" &
    BROKER=$!
    KAFKA="127.0.0.1:$kport"
    # Polls every 10 ms: the figure is exact to that.
    while ! grep -q '^kaskade: data in' "$dir/out" 2>/dev/null; do
        kill -0 "$BROKER" 2>/dev/null || { tail -5 "$dir/err" >&2; echo "many-partitions: broker exited" >&2; exit 1; }
        sleep 0.01
    done
    STARTUP_MS=$(( $(now_ms) - t0 ))
    HTTP_URL=$(sed -n 's/^kaskade: http on //p' "$dir/out")
}

# The broker's user + system CPU time in clock ticks (/proc/PID/stat).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$BROKER/stat"; }

scrape() {
    local times=() out size=0 before
    before=$(cpu_ticks)
    for _ in 1 2 3 4 5; do
        out=$(curl -sf -o "$WORK/scrape.txt" -w '%{time_total} %{size_download}' "$HTTP_URL/metrics") \
            || { echo "scrape failed"; return; }
        times+=("${out% *}")
        size="${out#* }"
    done
    local median; median=$(printf '%s\n' "${times[@]}" | sort -g | sed -n 3p)
    local cpu_ms=$(( ($(cpu_ticks) - before) * 1000 / $(getconf CLK_TCK) / 5 ))
    echo "$(awk -v s="$median" 'BEGIN {printf "%.1f", s * 1000}') ms, $cpu_ms ms CPU, $((size / 1024)) KiB"
}

echo "# Idle partitions on one node ($(date -u +%FT%TZ), $(nproc) cores, nofile hard limit $(ulimit -Hn), $KASKADE_BIN)"
echo
echo "| partitions | open files | RSS MiB | scrape (median of 5) | start-up after SIGTERM ms | files / RSS after | start-up after kill -9 ms | files / RSS after |"
echo "|---|---|---|---|---|---|---|---|"
for step in $STEPS; do
    dir="$WORK/p$step"
    mkdir -p "$dir"
    start_broker "$dir"
    have=0
    n=0
    stopped=""
    while [ "$have" -lt "$step" ]; do
        add=$(( step - have < PER_TOPIC ? step - have : PER_TOPIC ))
        if ! "$KASKADE_BIN" --bootstrap-server "$KAFKA" topic create "idle-$n" --partitions "$add" \
            >"$WORK/create.out" 2>&1; then
            stopped="creation stopped: $(tr '\n' ' ' <"$WORK/create.out" | cut -c1-160)"
            break
        fi
        n=$((n + 1))
        have=$((have + add))
    done
    files=$(fds)
    rss=$(rss_mib)
    scraped=$(scrape)
    have=$(grep -c '^kaskade_log_end_offset{' "$WORK/scrape.txt" || true)
    stop_broker
    if [ "$RESTARTS" = 0 ]; then
        echo "| $have | $files | $rss | $scraped | - | - | - | - |"
        if [ -n "$stopped" ]; then echo; echo "At $step: $stopped"; echo; fi
        rm -rf "$dir"
        continue
    fi
    start_broker "$dir"
    clean_ms=$STARTUP_MS
    after_clean="$(fds) / $(rss_mib)"
    kill -9 "$BROKER"
    wait "$BROKER" 2>/dev/null || true
    BROKER=""
    start_broker "$dir"
    unclean_ms=$STARTUP_MS
    after_unclean="$(fds) / $(rss_mib)"
    stop_broker
    echo "| $have | $files | $rss | $scraped | $clean_ms | $after_clean | $unclean_ms | $after_unclean |"
    if [ -n "$stopped" ]; then echo; echo "At $step: $stopped"; echo; fi
    rm -rf "$dir"
done
