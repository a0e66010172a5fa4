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
