#!/usr/bin/env bash
# Produce and consume throughput of one Kaskade broker as the partition count
# and the number of producers grow (issue 17 target 5: within 25% of the
# 6-partition figure per GiB).
#
#   scripts/bench-scaling.sh [--partitions "1 6 60 600 6000"] [--producers "1 4 16"]
#                            [--rounds N] [--records N] [--quick] [--out FILE] [--keep]
#
#   --partitions "P..."  partition counts of the partition steps (default "1 6 60 600 6000")
#   --producers "K..."   producer counts of the producer steps, on 6 partitions (default "1 4 16")
#                        ("" for none; without 6 in --partitions the ratios are n/a)
#   --rounds N           rounds, medians over them (default 3)
#   --records N          records per step, 1 KiB each (default 1,000,000)
#   --quick              smoke mode: 100,000 records, 1 round, partitions "1 6 60"
#                        (unless given explicitly)
#   --out FILE           also write the report (markdown) to FILE
#   --keep               keep the work dir (logs, raw results; data dirs are always removed)
#
# Every step starts a fresh broker on a fresh data dir (under $BENCH_WORKDIR,
# default /tmp; `kaskade serve`, default configuration, HTTP listener off, as
# scripts/bench-vs-kafka.sh starts it), creates its topic with
# `kaskade topic create` (timed, not counted in any figure), runs its phases
# and stops the broker (SIGTERM):
#   partition step P: kbench produce of N x 1 KiB, acks=all (kbench's
#     defaults: linger 5 ms, batch.size 1 MB) into a P-partition topic, then
#     kbench consume of those N records (partitions assigned, no group);
#     then the broker's open files (/proc/PID/fd) and peak RSS (VmHWM);
#   producer step K: K kbench produce processes at once, each N/K records,
#     into one 6-partition topic; aggregate MiB/s = all records' bytes / the
#     slowest process's elapsed_s (kbench's own clock, from its first send
#     to its last ack); the script's wall time over the whole phase (process
#     start-up included) is shown too.
# Broker CPU (utime+stime from /proc/PID/stat) is read before and after each
# phase and divided by the GiB of record values it moved. Each figure is
# compared with the 6-partition step of the same round (the producer steps'
# too: 1 producer on 6 partitions is the baseline): the report shows the
# median over the rounds of these per-round ratios and marks a ratio worse
# than 25% (MiB/s below 0.75x, CPU-s per GiB above 1.25x).
#
# The open-files soft limit is raised to the hard limit (`ulimit -Hn`): at
# one descriptor a partition plus closed segments' cache, 6,000 partitions
# need more than the usual soft 1,024.
#
# Environment: KASKADE_BIN (target/release/kaskade, built if missing),
# KBENCH_BIN (kbench from ../shared/bench, built into target/kbench if
# missing), BENCH_WORKDIR (/tmp), KASKADE_OVERRIDES (space-separated
# KEY=VALUE for `kaskade serve --override`; none by default).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$ROOT/scripts/bench"
# shellcheck source=bench/common.sh
. "$HERE/common.sh"
ensure_binaries bench-scaling
KASKADE_OVERRIDES="${KASKADE_OVERRIDES:-}"

unset PARTS  # unset = the default; "" = no partition steps
PRODUCERS="1 4 16"
ROUNDS=""
RECORDS=""
QUICK=0
OUT=""
KEEP=0
RECORD_SIZE=1024
BASE_PARTITIONS=6

while [ $# -gt 0 ]; do
    case "$1" in
        --partitions) PARTS="${2?--partitions \"P ...\"}"; shift 2 ;;
        --partitions=*) PARTS="${1#*=}"; shift ;;
        --producers) PRODUCERS="${2?--producers \"K ...\"}"; shift 2 ;;
        --producers=*) PRODUCERS="${1#*=}"; shift ;;
        --rounds) ROUNDS="${2:?--rounds N}"; shift 2 ;;
        --rounds=*) ROUNDS="${1#*=}"; shift ;;
        --records) RECORDS="${2:?--records N}"; shift 2 ;;
        --records=*) RECORDS="${1#*=}"; shift ;;
        --quick) QUICK=1; shift ;;
        --out) OUT="${2:?--out FILE}"; shift 2 ;;
        --out=*) OUT="${1#*=}"; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-scaling: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
