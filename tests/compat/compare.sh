#!/usr/bin/env bash
# Runs the compatibility suites against Apache Kafka (the oracle) and against
# Kaskade, each on a fresh single node, and prints one table: suite, test,
# result on Kafka, result on Kaskade.
#
#   tests/compat/compare.sh [SUITE...]        # default: every suite
#
# Exits non-zero when a test passes on Kafka and fails on Kaskade: that is a
# Kaskade bug (or, if intended, a line in DIFFERENCES.md and a test that says so).
# Needs: scripts/install-compat-deps.sh, and a built Kaskade (KASKADE_BIN,
# default target/debug/kaskade).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for broker in kafka kaskade; do
    echo "=== against $broker ===" >&2
    KASKADE_COMPAT_RESULTS="$work/$broker" bash "$HERE/run.sh" --against "$broker" "$@" \
        >"$work/$broker.out" 2>&1
    tail -1 "$work/$broker.out" >&2
done
python3 "$HERE/compare_table.py" "$work/kafka" "$work/kaskade"
