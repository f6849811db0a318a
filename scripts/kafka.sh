#!/usr/bin/env bash
# Local single-node Apache Kafka broker (KRaft, combined broker+controller) for
# Kestrel's tests and development.
#
#   bash scripts/kafka.sh start    fetch jars if needed, format storage once, start, wait until it answers
#   bash scripts/kafka.sh stop     stop it (TERM, then KILL after a timeout)
#   bash scripts/kafka.sh status   one line; exit 0 when running and answering, 3 otherwise
#
# All three are idempotent. Everything lives in .infra/kafka/ (git-ignored):
#   libs/              the broker's jars, fetched with Maven from scripts/kafka/pom.xml
#   data/              the KRaft log directory (metadata and topic data)
#   cluster.id         the cluster id the storage was formatted with
#   server.properties  the generated broker config
#   server.log         the broker's log (log4j2, scripts/kafka/log4j2.xml)
#   console.log        the JVM's stdout/stderr (crashes, JVM errors)
#   kafka.pid          the pid of the running broker
#
# Needs java (17+) and mvn on PATH (or JAVA_HOME). Maven uses ~/.m2 unless
# KESTREL_M2_REPO names another local repository. The readiness probe uses the
# project's kafkajs through node when node_modules is installed, otherwise a
# TCP connect plus the broker's "started" log line.
#
# Environment knobs (all optional):
#   KAFKA_START_TIMEOUT  seconds to wait for the broker to answer (default 120)
#   KAFKA_STOP_TIMEOUT   seconds to wait after TERM before KILL (default 30)
#   KAFKA_HEAP_OPTS      JVM heap flags (default "-Xmx512m -Xms256m")
#   KESTREL_M2_REPO      Maven local repository to use instead of ~/.m2
set -euo pipefail

# Keep in sync with <kafka.version> in scripts/kafka/pom.xml.
readonly KAFKA_VERSION="4.4.0"
readonly HOST="127.0.0.1"
readonly PORT="9092"
readonly CONTROLLER_PORT="9093"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly POM="${ROOT}/scripts/kafka/pom.xml"
readonly LOG4J_CONF="${ROOT}/scripts/kafka/log4j2.xml"
readonly INFRA="${ROOT}/.infra/kafka"
readonly LIBS="${INFRA}/libs"
readonly LIBS_STAMP="${LIBS}/.fetched"
readonly DATA="${INFRA}/data"
readonly CLUSTER_ID_FILE="${INFRA}/cluster.id"
readonly CONFIG="${INFRA}/server.properties"
readonly SERVER_LOG="${INFRA}/server.log"
readonly CONSOLE_LOG="${INFRA}/console.log"
readonly PID_FILE="${INFRA}/kafka.pid"
readonly LOCK_FILE="${INFRA}/.lock"
readonly START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
readonly STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
readonly HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
# Written to server.log and console.log before each launch.
readonly START_MARKER="===== kafka.sh start"

# Paths shown to people are relative to the repo root.
readonly SERVER_LOG_REL=".infra/kafka/server.log"
readonly CONSOLE_LOG_REL=".infra/kafka/console.log"

if [[ -n "${JAVA_HOME:-}" && -x "${JAVA_HOME}/bin/java" ]]; then
  JAVA="${JAVA_HOME}/bin/java"
else
  JAVA="java"
fi
readonly JAVA

log() { printf 'kafka: %s\n' "$*" >&2; }
die() { printf 'kafka: error: %s\n' "$*" >&2; exit 1; }

usage() {
  echo "usage: bash scripts/kafka.sh {start|stop|status}" >&2
  exit 2
}

require() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not on PATH; $2"
}

# Serialise start/stop so two callers (e.g. parallel test runs) cannot race.
take_lock() {
  mkdir -p "${INFRA}"
  exec 9>"${LOCK_FILE}"
  if command -v flock >/dev/null 2>&1; then
    flock -w 300 9 || die "timed out waiting for ${LOCK_FILE}"
  fi
}

# --- process state ----------------------------------------------------------

# Prints the pid of our broker if it is alive, else nothing. A stale pid file
# (process gone, or pid reused by something else) is removed.
broker_pid() {
  [[ -f "${PID_FILE}" ]] || return 0
  local pid cmdline=""
  pid="$(tr -dc '0-9' <"${PID_FILE}")"
  if [[ -n "${pid}" ]] && kill -0 "${pid}" 2>/dev/null; then
    cmdline="$(tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null || true)"
  fi
  if [[ "${cmdline}" == *" kafka.Kafka "* ]]; then
    echo "${pid}"
  else
    rm -f "${PID_FILE}"
  fi
}

