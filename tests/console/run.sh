#!/usr/bin/env bash
# Runs the console's browser tests: builds `kaskade`, starts `kaskade serve`
# on free ports with the HTTP listener, runs the tests (node's test runner,
# headless Chromium), stops the broker. Screenshots of failing tests go to
# tests/console/artifacts/.
#
#   bash tests/console/run.sh          # after tests/console/install.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

cargo build --quiet -p kaskade
bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug/kaskade"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kport=$(free_port)
hport=$(free_port)
data=$(mktemp -d)
"$bin" serve --data-dir "$data/data" --listeners "PLAINTEXT://127.0.0.1:$kport" \
    --override "http.listener=127.0.0.1:$hport" >"$data/broker.log" 2>&1 &
broker=$!
cleanup() { kill -9 "$broker" 2>/dev/null || true; rm -rf "$data"; }
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
exit "$rc"
