#!/usr/bin/env bash
# swift-saio.sh up DIR | down DIR [--purge] | status DIR
#
# A real OpenStack Swift "all-in-one" cluster (Debian 12 packages, Swift 2.30) on loopback, for
# Silt's tests, CI and benchmarks. Self-contained: installs what it needs, keeps all state in DIR.
#
#   up DIR      install the Debian packages if missing, build rings, start memcached, the account,
#               container and object servers and a proxy (tempauth + s3api + slo) on 127.0.0.1,
#               wait until healthy. Idempotent: when the cluster in DIR is already healthy it
#               returns at once (about 0.2 s). Prints the endpoints on stdout.
#   down DIR    stop the processes recorded in DIR/run/*.pid (each in its own process group, and
#               only if its environment carries SWIFT_SAIO_DIR=DIR, so a recycled PID is never
#               hit). --purge also deletes the data and logs. Idempotent.
#   status DIR  list the recorded processes and run the health check; exit 0 when healthy,
#               1 when not.
#
#   Swift API : http://127.0.0.1:8080/auth/v1.0   user test:tester key testing
#               (also admin:admin/admin, test2:tester2/testing2)
#   S3 API    : http://127.0.0.1:8080  access key test:tester secret testing,
#               region us-east-1, path-style addressing (multipart via slo)
#
# Environment knobs (defaults in brackets):
#   SWIFT_DATA_DIR [DIR/srv]  where object/container/account data goes (needs user xattrs: ext4,
#                              or tmpfs on kernel >= 6.6, e.g. /dev/shm/swift-data is faster)
#   SWIFT_REPLICAS [1]        1, 2 or 3 devices (default: what the existing data was written with)
#   SWIFT_PROXY_PORT [8080]   SWIFT_OBJECT_PORT [6010]  SWIFT_CONTAINER_PORT [6011]
#   SWIFT_ACCOUNT_PORT [6012] SWIFT_MEMCACHE_PORT [11211]
#   SWIFT_PROXY_WORKERS [1]   SWIFT_STORAGE_WORKERS [1]  (0 = no fork)
#   SWIFT_UPDATERS [1]        also run the container/object updaters (account stats, listings
#                              that missed an update under load); 0 = skip them
#   SWIFT_UPDATER_INTERVAL [30] seconds between updater sweeps (each costs ~0.7 s CPU)
#   SWIFT_LOG_LEVEL [INFO]    SWIFT_START_TIMEOUT [120] seconds (a start takes 3-6 s idle, 25-35 s on a
#                              machine loaded 10x)
#   SWIFT_INSTALL [auto]      auto: apt-get install when a binary is missing; 0: never; 1: always
set -euo pipefail
set +m   # no job control: "setsid cmd &" must exec in place so that $! is the server

usage() { echo "usage: $0 up DIR | down DIR [--purge] | status DIR" >&2; exit 2; }
CMD=${1:-}; shift || true
PURGE=0 DIR=
for a in "$@"; do
  case $a in
    --purge) PURGE=1;;
    -*) usage;;
    *) [ -z "$DIR" ] && DIR=$a || usage;;
  esac
done
case $CMD in up|down|status) ;; *) usage;; esac
[ -n "$DIR" ] || usage
[ "$PURGE" = 0 ] || [ "$CMD" = down ] || usage

log() { printf '[swift-saio %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if [ "$CMD" != up ] && [ ! -d "$DIR" ]; then
  log "$DIR does not exist: nothing started there"
  [ "$CMD" = status ] && exit 1 || exit 0
fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd -P)
# Every process we start is tagged with SWIFT_SAIO_DIR=DIR in its environment (checked before any
# kill, against PID reuse). Re-exec once with the tag in our own environment so that even a forked
# child that has not exec'd yet carries it.
if [ "${SWIFT_SAIO_DIR:-}" != "$DIR" ]; then
  if [ "$PURGE" = 1 ]; then set -- "$CMD" "$DIR" --purge; else set -- "$CMD" "$DIR"; fi
  exec env SWIFT_SAIO_DIR="$DIR" bash "${BASH_SOURCE[0]}" "$@"
fi

