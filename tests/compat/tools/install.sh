#!/usr/bin/env bash
# Installs what the kafka-tools suite needs: Apache Kafka 4.4.0's jars (kafka-tools,
# kafka_2.13, kafka-server from Maven Central, via scripts/kafka-ref.sh fetch) and
# the compat venv (pytest, pytest-timeout, confluent-kafka) of scripts/install-compat-deps.sh.
# Also dumps a class-data-sharing archive of the tools' classes (.cds/, ~1 min once)
# so each tool JVM starts ~0.7 s sooner; the tools themselves are unchanged.
# Idempotent and quiet unless something fails.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
VENV="$ROOT/tests/compat/.venv"

command -v java >/dev/null 2>&1 || { echo "tools: java (17+) is needed" >&2; exit 1; }
bash "$ROOT/scripts/kafka-ref.sh" fetch

if ! "$VENV/bin/python" -c 'import pytest, pytest_timeout, confluent_kafka' >/dev/null 2>&1; then
    out="$(mktemp)"
    if ! bash "$ROOT/scripts/install-compat-deps.sh" >"$out" 2>&1 \
        || ! "$VENV/bin/python" -c 'import pytest, pytest_timeout, confluent_kafka' >/dev/null 2>&1; then
        cat "$out" >&2; rm -f "$out"
        echo "tools: the compat venv ($VENV) lacks pytest/pytest-timeout/confluent-kafka" >&2
        exit 1
    fi
    rm -f "$out"
fi

# Class-data sharing: the classes a few tools load (run against a closed port,
# with short timeouts), dumped into one archive keyed by the jars and the JDK.
CP="$(bash "$ROOT/scripts/kafka-ref.sh" classpath)"
LIBS="${CP%/\*}"
KEY="$( { java -version 2>&1; ls -l "$LIBS"; } | sha1sum | cut -c1-12)"
JSA="$HERE/.cds/tools-$KEY.jsa"
if [ ! -s "$JSA" ]; then
    rm -rf "$HERE/.cds"
    mkdir -p "$HERE/.cds"
    tmp="$(mktemp -d)"
    L4J="-Dlog4j2.configurationFile=$(dirname "$LIBS")/tools-log4j2.properties"
    printf 'default.api.timeout.ms=1500\nrequest.timeout.ms=1000\n' >"$tmp/admin.properties"
    j() { local n="$1"; shift; timeout 60 java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "$L4J" \
            -XX:DumpLoadedClassList="$tmp/$n.lst" -cp "$CP" "$@" >/dev/null 2>&1 </dev/null || true; }
    A=(--bootstrap-server 127.0.0.1:9 --command-config "$tmp/admin.properties")
    j 1 org.apache.kafka.tools.TopicCommand "${A[@]}" --list
    echo "k:v" | timeout 60 java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "$L4J" \
        -XX:DumpLoadedClassList="$tmp/2.lst" -cp "$CP" org.apache.kafka.tools.ConsoleProducer \
        --bootstrap-server 127.0.0.1:9 --topic x --property parse.key=true --command-property max.block.ms=1000 \
        >/dev/null 2>&1 || true
    j 3 org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server 127.0.0.1:9 --topic x --timeout-ms 1000 --group g
    j 4 org.apache.kafka.tools.TransactionsCommand "${A[@]}" list
    j 5 org.apache.kafka.tools.ConfigCommand "${A[@]}" --entity-type topics --entity-name x --describe
    j 6 org.apache.kafka.tools.consumer.group.ConsumerGroupCommand "${A[@]}" --list
    cat "$tmp"/*.lst 2>/dev/null | grep -v '^#' | sort -u >"$tmp/all.lst"
    if ! java -Xshare:dump -XX:SharedClassListFile="$tmp/all.lst" -XX:SharedArchiveFile="$JSA" -cp "$CP" \
            >"$tmp/dump.log" 2>&1 || [ ! -s "$JSA" ]; then
        # Not fatal: the tools then start without the archive.
        echo "tools: could not dump a CDS archive (the suite runs without it):" >&2
        tail -5 "$tmp/dump.log" >&2
        rm -f "$JSA"
    fi
    rm -rf "$tmp"
fi
