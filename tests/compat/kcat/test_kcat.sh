#!/usr/bin/env bash
# kcat (Debian's build, with its own older librdkafka) against a broker.
#
#   tests/compat/kcat/test_kcat.sh [BOOTSTRAP]      (default $KASKADE_BOOTSTRAP or 127.0.0.1:9092)
#
# Prints TAP ("ok N - ...", "not ok N - ...", "ok N - ... # SKIP reason") and
# exits non-zero if any test failed. kcat cannot create topics, so the topics
# here are created by the broker's auto-creation when kcat first produces to
# them (auto.create.topics.enable=true, Kafka's default).
set -u

B="${1:-${KASKADE_BOOTSTRAP:-127.0.0.1:9092}}"
T_S="${KASKADE_COMPAT_TIMEOUT:-30}"
RUN_ID="$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
TOPIC="compat-kcat-keyed-$RUN_ID"      # keyed produce, all partitions
TOPIC2="compat-kcat-part0-$RUN_ID"     # explicit partition 0, offsets known
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

n=0 passed=0 failed=0 skipped=0

TESTS=(
    t_metadata_lists_brokers
    t_produce_keyed_autocreate
    t_metadata_shows_autocreated_topic
    t_consume_each_partition_exact
    t_offsets_absolute_and_relative
    t_null_key_and_null_value
    t_headers_roundtrip
    t_start_at_timestamp
)

# kcat with the broker, a metadata timeout, and a hard wall-clock limit.
kc() { timeout "$((T_S + 30))" kcat -b "$B" -m "$T_S" -q "$@"; }
# Producer: acks=all, bounded delivery time; kcat exits 1 if any delivery failed.
kc_produce() { kc -P -X acks=all -X "message.timeout.ms=$((T_S * 1000))" "$@"; }
# Consumer: from the given options to the end of the partition(s), then exit.
kc_consume() { kc -C -e "$@"; }

fail() { printf '%s\n' "$*" >>"$WORK/diag"; return 1; }

expect_eq() { # expect_eq WHAT EXPECTED ACTUAL
    if [ "$2" != "$3" ]; then
        fail "$1 differs"
        diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") | sed 's/^/  /' >>"$WORK/diag"
        return 1
    fi
}

run() { # run TEST_FUNCTION
    local fn="$1" desc="${1#t_}"
    desc="${desc//_/ }"
    n=$((n + 1))
    : >"$WORK/diag"
    if [ -n "${SKIP_REASON:-}" ]; then
        echo "ok $n - $desc # SKIP $SKIP_REASON"
        skipped=$((skipped + 1))
        return
    fi
    if "$fn" >>"$WORK/diag" 2>&1; then
        echo "ok $n - $desc"
        passed=$((passed + 1))
    else
        echo "not ok $n - $desc"
        sed 's/^/#   /' "$WORK/diag"
        failed=$((failed + 1))
    fi
}

# ------------------------------------------------------------------ tests

t_metadata_lists_brokers() {
    local out
    out="$(kc -L)" || fail "kcat -L exited $?" || return 1
    printf '%s\n' "$out" | grep -Eq '^ [1-9][0-9]* brokers:$' || fail "no broker count in: $out" || return 1
    printf '%s\n' "$out" | grep -Eq '^  broker -?[0-9]+ at [^ ]+:[0-9]+' || fail "no 'broker N at host:port' in: $out"
}

# Input: 16 keyed lines over 4 keys; values contain ':' (kcat splits at the first -K delimiter).
keyed_input() {
    local i
    for i in $(seq 0 15); do printf 'user-%d:{"n":%d,"note":"a:b"}\n' "$((i % 4))" "$i"; done
}

t_produce_keyed_autocreate() {
    keyed_input | kc_produce -t "$TOPIC" -K: || fail "kcat -P exited non-zero (delivery failed?)"
}

partition_count() { # partition_count TOPIC -> prints N, or fails
    local out
    out="$(kc -L -t "$1")" || return 1
    printf '%s\n' "$out" | sed -n "s/^  topic \"$1\" with \([0-9]*\) partitions:\$/\1/p"
}

t_metadata_shows_autocreated_topic() {
    local out p
    out="$(kc -L -t "$TOPIC")" || fail "kcat -L -t exited $?" || return 1
    printf '%s\n' "$out" | grep -Eq "^  topic \"$TOPIC\" with [1-9][0-9]* partitions:\$" \
        || fail "topic line missing or has an error: $out" || return 1
    p="$(printf '%s\n' "$out" | grep -c '^    partition ')"
    [ "$p" -ge 1 ] || fail "no partitions listed: $out" || return 1
    if printf '%s\n' "$out" | grep -E '^    partition ' | grep -Eq 'leader -1|, [A-Z][a-z]'; then
        fail "partition without leader or with an error: $out"
    fi
}

