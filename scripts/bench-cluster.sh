#!/usr/bin/env bash
# The cluster benchmarks of issues 13 and 14 on a 3-node Kaskade cluster of
# combined nodes (scripts/cluster.sh, release binary) on loopback: 3 nodes
# share this machine's cores with the clients.
#
#   scripts/bench-cluster.sh [--quick] [--kafka] [--only "SCENARIOS"] [--rounds N] [--kills N]
#
# --kafka runs the same scenarios against Apache Kafka 4.4 (cluster.sh
# --kafka, its jars from scripts/kafka-ref.sh), all but rereplicate: a
# wiped Kafka node needs its storage formatted before it starts.
#
# Scenarios (all by default, in this order):
#   create       one CreateTopics of 1,000 partitions RF 3, ten of 100 RF 3,
#                and one of 1,000 RF 1 (the baseline), each on a fresh
#                cluster: time until the answer and until every node's
#                Metadata shows a leader for every partition
#   propagation  CreateTopics answered -> every node's Metadata lists the
#                topic, 20 changes a run, sent to each node in turn
#   controller   kill -9 of the active controller (DescribeQuorum's leader) -> the next CreateTopics
#                succeeds, --kills rounds (the killed node restarted each
#                round); baseline: CreateTopics without a kill
#   produce      kbench produce, acks=all, 200,000 x 1 KiB, 6 partitions:
#                RF 1 vs RF 3 with min.insync.replicas=2, each durable
#                (topic flush.messages=1, Kaskade's default) and in Kafka's
#                lazy mode (flush.messages=Long.MAX, Kafka's default; the
#                topic key overrides the broker's log.flush.interval.messages),
#                interleaved on one cluster
#   leader       kill -9 of a partition leader -> an idempotent acks=all
#                producer (200 records/s) acknowledged again, --kills rounds;
#                then every acknowledged record is read back
#   rereplicate  1 GiB produced to 3 partitions RF 3, then a node (not the
#                active controller) killed, its data dir wiped, restarted:
#                time until it is back in every ISR and until its copy
#                holds the same batches as another replica's
#
# Every scenario but the failovers runs --rounds times (default 3); the
# failovers run --kills rounds (default 20). --quick: small sizes, 1 round,
# 3 kills, to check the harness. The load average is recorded with every
# figure. Output: a markdown report on stdout; raw JSON lines, the report
# and the nodes' logs in the work directory (printed at the end; node data
# is removed after each scenario).
#
# Environment: KASKADE_BIN (release/kaskade under CARGO_TARGET_DIR or
# target/), KBENCH_BIN (kbench from ../shared/bench, its README: built in
# release), BENCH_PY (python with confluent_kafka; default
# tests/compat/.venv/bin/python from scripts/install-compat-deps.sh),
# BENCH_WORKDIR (/tmp).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$ROOT/scripts/bench"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
KASKADE_BIN="${KASKADE_BIN:-$TARGET/release/kaskade}"
KBENCH_BIN="${KBENCH_BIN:-$ROOT/target/kbench/release/kbench}"
PY="${BENCH_PY:-$ROOT/tests/compat/.venv/bin/python}"

SCENARIOS="create propagation controller produce leader rereplicate"
QUICK=0
KIND=()
ROUNDS=""
KILLS=""
usage() { sed -n '2,40p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1; shift ;;
        --kafka) KIND=(--kafka); shift ;;
        --only) SCENARIOS="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --kills) KILLS="$2"; shift 2 ;;
        *) usage ;;
    esac
done
if [ "$QUICK" = 1 ]; then
    ROUNDS="${ROUNDS:-1}" KILLS="${KILLS:-3}" MANY=100 CHANGES=5 RECORDS=20000 REREP_RECORDS=65536 LF_BASE=3
else
    ROUNDS="${ROUNDS:-3}" KILLS="${KILLS:-20}" MANY=1000 CHANGES=20 RECORDS=200000 REREP_RECORDS=1048576 LF_BASE=10
fi

