# Shell helpers shared by the single-node benchmark scripts (bench-vs-kafka.sh,
# bench-scaling.sh). Sourced, not run. The sourcing script sets nothing first.

usage() { awk 'NR>1 && !/^#/ {exit} NR>1 {sub(/^# ?/, ""); print}' "$0"; }
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# /proc/PID/stat after "(comm) ": $1 = field 3 (state), utime = field 14, stime = 15, starttime = 22
stat_fields() { local s; s="$(cat "/proc/$1/stat")"; echo "${s##*) }"; }
cpu_ticks() { local f; f=($(stat_fields "$1")); echo $(( f[11] + f[12] )); }
status_kib() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }

# ensure_binaries NAME: sets KASKADE_BIN (target/release/kaskade) and KBENCH_BIN
# (kbench from ../shared/bench into target/kbench) unless given, building each
# one that is missing; needs ROOT. NAME prefixes the error.
ensure_binaries() {
    KASKADE_BIN="${KASKADE_BIN:-$ROOT/target/release/kaskade}"
    KBENCH_BIN="${KBENCH_BIN:-$ROOT/target/kbench/release/kbench}"
    if [ ! -x "$KASKADE_BIN" ]; then
        (cd "$ROOT" && cargo build --release -q -p kaskade) || { echo "$1: building kaskade failed" >&2; exit 1; }
    fi
    if [ ! -x "$KBENCH_BIN" ]; then
        (cd "$ROOT/../shared/bench" && CARGO_TARGET_DIR="$ROOT/target/kbench" cargo build --release -q) \
            || { echo "$1: building kbench (../shared/bench) failed" >&2; exit 1; }
    fi
}