PROXY_PORT=${SWIFT_PROXY_PORT:-8080}
OBJECT_PORT=${SWIFT_OBJECT_PORT:-6010}
CONTAINER_PORT=${SWIFT_CONTAINER_PORT:-6011}
ACCOUNT_PORT=${SWIFT_ACCOUNT_PORT:-6012}
MEMCACHE_PORT=${SWIFT_MEMCACHE_PORT:-11211}
PROXY_WORKERS=${SWIFT_PROXY_WORKERS:-1}
STORAGE_WORKERS=${SWIFT_STORAGE_WORKERS:-1}
LOG_LEVEL=${SWIFT_LOG_LEVEL:-INFO}
UPDATERS=${SWIFT_UPDATERS:-1}
UPDATER_INTERVAL=${SWIFT_UPDATER_INTERVAL:-30}
START_TIMEOUT=${SWIFT_START_TIMEOUT:-120}
INSTALL=${SWIFT_INSTALL:-auto}
PART_POWER=10
PY=/usr/bin/python3          # Debian's python (swift is installed for it, not for pyenv & co)

ETC=$DIR/etc RUN=$DIR/run LOG=$DIR/log
ALL="proxy object-updater container-updater object container account memcached"
AUTH_URL=http://127.0.0.1:$PROXY_PORT/auth/v1.0

