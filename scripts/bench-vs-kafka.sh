#!/usr/bin/env bash
# Kaskade vs Apache Kafka (default configuration), side by side, on this machine.
#
#   scripts/bench-vs-kafka.sh [--rounds N] [--quick] [--records N] [--e2e-s S] [--out FILE] [--keep]
#
#   --rounds N    rounds; each round runs both brokers, one after the other, and
#                 the first broker alternates from round to round (default 3)
#   --quick       smoke mode: 100,000 records, 1 round, 5 s of e2e (unless
#                 --rounds/--records/--e2e-s)
#   --records N   records per phase (default 1,000,000; 1 KiB each)
#   --e2e-s S     seconds of the e2e phase's producer (default 30)
#   --out FILE    also write the report (markdown) to FILE
#   --keep        keep the work dir (logs, raw results; data dirs are always removed)
#
# Every round first measures the raw durable write bandwidth of the work dir's
# filesystem, once, with no broker running (scripts/bench/raw_write.py:
# min(1 GiB, N x 1 KiB) of incompressible bytes written and fdatasync'ed,
# like `dd conv=fdatasync`, then deleted); the report divides kbench
# produce's MiB/s by it (issue 17's produce target: at least 80%).
# Then, for each broker, from a fresh data dir (under $BENCH_WORKDIR,
# default /tmp), with the other broker stopped:
#   1. start-up: a tiny acks=all producer (scripts/bench/first_ack.py, librdkafka
#      via confluent_kafka) loops from before the spawn until one record is
#      acknowledged; start-up = ack time - the broker process's start time
#      (/proc/PID/stat starttime). For Kafka the JVM start is the spawn; the
#      row "incl. storage format" counts from before `kafka-ref.sh start`
#      (which runs kafka-storage format first).
#   2. idle RSS: VmRSS 5 s after the first ack, no load.
#   3. kafka-producer-perf-test (ProducerPerformance), N x 1 KiB, acks=all,
#      into a 6-partition topic created beforehand;
#   4. kafka-consumer-perf-test (ConsumerPerformance) reads those N records;
#   5. kbench produce (librdkafka, its defaults; 6 partitions, acks=all, 1 KiB);
#   6. kbench consume of those N records (partitions assigned, no group);
#   7. kbg: kbench consume of the same N records through a consumer group
#      (--group, subscribe); its MiB/s is from the first record
#      (fetch_mib_per_s), since the join waits the group's initial rebalance
#      delay;
#   8. e2e: kbench e2e --rate 20000 --record-size 1024 --acks all
#      --linger-ms 1 --duration-s S into a fresh 6-partition topic created
#      beforehand (kbench's e2e consumer has its partitions assigned, no
#      group): p50/p99/p99.9 end-to-end latency; its GiB are the records
#      produced (20,000 x S x 1 KiB; the run fails unless kbench reports
#      every one sent, acked and received);
#   9. peak RSS: VmHWM at the end (after e2e).
# Broker CPU (utime+stime of the broker PID from /proc) is read before and after
# each of 3-8 and divided by the GiB of record values moved; "all four phases"
# is 3-6 together.
# The report gives medians over the rounds and the Kaskade/Kafka ratio.
#
# Both brokers run with their defaults (Kafka's: kafka-ref.sh changes only the
# internal topics' replication factors), so both wait Kafka's default 3 s
# group.initial.rebalance.delay.ms before a new group's first assignment.
#
# Environment: KASKADE_BIN (target/release/kaskade, built if missing),
# KBENCH_BIN (kbench from ../shared/bench, built into target/kbench if
# missing), BENCH_PY (python with confluent_kafka:
# tests/compat/.venv/bin/python), BENCH_WORKDIR (/tmp), KAFKA_REF_HEAP (1g,
# Kafka's own default heap), KASKADE_OVERRIDES (space-separated KEY=VALUE for
# `kaskade serve --override`; none by default).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$ROOT/scripts/bench"
# shellcheck source=bench/common.sh
. "$HERE/common.sh"
KREF="$ROOT/scripts/kafka-ref.sh"
ensure_binaries bench-vs-kafka
PY="${BENCH_PY:-$ROOT/tests/compat/.venv/bin/python}"
KASKADE_OVERRIDES="${KASKADE_OVERRIDES:-}"