log() { printf 'bench-cluster: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ -x "$KASKADE_BIN" ] || die "no kaskade binary at $KASKADE_BIN (cargo build --release -p kaskade, or set KASKADE_BIN)"
[ -x "$KBENCH_BIN" ] || die "no kbench at $KBENCH_BIN (see ../shared/bench/README.md, or set KBENCH_BIN)"
"$PY" -c 'import confluent_kafka' 2>/dev/null || die "$PY has no confluent_kafka (scripts/install-compat-deps.sh, or set BENCH_PY)"

WORK=$(mktemp -d "${BENCH_WORKDIR:-/tmp}/kaskade-bench-cluster.XXXXXX")
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
CLUSTER=""

stop_cluster() {
    [ -n "$CLUSTER" ] || return 0
    bash "$ROOT/scripts/cluster.sh" stop "$CLUSTER" >/dev/null 2>&1 || true
    # Keep the logs (Kafka's in node-N.logs/), not the data (node-N/: 1 GiB a node in rereplicate).
    local d
    for d in "$CLUSTER"/node-*; do
        [[ "$d" =~ /node-[0-9]+$ ]] && rm -rf "$d"
    done
    CLUSTER=""
}
trap stop_cluster EXIT

start_cluster() {
    stop_cluster
    CLUSTER="$WORK/$1"
    # One more try on a start that fails: on a loaded machine a node can lose
    # its port between cluster.sh choosing it and binding it.
    if ! KASKADE_BIN="$KASKADE_BIN" CLUSTER_WAIT=300 bash "$ROOT/scripts/cluster.sh" "${KIND[@]}" start 3 "$CLUSTER" \
        >/dev/null; then
        log "starting $1 failed (logs kept in $CLUSTER.failed); trying once more"
        bash "$ROOT/scripts/cluster.sh" stop "$CLUSTER" >/dev/null 2>&1 || true
        mv "$CLUSTER" "$CLUSTER.failed"
        KASKADE_BIN="$KASKADE_BIN" CLUSTER_WAIT=300 bash "$ROOT/scripts/cluster.sh" "${KIND[@]}" start 3 "$CLUSTER" >/dev/null
    fi
    BOOT="$(cat "$CLUSTER/bootstrap")"
}

load() { cut -d' ' -f1-3 /proc/loadavg; }

# emit SCENARIO VARIANT ROUND LOAD_BEFORE < output: the last stdout line
# (JSON) joined with the labels and the load averages before and after.
emit() {
    local out; out="$(cat)"
    local json; json="$(printf '%s\n' "$out" | grep '^{' | tail -1)"
    [ -n "$json" ] || json='{"ok": false, "error": "no JSON line"}'
    "$PY" - "$1" "$2" "$3" "$4" "$(load)" "$json" >>"$RESULTS" <<'EOF'
import json, sys
s, v, r, before, after, j = sys.argv[1:7]
print(json.dumps({"scenario": s, "variant": v, "round": int(r), "load_before": before, "load_after": after,
                  "result": json.loads(j)}))
EOF
    if ! printf '%s' "$json" | grep -q '"ok": *true'; then
        : >"$WORK/failed"
        log "FAILED: $1 $2 round $3: $(printf '%s' "$json" | cut -c1-300) (logs in $CLUSTER)"
    fi
}

bench_py() { "$PY" "$HERE/cluster_bench.py" "$@" 2> >(tee -a "$WORK/bench.log" >&2) || true; }

topic_create() { # NAME PARTITIONS RF [KEY=VALUE...]
    local name="$1" parts="$2" rf="$3" args=()
    shift 3
    for c in "$@"; do args+=(--config "$c"); done
    "$KASKADE_BIN" --bootstrap-server "$BOOT" topic create "$name" -p "$parts" -r "$rf" "${args[@]}" >/dev/null
}

kbench_produce() { # TOPIC RECORDS
    "$KBENCH_BIN" produce --bootstrap "$BOOT" --topic "$1" --records "$2" --record-size 1024 --acks all \
        --partitions 6 --timeout-s 1800 2>>"$WORK/kbench.log" || true
}

LAZY=flush.messages=9223372036854775807
DURABLE=flush.messages=1
BROKER="Kaskade $("$KASKADE_BIN" --version 2>/dev/null | awk '{print $NF}') ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
if [ ${#KIND[@]} -gt 0 ]; then
    bash "$ROOT/scripts/kafka-ref.sh" fetch
    BROKER="Apache Kafka ${KAFKA_REF_VERSION:-4.4.0} (KRaft, combined nodes, heap ${KAFKA_REF_HEAP:-512m} each)"
fi

for scenario in $SCENARIOS; do
    log "$scenario ($(date -u +%T), load $(load))"
    case "$scenario" in
        create)
            for r in $(seq 1 "$ROUNDS"); do
                for v in "one 1 $MANY 3" "ten 10 $((MANY / 10)) 3" "rf1 1 $MANY 1"; do
                    set -- $v
                    start_cluster "create-$1-$r"
                    l="$(load)"
                    bench_py create "$CLUSTER" --topics "$2" --partitions "$3" --rf "$4" --prefix "c$1" \
                        | emit create "$1" "$r" "$l"
                done
            done
            ;;
        propagation)
            start_cluster propagation
            for r in $(seq 1 "$ROUNDS"); do
                l="$(load)"
                bench_py propagation "$CLUSTER" --changes "$CHANGES" --prefix "p$r" | emit propagation changes "$r" "$l"
            done
            ;;
        controller)
            start_cluster controller
            l="$(load)"
            bench_py controller-failover "$CLUSTER" --kills "$KILLS" | emit controller kills 1 "$l"
            ;;
        produce)
            start_cluster produce
            for r in $(seq 1 "$ROUNDS"); do
                for v in rf1 rf3 rf3-lazy rf1-lazy; do
                    case "$v" in
                        rf1) topic_create "tp-$v-$r" 6 1 "$DURABLE" ;;
                        rf3) topic_create "tp-$v-$r" 6 3 min.insync.replicas=2 "$DURABLE" ;;
                        rf3-lazy) topic_create "tp-$v-$r" 6 3 min.insync.replicas=2 "$LAZY" ;;
                        rf1-lazy) topic_create "tp-$v-$r" 6 1 "$LAZY" ;;
                    esac
                    l="$(load)"
                    kbench_produce "tp-$v-$r" "$RECORDS" | emit produce "$v" "$r" "$l"
                done
            done
            ;;
        leader)
            start_cluster leader
            l="$(load)"
            bench_py leader-failover "$CLUSTER" --kills "$KILLS" --baseline-s "$LF_BASE" | emit leader kills 1 "$l"
            ;;
        rereplicate)
            if [ ${#KIND[@]} -gt 0 ]; then
                log "rereplicate: skipped for Kafka (a wiped node must be formatted before it starts)"
                continue
            fi
            start_cluster rereplicate
            topic_create rr 3 3 min.insync.replicas=2
            l="$(load)"
            kbench_produce rr "$REREP_RECORDS" | emit rereplicate preload 1 "$l"
            l="$(load)"
            bench_py rereplicate "$CLUSTER" --topic rr --rounds "$ROUNDS" --within 1800 | emit rereplicate wipe 1 "$l"
            ;;
        *) die "unknown scenario '$scenario'" ;;
    esac
    stop_cluster
done

{
    echo "# Cluster benchmarks: $BROKER, 3 nodes on $(nproc) cores ($(date -u +%FT%TZ))"
    echo
    echo "Command: \`scripts/bench-cluster.sh$([ "$QUICK" = 1 ] && echo ' --quick') ${KIND[*]} --only \"$SCENARIOS\" --rounds $ROUNDS --kills $KILLS\`"
    echo
    "$PY" "$HERE/cluster_report.py" "$RESULTS"
} | tee "$WORK/report.md"
log "raw results, report and node logs in $WORK"
[ ! -e "$WORK/failed" ] || die "a scenario failed (see above)"