tcp_open() {
  (exec 3<>"/dev/tcp/${HOST}/${PORT}") 2>/dev/null
}

# Succeeds when the broker answers a metadata request (kafkajs describeCluster),
# or, without node/kafkajs, when the port accepts connections and the log says
# the server started.
probe() {
  tcp_open || return 1
  if command -v node >/dev/null 2>&1 && [[ -f "${ROOT}/node_modules/kafkajs/package.json" ]]; then
    (
      cd "${ROOT}"
      timeout 15 node -e '
        const { Kafka, logLevel } = require("kafkajs");
        const kafka = new Kafka({
          clientId: "kestrel-kafka-sh-probe",
          brokers: [process.argv[1]],
          logLevel: logLevel.NOTHING,
          connectionTimeout: 2000,
          requestTimeout: 5000,
          retry: { retries: 0 },
        });
        const admin = kafka.admin();
        admin.connect()
          .then(() => admin.describeCluster())
          .then((c) => admin.disconnect().then(() => process.exit(c.brokers.length > 0 ? 0 : 1)))
          .catch(() => process.exit(1));
      ' "${HOST}:${PORT}" >/dev/null 2>&1
    )
  else
    # Only the log lines written since the last start count.
    [[ -f "${SERVER_LOG}" ]] && awk -v marker="${START_MARKER}" '
      index($0, marker) == 1 { started = 0 }
      /Kafka Server started/ { started = 1 }
      END { exit started ? 0 : 1 }' "${SERVER_LOG}"
  fi
}

# --- setup ------------------------------------------------------------------

pom_hash() {
  sha256sum "${POM}" | cut -d' ' -f1
}

fetch_libs() {
  local want
  want="$(pom_hash)"
  if [[ -f "${LIBS_STAMP}" && "$(cat "${LIBS_STAMP}")" == "${want}" ]]; then
    return 0
  fi
  require mvn "install Maven (Debian: apt-get install -y maven)"
  log "fetching Apache Kafka ${KAFKA_VERSION} jars with Maven into .infra/kafka/libs ..."
  local tmp="${INFRA}/libs.tmp"
  rm -rf "${tmp}"
  local -a mvn_args=(-B -q -f "${POM}" dependency:copy-dependencies
    -DincludeScope=runtime "-DoutputDirectory=${tmp}")
  if [[ -n "${KESTREL_M2_REPO:-}" ]]; then
    mvn_args+=("-Dmaven.repo.local=${KESTREL_M2_REPO}")
  fi
  if ! mvn "${mvn_args[@]}" >"${INFRA}/mvn.log" 2>&1; then
    tail -n 30 "${INFRA}/mvn.log" >&2 || true
    die "Maven could not fetch the Kafka jars; full output in .infra/kafka/mvn.log"
  fi
  [[ -f "${tmp}/kafka_2.13-${KAFKA_VERSION}.jar" ]] \
    || die "Maven finished but kafka_2.13-${KAFKA_VERSION}.jar is missing from ${tmp}"
  rm -rf "${LIBS}"
  mv "${tmp}" "${LIBS}"
  echo "${want}" >"${LIBS_STAMP}"
  rm -f "${INFRA}/mvn.log"
}

write_config() {
  cat >"${CONFIG}" <<EOF
# Generated by scripts/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@${HOST}:${CONTROLLER_PORT}
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://${HOST}:${PORT},CONTROLLER://${HOST}:${CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://${HOST}:${PORT}
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${DATA}

# Single node: every internal topic has one replica; few partitions start fast.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=3

group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true

# Small machine: few threads, modest retention.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
log.retention.hours=24
log.segment.bytes=67108864
EOF
}

format_storage() {
  if [[ -f "${DATA}/meta.properties" ]]; then
    return 0
  fi
  local cluster_id
  if [[ -s "${CLUSTER_ID_FILE}" ]]; then
    cluster_id="$(cat "${CLUSTER_ID_FILE}")"
  else
    cluster_id="$("${JAVA}" -cp "${LIBS}/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
    [[ -n "${cluster_id}" ]] || die "could not generate a cluster id with kafka.tools.StorageTool"
    echo "${cluster_id}" >"${CLUSTER_ID_FILE}"
  fi
  log "formatting storage in .infra/kafka/data (cluster id ${cluster_id}) ..."
  mkdir -p "${DATA}"
  if ! "${JAVA}" -Xmx256m "-Dlog4j2.configurationFile=${LOG4J_CONF}" "-Dkafka.logs.dir=${INFRA}" \
    -cp "${LIBS}/*" kafka.tools.StorageTool format \
    --config "${CONFIG}" --cluster-id "${cluster_id}" --ignore-formatted \
    >"${INFRA}/format.log" 2>&1; then
    cat "${INFRA}/format.log" >&2 || true
    die "formatting the storage failed (output above, also in .infra/kafka/format.log)"
  fi
}

