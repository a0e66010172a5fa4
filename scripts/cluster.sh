#!/usr/bin/env bash
# A local cluster of N combined nodes (broker + controller, static quorum) on
# loopback ports: Kaskade (`kaskade serve`) or, with --kafka, Apache Kafka
# 4.4.0 in KRaft mode from the jars scripts/kafka-ref.sh fetches, so the same
# tests can run against both. With --controllers M: M controller-only nodes
# (ids 1..M, the quorum) and N broker-only nodes (ids M+1..M+N), as Kafka's
# 3 + 3 docker-compose example ("isolated mode").
#
#   scripts/cluster.sh [--kafka] [--controllers M] start N DIR
#                                              # waits until every node serves;
#                                              # prints the bootstrap list (brokers)
#   scripts/cluster.sh stop DIR                # SIGTERM every node, SIGKILL after 20 s
#   scripts/cluster.sh status DIR              # one line per node: id, pid, port, up/down
#   scripts/cluster.sh kill9 DIR ID            # SIGKILL node ID (fault injection)
#   scripts/cluster.sh restart DIR ID          # start node ID again on its data and ports
#
# DIR holds, per node i: node-i/ (data), node-i.log, node-i.pid, node-i.port
# (client port; a controller-only node's controller port), node-i.role
# (combined|controller|broker), and for the cluster: kind (kaskade|kafka),
# bootstrap, voters, cluster_id, internal_rf and kaskade_bin (the binary
# `start` found). stop/status/kill9/restart read the kind and roles from
# DIR, so --kafka and --controllers are for start only.
#
# Environment:
#   KASKADE_BIN         the kaskade binary (default: target/debug/kaskade, else
#                       $CARGO_TARGET_DIR/debug/kaskade)
#   CLUSTER_ID          the cluster id (a Kafka base64 UUID; default a fixed one
#                       for Kaskade, a random one for Kafka)
#   CLUSTER_WAIT        seconds to wait for every node to serve (120)
#   CLUSTER_INTERNAL_RF replication factor of the internal topics (min(N, 3),
#                       Kafka's default)
#   KAFKA_REF_HEAP      each Kafka node's heap (-Xmx, default 512m)
#   CLUSTER_HTTP        1: each Kaskade node serves HTTP (metrics, console) on
#                       127.0.0.1 at the port in DIR/node-i.hport (default off)
#   CLUSTER_RACKS       1: node i of a Kaskade cluster is in rack `rack-i`
#                       (broker.rack; default none)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAFKA_REF="$ROOT/scripts/kafka-ref.sh"
WAIT="${CLUSTER_WAIT:-120}"

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() { sed -n '2,32p' "$0" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

kaskade_bin() {
    local bin="${KASKADE_BIN:-}"
    if [ -z "$bin" ]; then
        bin="$ROOT/target/debug/kaskade"
        [ -x "$bin" ] || bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug/kaskade"
    fi
    [ -x "$bin" ] || die "no Kaskade binary at $bin (cargo build, or set KASKADE_BIN)"
    echo "$bin"
}

# Launches node $2 of the cluster in $1 (ports and voters already chosen);
# does not wait.
launch() {
    local dir="$1" id="$2" kind port cport voters
    kind="$(cat "$dir/kind")"
    port="$(cat "$dir/node-$id.port")"
    cport="$(cat "$dir/node-$id.cport")"
    voters="$(cat "$dir/voters")"
    alive "$dir/node-$id.pid" && die "node $id already runs (pid $(cat "$dir/node-$id.pid"))"
    : >>"$dir/node-$id.log"
    local http="" rack=()
    [ -f "$dir/node-$id.hport" ] && http="127.0.0.1:$(cat "$dir/node-$id.hport")"
    [ -f "$dir/racks" ] && rack=(KAFKA_BROKER_RACK="rack-$id")
    local role=combined
    [ -f "$dir/node-$id.role" ] && role="$(cat "$dir/node-$id.role")"
    # The seeds' docker-compose variables, as Kaskade reads them, per role.
    local roles=(KAFKA_PROCESS_ROLES=broker,controller
        KAFKA_LISTENERS="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport"
        KAFKA_ADVERTISED_LISTENERS="PLAINTEXT://127.0.0.1:$port"
        KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT)
    case "$role" in
        controller) roles=(KAFKA_PROCESS_ROLES=controller KAFKA_LISTENERS="CONTROLLER://127.0.0.1:$cport"
            KAFKA_ADVERTISED_LISTENERS="CONTROLLER://127.0.0.1:$cport"
            KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=CONTROLLER:PLAINTEXT) ;;
        broker) roles=(KAFKA_PROCESS_ROLES=broker KAFKA_LISTENERS="PLAINTEXT://127.0.0.1:$port"
            KAFKA_ADVERTISED_LISTENERS="PLAINTEXT://127.0.0.1:$port" KAFKA_INTER_BROKER_LISTENER_NAME=PLAINTEXT
            KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT) ;;
    esac
    case "$kind" in
        kaskade)
            # setsid: the nodes outlive this script and are stopped by `stop`.
            env "${roles[@]}" KAFKA_NODE_ID="$id" \
                KAFKA_CONTROLLER_LISTENER_NAMES=CONTROLLER \
                KAFKA_CONTROLLER_QUORUM_VOTERS="$voters" \
                KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="$(cat "$dir/internal_rf")" \
                KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="$(cat "$dir/internal_rf")" \
                CLUSTER_ID="$(cat "$dir/cluster_id")" KASKADE_LOG="${KASKADE_LOG:-info}" "${rack[@]}" \
                setsid "$(cat "$dir/kaskade_bin")" serve --data-dir "$dir/node-$id" --override "http.listener=$http" \
                >>"$dir/node-$id.out" 2>>"$dir/node-$id.log" </dev/null &
            ;;
        kafka)
            local home
            home="${KAFKA_REF_HOME:-$ROOT/tests/compat/.kafka/${KAFKA_REF_VERSION:-4.4.0}}"
            mkdir -p "$dir/node-$id.logs"
            setsid java -Xmx"${KAFKA_REF_HEAP:-512m}" -Xms128m -XX:+UseG1GC \
                -Dlog4j2.configurationFile="$home/log4j2.properties" -Dkafka.logs.dir="$dir/node-$id.logs" \
                -cp "$(bash "$KAFKA_REF" classpath)" kafka.Kafka "$dir/node-$id.properties" \
                >>"$dir/node-$id.out" 2>&1 </dev/null &
            ;;
        *) die "unknown cluster kind '$kind' in $dir/kind" ;;
    esac
    echo $! >"$dir/node-$id.pid"
}

