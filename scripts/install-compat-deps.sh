#!/usr/bin/env bash
# Installs the real Kafka clients used by the compatibility suite
# (tests/compat): a Python venv with confluent-kafka, kafka-python, aiokafka and pytest,
# kafkajs under tests/compat/node/node_modules, Debian's kcat, Apache Kafka's
# jars from Maven Central (its tools, and the reference broker:
# scripts/kafka-ref.sh), and each suite with a directory of its own (java,
# tools, jvm-apps, go) through its install.sh: Maven and Go module caches,
# compiled once.
#
# Idempotent: a second run with nothing changed does no network work.
# Quiet unless something goes wrong; exits non-zero on a real error.
# kcat is optional: if it cannot be installed (no apt, not root, no network)
# a message says so and the kcat suite reports SKIP instead of failing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMPAT="$ROOT/tests/compat"
VENV="$COMPAT/.venv"
REQ="$COMPAT/python/requirements.txt"
NODE_DIR="$COMPAT/node"

log() { printf 'install-compat-deps: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Runs a command quietly; shows its output only if it fails.
quiet() {
    local out rc=0
    out="$(mktemp)"
    "$@" >"$out" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        log "command failed ($rc): $*"
        sed 's/^/    /' "$out" >&2
    fi
    rm -f "$out"
    return "$rc"
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
    else return 1
    fi
}

stamp_of() { sha256sum "$@" | sha256sum | cut -c1-16; }

# ---------------------------------------------------------------- Python
install_python() {
    local py="${PYTHON:-python3}"
    command -v "$py" >/dev/null 2>&1 || die "python3 not found (need Python >= 3.9 with venv)"

    local stamp_file="$VENV/.kaskade-compat-stamp"
    local want
    want="$(stamp_of "$REQ")"
    if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$want" ] \
        && "$VENV/bin/python" -c 'import confluent_kafka, kafka, aiokafka, pytest' >/dev/null 2>&1; then
        return 0
    fi

    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        rm -rf "$VENV"
        if ! "$py" -m venv "$VENV" >/dev/null 2>&1; then
            # Debian's python3 ships venv/ensurepip in a separate package.
            rm -rf "$VENV"
            local pyver
            pyver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
            log "python3 -m venv failed; installing python${pyver}-venv with apt"
            command -v apt-get >/dev/null 2>&1 || die "python3 -m venv failed and apt-get is unavailable"
            quiet as_root apt-get update -qq || die "apt-get update failed"
            quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python${pyver}-venv" \
                || quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv \
                || die "could not install python3-venv"
            quiet "$py" -m venv "$VENV" || die "python3 -m venv still fails"
        fi
    fi

    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
    quiet "$VENV/bin/python" -m pip install -q -r "$REQ" || die "pip install -r $REQ failed"
    "$VENV/bin/python" -c 'import confluent_kafka, kafka, aiokafka, pytest' \
        || die "venv imports failed after install"
    echo "$want" >"$stamp_file"
}

# ---------------------------------------------------------------- Node
install_node() {
    command -v node >/dev/null 2>&1 || die "node not found (need Node >= 18)"
    command -v npm >/dev/null 2>&1 || die "npm not found"
    local stamp_file="$NODE_DIR/node_modules/.kaskade-compat-stamp"
    local want
    want="$(stamp_of "$NODE_DIR/package.json" "$NODE_DIR/package-lock.json")"
    if [ "$(cat "$stamp_file" 2>/dev/null)" = "$want" ] && [ -f "$NODE_DIR/node_modules/kafkajs/package.json" ]; then
        return 0
    fi
    (cd "$NODE_DIR" && quiet npm ci --no-audit --no-fund --loglevel=error) || die "npm ci in $NODE_DIR failed"
    (cd "$NODE_DIR" && node -e 'require("kafkajs")') || die "kafkajs does not load after npm ci"
    echo "$want" >"$stamp_file"
}

# ---------------------------------------------------------------- kcat
install_kcat() {
    if command -v kcat >/dev/null 2>&1; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        log "NOTE: apt-get is not available; kcat not installed, the kcat suite will be SKIPPED"
        return 0
    fi
    # Try without an update first (cheap if the package lists are fresh).
    if quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kcat 2>/dev/null; then
        return 0
    fi
    if quiet as_root apt-get update -qq \
        && quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kcat; then
        return 0
    fi
    log "NOTE: could not install kcat with apt-get; the kcat suite will be SKIPPED"
    return 0
}

# ---------------------------------------------------------------- suites in directories
install_suites() {
    bash "$ROOT/scripts/kafka-ref.sh" fetch || die "could not fetch Apache Kafka's jars"
    local suite
    for suite in java tools jvm-apps go; do
        bash "$COMPAT/$suite/install.sh" || die "installing the $suite suite failed"
    done
}

start=$(date +%s)
install_python
install_node
install_kcat
install_suites
log "ok in $(( $(date +%s) - start ))s (venv: ${VENV#"$ROOT"/}, kafkajs: $(node -p "require('$NODE_DIR/node_modules/kafkajs/package.json').version"), kcat: $(command -v kcat >/dev/null 2>&1 && kcat -V 2>/dev/null | grep -m1 '^Version' || echo 'not installed'))"
