#!/usr/bin/env bash
# Local Milvus standalone server for Kestrel's tests and development.
#
#   scripts/milvus.sh start    install (first time) and start; waits until it answers
#   scripts/milvus.sh stop     stop the server started by `start`
#   scripts/milvus.sh status   one line; exit 0 when running and answering, 3 otherwise
#
# The server is the PyPI package `milvus` (embedded Milvus: the real Milvus
# standalone binary plus its shared libraries, with embedded etcd and rocksmq),
# installed into a project-local virtualenv. Everything lives under
# .infra/milvus/ (git-ignored):
#   venv/        Python virtualenv holding the pinned `milvus` package
#   data/        server base dir: bin/ (unpacked binary), configs/, data/ (etcd, segments, rocksmq), logs/
#   milvus.pid   pid of the server (also its process group / session id)
#   milvus.log   server stdout+stderr for the current run (milvus.prev.log: the run before)
#   etcd.log     embedded etcd log
#   install.log  output of the venv creation and pip install
#
# Milvus 2.3 binds its gRPC ports on all interfaces (":PORT"; not configurable in 2.3);
# clients use 127.0.0.1:19530, every component registers itself as 127.0.0.1, and the
# embedded etcd listens on 127.0.0.1 only. Nothing but glibc is needed from the system:
# the package ships the binary's other shared libraries (checked with ldd at start).
#
# Environment knobs (all optional):
#   MILVUS_PORT            gRPC port (default 19530)
#   MILVUS_METRICS_PORT    health/metrics HTTP port (default 9091)
#   MILVUS_START_TIMEOUT   seconds to wait for the server to answer (default 180)
#   MILVUS_STOP_TIMEOUT    seconds to wait after SIGTERM before SIGKILL (default 10). After a workload,
#                          Milvus 2.3 can retry its own stopped coordinators for minutes on shutdown;
#                          acknowledged inserts are already in its on-disk message log (rocksmq).
#   MILVUS_SESSION_TTL     etcd session TTL in seconds (default 10; Milvus's own default is 30).
#                          A restart on existing data waits about this long for the previous
#                          run's sessions to expire before the server answers RPCs.
#   MILVUS_PYTHON          python used to create the venv (default python3)
set -euo pipefail

MILVUS_PKG_VERSION=2.3.5

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT_DIR="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"
INFRA_DIR="$ROOT_DIR/.infra/milvus"
VENV_DIR="$INFRA_DIR/venv"
BASE_DIR="$INFRA_DIR/data"
PID_FILE="$INFRA_DIR/milvus.pid"
LOCK_FILE="$INFRA_DIR/.lock"
LOG_FILE="$INFRA_DIR/milvus.log"
PREV_LOG_FILE="$INFRA_DIR/milvus.prev.log"
ETCD_LOG_FILE="$INFRA_DIR/etcd.log"
INSTALL_LOG="$INFRA_DIR/install.log"

HOST=127.0.0.1
PORT="${MILVUS_PORT:-19530}"
METRICS_PORT="${MILVUS_METRICS_PORT:-9091}"
START_TIMEOUT="${MILVUS_START_TIMEOUT:-180}"
STOP_TIMEOUT="${MILVUS_STOP_TIMEOUT:-10}"
SESSION_TTL="${MILVUS_SESSION_TTL:-10}"
PYTHON="${MILVUS_PYTHON:-python3}"
VENV_PY="$VENV_DIR/bin/python"
MILVUS_BIN="$BASE_DIR/bin/milvus"