# --- commands ---------------------------------------------------------------

cmd_start() {
  take_lock
  local pid
  pid="$(broker_pid)"
  if [[ -n "${pid}" ]]; then
    if probe; then
      echo "kafka: already running on ${HOST}:${PORT} (pid ${pid})"
      return 0
    fi
    log "a broker process (pid ${pid}) exists but is not answering yet; waiting for it ..."
  else
    if tcp_open; then
      die "port ${HOST}:${PORT} is already in use by a process this script did not start"
    fi
    require "${JAVA}" "install a Java 17+ runtime (Debian: apt-get install -y openjdk-17-jre-headless)"
    mkdir -p "${INFRA}"
    fetch_libs
    write_config
    format_storage
    local banner
    banner="$(printf '%s %s: Apache Kafka %s' "${START_MARKER}" "$(date -u +%FT%TZ)" "${KAFKA_VERSION}")"
    echo "${banner}" >>"${CONSOLE_LOG}"
    echo "${banner}" >>"${SERVER_LOG}"
    # Detached: own session (setsid), stdin from /dev/null and output to a file,
    # so callers that capture this script's output (e.g. a test runner) do not
    # wait on the JVM and signals sent to the caller's group do not reach it.
    # fd 9 (the lock) is closed for the JVM, or it would hold the lock forever.
    # setsid and nohup exec in place, so $! is the JVM's pid.
    local -a detach=(nohup)
    if command -v setsid >/dev/null 2>&1; then
      detach=(setsid nohup)
    fi
    # shellcheck disable=SC2086 # HEAP_OPTS is a list of flags
    "${detach[@]}" "${JAVA}" ${HEAP_OPTS} -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
      "-Dlog4j2.configurationFile=${LOG4J_CONF}" "-Dkafka.logs.dir=${INFRA}" \
      -cp "${LIBS}/*" kafka.Kafka "${CONFIG}" \
      </dev/null >>"${CONSOLE_LOG}" 2>&1 9>&- &
    pid=$!
    echo "${pid}" >"${PID_FILE}"
    log "started broker process (pid ${pid}); waiting up to ${START_TIMEOUT}s for it to answer on ${HOST}:${PORT} ..."
  fi

  local deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "${pid}" 2>/dev/null; then
      rm -f "${PID_FILE}"
      tail -n 20 "${SERVER_LOG}" >&2 2>/dev/null || true
      tail -n 20 "${CONSOLE_LOG}" >&2 2>/dev/null || true
      die "the broker exited during startup; see ${SERVER_LOG_REL} and ${CONSOLE_LOG_REL}"
    fi
    if probe; then
      echo "kafka: running on ${HOST}:${PORT} (pid ${pid})"
      return 0
    fi
    sleep 1
  done
  tail -n 20 "${SERVER_LOG}" >&2 2>/dev/null || true
  stop_pid "${pid}"
  die "the broker did not answer on ${HOST}:${PORT} within ${START_TIMEOUT}s and was stopped; see ${SERVER_LOG_REL} and ${CONSOLE_LOG_REL}"
}

stop_pid() {
  local pid="$1"
  kill -TERM "${pid}" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "${pid}" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.5
  done
  if kill -0 "${pid}" 2>/dev/null; then
    log "pid ${pid} did not exit within ${STOP_TIMEOUT}s of TERM; sending KILL"
    kill -KILL "${pid}" 2>/dev/null || true
    while kill -0 "${pid}" 2>/dev/null; do sleep 0.2; done
  fi
  rm -f "${PID_FILE}"
}

cmd_stop() {
  take_lock
  local pid
  pid="$(broker_pid)"
  if [[ -z "${pid}" ]]; then
    echo "kafka: already stopped"
    return 0
  fi
  stop_pid "${pid}"
  echo "kafka: stopped (was pid ${pid})"
}

cmd_status() {
  local pid
  pid="$(broker_pid)"
  if [[ -z "${pid}" ]]; then
    echo "kafka: stopped"
    return 3
  fi
  if probe; then
    echo "kafka: running on ${HOST}:${PORT} (pid ${pid})"
    return 0
  fi
  echo "kafka: process running (pid ${pid}) but not answering on ${HOST}:${PORT}; see ${SERVER_LOG_REL}"
  return 3
}

main() {
  [[ $# -eq 1 ]] || usage
  case "$1" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) usage ;;
  esac
}

main "$@"
