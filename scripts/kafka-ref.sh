#!/usr/bin/env bash
# Apache Kafka as the reference broker: fetched from Maven Central, run as a
# single KRaft node (combined broker+controller) on loopback.
#
#   scripts/kafka-ref.sh fetch                 # resolve the jars (idempotent, quiet)
#   scripts/kafka-ref.sh classpath             # print the classpath (after fetch)
#   scripts/kafka-ref.sh start DIR [PORT]      # format DIR, start, wait until it serves;
#                                              # prints the bootstrap address (127.0.0.1:PORT)
#   scripts/kafka-ref.sh stop DIR              # SIGTERM, then SIGKILL after 20 s
#   scripts/kafka-ref.sh run MAIN [ARGS...]    # run one of Kafka's classes (its tools)
#
# PORT defaults to a free port; the controller listens on the next free one.
# DIR holds server.properties, the data, kafka.pid and kafka.log.
#
# Environment:
#   KAFKA_REF_VERSION   the pinned Apache Kafka version (4.4.0: the newest 4.x
#                       whose kafka_2.13, kafka-tools and kafka-server resolve)
#   KAFKA_REF_HOME      where the jars go (tests/compat/.kafka/VERSION)
#   KAFKA_REF_HEAP      broker heap (-Xmx, default 1g)
#   KAFKA_REF_WAIT      seconds to wait for the broker to serve (120)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${KAFKA_REF_VERSION:-4.4.0}"
HOME_DIR="${KAFKA_REF_HOME:-$ROOT/tests/compat/.kafka/$VERSION}"
LIBS="$HOME_DIR/libs"

log() { printf 'kafka-ref: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

fetch() {
    local stamp="$HOME_DIR/.complete"
    [ -f "$stamp" ] && [ -f "$LIBS/kafka_2.13-$VERSION.jar" ] && return 0
    command -v mvn >/dev/null 2>&1 || die "mvn not found (Maven is needed to fetch Apache Kafka)"
    command -v java >/dev/null 2>&1 || die "java not found (Apache Kafka needs Java 17+)"
    mkdir -p "$HOME_DIR"
    # A throwaway POM naming what Kafka's distribution ships: the broker, its
    # tools and server modules, and a log4j2 binding so the broker's log says
    # when it is ready.
    cat >"$HOME_DIR/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.kaskade.compat</groupId><artifactId>kafka-ref</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-server</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.25.5</version></dependency>
  </dependencies>
</project>
EOF
    local out rc=0
    out="$(mktemp)"
    (cd "$HOME_DIR" && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$LIBS") >"$out" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        sed 's/^/    /' "$out" >&2
        rm -f "$out"
        die "mvn could not resolve Apache Kafka $VERSION"
    fi
    rm -f "$out"
    cat >"$HOME_DIR/log4j2.properties" <<'EOF'
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/kafka.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
logger.apache.name = org.apache.kafka
logger.apache.level = warn
EOF
    cat >"$HOME_DIR/tools-log4j2.properties" <<'EOF'
status = warn
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = err
EOF
    touch "$HOME_DIR/.complete"
}

classpath() { echo "$LIBS/*"; }

start() {
    local dir="${1:?usage: kafka-ref.sh start DIR [PORT]}" port="${2:-}" cport
    fetch
    [ -n "$port" ] || port="$(free_port)"
    cport="$(free_port)"
    [ "$cport" != "$port" ] || cport="$(free_port)"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if [ -f "$dir/kafka.pid" ] && kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then
        die "a broker already runs from $dir (pid $(cat "$dir/kafka.pid"))"
    fi
    rm -rf "$dir/data"
    # Kafka's defaults, but for the replication factors of its internal topics
    # (one node), as the seeds' docker-compose files set them.
    cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
EOF
    local cp cluster_id
    cp="$(classpath)"
    cluster_id="$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
    [ -n "$cluster_id" ] || die "StorageTool random-uuid printed nothing"
    java -cp "$cp" -Dlog4j2.configurationFile="$HOME_DIR/tools-log4j2.properties" \
        kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" --standalone \
        >"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; die "formatting $dir failed"; }
    : >"$dir/kafka.log"
    # setsid: the broker outlives this script and is stopped by `stop`.
    setsid java -Xmx"${KAFKA_REF_HEAP:-1g}" -Xms256m -XX:+UseG1GC \
        -Dlog4j2.configurationFile="$HOME_DIR/log4j2.properties" -Dkafka.logs.dir="$dir" \
        -cp "$cp" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 </dev/null &
    echo $! >"$dir/kafka.pid"
    local deadline=$(( $(date +%s) + ${KAFKA_REF_WAIT:-120} ))
    # Serving = the broker logged that it started and its port accepts TCP.
    until grep -q 'Kafka Server started' "$dir/kafka.log" 2>/dev/null \
            && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        if ! kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then
            tail -30 "$dir/kafka.log" "$dir/stdout.log" >&2
            die "Apache Kafka exited during start-up"
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            tail -30 "$dir/kafka.log" >&2
            stop "$dir"
            die "Apache Kafka did not serve within ${KAFKA_REF_WAIT:-120}s"
        fi
        sleep 0.2
    done
    echo "$port" >"$dir/kafka.port"
    echo "127.0.0.1:$port"
}

stop() {
    local dir="${1:?usage: kafka-ref.sh stop DIR}" pid
    [ -f "$dir/kafka.pid" ] || return 0
    pid="$(cat "$dir/kafka.pid")"
    if kill -TERM "$pid" 2>/dev/null; then
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/kafka.pid"
}

run_class() {
    local main="${1:?usage: kafka-ref.sh run MAIN [ARGS...]}"
    shift
    fetch
    exec java -Xmx512m -Dlog4j2.configurationFile="$HOME_DIR/tools-log4j2.properties" \
        -cp "$(classpath)" "$main" "$@"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
    fetch) fetch ;;
    classpath) fetch; classpath ;;
    start) start "$@" ;;
    stop) stop "$@" ;;
    run) run_class "$@" ;;
    *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