# The node logged that it serves and its client port accepts TCP.
ready() {
    local dir="$1" id="$2" port
    port="$(cat "$dir/node-$id.port")"
    case "$(cat "$dir/kind")" in
        kaskade) grep -q '^kaskade: data in ' "$dir/node-$id.out" 2>/dev/null ;;
        kafka) grep -q 'Kafka Server started' "$dir/node-$id.logs/kafka.log" 2>/dev/null ;;
    esac && accepts "$port"
}

wait_ready() {
    local dir="$1" id deadline=$(( $(date +%s) + WAIT ))
    shift
    for id in "$@"; do
        until ready "$dir" "$id"; do
            if ! alive "$dir/node-$id.pid"; then
                tail -30 "$dir/node-$id.log" "$dir/node-$id.out" >&2 || true
                die "node $id exited during start-up (logs in $dir)"
            fi
            if [ "$(date +%s)" -ge "$deadline" ]; then
                tail -30 "$dir/node-$id.log" "$dir/node-$id.out" >&2 || true
                die "node $id did not serve within ${WAIT}s (logs in $dir)"
            fi
            sleep 0.2
        done
    done
}

kafka_properties() {
    local dir="$1" id="$2" port cport rf
    port="$(cat "$dir/node-$id.port")"
    cport="$(cat "$dir/node-$id.cport")"
    rf="$(cat "$dir/internal_rf")"
    local role=combined
    [ -f "$dir/node-$id.role" ] && role="$(cat "$dir/node-$id.role")"
    case "$role" in
        controller)
            cat >"$dir/node-$id.properties" <<EOF
