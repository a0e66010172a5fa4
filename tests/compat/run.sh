#!/usr/bin/env bash
# Runs the real-client compatibility suites against a running broker.
#
#   tests/compat/run.sh BOOTSTRAP [SUITE...]
#   tests/compat/run.sh --against kaskade|kafka [--nodes N] [SUITE...]
#
# BOOTSTRAP  host:port of a running broker (Kaskade or Apache Kafka), e.g. 127.0.0.1:19092;
#            for a cluster, the address of one node, with KASKADE_COMPAT_BROKERS set
# --against  start a fresh broker for the run and stop it afterwards: Kaskade
#            ($KASKADE_BIN, default target/debug/kaskade) or Apache Kafka
#            (scripts/kafka-ref.sh, a single KRaft node)
# --nodes N  with --against: a cluster of N combined nodes instead
#            (scripts/cluster.sh [--kafka] start N), the clients bootstrapping
#            from node 1 only; sets KASKADE_COMPAT_BROKERS=N. The cluster's
#            logs are kept (path printed) when a test failed.
# SUITE      any of: confluent kafka-python aiokafka kafkajs kcat java tools streams-connect go
#            (default: all)
#
# Needs the clients installed first: scripts/install-compat-deps.sh
# Prints each suite's own output, one summary line per suite, and last a line
#   N passed, M failed[, K skipped]
# Exits non-zero if any test failed (a suite that crashed or ran no test counts
# as a failure). kcat tests are skipped, not failed, when kcat is not installed.
#
# Environment:
#   KASKADE_COMPAT_TIMEOUT        per-operation wait in the tests, seconds (30)
#   KASKADE_COMPAT_SUITE_TIMEOUT  wall-clock limit per suite, seconds (600)
#   KASKADE_COMPAT_WAIT           how long to wait for BOOTSTRAP to accept TCP (30)
#   KASKADE_COMPAT_RESULTS        a directory that keeps every suite's reports
#                                 (JUnit XML, TAP), for tests/compat/compare.sh
#   KASKADE_COMPAT_BROKERS        how many brokers the cluster under test has, each
#                                 also a metadata-quorum voter (1; --nodes sets it):
#                                 the tests that describe the cluster expect it
set -u

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"

ALL_SUITES=(confluent kafka-python aiokafka kafkajs kcat java tools streams-connect go)
usage() {
    echo "usage: $0 BOOTSTRAP|--against kaskade|kafka [--nodes N] [${ALL_SUITES[*]} ...]" >&2
    exit 2
}
[ $# -ge 1 ] && [ -n "$1" ] || usage

RESULTS="$(mktemp -d)"
BROKER_DIR=""
FAILED=1
stop_broker() {
    [ -n "$BROKER_DIR" ] || return 0
    if [ -f "$BROKER_DIR/kind" ]; then
        bash "$HERE/../../scripts/cluster.sh" stop "$BROKER_DIR"
        if [ "$FAILED" -ne 0 ]; then
            echo "compat: the cluster's logs are kept in $BROKER_DIR" >&2
            return 0
        fi
    elif [ -f "$BROKER_DIR/kaskade.pid" ]; then
        kill -TERM "$(cat "$BROKER_DIR/kaskade.pid")" 2>/dev/null || true
        wait "$(cat "$BROKER_DIR/kaskade.pid")" 2>/dev/null || true
    elif [ -f "$BROKER_DIR/kafka.pid" ]; then
        bash "$HERE/../../scripts/kafka-ref.sh" stop "$BROKER_DIR"
    fi
    rm -rf "$BROKER_DIR"
}
trap 'stop_broker; rm -rf "$RESULTS"' EXIT

if [ "$1" = --against ]; then
    [ $# -ge 2 ] || usage
    AGAINST="$2"; shift 2
    NODES=1
    if [ "${1:-}" = --nodes ]; then
        NODES="${2:-}"; shift 2 || usage
        [[ "$NODES" =~ ^[1-9][0-9]*$ ]] || usage
    fi
    BROKER_DIR="$(mktemp -d)"
    if [ "$NODES" -gt 1 ]; then
        case "$AGAINST" in kaskade) flag=() ;; kafka) flag=(--kafka) ;; *) usage ;; esac
        bash "$HERE/../../scripts/cluster.sh" "${flag[@]}" start "$NODES" "$BROKER_DIR" >/dev/null \
            || { echo "compat: the $AGAINST cluster did not start (logs in $BROKER_DIR)" >&2; BROKER_DIR=""; exit 1; }
        BOOTSTRAP="127.0.0.1:$(cat "$BROKER_DIR/node-1.port")"
        AGAINST=cluster
    fi
    export KASKADE_COMPAT_BROKERS="$NODES"
    case "$AGAINST" in
        cluster) ;;
        kaskade)
            bin="${KASKADE_BIN:-$HERE/../../target/debug/kaskade}"
            [ -x "$bin" ] || { echo "compat: no Kaskade binary at $bin (cargo build, or set KASKADE_BIN)" >&2; exit 2; }
            port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
            "$bin" serve --data-dir "$BROKER_DIR/data" --listeners "PLAINTEXT://127.0.0.1:$port" --override http.listener= \
                >"$BROKER_DIR/kaskade.log" 2>&1 &
            echo $! >"$BROKER_DIR/kaskade.pid"
            BOOTSTRAP="127.0.0.1:$port"
            ;;
        kafka)
            BOOTSTRAP="$(bash "$HERE/../../scripts/kafka-ref.sh" start "$BROKER_DIR")" \
                || { echo "compat: Apache Kafka did not start" >&2; exit 1; }
            ;;
        *) usage ;;
    esac
