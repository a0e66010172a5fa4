#!/usr/bin/env bash
# Apache Kafka's own tools against a 3-node cluster (scripts/cluster.sh):
# kafka-metadata-quorum, kafka-topics with replication factor 3,
# console producer/consumer through single nodes, kafka-consumer-groups with a
# remote coordinator, and all of that again after kill -9 of the active
# controller.
#
#   tests/compat/cluster/run.sh [--against kaskade|kafka] RESULTS_DIR
#
# Starts the cluster in a temporary directory (kept, with its logs, when a
# test failed), writes RESULTS_DIR/cluster-<kind>.xml (JUnit), stops it.
# Needs tests/compat/tools/install.sh first, and for Kaskade a built binary
# (KASKADE_BIN, see scripts/cluster.sh). CLUSTER_RF (3) is the test topic's
# replication factor.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
VENV="$HERE/../.venv"
kind=kaskade
if [ "${1:-}" = "--against" ]; then kind="${2:?--against kaskade|kafka}"; shift 2; fi
[ $# -ge 1 ] || { echo "usage: $0 [--against kaskade|kafka] RESULTS_DIR" >&2; exit 2; }
case "$kind" in kaskade) flag=() ;; kafka) flag=(--kafka) ;; *) echo "unknown: $kind" >&2; exit 2 ;; esac
mkdir -p "$1"
RESULTS="$(cd "$1" && pwd)"
DIR="$(mktemp -d "${TMPDIR:-/tmp}/compat-cluster-$kind.XXXXXX")"
"$ROOT/scripts/cluster.sh" "${flag[@]}" start 3 "$DIR" >/dev/null || exit 1
export CLUSTER_DIR="$DIR" KASKADE_BOOTSTRAP="$(cat "$DIR/bootstrap")" PYTHONDONTWRITEBYTECODE=1
(cd "$HERE" && "$VENV/bin/python" -m pytest -c pytest.ini -v \
    --junitxml="$RESULTS/cluster-$kind.xml" -o junit_family=xunit2 -o junit_suite_name="cluster-$kind" \
    test_cluster.py)
rc=$?
"$ROOT/scripts/cluster.sh" stop "$DIR"
if [ "$rc" -eq 0 ]; then rm -rf "$DIR"; else echo "cluster: logs kept in $DIR" >&2; fi
exit "$rc"
