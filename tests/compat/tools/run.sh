#!/usr/bin/env bash
# Runs Apache Kafka 4.4.0's own command-line tools (kafka-topics, kafka-console-*,
# kafka-consumer-groups, kafka-configs, kafka-get-offsets, kafka-delete-records,
# kafka-transactions, kafka-log-dirs, kafka-*-perf-test), unchanged, against a broker.
#
#   tests/compat/tools/run.sh BOOTSTRAP RESULTS_DIR
#
# Writes RESULTS_DIR/tools.xml (JUnit), prints progress, exits non-zero if a test failed.
# Needs tests/compat/tools/install.sh first.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/../.venv"
if [ $# -lt 2 ]; then
    echo "usage: $0 BOOTSTRAP RESULTS_DIR" >&2
    exit 2
fi
BOOTSTRAP="$1"
mkdir -p "$2"
RESULTS="$(cd "$2" && pwd)"
export KASKADE_BOOTSTRAP="$BOOTSTRAP" PYTHONDONTWRITEBYTECODE=1
cd "$HERE" && exec "$VENV/bin/python" -m pytest -c pytest.ini -v \
    --junitxml="$RESULTS/tools.xml" -o junit_family=xunit2 -o junit_suite_name=kafka-tools \
    test_tools.py