if [ "$QUICK" = 1 ]; then
    : "${ROUNDS:=1}" "${RECORDS:=100000}" "${PARTS=1 6 60}"
fi
: "${ROUNDS:=3}" "${RECORDS:=1000000}" "${PARTS=1 6 60 600 6000}"
[ -n "$PARTS$PRODUCERS" ] || { echo "bench-scaling: no steps (--partitions and --producers both empty)" >&2; exit 2; }
for n in $ROUNDS $RECORDS $PARTS $PRODUCERS; do
    case "$n" in ''|*[!0-9]*) echo "bench-scaling: --rounds/--records/--partitions/--producers take numbers" >&2; exit 2 ;; esac
    [ "$n" -gt 0 ] || { echo "bench-scaling: counts must be positive" >&2; exit 2; }
done
for k in $PRODUCERS; do
    [ "$k" -le "$RECORDS" ] || { echo "bench-scaling: more producers ($k) than records" >&2; exit 2; }
done

[ -x "$KASKADE_BIN" ] || die "Kaskade binary not found: $KASKADE_BIN (set KASKADE_BIN)"
[ -x "$KBENCH_BIN" ] || die "kbench not found: $KBENCH_BIN (set KBENCH_BIN)"
# Needed by the 6,000-partition step; the broker inherits it.
ulimit -n "$(ulimit -Hn)" || die "cannot raise the open-files limit to $(ulimit -Hn)"

WORK="$(mktemp -d "${BENCH_WORKDIR:-/tmp}/bench-scaling.XXXXXX")"
RAW="$WORK/results.jsonl"
: >"$RAW"
TCK="$(getconf CLK_TCK)"