log() { printf 'milvus: %s\n' "$*" >&2; }
die() { printf 'milvus: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- process helpers

# Pid from the pid file if that process is alive and is our milvus binary; empty otherwise.
running_pid() {
  [[ -f "$PID_FILE" ]] || return 0
  local pid
  pid="$(tr -dc '0-9' <"$PID_FILE")"
  [[ -n "$pid" ]] || return 0
  [[ -r "/proc/$pid/cmdline" ]] || return 0
  # A zombie is not running.
  local state
  state="$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" || return 0
  [[ "$state" != "Z" ]] || return 0
  # Guard against pid reuse: the process must be the binary we started.
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$MILVUS_BIN run standalone"; then
    printf '%s\n' "$pid"
  fi
}

# Is process $1 alive (and not a zombie)?
alive() {
  local state
  state="$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [[ -n "$state" && "$state" != "Z" ]]
}

process_group_of() {
  sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f3
}

# Is any process of process group $1 still alive (zombies excluded)?
group_alive() {
  local pgid="$1" stat f
  for f in /proc/[0-9]*/stat; do
    stat="$(sed -e 's/^.*) //' "$f" 2>/dev/null)" || continue
    [[ -n "$stat" ]] || continue
    # fields after "comm) ": state ppid pgrp ...
    set -- $stat
    if [[ "${3:-}" == "$pgid" && "${1:-}" != "Z" ]]; then
      return 0
    fi
  done
  return 1
}

# ---------------------------------------------------------------- health check

# Exit 0 when the server answers: TCP on the gRPC port, the /healthz endpoint
# (all Milvus components report healthy), and, when the project's Node SDK is
# installed, a gRPC CheckHealth call through @zilliz/milvus2-sdk-node.
healthy() {
  [[ -x "$VENV_PY" ]] || return 1
  "$VENV_PY" - "$HOST" "$PORT" "$METRICS_PORT" <<'PY' >/dev/null 2>&1 || return 1
import socket, sys, urllib.request
host, port, metrics_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with socket.create_connection((host, port), timeout=2):
    pass
with urllib.request.urlopen(f"http://{host}:{metrics_port}/healthz", timeout=3) as resp:
    body = resp.read().decode("utf-8", "replace")
sys.exit(0 if resp.status == 200 and "OK" in body else 1)
PY
  if command -v node >/dev/null 2>&1 && [[ -d "$ROOT_DIR/node_modules/@zilliz/milvus2-sdk-node" ]]; then
    (cd "$ROOT_DIR" && MILVUS_HEALTH_ADDRESS="$HOST:$PORT" timeout 15 node --input-type=module -e '
      import sdk from "@zilliz/milvus2-sdk-node";
      process.on("unhandledRejection", () => process.exit(1));
      const client = new sdk.MilvusClient({
        address: process.env.MILVUS_HEALTH_ADDRESS, timeout: 5000, maxRetries: 0, logLevel: "error",
      });
      let ok = false;
      try { ok = (await client.checkHealth()).isHealthy === true; } catch { ok = false; }
      try { await client.closeConnection(); } catch { /* ignore */ }
      process.exit(ok ? 0 : 1);
    ' >/dev/null 2>&1) || return 1
  fi
  return 0
}

# ---------------------------------------------------------------- install

installed() {
  [[ -x "$VENV_PY" ]] && "$VENV_PY" - "$MILVUS_PKG_VERSION" <<'PY' >/dev/null 2>&1
import sys
import milvus
sys.exit(0 if milvus.__version__ == sys.argv[1] else 1)
PY
}

ensure_installed() {
  if installed; then
    return 0
  fi
  log "installing milvus==$MILVUS_PKG_VERSION into $VENV_DIR (log: $INSTALL_LOG)"
  command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found; set MILVUS_PYTHON to a Python 3 interpreter"
  : >"$INSTALL_LOG"
  if [[ ! -x "$VENV_PY" ]]; then
    rm -rf "$VENV_DIR"
    if ! "$PYTHON" -m venv "$VENV_DIR" >>"$INSTALL_LOG" 2>&1; then
      die "could not create a virtualenv with '$PYTHON -m venv' (on Debian's own python: apt-get install python3-venv); see $INSTALL_LOG"
    fi
  fi
  if ! "$VENV_PY" -m pip install --disable-pip-version-check --no-input \
      "milvus==$MILVUS_PKG_VERSION" >>"$INSTALL_LOG" 2>&1; then
    tail -n 20 "$INSTALL_LOG" >&2 || true
    die "pip install milvus==$MILVUS_PKG_VERSION failed; see $INSTALL_LOG"
  fi
  installed || die "milvus==$MILVUS_PKG_VERSION not importable after install; see $INSTALL_LOG"
}

# Write the server config and unpack the binary (no-op when already unpacked).
# Uses the `milvus` package's own config template and unpacker, but pins every
# component to 127.0.0.1, sends the server log to stdout (milvus.log) and fails
# instead of silently moving to another port when the gRPC or metrics port is taken.
prepare_server() {
  local out
  if ! out="$("$VENV_PY" - "$BASE_DIR" "$PORT" "$METRICS_PORT" "$ETCD_LOG_FILE" "$SESSION_TTL" 2>&1 <<'PY'
import socket
import sys
import milvus

base_dir, port, metrics_port, etcd_log, session_ttl = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])


class Config(milvus.MilvusServerConfig):
    def try_bind_port(self, port):
        # Like the package's check, but with SO_REUSEADDR so that connections of a server
        # that just stopped (TIME_WAIT) don't count as "in use"; a live listener still does.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
            sock.listen()
            return sock
        except OSError:
            sock.close()
            return None

    def resolve_storage(self):
        super().resolve_storage()
        self.set("system_log_path", "")  # "" = log to stdout
        self.set("etcd_log_path", etcd_log)


cfg = Config(data_dir=base_dir, proxy_port=port)
for section in ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode"):
    cfg.set(f"{section}.ip", "127.0.0.1")
# Milvus 2.3 does not revoke its etcd sessions on shutdown, and the embedded etcd restores
# their leases with a full TTL on restart: until the old sessions expire, RPCs such as
# CheckHealth fail. The default TTL of 30 s makes every restart ~35 s; 10 s keeps it short.
cfg.set("common.session.ttl", session_ttl)
try:
    cfg.resolve()
except RuntimeError:
    sys.exit(f"port {port} is already in use by another process")
probe = cfg.try_bind_port(metrics_port)
if probe is None:
    sys.exit(f"metrics port {metrics_port} is already in use (set MILVUS_METRICS_PORT)")
probe.close()
milvus._initialize_data_files(cfg.base_data_dir)
PY
  )"; then
    die "could not prepare the server: ${out##*$'\n'}"
  fi
  [[ -x "$MILVUS_BIN" ]] || die "server binary missing after unpacking: $MILVUS_BIN"
  check_shared_libs
}