ROUNDS=""
RECORDS=""
E2E_S=""
E2E_RATE=20000
QUICK=0
OUT=""
KEEP=0
RECORD_SIZE=1024
PARTITIONS=6

while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="${2:?--rounds N}"; shift 2 ;;
        --rounds=*) ROUNDS="${1#*=}"; shift ;;
        --records) RECORDS="${2:?--records N}"; shift 2 ;;
        --records=*) RECORDS="${1#*=}"; shift ;;
        --e2e-s) E2E_S="${2:?--e2e-s S}"; shift 2 ;;
        --e2e-s=*) E2E_S="${1#*=}"; shift ;;
        --quick) QUICK=1; shift ;;
        --out) OUT="${2:?--out FILE}"; shift 2 ;;
        --out=*) OUT="${1#*=}"; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-vs-kafka: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
if [ "$QUICK" = 1 ]; then
    : "${ROUNDS:=1}" "${RECORDS:=100000}" "${E2E_S:=5}"
fi
: "${ROUNDS:=3}" "${RECORDS:=1000000}" "${E2E_S:=30}"
case "$ROUNDS$RECORDS$E2E_S" in *[!0-9]*|"") echo "bench-vs-kafka: --rounds/--records/--e2e-s take numbers" >&2; exit 2 ;; esac
[ "$E2E_S" -gt 0 ] || { echo "bench-vs-kafka: --e2e-s must be positive" >&2; exit 2; }

[ -x "$KASKADE_BIN" ] || die "Kaskade binary not found: $KASKADE_BIN (set KASKADE_BIN)"
[ -x "$KBENCH_BIN" ] || die "kbench not found: $KBENCH_BIN (cd shared/bench && cargo build --release; or set KBENCH_BIN)"
[ -x "$PY" ] || die "python with confluent_kafka not found: $PY (set BENCH_PY)"
"$PY" -c 'import confluent_kafka' 2>/dev/null || die "$PY cannot import confluent_kafka"
"$KREF" fetch || die "kafka-ref.sh fetch failed"

WORK="$(mktemp -d "${BENCH_WORKDIR:-/tmp}/bench-vs-kafka.XXXXXX")"
RAW="$WORK/results.jsonl"
CMDS="$WORK/commands.log"
: >"$RAW"
: >"$CMDS"
TCK="$(getconf CLK_TCK)"
GIB="$(python3 -c "print($RECORDS*$RECORD_SIZE/2**30)")"
E2E_RECORDS=$(( E2E_RATE * E2E_S ))
E2E_GIB="$(python3 -c "print($E2E_RECORDS*$RECORD_SIZE/2**30)")"
RAW_BYTES=$(( RECORDS * RECORD_SIZE < 1073741824 ? RECORDS * RECORD_SIZE : 1073741824 ))

# --- clean-up ---------------------------------------------------------------
KASKADE_PID=""
KAFKA_DIR=""
PROBE_PID=""
CHILD_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -n "$PROBE_PID" ] && kill "$PROBE_PID" 2>/dev/null || true
    [ -n "$CHILD_PID" ] && kill -TERM "$CHILD_PID" 2>/dev/null || true
    if [ -n "$KASKADE_PID" ]; then
        kill -TERM "$KASKADE_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$KASKADE_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$KASKADE_PID" 2>/dev/null || true
    fi
    [ -n "$KAFKA_DIR" ] && "$KREF" stop "$KAFKA_DIR" 2>/dev/null || true
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
boottime() { python3 -c 'import time; print("%.6f" % time.clock_gettime(time.CLOCK_BOOTTIME))'; }

start_time() { local f; f=($(stat_fields "$1")); python3 -c "print(${f[19]}/$TCK)"; }

