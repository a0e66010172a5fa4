#!/usr/bin/env bash
# Runs the Go real-client compatibility suite against a running broker.
#
#   tests/compat/go/run.sh BOOTSTRAP RESULTS_DIR
#
# BOOTSTRAP    host:port of the broker (Kaskade or Apache Kafka)
# RESULTS_DIR  where the JUnit XML report go.xml is written
#
# Builds what is missing first (install.sh, fast when up to date), then runs
# the pre-compiled test binary under test2json, echoing each test's output,
# and converts the events to JUnit XML. Exits non-zero if any test failed.
#
# Environment:
#   KASKADE_COMPAT_TIMEOUT        per-operation wait in the tests, seconds (30)
#   KASKADE_COMPAT_GO_LOG         franz-go log level on stderr: debug|info|warn|error|none (warn);
#                                 debug also turns on sarama's logger
#   KASKADE_COMPAT_GO_RUN         only tests matching this regexp (go test -run)
#   KASKADE_COMPAT_GO_TIMEOUT     whole-binary timeout (go test -timeout), default 9m
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [ $# -lt 2 ] || [ -z "$1" ] || [ -z "$2" ]; then
    echo "usage: $0 BOOTSTRAP RESULTS_DIR" >&2
    exit 2
fi
BOOTSTRAP="$1"
mkdir -p "$2"
RESULTS="$(cd "$2" && pwd)"

"$HERE/install.sh" || exit 1

export KASKADE_BOOTSTRAP="$BOOTSTRAP"
# The seed 000 test runs these prebuilt programs (built from examples/seed000).
export KASKADE_COMPAT_GO_BIN="$HERE/.bin"
cd "$HERE"
echo "go suite: segmentio/kafka-go v0.4.51, confluent-kafka-go v2.11.1, franz-go v1.22.3 (kadm v1.20.0), sarama v1.61.1 against $BOOTSTRAP"
set -o pipefail
go tool test2json -t -p compat-go \
    ./.bin/compat.test -test.v=test2json -test.count=1 \
    -test.timeout="${KASKADE_COMPAT_GO_TIMEOUT:-9m}" \
    ${KASKADE_COMPAT_GO_RUN:+-test.run="$KASKADE_COMPAT_GO_RUN"} 2>&1 |
    ./.bin/junit -o "$RESULTS/go.xml" -suite compat-go
