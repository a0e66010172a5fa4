#!/usr/bin/env bash
# Runs the console's browser tests: builds `kaskade` (or takes KASKADE_BIN),
# starts `kaskade serve` on free ports with the HTTP listener, runs the
# single-node tests (node's test runner, headless Chromium), stops the
# broker; then starts a three-node cluster (scripts/cluster.sh, HTTP on,
# racks, short session and ISR timeouts) and runs the cluster tests against
# node 1's console, and stops it. Screenshots of failing tests go to
# tests/console/artifacts/.
#
#   bash tests/console/run.sh          # after tests/console/install.sh
#   KASKADE_BIN=target/release/kaskade bash tests/console/run.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

bin="${KASKADE_BIN:-}"
if [ -z "$bin" ]; then
    cargo build --quiet -p kaskade
    bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug/kaskade"
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kport=$(free_port)
hport=$(free_port)
data=$(mktemp -d "${TMPDIR:-/tmp}/kaskade-console.XXXXXX")
"$bin" serve --data-dir "$data/data" --listeners "PLAINTEXT://127.0.0.1:$kport" \
    --override "http.listener=127.0.0.1:$hport" >"$data/broker.log" 2>&1 &
broker=$!
cleanup() {
    kill -9 "$broker" 2>/dev/null || true
    [ -f "$data/cluster/kind" ] && bash "$ROOT/scripts/cluster.sh" stop "$data/cluster" >/dev/null 2>&1
    rm -rf "$data"
}
trap cleanup EXIT

# Ready when the HTTP listener says so (/ready turns 200 once the broker serves).
for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$hport/ready" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$broker" 2>/dev/null; then
        echo "kaskade serve exited; its log:" >&2
        cat "$data/broker.log" >&2
        exit 1
    fi
    sleep 0.1
done

rm -rf "$HERE/artifacts"
set +e
CONSOLE_URL="http://127.0.0.1:$hport" KAFKA_BROKER="127.0.0.1:$kport" \
    node --test --test-concurrency=1 --test-reporter=spec "$HERE/console.test.mjs"
rc=$?
set -e

kill -TERM "$broker"
if ! wait "$broker"; then
    echo "kaskade did not stop cleanly; its log:" >&2
    tail -50 "$data/broker.log" >&2
    exit 1
fi
if grep -qE 'panicked|ERROR' "$data/broker.log"; then
    echo "the broker logged errors during the console tests:" >&2
    grep -E 'panicked|ERROR' "$data/broker.log" >&2
    exit 1
fi
[ "$rc" = 0 ] || exit "$rc"

# The cluster: a silent broker is fenced after 3 s, a lagging follower
# leaves the ISR after 2 s (as the Rust cluster tests set them).
cluster="$data/cluster"
CLUSTER_HTTP=1 CLUSTER_RACKS=1 KASKADE_BIN="$bin" KASKADE_LOG=info \
    KAFKA_BROKER_SESSION_TIMEOUT_MS=3000 KAFKA_BROKER_HEARTBEAT_INTERVAL_MS=300 \
    KAFKA_REPLICA_LAG_TIME_MAX_MS=2000 \
    bash "$ROOT/scripts/cluster.sh" start 3 "$cluster" >/dev/null
set +e
CONSOLE_URL="http://127.0.0.1:$(cat "$cluster/node-1.hport")" KAFKA_BROKERS="$(cat "$cluster/bootstrap")" \
    CLUSTER_DIR="$cluster" CLUSTER_SH="$ROOT/scripts/cluster.sh" \
    node --test --test-concurrency=1 --test-reporter=spec "$HERE/cluster.test.mjs"
rc=$?
set -e
bash "$ROOT/scripts/cluster.sh" stop "$cluster"
# A killed node leaves the others logging errors about it; a panic is a bug.
if grep -q 'panicked' "$cluster"/node-*.log; then
    echo "a cluster node panicked during the console tests:" >&2
    grep -B2 -A5 'panicked' "$cluster"/node-*.log >&2
    exit 1
fi
if [ "$rc" != 0 ]; then
    for f in "$cluster"/node-*.log; do echo "--- $f (last 40 lines)" >&2; tail -40 "$f" >&2; done
fi
exit "$rc"
