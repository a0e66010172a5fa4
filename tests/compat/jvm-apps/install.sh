#!/usr/bin/env bash
# Pre-fetches the Maven dependencies of the jvm-apps suite (Kafka Streams,
# Connect runtime, connect-file, log4j2, JUnit 5, the surefire provider) and
# compiles it, so run.sh can work offline. Idempotent and quiet; a second run
# with unchanged sources returns at once.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
command -v mvn >/dev/null 2>&1 || { echo "jvm-apps install: mvn not found" >&2; exit 1; }
command -v java >/dev/null 2>&1 || { echo "jvm-apps install: java not found" >&2; exit 1; }

STAMP="target/.installed"
SUM="$( (cat pom.xml install.sh; find src -type f | LC_ALL=C sort | xargs cat) | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$SUM" ] && [ -s target/runtime-classpath.txt ] \
   && [ -d target/test-classes ] && [ -f target/plugins/connect-file-4.3.1/connect-file-4.3.1.jar ]; then
    # Also check that the jars are still in the local Maven repository.
    missing=0
    IFS=: read -r -a jars < target/runtime-classpath.txt || true
    for j in "${jars[@]}"; do [ -f "$j" ] || { missing=1; break; }; done
    [ "$missing" = 0 ] && exit 0
fi

out="$(mktemp)"
# Running InstallCheckTest (which checks the framework classpath and the
# connect-file plugin directory) makes surefire fetch its JUnit platform
# provider, which it resolves only when it runs a test; run.sh is then offline.
if ! mvn -B -q test -Dtest=InstallCheckTest >"$out" 2>&1; then
    sed 's/^/    /' "$out" >&2
    rm -f "$out"
    echo "jvm-apps install: mvn failed" >&2
    exit 1
fi
rm -f "$out"
echo "$SUM" > "$STAMP"