# ---------------------------------------------------------------- helpers
alive() { [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }

# pidfile -> pid, only if that process is alive AND was started for this DIR
our_pid() {
  local f=$RUN/$1.pid pid
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  # (no pipe here: "tr | grep -q" + pipefail fails at random on SIGPIPE)
  grep -qzxF -- "SWIFT_SAIO_DIR=$DIR" "/proc/$pid/environ" 2>/dev/null || return 1
  echo "$pid"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# stop every process of ours recorded in $RUN (by PID / its process group); prints the count
stop_ours() {
  local s pid pids=()
  for s in $ALL; do
    if pid=$(our_pid "$s"); then
      [ "${1:-}" = -v ] && log "stopping leftover $s (pid $pid)"
      # negative PID = its process group (swift workers die with their parent)
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
    rm -f "$RUN/$s.pid"
  done
  for pid in ${pids[@]+"${pids[@]}"}; do
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.05; done
    alive "$pid" && { kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; }
  done
  STOPPED=${#pids[@]}
  return 0
}

# full check: proxy + memcache + auth + account/container/object servers
healthy() {
  command -v curl >/dev/null 2>&1 || return 1
  local hdrs token url
  curl -fsS -m 5 -o /dev/null "http://127.0.0.1:$PROXY_PORT/healthcheck" 2>/dev/null || return 1
  hdrs=$(curl -fsS -m 5 -D - -o /dev/null -H 'X-Auth-User: admin:admin' \
         -H 'X-Auth-Key: admin' "$AUTH_URL" 2>/dev/null) || return 1
  token=$(printf '%s' "$hdrs" | tr -d '\r' | sed -n 's/^[Xx]-[Aa]uth-[Tt]oken: //p')
  url=$(printf '%s' "$hdrs" | tr -d '\r' | sed -n 's/^[Xx]-[Ss]torage-[Uu]rl: //p')
  [ -n "$token" ] && [ -n "$url" ] || return 1
  # token must validate (memcached works) and the account must be reachable
  curl -fsS -m 5 -o /dev/null -I -H "X-Auth-Token: $token" "$url" 2>/dev/null || return 1
  curl -fsS -m 5 -o /dev/null -X PUT -H "X-Auth-Token: $token" "$url/saio-health" 2>/dev/null || return 1
  curl -fsS -m 5 -o /dev/null -X PUT -H "X-Auth-Token: $token" --data-binary ok "$url/saio-health/probe" 2>/dev/null || return 1
  [ "$(curl -fsS -m 5 -H "X-Auth-Token: $token" "$url/saio-health/probe" 2>/dev/null)" = ok ] || return 1
  curl -sS -m 5 -o /dev/null -X DELETE -H "X-Auth-Token: $token" "$url/saio-health/probe" 2>/dev/null || true
  curl -sS -m 5 -o /dev/null -X DELETE -H "X-Auth-Token: $token" "$url/saio-health" 2>/dev/null || true
  return 0
}

print_env() {
  cat <<EOF
# Swift all-in-one is up (dir $DIR). Use e.g.:
export SILT_STORE=swift+http://127.0.0.1:$PROXY_PORT/auth/v1.0 SILT_SWIFT_USER=test:tester SILT_SWIFT_KEY=testing
export ST_AUTH=$AUTH_URL ST_USER=test:tester ST_KEY=testing
export S3_ENDPOINT=http://127.0.0.1:$PROXY_PORT AWS_ACCESS_KEY_ID=test:tester AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
EOF
}

# ================================================================ down
if [ "$CMD" = down ]; then
  STOPPED=0
  stop_ours
  rm -f "$RUN"/memcached.external "$RUN"/config.stamp 2>/dev/null || true
  if [ $PURGE = 1 ]; then
    data=$(sed -n 's/^devices = //p' "$ETC/object-server.conf" 2>/dev/null | head -1)
    rm -rf "${data:-$DIR/srv}" "$DIR/srv" "$LOG" "$DIR/apt.log"
  fi
  log "stopped $STOPPED process(es) from $DIR$([ $PURGE = 1 ] && echo ', data purged')"
  exit 0
fi

# ================================================================ status
if [ "$CMD" = status ]; then
  n=0
  for s in $ALL; do
    if pid=$(our_pid "$s"); then echo "$s running (pid $pid)"; n=$((n + 1))
    elif [ "$s" = memcached ] && [ -f "$RUN/memcached.external" ]; then echo "memcached external (port $MEMCACHE_PORT)"
    elif [ -e "$RUN/$s.pid" ]; then echo "$s dead (stale pid file)"
    fi
  done
  if healthy; then echo "healthy: $AUTH_URL"; exit 0; fi
  echo "not healthy ($n process(es) of ours running)"; exit 1
fi

# ================================================================ up
SRV=${SWIFT_DATA_DIR:-$DIR/srv}  # object/container/account data ("devices" d1..dN)
mkdir -p "$SRV" && SRV=$(cd "$SRV" && pwd -P)
# default: whatever the existing data was written with, else 1
REPLICAS=${SWIFT_REPLICAS:-$(cat "$SRV/d1/.saio-replicas" 2>/dev/null || echo 1)}
PKGS="swift swift-proxy swift-object swift-container swift-account python3-swiftclient memcached curl"

die() { log "ERROR: $*"; [ "${STARTED:-0}" = 1 ] && stop_children; exit 1; }

case $REPLICAS in 1|2|3) ;; *) die "SWIFT_REPLICAS must be 1, 2 or 3";; esac

# ---------------------------------------------------------------- packages
need_install=0
for b in swift-proxy-server swift-object-server swift-container-server \
         swift-account-server swift-container-updater memcached curl; do
  command -v "$b" >/dev/null 2>&1 || need_install=1
done
if [ "$INSTALL" = 1 ] || { [ "$INSTALL" = auto ] && [ $need_install = 1 ]; }; then
  [ "$(id -u)" = 0 ] || die "swift packages missing and not root: sudo apt-get install -y $PKGS"
  log "installing $PKGS"
  export DEBIAN_FRONTEND=noninteractive
  apt_install() { apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends --no-upgrade $PKGS; }
  apt_install >"$DIR/apt.log" 2>&1 \
    || { log "apt-get install failed: apt-get update, then again"
         apt-get update -q -o DPkg::Lock::Timeout=300 >>"$DIR/apt.log" 2>&1; apt_install >>"$DIR/apt.log" 2>&1; } \
    || { tail -20 "$DIR/apt.log" >&2; die "apt-get install failed (see $DIR/apt.log)"; }
  log "installed"
elif [ $need_install = 1 ]; then
  die "swift packages missing: apt-get install -y $PKGS"
fi

SERVICES="memcached account container object proxy"
[ "$UPDATERS" = 1 ] && SERVICES="$SERVICES container-updater object-updater"
STAMP="$REPLICAS $PROXY_PORT $OBJECT_PORT $CONTAINER_PORT $ACCOUNT_PORT $MEMCACHE_PORT $PROXY_WORKERS $STORAGE_WORKERS $LOG_LEVEL $UPDATERS $UPDATER_INTERVAL $SRV"

# ---------------------------------------------------------------- already up?
all_up=1
[ "$(cat "$RUN/config.stamp" 2>/dev/null)" = "$STAMP" ] || all_up=0
for s in $SERVICES; do
  our_pid "$s" >/dev/null && continue
  [ "$s" = memcached ] && [ -f "$RUN/memcached.external" ] && port_busy "$MEMCACHE_PORT" && continue
  all_up=0
done
if [ $all_up = 1 ] && healthy; then
  log "already running and healthy"
  print_env
  exit 0
fi
# data written with another replica count cannot be served (no replicators run)
if [ -s "$SRV/d1/.saio-replicas" ] && [ "$(cat "$SRV/d1/.saio-replicas")" != "$REPLICAS" ]; then
  die "$SRV holds data written with $(cat "$SRV/d1/.saio-replicas") replica(s), not $REPLICAS: run $0 down $DIR --purge (or use another SWIFT_DATA_DIR)"
fi
# partial / stale / reconfigured: stop whatever is left of ours, start afresh
mkdir -p "$RUN"
stop_ours -v

for p in $PROXY_PORT $OBJECT_PORT $CONTAINER_PORT $ACCOUNT_PORT; do
  port_busy "$p" && die "port $p on 127.0.0.1 is already in use (by something not started from $DIR); set SWIFT_*_PORT"
done

T0=$(date +%s.%N)
mkdir -p "$ETC" "$RUN" "$LOG"
for i in $(seq 1 "$REPLICAS"); do mkdir -p "$SRV/d$i"; done
echo "$REPLICAS" >"$SRV/d1/.saio-replicas"
# swift keeps object metadata in user xattrs: fail early if the fs lacks them
"$PY" -c 'import os,sys; f=sys.argv[1]+"/.xattr-probe"; open(f,"w").close(); os.setxattr(f,"user.swift.probe",b"1"); os.unlink(f)' "$SRV/d1" \
  || die "$SRV does not support user xattrs (needed by swift); pick another SWIFT_DATA_DIR"

# ---------------------------------------------------------------- swift.conf
# Swift always reads /etc/swift/swift.conf (the path is hard-coded). Debian's package ships one;
# only create it if it is missing.
if [ ! -s /etc/swift/swift.conf ]; then
  mkdir -p /etc/swift
  cat >/etc/swift/swift.conf <<'EOF'
[swift-hash]
swift_hash_path_suffix = saio
swift_hash_path_prefix = saio

[storage-policy:0]
name = Policy-0
default = yes
EOF
fi

# ---------------------------------------------------------------- configs
common() { # $1 = port, $2 = workers
  cat <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $1
workers = $2
user = root
swift_dir = $ETC
devices = $SRV
mount_check = false
disable_fallocate = true
fallocate_reserve = 0
log_level = $LOG_LEVEL
log_name = %NAME%
eventlet_debug = false
EOF
}

{ common "$OBJECT_PORT" "$STORAGE_WORKERS" | sed 's/%NAME%/object-server/'; cat <<EOF

[pipeline:main]
pipeline = healthcheck object-server

[app:object-server]
use = egg:swift#object
# a loaded test machine: a container update slower than the default 1 s becomes an async pending,
# and the object is missing from listings until the next updater sweep
container_update_timeout = 10

[object-updater]
log_name = object-updater
log_level = WARNING
interval = $UPDATER_INTERVAL
recon_cache_path = $RUN

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
} >"$ETC/object-server.conf"

{ common "$CONTAINER_PORT" "$STORAGE_WORKERS" | sed 's/%NAME%/container-server/'; cat <<EOF

[pipeline:main]
pipeline = healthcheck container-server

[app:container-server]
use = egg:swift#container

[container-updater]
log_name = container-updater
log_level = WARNING
interval = $UPDATER_INTERVAL
recon_cache_path = $RUN

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
} >"$ETC/container-server.conf"

{ common "$ACCOUNT_PORT" "$STORAGE_WORKERS" | sed 's/%NAME%/account-server/'; cat <<EOF

[pipeline:main]
pipeline = healthcheck account-server

[app:account-server]
use = egg:swift#account

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
} >"$ETC/account-server.conf"

cat >"$ETC/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PROXY_PORT
workers = $PROXY_WORKERS
user = root
swift_dir = $ETC
log_level = $LOG_LEVEL
log_name = proxy-server
eventlet_debug = false

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
# single node: a backend that refused connections (e.g. still starting) must
# not stay "error limited" for the default 60 s
error_suppression_interval = 1
# loopback backends on a busy machine can take longer than the default 0.5 s to accept
conn_timeout = 2

[filter:tempauth]
use = egg:swift#tempauth
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin
user_test_tester3 = testing3

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHE_PORT

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
allowed_digests = sha256 sha512
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
allow_object_versioning = true
[filter:symlink]
use = egg:swift#symlink
EOF

# ---------------------------------------------------------------- rings
# One python process builds all three rings (~0.7 s) instead of 9 swift-ring-builder runs.
# CLI equivalent, per ring R/port P:
#   swift-ring-builder R.builder create 10 $REPLICAS 1
#   swift-ring-builder R.builder add r1z1-127.0.0.1:P/d1 1   (d2, d3 ...)
#   swift-ring-builder R.builder rebalance
RING_STAMP="$PART_POWER $REPLICAS $OBJECT_PORT $CONTAINER_PORT $ACCOUNT_PORT"
if [ "$(cat "$ETC/ring.stamp" 2>/dev/null)" != "$RING_STAMP" ] || \
   [ ! -s "$ETC/object.ring.gz" ] || [ ! -s "$ETC/container.ring.gz" ] || [ ! -s "$ETC/account.ring.gz" ]; then
  log "building rings (replicas=$REPLICAS)"
  "$PY" - "$ETC" "$PART_POWER" "$REPLICAS" "$OBJECT_PORT" "$CONTAINER_PORT" "$ACCOUNT_PORT" <<'EOF'
import sys
from swift.common.ring import RingBuilder
etc, pp, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ports = dict(zip(('object', 'container', 'account'), map(int, sys.argv[4:7])))
for name, port in ports.items():
    b = RingBuilder(pp, reps, 1)
    for i in range(reps):
        b.add_dev({'id': i, 'region': 1, 'zone': 1, 'ip': '127.0.0.1',
                   'port': port, 'replication_ip': '127.0.0.1',
                   'replication_port': port, 'device': 'd%d' % (i + 1),
                   'weight': 1.0, 'meta': ''})
    b.rebalance()
    b.save('%s/%s.builder' % (etc, name))
    b.get_ring().save('%s/%s.ring.gz' % (etc, name))
EOF
  echo "$RING_STAMP" >"$ETC/ring.stamp"
fi

# ---------------------------------------------------------------- start
# Each process: own session/process group (setsid), tagged with SWIFT_SAIO_DIR, stdin from
# /dev/null, output to $LOG/<name>.log; "-v" makes swift log to the console (i.e. the log file)
# in addition to syslog (no rsyslog needed).
declare -A CHILD   # name -> pid of what this invocation started (our children: their PIDs
                   # cannot be recycled before we exit)
start() { # name cmd...
  local name=$1; shift
  SWIFT_SAIO_DIR=$DIR setsid "$@" </dev/null >>"$LOG/$name.log" 2>&1 &
  CHILD[$name]=$!
  echo $! >"$RUN/$name.pid"
}
# on failure: stop what this invocation started, by PID (process group first)
stop_children() {
  local pid
  for pid in "${CHILD[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${CHILD[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; done
  rm -f "$RUN"/*.pid "$RUN/config.stamp"
}

STARTED=1   # from here on, a failure stops what was started
echo "$STAMP" >"$RUN/config.stamp"
if ! our_pid memcached >/dev/null; then
  if port_busy "$MEMCACHE_PORT"; then
    # someone else's memcached: fine to share (tokens are namespaced per proxy)
    log "re-using the memcached already listening on 127.0.0.1:$MEMCACHE_PORT"
    rm -f "$RUN/memcached.pid"; touch "$RUN/memcached.external"
  else
    rm -f "$RUN/memcached.external"
    start memcached memcached -l 127.0.0.1 -p "$MEMCACHE_PORT" -U 0 -m 64 -c 1024 -u root
  fi
fi
start account   swift-account-server   "$ETC/account-server.conf"   -v
start container swift-container-server "$ETC/container-server.conf" -v
start object    swift-object-server    "$ETC/object-server.conf"    -v
start proxy     swift-proxy-server     "$ETC/proxy-server.conf"     -v

# ---------------------------------------------------------------- wait
deadline=$(( $(date +%s) + START_TIMEOUT ))
# backends first (so the proxy never sees them refuse), then the full check
until port_busy "$ACCOUNT_PORT" && port_busy "$CONTAINER_PORT" && port_busy "$OBJECT_PORT" && healthy; do
  for s in "${!CHILD[@]}"; do
    alive "${CHILD[$s]}" || { tail -20 "$LOG/$s.log" >&2; die "$s exited (log: $LOG/$s.log)"; }
  done
  if [ "$(date +%s)" -ge $deadline ]; then
    tail -n 5 "$LOG"/*.log >&2
    die "not healthy after ${START_TIMEOUT}s (logs in $LOG)"
  fi
  sleep 0.1
done
# the updaters are not needed for health: start them after, so that they do not compete for CPU
# with the servers' start-up (about 1 s on 2 cores)
if [ "$UPDATERS" = 1 ]; then
  start container-updater swift-container-updater "$ETC/container-server.conf" -v
  start object-updater    swift-object-updater    "$ETC/object-server.conf"    -v
fi
# make sure every process has exec'd into its final program (so that "down", run right after
# us, can verify its tag and stop it)
for s in "${!CHILD[@]}"; do
  for _ in $(seq 100); do
    case $(readlink "/proc/${CHILD[$s]}/exe" 2>/dev/null) in
      */python3*|*/memcached) break;;
    esac
    sleep 0.05
  done
done
log "healthy after $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $T0}")s (replicas=$REPLICAS, logs in $LOG)"
print_env