# rec BROKER ROUND METRIC VALUE
rec() { printf '{"broker":"%s","round":%s,"metric":"%s","value":%s}\n' "$1" "$2" "$3" "$4" >>"$RAW"; }
# note BROKER ROUND TEXT
note() { python3 -c 'import json,sys; print(json.dumps({"broker":sys.argv[1],"round":int(sys.argv[2]),"note":sys.argv[3]}))' "$1" "$2" "$3" >>"$RAW"; }

# cmdlog BROKER BOOTSTRAP PID CMD...: remember the command (bootstrap/pid as placeholders)
cmdlog() {
    local b="$1" bs="$2" pid="$3"; shift 3
    local line
    line="$(printf '%q ' "$@")"
    line="${line//$bs/\$BOOTSTRAP}"
    [ -n "$pid" ] && line="${line//--broker-pid $pid/--broker-pid \$BROKER_PID}"
    line="${line//$ROOT\//}"
    printf '%s\t%s\n' "$b" "${line% }" >>"$CMDS"
}

machine_state() {  # 1-min load average and the number of rustc processes (shared machine)
    local la rc
    la="$(cut -d' ' -f1 /proc/loadavg)"
    rc="$(pgrep -c -x rustc 2>/dev/null || true)"
    echo "$la ${rc:-0}"
}

# why_failed PREFIX: kbench's own error (its JSON line in PREFIX.out), else
# the last line of PREFIX.err
why_failed() {
    python3 - "$1" <<'EOF'
import json, sys
p = sys.argv[1]
try:
    j = json.loads([l for l in open(p + ".out") if l.startswith("{")][-1])
    print(j.get("error") or "no error reported")
except (OSError, IndexError, ValueError):
    try:
        print((open(p + ".err").read().strip().splitlines() or ["no output"])[-1][:300])
    except OSError:
        print("no output")
EOF
}

