#!/usr/bin/env bash
# The long mode of the fault test (issue 14, item 5): crates/kaskade/tests/
# faults.rs with N faults (default 100) drawn from every kind (kill -9 of a
# partition leader, of the active controller, SIGSTOP/SIGCONT, a two-way
# network cut when network namespaces are available, a wiped data
# directory, a full disk under a leader when tmpfs mounts are allowed)
# while an idempotent producer, an assign consumer, a group
# consumer with commits and a transactional consume-transform-produce loop
# run; then the whole checker. Prints the schedule, each fault, and the
# figures: faults by kind with the time until every partition acknowledged
# again (p50/p99/max), records acknowledged and read, commits,
# transactions, violations (must be 0).
#
#   scripts/faults.sh [N] [SEED]
#
# SEED (KASKADE_CRASH_SEED) replays a schedule. KASKADE_FAULT_KEEP=1 keeps
# the nodes' data and logs (then no full disks: those need tmpfs data dirs);
# KASKADE_TEST_FAILED_LOGS=DIR keeps a failing run's node logs and the
# transformer's trail (librdkafka debug) there. Debug build, as the other
# process tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-100}"
export KASKADE_FAULTS="$N"
if [ -n "${2:-}" ]; then
  export KASKADE_CRASH_SEED="$2"
fi
cd "$ROOT"
exec cargo test -p kaskade --test faults -- --nocapture
