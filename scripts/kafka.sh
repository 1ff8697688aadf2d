#!/usr/bin/env bash
# A local Apache Kafka broker for development, tests and CI: a single KRaft node (broker and
# controller in one process) on 127.0.0.1, fetched from Maven Central once into a cache.
#
#   npm run kafka -- start     fetch if needed, format the storage the first time, start, wait
#   npm run kafka -- stop      stop it (SIGTERM, then SIGKILL after 30 s)
#   npm run kafka -- restart   stop, then start again on the same storage
#   npm run kafka -- status    whether it answers, and where
#   npm run kafka -- fetch     only download the jars
#   npm run kafka -- reset     stop it and delete its storage (every topic and offset)
#
# Settings (environment):
#   KAFKA_VERSION          default 4.1.1 (org.apache.kafka:kafka_2.13 on Maven Central)
#   KAFKA_PORT             default 9092 (the controller listens on KAFKA_PORT + 1)
#   MUTUO_KAFKA_DIR        the broker's storage, configuration, pid and log; default .kafka in the repository
#   MUTUO_CACHE_DIR        where the jars are kept; default ${XDG_CACHE_HOME:-~/.cache}/mutuo
#   KAFKA_HEAP             default 512m
# Needs Java 17 or later and Maven.
set -euo pipefail
cd "$(dirname "$0")/.."

version="${KAFKA_VERSION:-4.1.1}"
port="${KAFKA_PORT:-9092}"
controller_port="$((port + 1))"
data="${MUTUO_KAFKA_DIR:-$PWD/.kafka}"
cache="${MUTUO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mutuo}"
lib="$cache/kafka-$version/lib"
heap="${KAFKA_HEAP:-512m}"
pidfile="$data/kafka.pid"
log="$data/kafka.log"

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
running_pid() {
  [[ -f "$pidfile" ]] || return 1
  local pid
  pid="$(cat "$pidfile")"
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

fetch() {
  if compgen -G "$lib/kafka_2.13-$version.jar" >/dev/null; then return 0; fi
  echo "fetching Apache Kafka $version from Maven Central into $lib (once)"
  local work
  work="$(mktemp -d)"
  cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>mutuo.local</groupId>
  <artifactId>kafka-fetch</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
EOF
  mkdir -p "$lib.partial"
  (cd "$work" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$lib.partial")
  rm -rf "$lib" "$work"
  mv "$lib.partial" "$lib"
}

configure() {
  mkdir -p "$data/logs"
  cat >"$data/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data/logs
# One node: every internal topic has one replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Mutuo creates its topics, with their settings, at start-up: none appears by accident.
auto.create.topics.enable=false
EOF
  if [[ ! -f "$data/logs/meta.properties" ]]; then
    local id
    id="$(java -cp "$lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
    java -cp "$lib/*" kafka.tools.StorageTool format -t "$id" -c "$data/server.properties" >/dev/null 2>&1
  fi
}

start() {
  if answers; then
    echo "a broker already answers on 127.0.0.1:$port"
    return 0
  fi
  fetch
  configure
  echo "starting Apache Kafka $version on 127.0.0.1:$port (storage: $data)"
  nohup java "-Xmx$heap" "-Xms$heap" -cp "$lib/*" kafka.Kafka "$data/server.properties" >>"$log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 90); do
    if answers; then
      echo "Apache Kafka answers on 127.0.0.1:$port"
      return 0
    fi
    if ! running_pid >/dev/null; then
      echo "Apache Kafka exited while starting; its log ($log) ends with:" >&2
      tail -n 30 "$log" >&2
      return 1
    fi
    sleep 1
  done
  echo "Apache Kafka did not answer on 127.0.0.1:$port within 90 s; see $log" >&2
  return 1
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    echo "no broker started by this script is running"
    return 0
  fi
  kill "$pid"
  for _ in $(seq 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "Apache Kafka did not stop within 30 s: killing it"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  echo "Apache Kafka stopped"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  restart)
    # Only a broker this checkout started, on its own storage: stopping another one and starting
    # here would start an empty broker, and its topics would look lost.
    if answers && ! running_pid >/dev/null; then
      echo "the broker on 127.0.0.1:$port was not started from this checkout ($data): restart it where it was started" >&2
      exit 1
    fi
    stop && start
    ;;
  status)
    if answers; then echo "Apache Kafka answers on 127.0.0.1:$port (pid $(running_pid || echo 'not started here'))"; else echo "nothing answers on 127.0.0.1:$port" && exit 1; fi
    ;;
  reset) stop && rm -rf "$data" && echo "deleted $data" ;;
  *)
    echo "usage: npm run kafka -- start|stop|restart|status|fetch|reset" >&2
    exit 2
    ;;
esac