process.roles=controller
node.id=$id
controller.quorum.voters=$(cat "$dir/voters")
listeners=CONTROLLER://127.0.0.1:$cport
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT
log.dirs=$dir/node-$id
EOF
            ;;
        broker)
            cat >"$dir/node-$id.properties" <<EOF
process.roles=broker
node.id=$id
controller.quorum.voters=$(cat "$dir/voters")
listeners=PLAINTEXT://127.0.0.1:$port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/node-$id
EOF
            ;;
        *)
            cat >"$dir/node-$id.properties" <<EOF
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$(cat "$dir/voters")
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/node-$id
EOF
            ;;
    esac
    cat >>"$dir/node-$id.properties" <<EOF
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$(( rf < 2 ? rf : 2 ))
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$(( rf < 2 ? rf : 2 ))
EOF
}

start() {
    local kind="$1" m="$2" n="${3:?usage: cluster.sh start N DIR}" dir="${4:?usage: cluster.sh start N DIR}" id
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number, not '$n'"
    [[ "$m" =~ ^[0-9]+$ ]] || die "--controllers needs a number, not '$m'"
    # With M controllers, ids 1..M are controller-only and M+1..M+N broker-only.
    local total=$(( m + n ))
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    for id in $(nodes "$dir") $(seq 1 "$total"); do
        alive "$dir/node-$id.pid" && die "node $id already runs from $dir (cluster.sh stop $dir first)"
    done
    rm -rf "$dir"/node-* "$dir"/kaskade_bin "$dir"/kind "$dir"/bootstrap "$dir"/voters "$dir"/cluster_id "$dir"/internal_rf \
        "$dir"/racks
    echo "$kind" >"$dir/kind"
    local voters=() bootstrap=() port cport role
    for id in $(seq 1 "$total"); do
        port="$(free_port)"
        cport="$(free_port)"
        while [ "$cport" = "$port" ]; do cport="$(free_port)"; done
        role=combined
        if [ "$m" -gt 0 ]; then
            if [ "$id" -le "$m" ]; then role=controller; else role=broker; fi
        fi
        echo "$role" >"$dir/node-$id.role"
        # A controller-only node has no client port: status and readiness
        # look at its controller listener.
        if [ "$role" = controller ]; then port="$cport"; fi
        echo "$port" >"$dir/node-$id.port"
        echo "$cport" >"$dir/node-$id.cport"
        if [ "$role" != broker ]; then voters+=("$id@127.0.0.1:$cport"); fi
        if [ "$role" != controller ]; then bootstrap+=("127.0.0.1:$port"); fi
    done
    (IFS=,; echo "${voters[*]}") >"$dir/voters"
    (IFS=,; echo "${bootstrap[*]}") >"$dir/bootstrap"
    case "$kind" in
        kaskade)
            kaskade_bin >"$dir/kaskade_bin"
            if [ "${CLUSTER_HTTP:-0}" = 1 ]; then
                for id in $(seq 1 "$total"); do free_port >"$dir/node-$id.hport"; done
            fi
            [ "${CLUSTER_RACKS:-0}" = 1 ] && : >"$dir/racks"
            echo "${CLUSTER_ID:-MkU3OEVBNTcwNTJENDM2Qk}" >"$dir/cluster_id"
            echo "${CLUSTER_INTERNAL_RF:-$(( n < 3 ? n : 3 ))}" >"$dir/internal_rf"
            ;;
        kafka)
            bash "$KAFKA_REF" fetch
            local cp
            cp="$(bash "$KAFKA_REF" classpath)"
            if [ -n "${CLUSTER_ID:-}" ]; then
                echo "$CLUSTER_ID" >"$dir/cluster_id"
            else
                java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1 >"$dir/cluster_id"
            fi
            [ -s "$dir/cluster_id" ] || die "StorageTool random-uuid printed nothing"
            echo "${CLUSTER_INTERNAL_RF:-$(( n < 3 ? n : 3 ))}" >"$dir/internal_rf"
            local home="${KAFKA_REF_HOME:-$ROOT/tests/compat/.kafka/${KAFKA_REF_VERSION:-4.4.0}}"
            for id in $(seq 1 "$total"); do
                kafka_properties "$dir" "$id"
                # A static quorum (controller.quorum.voters): no --standalone
                # or --initial-controllers.
                java -cp "$cp" -Dlog4j2.configurationFile="$home/tools-log4j2.properties" \
                    kafka.tools.StorageTool format -t "$(cat "$dir/cluster_id")" \
                    -c "$dir/node-$id.properties" >"$dir/node-$id.format.log" 2>&1 \
                    || { cat "$dir/node-$id.format.log" >&2; die "formatting node $id failed"; }
            done
            ;;
    esac
    # Every node at once: each waits for a quorum of the others to elect.
    for id in $(seq 1 "$total"); do launch "$dir" "$id"; done
    wait_ready "$dir" $(seq 1 "$total")
    if [ "$m" -gt 0 ]; then
        log "$m $kind controllers (ids 1..$m) and $n brokers (ids $(( m + 1 ))..$total) serve from $dir"
    else
        log "$n $kind nodes serve from $dir"
    fi
    cat "$dir/bootstrap"
}

