#!/usr/bin/env bash
# Installs what the console's browser tests need: Debian's chromium (apt-get,
# when missing) and, from npm, playwright-core (drives it) and kafkajs (the
# real Kafka client of the tests) into tests/console/node_modules, pinned by
# package-lock.json. Idempotent: nothing is fetched when all is in place.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

log() { printf 'console/install: %s\n' "$*" >&2; }

if ! command -v "${CHROMIUM:-chromium}" >/dev/null 2>&1; then
    log "installing Debian's chromium"
    as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
fi

if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/kafkajs ] \
    || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "installing playwright-core and kafkajs (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