t_consume_each_partition_exact() {
    local parts p line key tmp lp actual expected
    parts="$(partition_count "$TOPIC")"
    [ -n "$parts" ] && [ "$parts" -ge 1 ] || fail "cannot read partition count of $TOPIC" || return 1
    declare -A part_of=()
    declare -A out=()
    for ((p = 0; p < parts; p++)); do
        out[$p]="$(kc_consume -t "$TOPIC" -p "$p" -o beginning -f '%k:%s:%p:%o\n')" \
            || fail "kcat -C -p $p exited non-zero" || return 1
        while IFS= read -r line; do
            [ -n "$line" ] || continue
            key="${line%%:*}"
            tmp="${line%:*}"; lp="${tmp##*:}"
            [ "$lp" = "$p" ] || fail "line from -p $p reports partition $lp: $line" || return 1
            if [ -n "${part_of[$key]:-}" ] && [ "${part_of[$key]}" != "$p" ]; then
                fail "key $key read from partitions ${part_of[$key]} and $p" || return 1
            fi
            part_of[$key]="$p"
        done <<<"${out[$p]}"
    done
    # Build what each partition must hold: the input records of the keys that
    # map to it, in input order, at offsets 0..n-1 (fresh topic).
    declare -A next=() exp=()
    while IFS= read -r line; do
        key="${line%%:*}"
        p="${part_of[$key]:-}"
        [ -n "$p" ] || fail "key $key was never read back" || return 1
        exp[$p]+="$line:$p:${next[$p]:-0}"$'\n'
        next[$p]=$(( ${next[$p]:-0} + 1 ))
    done < <(keyed_input)
    for ((p = 0; p < parts; p++)); do
        expected="${exp[$p]:-}"; expected="${expected%$'\n'}"
        actual="${out[$p]}"
        expect_eq "partition $p contents ('%k:%s:%p:%o')" "$expected" "$actual" || return 1
    done
}

# Topic 2: records produced to explicit partition 0, so every offset is known.
t_offsets_absolute_and_relative() {
    local i
    for i in 0 1 2 3 4; do printf 'pk-%d:pv-%d\n' "$i" "$i"; done \
        | kc_produce -t "$TOPIC2" -p 0 -K: || fail "kcat -P -p 0 exited non-zero" || return 1
    expect_eq "-o 2 -c 1" "pk-2:pv-2:0:2" \
        "$(kc -C -t "$TOPIC2" -p 0 -o 2 -c 1 -f '%k:%s:%p:%o\n')" || return 1
    expect_eq "-o -2 (relative to end)" $'pk-3:pv-3:0:3\npk-4:pv-4:0:4' \
        "$(kc_consume -t "$TOPIC2" -p 0 -o -2 -f '%k:%s:%p:%o\n')" || return 1
    expect_eq "-o beginning" "$(for i in 0 1 2 3 4; do echo "pk-$i:pv-$i:0:$i"; done)" \
        "$(kc_consume -t "$TOPIC2" -p 0 -o beginning -f '%k:%s:%p:%o\n')"
}

t_null_key_and_null_value() {
    # -Z: an empty key or value is sent as NULL. Offsets 5 and 6 of partition 0.
    printf ':value-with-null-key\ntombstone-key:\n' \
        | kc_produce -t "$TOPIC2" -p 0 -K: -Z || fail "kcat -P -Z exited non-zero" || return 1
    # %K / %S print the key / value length, -1 for NULL.
    local v="value-with-null-key" k="tombstone-key"
    expect_eq "null key and null value ('%K|%S|%k|%s|%o')" \
        "-1|${#v}||$v|5"$'\n'"${#k}|-1|$k||6" \
        "$(kc_consume -t "$TOPIC2" -p 0 -o 5 -f '%K|%S|%k|%s|%o\n')"
}

t_headers_roundtrip() {
    # Offset 7: repeated header names are legal and keep their order.
    printf 'hk:hv\n' | kc_produce -t "$TOPIC2" -p 0 -K: -H a=1 -H a=2 -H b=x \
        || fail "kcat -P -H exited non-zero" || return 1
    expect_eq "headers ('%k:%s:%o:%h')" "hk:hv:7:a=1,a=2,b=x" \
        "$(kc_consume -t "$TOPIC2" -p 0 -o 7 -f '%k:%s:%o:%h\n')"
}

t_start_at_timestamp() {
    # Offsets 8 and 9, all produced after t0: -o s@t0 (ListOffsets by time) starts at 8.
    local t0 out line ts
    t0="$(date +%s%3N)"
    sleep 0.05
    printf 'late-1:x\nlate-2:y\n' | kc_produce -t "$TOPIC2" -p 0 -K: \
        || fail "kcat -P exited non-zero" || return 1
    out="$(kc_consume -t "$TOPIC2" -p 0 -o "s@$t0" -f '%k:%o:%T\n')" || fail "kcat -C -o s@ exited non-zero" || return 1
    expect_eq "-o s@t0 ('%k:%o')" $'late-1:8\nlate-2:9' "$(printf '%s\n' "$out" | cut -d: -f1,2)" || return 1
    while IFS= read -r line; do
        ts="${line##*:}"
        [ "$ts" -ge "$t0" ] || fail "timestamp $ts of '$line' is before t0 $t0" || return 1
    done <<<"$out"
}

# ------------------------------------------------------------------ main

SKIP_REASON=""
if ! command -v kcat >/dev/null 2>&1; then
    SKIP_REASON="kcat not installed (scripts/install-compat-deps.sh installs it with apt-get)"
else
    echo "# $(kcat -V 2>&1 | grep -m1 '^Version') against $B"
fi

for t in "${TESTS[@]}"; do run "$t"; done
echo "1..$n"
echo "# kcat suite: pass=$passed fail=$failed skip=$skipped"
[ "$failed" -eq 0 ]