nodes() { local f; for f in "$1"/node-*.port; do [ -e "$f" ] && basename "$f" .port | sed 's/^node-//'; done | sort -n; }

stop_node() {
    local dir="$1" id="$2" pid
    alive "$dir/node-$id.pid" || { rm -f "$dir/node-$id.pid"; return 0; }
    pid="$(cat "$dir/node-$id.pid")"
    kill -TERM "$pid" 2>/dev/null || true
}

stop() {
    local dir="${1:?usage: cluster.sh stop DIR}" id pid deadline
    [ -f "$dir/kind" ] || die "$dir holds no cluster"
    for id in $(nodes "$dir"); do stop_node "$dir" "$id"; done
    deadline=$(( $(date +%s) + 20 ))
    for id in $(nodes "$dir"); do
        [ -f "$dir/node-$id.pid" ] || continue
        pid="$(cat "$dir/node-$id.pid")"
        while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$dir/node-$id.pid"
    done
}

status() {
    local dir="${1:?usage: cluster.sh status DIR}" id state rc=0
    [ -f "$dir/kind" ] || die "$dir holds no cluster"
    echo "$(cat "$dir/kind") cluster in $dir, bootstrap $(cat "$dir/bootstrap")"
    for id in $(nodes "$dir"); do
        if alive "$dir/node-$id.pid" && accepts "$(cat "$dir/node-$id.port")"; then state=up; else state=down; rc=1; fi
        printf 'node %s pid %s port %s %s\n' "$id" "$(cat "$dir/node-$id.pid" 2>/dev/null || echo -)" \
            "$(cat "$dir/node-$id.port")" "$state"
    done
    return "$rc"
}

kill9() {
    local dir="${1:?usage: cluster.sh kill9 DIR ID}" id="${2:?usage: cluster.sh kill9 DIR ID}" pid
    alive "$dir/node-$id.pid" || die "node $id does not run"
    pid="$(cat "$dir/node-$id.pid")"
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    rm -f "$dir/node-$id.pid"
}

restart() {
    local dir="${1:?usage: cluster.sh restart DIR ID}" id="${2:?usage: cluster.sh restart DIR ID}"
    [ -f "$dir/node-$id.port" ] || die "no node $id in $dir"
    alive "$dir/node-$id.pid" && kill9 "$dir" "$id"
    # Readiness is judged on what the new process logs.
    [ "$(cat "$dir/kind")" = kafka ] && : >"$dir/node-$id.logs/kafka.log"
    [ "$(cat "$dir/kind")" = kaskade ] && : >"$dir/node-$id.out"
    launch "$dir" "$id"
    wait_ready "$dir" "$id"
}

kind=kaskade
controllers=0
while [ $# -gt 0 ]; do
    case "$1" in
        --kafka) kind=kafka; shift ;;
        --controllers) controllers="${2:?--controllers needs a number}"; shift 2 ;;
        *) break ;;
    esac
done
cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
    start) start "$kind" "$controllers" "$@" ;;
    stop) [ $# -eq 2 ] && shift; stop "$@" ;;
    status) [ $# -eq 2 ] && shift; status "$@" ;;
    kill9) kill9 "$@" ;;
    restart) restart "$@" ;;
    *) usage ;;
esac