else
    BOOTSTRAP="$1"; shift
fi
if [ $# -gt 0 ]; then SUITES=("$@"); else SUITES=("${ALL_SUITES[@]}"); fi

export KASKADE_BOOTSTRAP="$BOOTSTRAP" PYTHONDONTWRITEBYTECODE=1
SUITE_TIMEOUT="${KASKADE_COMPAT_SUITE_TIMEOUT:-600}"

total_p=0 total_f=0 total_s=0

# Counts <testcase>s of a JUnit XML file: prints "passed failed skipped".
junit_counts() {
    python3 - "$1" <<'EOF'
import sys, xml.etree.ElementTree as ET
p = f = s = 0
for tc in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    tags = {child.tag for child in tc}
    if "skipped" in tags:
        s += 1
    elif tags & {"failure", "error"}:
        f += 1
    else:
        p += 1
print(p, f, s)
EOF
}

# Counts TAP lines ("ok", "not ok", "# SKIP"): prints "passed failed skipped".
tap_counts() {
    awk '
        /^not ok [0-9]+/ { f++; next }
        /^ok [0-9]+.*# [Ss][Kk][Ii][Pp]/ { s++; next }
        /^ok [0-9]+/ { p++ }
        END { printf "%d %d %d\n", p, f, s }' "$1"
}

record() { # record SUITE RC "P F S" NOTE
    local suite="$1" rc="$2" p f s note="${4:-}"
    read -r p f s <<<"$3"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1; note="${note:-exited with status $rc but reported no failing test}"
    fi
    if [ "$rc" -eq 0 ] && [ $((p + f + s)) -eq 0 ]; then
        f=1; note="${note:-ran no test}"
    fi
    [ "$rc" -eq 124 ] && note="timed out after ${SUITE_TIMEOUT}s${note:+; $note}"
    echo "suite $suite: pass=$p fail=$f skip=$s in $(( $(date +%s) - suite_start )) s${note:+ ($note)}"
    total_p=$((total_p + p)) total_f=$((total_f + f)) total_s=$((total_s + s))
}

wait_for_broker() {
    local first="${BOOTSTRAP%%,*}" host port deadline
    host="${first%:*}"; port="${first##*:}"
    host="${host#[}"; host="${host%]}"
    deadline=$(( $(date +%s) + ${KASKADE_COMPAT_WAIT:-30} ))
    while :; do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.5
    done
}

run_pytest() { # run_pytest SUITE FILE...
    local suite="$1" rc=0 xml="$RESULTS/$1.xml"
    shift
    if [ ! -x "$VENV/bin/python" ]; then
        record "$suite" 1 "0 1 0" "no venv at $VENV: run scripts/install-compat-deps.sh"
        return
    fi
    (cd "$HERE/python" && timeout "$SUITE_TIMEOUT" "$VENV/bin/python" -m pytest -c pytest.ini \
        --junitxml="$xml" -o junit_family=xunit2 "$@") || rc=$?
    if [ -s "$xml" ]; then
        record "$suite" "$rc" "$(junit_counts "$xml")"
    else
        record "$suite" "$rc" "0 1 0" "pytest wrote no report (status $rc)"
    fi
}

run_kafkajs() {
    local rc=0 xml="$RESULTS/kafkajs.xml"
    if [ ! -f "$HERE/node/node_modules/kafkajs/package.json" ]; then
        record kafkajs 1 "0 1 0" "kafkajs not installed: run scripts/install-compat-deps.sh"
        return
    fi
    (cd "$HERE/node" && timeout "$SUITE_TIMEOUT" node --test \
        --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=junit --test-reporter-destination="$xml" \
        compat.test.mjs transactions.test.mjs) || rc=$?
    if [ -s "$xml" ]; then
        record kafkajs "$rc" "$(junit_counts "$xml")"
    else
        record kafkajs "$rc" "0 1 0" "node --test wrote no report (status $rc; needs Node >= 20.11)"
    fi
}

run_kcat() {
    local rc out="$RESULTS/kcat.tap"
    { timeout "$SUITE_TIMEOUT" bash "$HERE/kcat/test_kcat.sh" "$BOOTSTRAP"; echo $? >"$RESULTS/kcat.rc"; } \
        | tee "$out"
    rc="$(cat "$RESULTS/kcat.rc")"
    record kcat "$rc" "$(tap_counts "$out")"
}

# Suites in a directory of their own follow one contract: DIR/run.sh BOOTSTRAP
# OUT runs the suite and writes JUnit XML reports into OUT.
run_dir_suite() { # run_dir_suite SUITE DIR
    local suite="$1" dir="$HERE/$2" out="$RESULTS/$1" rc=0
    mkdir -p "$out"
    if [ ! -x "$dir/run.sh" ]; then
        record "$suite" 1 "0 1 0" "no $dir/run.sh"
        return
    fi
    timeout "$SUITE_TIMEOUT" bash "$dir/run.sh" "$BOOTSTRAP" "$out" || rc=$?
    if compgen -G "$out/*.xml" >/dev/null; then
        local p=0 f=0 s=0 x c1 c2 c3
        for x in "$out"/*.xml; do
            read -r c1 c2 c3 <<<"$(junit_counts "$x")"
            p=$((p + c1)) f=$((f + c2)) s=$((s + c3))
        done
        record "$suite" "$rc" "$p $f $s"
    else
        record "$suite" "$rc" "0 1 0" "wrote no JUnit report (status $rc)"
    fi
}

echo "compat: broker $BOOTSTRAP (of ${KASKADE_COMPAT_BROKERS:-1}), suites: ${SUITES[*]}"
if ! wait_for_broker; then
    echo "compat: nothing accepts TCP connections at $BOOTSTRAP (waited ${KASKADE_COMPAT_WAIT:-30}s)"
    echo "0 passed, 1 failed"
    exit 1
fi

run_start=$(date +%s)
for suite in "${SUITES[@]}"; do
    echo
    echo "=== $suite ==="
    suite_start=$(date +%s)
    case "$suite" in
        confluent) run_pytest confluent test_confluent.py test_confluent_txn.py test_confluent_admin_parity.py ;;
        kafka-python) run_pytest kafka-python test_kafka_python.py test_kafka_python_txn.py ;;
        aiokafka) run_pytest aiokafka test_aiokafka.py ;;
        kafkajs) run_kafkajs ;;
        kcat) run_kcat ;;
        java) run_dir_suite java java ;;
        tools) run_dir_suite tools tools ;;
        streams-connect) run_dir_suite streams-connect jvm-apps ;;
        go) run_dir_suite go go ;;
        *) record "$suite" 1 "0 1 0" "unknown suite" ;;
    esac
done

if [ -n "${KASKADE_COMPAT_RESULTS:-}" ]; then
    mkdir -p "$KASKADE_COMPAT_RESULTS"
    cp -r "$RESULTS"/. "$KASKADE_COMPAT_RESULTS"/
fi

echo
echo "compat: all suites in $(( $(date +%s) - run_start )) s"
line="$total_p passed, $total_f failed"
[ "$total_s" -gt 0 ] && line="$line, $total_s skipped"
echo "$line"
FAILED="$total_f"
[ "$total_f" -eq 0 ]
