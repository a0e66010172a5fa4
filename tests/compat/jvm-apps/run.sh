#!/usr/bin/env bash
# Runs the jvm-apps suite (Kafka Streams EOS word count with kill -9/restart,
# Kafka Connect distributed FileStream copy with SIGTERM and SIGKILL restarts)
# against the broker at BOOTSTRAP, and writes the surefire JUnit XML reports
# into RESULTS_DIR. Exits non-zero if any test failed or none ran.
#
#   tests/compat/jvm-apps/run.sh BOOTSTRAP RESULTS_DIR [TEST_FILTER]
#
# TEST_FILTER is an optional surefire -Dtest value, e.g. StreamsWordCountTest.
# KASKADE_JVM_APPS_LOGLEVEL sets the framework JVMs' log4j root level (WARN).
# KASKADE_JVM_APPS_KEEP=1 keeps every test's temp dir (framework stdout, logs,
# files); by default only a failed test's dir is kept.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -lt 2 ] || [ -z "$1" ] || [ -z "$2" ]; then
    echo "usage: $0 BOOTSTRAP RESULTS_DIR [TEST_FILTER]" >&2
    exit 2
fi
BOOTSTRAP="$1"
RESULTS="$2"
FILTER="${3:-}"
mkdir -p "$RESULTS"
RESULTS="$(cd "$RESULTS" && pwd)"

"$HERE/install.sh" || exit 1

cd "$HERE"
export KASKADE_BOOTSTRAP="$BOOTSTRAP"
rm -rf target/surefire-reports
args=(-B -o --no-transfer-progress surefire:test "-Dtest=${FILTER:-StreamsWordCountTest,ConnectFileCopyTest}")
echo "jvm-apps: running against $BOOTSTRAP"
mvn "${args[@]}"
rc=$?
n=0
for f in target/surefire-reports/TEST-*.xml; do
    [ -f "$f" ] || continue
    cp "$f" "$RESULTS/jvm-apps-$(basename "$f")"
    n=$((n + 1))
done
if [ "$n" -eq 0 ]; then
    echo "jvm-apps: no surefire report was written (mvn exit $rc)" >&2
    exit 1
fi
exit "$rc"
