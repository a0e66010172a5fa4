#!/usr/bin/env bash
# Installs the Go compatibility suite: downloads the pinned modules (go.sum)
# through the Go module proxy and pre-compiles the test binary and the JUnit
# converter into .bin/. Idempotent and quiet unless it fails; a second run
# with nothing changed only compares file times.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
export CGO_ENABLED=1   # confluent-kafka-go links its bundled librdkafka with cgo

if ! command -v go >/dev/null 2>&1; then
    echo "install.sh: go not found on PATH" >&2
    exit 1
fi

stamp=.bin/compat.test
if [ -x "$stamp" ] && [ -x .bin/junit ] && [ -x .bin/seed000-producer ] && [ -x .bin/seed000-consumer ] &&
   [ -z "$(find . -path ./.bin -prune -o \( -name '*.go' -o -name go.mod -o -name go.sum \) -newer "$stamp" -print -quit)" ]; then
    exit 0
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
mkdir -p .bin
if ! { go mod download &&
       go build -o .bin/junit ./cmd/junit &&
       go build -o .bin/seed000-producer ./examples/seed000/producer &&
       go build -o .bin/seed000-consumer ./examples/seed000/consumer &&
       go vet ./... &&
       go test -c -o .bin/compat.test . ; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install.sh: building the Go compatibility suite failed" >&2
    rm -f "$stamp"
    exit 1
fi