# --- clean-up ---------------------------------------------------------------
BPID=""
CHILD_PIDS=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local p
    for p in "${CHILD_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    if [ -n "$BPID" ]; then
        kill -TERM "$BPID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$BPID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$BPID" 2>/dev/null || true
    fi
    rm -rf "$WORK"/*/data 2>/dev/null || true
    if [ "$KEEP" = 1 ] || [ "$rc" -ne 0 ]; then
        log "work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- helpers ----------------------------------------------------------------
now() { date +%s.%N; }

# add STEP ROUND KEY=VALUE... [-- KIND EXPECTED FILE...]: one result line
add() { python3 "$HERE/scaling_report.py" add "$RAW" "$@"; }

# start_broker DIR -> sets BPID, BS; waits for "kaskade: data in" (every log
# open, listeners up)
start_broker() {
    local dir="$1" port ov=() o
    mkdir -p "$dir"
    port="$(free_port)"
    BS="127.0.0.1:$port"
    for o in $KASKADE_OVERRIDES; do ov+=(--override "$o"); done
    "$KASKADE_BIN" serve --data-dir "$dir/data" --listeners "PLAINTEXT://$BS" --override http.listener= \
        "${ov[@]}" >"$dir/kaskade.log" 2>&1 &
    BPID=$!
    local deadline=$(( $(date +%s) + 120 ))
    until grep -q '^kaskade: data in' "$dir/kaskade.log" 2>/dev/null; do
        kill -0 "$BPID" 2>/dev/null || { tail -20 "$dir/kaskade.log" >&2; die "broker exited at start-up"; }
        [ "$(date +%s)" -lt "$deadline" ] || die "broker not serving after 120 s"
        sleep 0.05
    done
}

# stop_broker DIR -> sets ERROR_LINES (ERROR/FATAL/panic lines in its log)
stop_broker() {
    local dir="$1"
    kill -TERM "$BPID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$BPID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$BPID" 2>/dev/null || true
    wait "$BPID" 2>/dev/null || true
    BPID=""
    local n
    n="$(grep -cE '\b(ERROR|FATAL)\b|panicked' "$dir/kaskade.log" 2>/dev/null || true)"
    [ "${n:-0}" -eq 0 ] || log "$(basename "$dir"): $n ERROR lines in the broker log, e.g. $(grep -m1 -E '\b(ERROR|FATAL)\b|panicked' "$dir/kaskade.log" | cut -c1-200)"
    ERROR_LINES="${n:-0}"
    rm -rf "$dir/data"
    sync
}

# create_topic DIR TOPIC PARTITIONS -> sets CREATE_S
create_topic() {
    local dir="$1" t0
    t0="$(now)"
    timeout 1800 "$KASKADE_BIN" topic create --bootstrap-server "$BS" -p "$3" -r 1 "$2" >"$dir/topic.out" 2>&1 \
        || { cat "$dir/topic.out" >&2; die "topic create $2 ($3 partitions) failed"; }
    CREATE_S="$(python3 -c "print(round($(now)-$t0,3))")"
}

# run_procs DIR NAME CMD-LIST-FILE: runs each line of the file (a command, as
# printf %q words) as its own process at once; output NAME.I.out. Sets CPU_S
# (the broker's) and WALL_S. Fails if any process fails.
run_procs() {
    local dir="$1" name="$2" c0 c1 t0 t1 i=0 rc=0 line p
    CHILD_PIDS=()
    c0="$(cpu_ticks "$BPID")"; t0="$(now)"
    while IFS= read -r line; do
        eval "exec timeout 1800 $line" >"$dir/$name.$i.out" 2>"$dir/$name.$i.err" &
        CHILD_PIDS+=($!)
        i=$(( i + 1 ))
    done <"$3"
    for p in "${CHILD_PIDS[@]}"; do wait "$p" || rc=$?; done
    CHILD_PIDS=()
    t1="$(now)"; c1="$(cpu_ticks "$BPID")"
    kill -0 "$BPID" 2>/dev/null || { tail -20 "$dir/kaskade.log" >&2; die "broker died during $name"; }
    CPU_S="$(python3 -c "print(($c1-$c0)/$TCK)")"
    WALL_S="$(python3 -c "print(round($t1-$t0,3))")"
    if [ "$rc" -ne 0 ]; then
        tail -5 "$dir/$name".*.out "$dir/$name".*.err >&2 || true
        log "$name FAILED (exit $rc), see above"
        return 1
    fi
}

# --- steps ----------------------------------------------------------------------
# partition_step ROUND P
partition_step() {
    local r="$1" p="$2" step="p$2" dir="$WORK/r$1-p$2" topic="scale-p$2"
    log "round $r: $p partitions"
    start_broker "$dir"
    create_topic "$dir" "$topic" "$p"
    log "round $r: $p partitions: topic created in $CREATE_S s"
    add "$step" "$r" partitions="$p" create_s="$CREATE_S"

    printf '%q ' "$KBENCH_BIN" produce --bootstrap "$BS" --topic "$topic" --partitions "$p" --records "$RECORDS" \
        --record-size "$RECORD_SIZE" --acks all --timeout-s 1500 --broker-pid "$BPID" >"$dir/produce.cmd"
    echo >>"$dir/produce.cmd"
    if run_procs "$dir" produce "$dir/produce.cmd"; then
        add "$step" "$r" produce_cpu_s="$CPU_S" produce_wall_s="$WALL_S" -- produce "$RECORDS" "$dir"/produce.*.out
        printf '%q ' "$KBENCH_BIN" consume --bootstrap "$BS" --topic "$topic" --records "$RECORDS" \
            --timeout-s 1500 --broker-pid "$BPID" >"$dir/consume.cmd"
        echo >>"$dir/consume.cmd"
        if run_procs "$dir" consume "$dir/consume.cmd"; then
            add "$step" "$r" consume_cpu_s="$CPU_S" consume_wall_s="$WALL_S" -- consume "$RECORDS" "$dir"/consume.*.out
        else
            add "$step" "$r" note="consume failed"
        fi
    else
        add "$step" "$r" note="produce failed"
    fi
    add "$step" "$r" open_files="$(ls "/proc/$BPID/fd" | wc -l)" peak_rss_mib="$(( $(status_kib "$BPID" VmHWM) / 1024 ))"
    stop_broker "$dir"
    add "$step" "$r" log_error_lines="$ERROR_LINES"
}

# producer_step ROUND K
producer_step() {
    local r="$1" k="$2" step="k$2" dir="$WORK/r$1-k$2" topic="scale-k$2" i n
    log "round $r: $k producers"
    start_broker "$dir"
    create_topic "$dir" "$topic" "$BASE_PARTITIONS"
    add "$step" "$r" producers="$k" create_s="$CREATE_S"
    : >"$dir/produce.cmd"
    for i in $(seq 0 $(( k - 1 ))); do
        # N/K each, the remainder spread over the first ones
        n=$(( RECORDS / k + (i < RECORDS % k ? 1 : 0) ))
        printf '%q ' "$KBENCH_BIN" produce --bootstrap "$BS" --topic "$topic" --partitions "$BASE_PARTITIONS" \
            --records "$n" --record-size "$RECORD_SIZE" --acks all --timeout-s 1500 >>"$dir/produce.cmd"
        echo >>"$dir/produce.cmd"
    done
    if run_procs "$dir" produce "$dir/produce.cmd"; then
        add "$step" "$r" produce_cpu_s="$CPU_S" produce_wall_s="$WALL_S" -- produce "$RECORDS" "$dir"/produce.*.out
    else
        add "$step" "$r" note="produce failed"
    fi
    add "$step" "$r" peak_rss_mib="$(( $(status_kib "$BPID" VmHWM) / 1024 ))"
    stop_broker "$dir"
    add "$step" "$r" log_error_lines="$ERROR_LINES"
}

# --- main -------------------------------------------------------------------
START_S="$(date +%s)"
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "host=$(uname -n) cores=$(nproc) kernel=$(uname -r)"
    echo "load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "kaskade=$("$KASKADE_BIN" --version 2>/dev/null | head -1) ($KASKADE_BIN; overrides: ${KASKADE_OVERRIDES:-none})"
    echo "kbench=$KBENCH_BIN"
    echo "records=$RECORDS record_size=$RECORD_SIZE rounds=$ROUNDS partitions=$PARTS producers=$PRODUCERS nofile=$(ulimit -n)"
    echo "workdir=$WORK ($(df -P "$WORK" | awk 'NR==2{print $1}'))"
} >"$WORK/env.txt"
log "bench-scaling: $ROUNDS round(s), $RECORDS x $RECORD_SIZE B, partitions \"$PARTS\", producers \"$PRODUCERS\", work dir $WORK"

for r in $(seq 1 "$ROUNDS"); do
    for p in $PARTS; do partition_step "$r" "$p"; done
    for k in $PRODUCERS; do producer_step "$r" "$k"; done
done
echo "wall_s=$(( $(date +%s) - START_S ))" >>"$WORK/env.txt"
echo "load_at_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$WORK/env.txt"

python3 "$HERE/scaling_report.py" report "$RAW" "$WORK/env.txt" "$BASE_PARTITIONS" >"$WORK/report.md"
cat "$WORK/report.md"
if [ -n "$OUT" ]; then
    mkdir -p "$(dirname "$OUT")"
    cp "$WORK/report.md" "$OUT"
    log "report written to $OUT"
fi