# phase BROKER ROUND PID NAME CMD... : run CMD, account the broker's CPU over it.
# PHASE_GIB (default $GIB): the GiB of records the phase moves;
# PHASE_TIMEOUT (default 900): seconds before the command is killed.
phase() {
    local b="$1" r="$2" pid="$3" name="$4"; shift 4
    local gib="${PHASE_GIB:-$GIB}"
    local dir="$WORK/$b-r$r" c0 c1 t0 t1 ms rc=0
    read -r la rcn < <(machine_state)
    rec "$b" "$r" "${name}_load1" "$la"
    rec "$b" "$r" "${name}_rustc" "$rcn"
    c0="$(cpu_ticks "$pid")"; t0="$(date +%s.%N)"
    # in the background + wait, so that a signal to this script is handled at once
    timeout "${PHASE_TIMEOUT:-900}" "$@" >"$dir/$name.out" 2>"$dir/$name.err" &
    CHILD_PID=$!
    wait "$CHILD_PID" || rc=$?
    CHILD_PID=""
    t1="$(date +%s.%N)"; c1="$(cpu_ticks "$pid")"
    kill -0 "$pid" 2>/dev/null || { tail -20 "$dir"/*.log >&2 || true; die "$b broker died during $name"; }
    if [ "$rc" -ne 0 ]; then
        tail -n 15 "$dir/$name.out" "$dir/$name.err" >&2 || true
        note "$b" "$r" "$name failed (exit $rc): $(why_failed "$dir/$name")"
        log "$b round $r: $name FAILED (exit $rc), see above"
        return 1
    fi
    local cpu
    cpu="$(python3 -c "print(($c1-$c0)/$TCK)")"
    rec "$b" "$r" "${name}_broker_cpu_s" "$cpu"
    rec "$b" "$r" "${name}_cpu_per_gib" "$(python3 -c "print($cpu/$gib)")"
    rec "$b" "$r" "${name}_wall_s" "$(python3 -c "print(round($t1-$t0,3))")"
    return 0
}

# parsed BROKER ROUND KIND EXPECTED: record parse.py's figures of the phase
# KIND's output, or a note if it was not a complete run
parsed() {
    local b="$1" r="$2" kind="$3" n="$4" dir="$WORK/$1-r$2" m v
    if python3 "$HERE/parse.py" "$kind" "$n" <"$dir/$kind.out" >"$dir/$kind.parsed" 2>"$dir/$kind.parse.err"; then
        while read -r m v; do rec "$b" "$r" "$m" "$v"; done <"$dir/$kind.parsed"
    else
        note "$b" "$r" "$(cat "$dir/$kind.parse.err")"
        log "$b round $r: $kind output not a complete run: $(cat "$dir/$kind.parse.err")"
    fi
}

# --- broker start/stop ------------------------------------------------------
# start_probe BOOTSTRAP OUTFILE DEADLINE: the first-ack prober, waits until it is ready
start_probe() {
    "$PY" "$HERE/first_ack.py" "$1" first-ack "$3" >"$2" 2>"$2.err" &
    PROBE_PID=$!
    for _ in $(seq 1 200); do
        grep -q ready "$2" 2>/dev/null && return 0
        sleep 0.05
    done
    die "first-ack prober did not start: $(cat "$2.err")"
}
finish_probe() {  # -> sets ACK (the ack's boot-clock time); not in $(...): wait needs this shell
    local rc=0
    wait "$PROBE_PID" || rc=$?
    PROBE_PID=""
    [ "$rc" -eq 0 ] || die "no record acknowledged at start-up (exit $rc): $(tail -3 "$1.err")"
    ACK="$(tail -1 "$1")"
}

# start_broker BROKER ROUND -> sets BPID, BS
start_broker() {
    local b="$1" r="$2" dir="$WORK/$1-r$2" port t0 ack
    mkdir -p "$dir"
    port="$(free_port)"
    BS="127.0.0.1:$port"
    start_probe "$BS" "$dir/first_ack.out" 180
    t0="$(boottime)"
    case "$b" in
        kaskade)
            local ov=() o
            for o in $KASKADE_OVERRIDES; do ov+=(--override "$o"); done
            "$KASKADE_BIN" serve --data-dir "$dir/data" --listeners "PLAINTEXT://$BS" --override http.listener= "${ov[@]}" >"$dir/kaskade.log" 2>&1 &
            KASKADE_PID=$!
            BPID=$KASKADE_PID
            cmdlog kaskade "$BS" "" "$KASKADE_BIN" serve --data-dir DIR/data --listeners "PLAINTEXT://$BS" --override http.listener= "${ov[@]}"
            ;;
        kafka)
            KAFKA_DIR="$dir"
            "$KREF" start "$dir" "$port" >"$dir/start.out" 2>"$dir/start.err" \
                || { cat "$dir/start.err" >&2; die "Kafka did not start"; }
            BPID="$(cat "$dir/kafka.pid")"
            cmdlog kafka "$BS" "" "$KREF" start DIR PORT
            ;;
    esac
    finish_probe "$dir/first_ack.out"
    ack="$ACK"
    local st
    st="$(start_time "$BPID")"
    rec "$b" "$r" first_ack_s "$(python3 -c "print(round($ack-$st,3))")"
    rec "$b" "$r" first_ack_setup_s "$(python3 -c "print(round($ack-$t0,3))")"
    log "$b round $r: serving at $BS (pid $BPID, $(cat /proc/$BPID/comm)), first ack $(python3 -c "print(round($ack-$st,3))") s after spawn"
}

stop_broker() {
    local b="$1" r="$2" dir="$WORK/$1-r$2"
    case "$b" in
        kaskade)
            kill -TERM "$KASKADE_PID" 2>/dev/null || true
            for _ in $(seq 1 100); do kill -0 "$KASKADE_PID" 2>/dev/null || break; sleep 0.2; done
            kill -KILL "$KASKADE_PID" 2>/dev/null || true
            wait "$KASKADE_PID" 2>/dev/null || true
            KASKADE_PID=""
            ;;
        kafka)
            "$KREF" stop "$dir"
            KAFKA_DIR=""
            ;;
    esac
    # broker error lines (for the notes)
    local logf n
    if [ "$b" = kaskade ]; then logf="$dir/kaskade.log"; else logf="$dir/kafka.log"; fi
    n="$(grep -cE '\b(ERROR|FATAL)\b|panicked' "$logf" 2>/dev/null || true)"
    rec "$b" "$r" log_error_lines "${n:-0}"
    if [ "${n:-0}" -gt 0 ]; then
        grep -E '\b(ERROR|FATAL)\b|panicked' "$logf" | head -5 | while IFS= read -r l; do note "$b" "$r" "log: ${l:0:300}"; done
    fi
    rm -rf "$dir/data"
    sync
}

# --- one broker, one round ----------------------------------------------------
run_broker() {
    local b="$1" r="$2" dir="$WORK/$1-r$2"
    start_broker "$b" "$r"
    local pid="$BPID" bs="$BS"
    sleep 5
    rec "$b" "$r" idle_rss_mib "$(python3 -c "print($(status_kib "$pid" VmRSS)/1024)")"

    local c_all0 c_all1
    c_all0="$(cpu_ticks "$pid")"

    # 3. kafka-producer-perf-test into a 6-partition topic created first
    local topic=perf-1k
    cmdlog "$b" "$bs" "" "$KASKADE_BIN" topic create --bootstrap-server "$bs" -p "$PARTITIONS" -r 1 "$topic"
    "$KASKADE_BIN" topic create --bootstrap-server "$bs" -p "$PARTITIONS" -r 1 "$topic" >"$dir/topic.out" 2>&1 \
        || { cat "$dir/topic.out" >&2; die "$b: topic create failed"; }
    local pp=("$KREF" run org.apache.kafka.tools.ProducerPerformance --bootstrap-server "$bs" --topic "$topic"
              --num-records "$RECORDS" --record-size "$RECORD_SIZE" --throughput -1 --producer-props acks=all)
    cmdlog "$b" "$bs" "" "${pp[@]}"
    log "$b round $r: kafka-producer-perf-test"
    if phase "$b" "$r" "$pid" pp "${pp[@]}"; then
        parsed "$b" "$r" pp "$RECORDS"
    fi

    # 4. kafka-consumer-perf-test of those records
    local cp=("$KREF" run org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$bs" --topic "$topic"
              --num-records "$RECORDS" --timeout 60000)
    cmdlog "$b" "$bs" "" "${cp[@]}"
    log "$b round $r: kafka-consumer-perf-test"
    if phase "$b" "$r" "$pid" cp "${cp[@]}"; then
        parsed "$b" "$r" cp "$RECORDS"
    fi

    # 5./6. kbench (librdkafka) produce + consume, its defaults
    local kt=kbench-1k
    local kp=("$KBENCH_BIN" produce --bootstrap "$bs" --topic "$kt" --partitions "$PARTITIONS"
              --records "$RECORDS" --record-size "$RECORD_SIZE" --acks all --broker-pid "$pid")
    cmdlog "$b" "$bs" "$pid" "${kp[@]}"
    log "$b round $r: kbench produce"
    if phase "$b" "$r" "$pid" kbp "${kp[@]}"; then
        parsed "$b" "$r" kbp "$RECORDS"
    fi
    local kc=("$KBENCH_BIN" consume --bootstrap "$bs" --topic "$kt" --records "$RECORDS" --broker-pid "$pid")
    cmdlog "$b" "$bs" "$pid" "${kc[@]}"
    log "$b round $r: kbench consume"
    if phase "$b" "$r" "$pid" kbc "${kc[@]}"; then
        parsed "$b" "$r" kbc "$RECORDS"
    fi

    c_all1="$(cpu_ticks "$pid")"
    rec "$b" "$r" all_cpu_per_gib "$(python3 -c "print(($c_all1-$c_all0)/$TCK/(4*$GIB))")"

    # 7. the same records through a consumer group (a new group each round)
    local kg=("$KBENCH_BIN" consume --bootstrap "$bs" --topic "$kt" --records "$RECORDS" --group "kbg-r$r"
              --broker-pid "$pid")
    cmdlog "$b" "$bs" "$pid" "${kg[@]}"
    log "$b round $r: kbench consume through a group"
    if phase "$b" "$r" "$pid" kbg "${kg[@]}"; then
        parsed "$b" "$r" kbg "$RECORDS"
    fi

    # 8. end-to-end latency at a fixed rate of small batches, fresh topic
    local et=e2e-1k
    cmdlog "$b" "$bs" "" "$KASKADE_BIN" topic create --bootstrap-server "$bs" -p "$PARTITIONS" -r 1 "$et"
    "$KASKADE_BIN" topic create --bootstrap-server "$bs" -p "$PARTITIONS" -r 1 "$et" >"$dir/topic-e2e.out" 2>&1 \
        || { cat "$dir/topic-e2e.out" >&2; die "$b: topic create $et failed"; }
    local ke=("$KBENCH_BIN" e2e --bootstrap "$bs" --topic "$et" --partitions "$PARTITIONS" --rate "$E2E_RATE"
              --record-size "$RECORD_SIZE" --acks all --linger-ms 1 --duration-s "$E2E_S"
              --timeout-s "$(( E2E_S + 120 ))" --broker-pid "$pid")
    cmdlog "$b" "$bs" "$pid" "${ke[@]}"
    log "$b round $r: kbench e2e, $E2E_S s"
    if PHASE_GIB="$E2E_GIB" PHASE_TIMEOUT="$(( E2E_S + 300 ))" phase "$b" "$r" "$pid" e2e "${ke[@]}"; then
        parsed "$b" "$r" e2e "$E2E_RECORDS"
    fi

    rec "$b" "$r" peak_rss_mib "$(python3 -c "print($(status_kib "$pid" VmHWM)/1024)")"
    stop_broker "$b" "$r"
}

# --- main -------------------------------------------------------------------
START_S="$(date +%s)"
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "host=$(uname -n) cores=$(nproc) kernel=$(uname -r)"
    echo "load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "kaskade=$("$KASKADE_BIN" --version 2>/dev/null | head -1) ($KASKADE_BIN; overrides: ${KASKADE_OVERRIDES:-none})"
    echo "kafka=Apache Kafka ${KAFKA_REF_VERSION:-4.4.0} (scripts/kafka-ref.sh, heap ${KAFKA_REF_HEAP:-1g}, $(java -version 2>&1 | head -1))"
    echo "kbench=$KBENCH_BIN"
    echo "records=$RECORDS record_size=$RECORD_SIZE partitions=$PARTITIONS rounds=$ROUNDS e2e=${E2E_RATE}/s x ${E2E_S} s"
    echo "workdir=$WORK ($(df -P "$WORK" | awk 'NR==2{print $1}'))"
    echo "e2e_rate_target=$E2E_RATE"
} >"$WORK/env.txt"
log "bench-vs-kafka: $ROUNDS round(s), $RECORDS x $RECORD_SIZE B, work dir $WORK"

for r in $(seq 1 "$ROUNDS"); do
    # the disk's own durable write bandwidth, with no broker running
    sync
    log "=== round $r/$ROUNDS: raw durable write, $RAW_BYTES B ==="
    read -r _ raw < <(python3 "$HERE/raw_write.py" "$WORK" "$RAW_BYTES") || die "raw_write.py failed"
    rec disk "$r" raw_mib_s "$raw"
    log "raw durable write: $raw MiB/s"
    if [ $(( r % 2 )) -eq 1 ]; then order="kaskade kafka"; else order="kafka kaskade"; fi
    for b in $order; do
        log "=== round $r/$ROUNDS: $b ==="
        run_broker "$b" "$r"
    done
done
echo "wall_s=$(( $(date +%s) - START_S ))" >>"$WORK/env.txt"
echo "load_at_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$WORK/env.txt"

python3 "$HERE/report.py" "$RAW" "$CMDS" "$WORK/env.txt" >"$WORK/report.md"
cat "$WORK/report.md"
if [ -n "$OUT" ]; then
    mkdir -p "$(dirname "$OUT")"
    cp "$WORK/report.md" "$OUT"
    log "report written to $OUT"
fi
