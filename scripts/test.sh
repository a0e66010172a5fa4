#!/usr/bin/env bash
# Runs the whole test suite: formatting and lints, every Rust test (unit,
# property, crash and rdkafka integration tests), then the real-client
# compatibility suite (Python confluent-kafka and kafka-python, Node kafkajs,
# kcat, the Java client at 4.4.0 and 3.8.0, Apache Kafka's own command-line
# tools, Kafka Streams and Kafka Connect, and the Go clients kafka-go,
# confluent-kafka-go, franz-go and sarama), which installs its own clients
# from their registries (PyPI, npm, Debian, Maven Central, the Go proxy).
# The same suites run against Apache Kafka with tests/compat/compare.sh.
# Then the same compatibility suite against a 3-node Kaskade cluster, the
# clients bootstrapping from node 1 only (KASKADE_COMPAT_BROKERS=3).
# Then Kafka's tools against a 3-node Kaskade cluster (tests/compat/cluster,
# replication factor 3, kill -9 of the active controller).
# Then the web console's browser tests (tests/console: headless Chromium
# from Debian, playwright-core and kafkajs from npm).
#
#   scripts/test.sh            # everything (what CI runs)
#   KASKADE_SKIP_COMPAT=1 scripts/test.sh   # Rust tests only
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test --workspace"
# Bounded: a hung test fails the run instead of eating CI's 90 minutes.
set +e
timeout 2400 cargo test --workspace --quiet >/tmp/kaskade-cargo-test.$$ 2>&1
test_rc=$?
set -e
grep -Ev '^(running 0 tests|)$|^test result: ok. 0 passed' /tmp/kaskade-cargo-test.$$ || true
if [ "$test_rc" != 0 ] || grep -qE '^test result: FAILED|^error(\[|:)' /tmp/kaskade-cargo-test.$$; then
    rm -f /tmp/kaskade-cargo-test.$$
    echo "cargo test failed" >&2
    exit 1
fi
rust_passed=$(grep -oE '^test result: ok\. [0-9]+ passed' /tmp/kaskade-cargo-test.$$ | awk '{s+=$4} END {print s+0}')
rm -f /tmp/kaskade-cargo-test.$$

if [ "${KASKADE_SKIP_COMPAT:-}" = 1 ]; then
    echo "$rust_passed passed, 0 failed"
    exit 0
fi

step "compatibility suite: installing clients"
bash scripts/install-compat-deps.sh

step "compatibility suite: starting a broker"
cargo build --quiet -p kaskade
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log="$data/broker.log"
./target/debug/kaskade serve --data-dir "$data/data" --listeners "PLAINTEXT://127.0.0.1:$port" --override http.listener= >"$log" 2>&1 &
broker=$!
cleanup() {
    kill -9 "$broker" 2>/dev/null || true
    [ ! -f "$data/compat-cluster/kind" ] || bash scripts/cluster.sh stop "$data/compat-cluster" || true
    rm -rf "$data"
}
trap cleanup EXIT

step "compatibility suite: running against 127.0.0.1:$port"
set +e
bash tests/compat/run.sh "127.0.0.1:$port" | tee "$data/compat.out"
compat=${PIPESTATUS[0]}
set -e

# The broker must stop cleanly on SIGTERM (flush, clean-shutdown marker).
kill -TERM "$broker"
if ! wait "$broker"; then
    echo "broker did not stop cleanly; its log:" >&2
    tail -50 "$log" >&2
    exit 1
fi
if grep -qE 'panicked|ERROR' "$log"; then
    echo "the broker logged errors during the compatibility suite:" >&2
    grep -E 'panicked|ERROR' "$log" >&2
    exit 1
fi

step "compatibility suite: every client against a 3-node cluster, bootstrapping from node 1"
# Combined nodes (broker + controller) from scripts/cluster.sh; the tests that
# describe the cluster expect KASKADE_COMPAT_BROKERS brokers and voters.
bash scripts/cluster.sh start 3 "$data/compat-cluster" >/dev/null
set +e
# Three nodes on CI's two cores: a suite gets 20 min before it counts as hung
# (tools, one JVM per command, took 5 min here at load 20, and over 10 min
# once a build ran beside it).
KASKADE_COMPAT_BROKERS=3 KASKADE_COMPAT_SUITE_TIMEOUT="${KASKADE_COMPAT_SUITE_TIMEOUT:-1200}" \
    bash tests/compat/run.sh "127.0.0.1:$(cat "$data/compat-cluster/node-1.port")" \
    | tee "$data/compat-cluster.out"
ccompat=${PIPESTATUS[0]}
set -e
bash scripts/cluster.sh stop "$data/compat-cluster"
if grep -qE 'panicked' "$data"/compat-cluster/node-*.log; then
    echo "a cluster node panicked during the compatibility suite:" >&2
    grep -E 'panicked' "$data"/compat-cluster/node-*.log >&2
    exit 1
fi

step "compatibility suite: Kafka's tools against a 3-node cluster"
set +e
bash tests/compat/cluster/run.sh --against kaskade "$data/cluster" 2>&1 \
    | tee "$data/cluster.out"
cluster=${PIPESTATUS[0]}
set -e
cluster_passed=$(grep -oE '[0-9]+ passed' "$data/cluster.out" | tail -1 | grep -oE '[0-9]+' || echo 0)
cluster_failed=$(grep -oE '[0-9]+ failed' "$data/cluster.out" | tail -1 | grep -oE '[0-9]+' || echo 0)

step "web console: browser tests (headless Chromium)"
bash tests/console/install.sh
set +e
bash tests/console/run.sh 2>&1 | tee "$data/console.out"
console=${PIPESTATUS[0]}
set -e
# run.sh runs two node:test files (one node, then a cluster): one summary each.
console_passed=$(grep -oE '^ℹ pass [0-9]+' "$data/console.out" | grep -oE '[0-9]+' | awk '{s += $1} END {print s + 0}' || true)
console_failed=$(grep -oE '^ℹ fail [0-9]+' "$data/console.out" | grep -oE '[0-9]+' | awk '{s += $1} END {print s + 0}' || true)
[ -n "$(grep -E '^ℹ pass [0-9]+' "$data/console.out")" ] || console_failed=1

summary=$(tail -1 "$data/compat.out")
cp=$(echo "$summary" | grep -oE '^[0-9]+' || echo 0)
cf=$(echo "$summary" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || echo 1)
csummary=$(tail -1 "$data/compat-cluster.out")
ccp=$(echo "$csummary" | grep -oE '^[0-9]+' || echo 0)
ccf=$(echo "$csummary" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || echo 1)
echo "rust: $rust_passed passed; compat: $summary; compat on 3 nodes: $csummary;" \
    "cluster: $cluster_passed passed, $cluster_failed failed; console: $console_passed passed, $console_failed failed"
echo "$((rust_passed + cp + ccp + cluster_passed + console_passed)) passed," \
    "$((cf + ccf + cluster_failed + console_failed)) failed"
[ "$compat" = 0 ] || exit "$compat"
[ "$ccompat" = 0 ] || exit "$ccompat"
[ "$cluster" = 0 ] || exit "$cluster"
exit "$console"