# The package ships the libraries it needs except glibc's; report anything missing
# up front rather than as an obscure crash.
check_shared_libs() {
  command -v ldd >/dev/null 2>&1 || return 0
  local missing
  missing="$(LD_LIBRARY_PATH="$BASE_DIR/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$MILVUS_BIN" 2>/dev/null | grep 'not found' || true)"
  if [[ -n "$missing" ]]; then
    die "the Milvus binary is missing shared libraries (install the Debian packages providing them):
$missing"
  fi
}

# ---------------------------------------------------------------- commands

wait_until_ready() {
  local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! alive "$pid"; then
      tail -n 30 "$LOG_FILE" >&2 2>/dev/null || true
      rm -f "$PID_FILE"
      die "server process $pid exited during startup; see $LOG_FILE"
    fi
    if healthy; then
      return 0
    fi
    sleep 1
  done
  tail -n 30 "$LOG_FILE" >&2 2>/dev/null || true
  die "server (pid $pid) did not answer on $HOST:$PORT within ${START_TIMEOUT}s; see $LOG_FILE (it is still running: 'scripts/milvus.sh stop' stops it)"
}

cmd_start() {
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    if healthy; then
      echo "milvus: already running on $HOST:$PORT (pid $pid)"
      return 0
    fi
    log "process $pid is up but not answering yet; waiting"
    wait_until_ready "$pid"
    echo "milvus: running on $HOST:$PORT (pid $pid)"
    return 0
  fi
  rm -f "$PID_FILE"

  local t0=$SECONDS
  ensure_installed
  prepare_server

  [[ -f "$LOG_FILE" ]] && mv -f "$LOG_FILE" "$PREV_LOG_FILE"
  : >"$LOG_FILE"
  # setsid --fork: the server becomes leader of its own session and process group
  # (pid == pgid), detached from this shell; it writes its own pid before exec.
  (
    cd "$BASE_DIR"
    export DEPLOY_MODE=STANDALONE
    export METRICS_PORT
    export MILVUS_RUN_DIR="$BASE_DIR/run"
    export LD_LIBRARY_PATH="$BASE_DIR/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export MILVUS_PID_FILE="$PID_FILE"
    # 9>&-: the server must not inherit the lock held on fd 9, or it would hold it forever.
    setsid --fork bash -c 'echo $$ >"$MILVUS_PID_FILE"; exec "$0" run standalone' "$MILVUS_BIN" \
      </dev/null >>"$LOG_FILE" 2>&1 9>&-
  )
  local i
  for i in $(seq 1 50); do
    [[ -s "$PID_FILE" ]] && break
    sleep 0.1
  done
  [[ -s "$PID_FILE" ]] || die "server did not start (no pid file); see $LOG_FILE"
  sleep 0.5
  pid="$(tr -dc '0-9' <"$PID_FILE")"
  log "started pid $pid; waiting up to ${START_TIMEOUT}s for $HOST:$PORT (log: $LOG_FILE)"
  wait_until_ready "$pid"
  echo "milvus: running on $HOST:$PORT (pid $pid), ready after $((SECONDS - t0))s"
}

cmd_stop() {
  local pid
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    rm -f "$PID_FILE"
    echo "milvus: stopped (was not running)"
    return 0
  fi
  local pgid
  pgid="$(process_group_of "$pid")"
  # The server is its own process group leader (setsid); signal the whole group so
  # any child it spawned goes too. Never signal a group that isn't the server's.
  local target="$pid"
  [[ "$pgid" == "$pid" ]] && target="-$pid"
  kill -TERM -- "$target" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while ((SECONDS < deadline)); do
    if [[ "$target" == "-$pid" ]]; then group_alive "$pid" || break
    else [[ -n "$(running_pid)" ]] || break
    fi
    sleep 0.5
  done
  if { [[ "$target" == "-$pid" ]] && group_alive "$pid"; } || [[ -n "$(running_pid)" ]]; then
    log "still running after ${STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL -- "$target" 2>/dev/null || true
    sleep 1
  fi
  rm -f "$PID_FILE"
  echo "milvus: stopped (was pid $pid)"
}

cmd_status() {
  local pid
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    echo "milvus: stopped"
    return 3
  fi
  if healthy; then
    echo "milvus: running on $HOST:$PORT (pid $pid)"
    return 0
  fi
  echo "milvus: not answering on $HOST:$PORT (pid $pid; starting or unhealthy, see $LOG_FILE)"
  return 3
}

usage() {
  echo "usage: $0 {start|stop|status}" >&2
  exit 2
}

main() {
  [[ $# -eq 1 ]] || usage
  mkdir -p "$INFRA_DIR"
  case "$1" in
    start | stop)
      # Serialise start/stop (e.g. parallel test runners calling start at once).
      exec 9>"$LOCK_FILE"
      flock 9
      "cmd_$1"
      ;;
    status) cmd_status ;;
    *) usage ;;
  esac
}

main "$@"
