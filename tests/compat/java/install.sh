#!/usr/bin/env bash
# Installs the Java compatibility suite: resolves kafka-clients (4.4.0 and
# 3.8.0), JUnit and the Maven plugins into the default local repository
# (~/.m2) and compiles the module once per client version (target/kafka-V).
# Idempotent and quiet; a second run takes well under 2 s (stamp file).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERSIONS="${KASKADE_JAVA_CLIENT_VERSIONS:-4.4.0 3.8.0}"
command -v mvn >/dev/null 2>&1 || { echo "java suite: mvn not found" >&2; exit 1; }
command -v java >/dev/null 2>&1 || { echo "java suite: java not found" >&2; exit 1; }

# The stamp holds a digest of the sources and the POM: re-install when they change.
digest() { (cd "$HERE" && find pom.xml src -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16); }
for v in $VERSIONS; do
    stamp="$HERE/target/kafka-$v/.installed"
    want="$(digest)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        continue
    fi
    log="$(mktemp)"
    # test-compile pulls the compiler/resources/dependency plugins and every
    # dependency; dependency:go-offline and one broker-less test bring the
    # surefire plugin and its JUnit provider, so run.sh works with mvn -o.
    if ! (cd "$HERE" && mvn -q -B -Dstyle.color=never -Dkafka.version="$v" test-compile dependency:go-offline >"$log" 2>&1 \
          && KASKADE_BOOTSTRAP=127.0.0.1:9 mvn -q -B -Dstyle.color=never -Dkafka.version="$v" test \
               -Dtest='ProducerDefaultsTest#defaultConfigIsIdempotentWithFiveInFlight' >>"$log" 2>&1); then
        sed 's/^/    /' "$log" >&2
        rm -f "$log"
        echo "java suite: install failed for kafka-clients $v" >&2
        exit 1
    fi
    rm -f "$log"
    echo "$want" >"$stamp"
done
