#!/usr/bin/env bash
# Local single-node Apache Kafka 4.x broker (KRaft, broker+controller in one
# JVM), run straight from the jars that Maven fetches from Maven Central.
# No Docker, no Kafka tarball.
#
# Usage: scripts/kafka.sh fetch|up|down|status|reset|run CLASS [ARGS...]
#
#   fetch   copy the broker + tools jars into $KAFKA_LIB_DIR (once; a stamp
#           file holding the pom's hash makes later calls instant and offline)
#   up      fetch if needed, format storage if new, start the broker in the
#           background and wait until it serves requests
#   down    stop the broker (SIGTERM, up to 30 s, then SIGKILL)
#   status  exit 0 if the broker port accepts connections, 1 otherwise
#   reset   down, then delete the data dir
#   run     run a Kafka tool class with the jars on the class path, e.g.
#             scripts/kafka.sh run org.apache.kafka.tools.TopicCommand \
#                 --bootstrap-server 127.0.0.1:9092 --list
#
# Environment (all optional):
#   KAFKA_HOME_DIR          state dir: data/, logs/, kafka.pid, server.properties
#                           (default <repo>/.kafka)
#   KAFKA_LIB_DIR           jars (default <repo>/.kafka/lib, shared by all homes)
#   KAFKA_HOST              listener host (default 127.0.0.1)
#   KAFKA_PORT              PLAINTEXT port (default 9092)
#   KAFKA_CONTROLLER_PORT   CONTROLLER port (default 9093)
#   KAFKA_NODE_ID           node.id (default 1)
#   KAFKA_CLUSTER_ID        cluster id used when formatting (default fixed)
#   KAFKA_QUORUM_VOTERS     static controller.quorum.voters, e.g.
#                           1@127.0.0.1:19093,2@127.0.0.1:29093,3@127.0.0.1:39093;
#                           unset: dynamic quorum of this node alone (--standalone)
#   KAFKA_EXTRA_PROPERTIES  file appended to server.properties (overrides, e.g.
#                           SASL listeners)
#   KAFKA_CLIENT_CONFIG     client properties file for the readiness check
#                           (needed when the port is not PLAINTEXT)
#   KAFKA_FORMAT_ARGS       extra arguments of the storage format of a new data
#                           dir, one per line, e.g. SCRAM users:
#                             --add-scram
#                             SCRAM-SHA-512=[name=alice,password=alice-secret]
#   KAFKA_HEAP_OPTS         default "-Xms256m -Xmx512m"
#   KAFKA_OPTS              extra JVM options of the broker (e.g. JAAS config)
#   KAFKA_TOOL_OPTS         JVM options of `run` (default "-Xmx256m")
#   KAFKA_START_TIMEOUT     seconds `up` waits for the broker (default 60)
#   JAVA_HOME               java is $JAVA_HOME/bin/java if set, else `java`
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_CONF_DIR="$REPO_ROOT/kafka"
POM="$KAFKA_CONF_DIR/pom.xml"

KAFKA_HOME_DIR="${KAFKA_HOME_DIR:-$REPO_ROOT/.kafka}"
KAFKA_LIB_DIR="${KAFKA_LIB_DIR:-$REPO_ROOT/.kafka/lib}"
KAFKA_HOST="${KAFKA_HOST:-127.0.0.1}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_NODE_ID="${KAFKA_NODE_ID:-1}"
# base64url of the 16 bytes "foot-traffic-kaf": any fixed valid id will do
KAFKA_CLUSTER_ID="${KAFKA_CLUSTER_ID:-Zm9vdC10cmFmZmljLWthZg}"
KAFKA_QUORUM_VOTERS="${KAFKA_QUORUM_VOTERS:-}"
KAFKA_EXTRA_PROPERTIES="${KAFKA_EXTRA_PROPERTIES:-}"
KAFKA_CLIENT_CONFIG="${KAFKA_CLIENT_CONFIG:-}"
KAFKA_FORMAT_ARGS="${KAFKA_FORMAT_ARGS:-}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
KAFKA_OPTS="${KAFKA_OPTS:-}"
KAFKA_TOOL_OPTS="${KAFKA_TOOL_OPTS:--Xmx256m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"

DATA_DIR="$KAFKA_HOME_DIR/data"
LOGS_DIR="$KAFKA_HOME_DIR/logs"
PID_FILE="$KAFKA_HOME_DIR/kafka.pid"
PROPS="$KAFKA_HOME_DIR/server.properties"
BROKER_CMDLINE='kafka\.Kafka'  # grep pattern of the broker's command line
CP="$KAFKA_LIB_DIR/*"
# short-lived JVMs: start fast rather than run fast
QUICK_JVM=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto)

cmd_fetch() {
    maven_fetch "$POM" "$KAFKA_LIB_DIR" "Kafka jars" dependency:copy-dependencies kafka.lib.dir \
        "kafka jars" 'kafka_2.13-*.jar' 'kafka-tools-*.jar'
}

# pid from the pid file if that process is alive and is a Kafka broker
broker_pid() { live_pid "$PID_FILE" "$BROKER_CMDLINE"; }

write_props() {
    local quorum
    if [[ -n "$KAFKA_QUORUM_VOTERS" ]]; then
        quorum="controller.quorum.voters=$KAFKA_QUORUM_VOTERS"
    else
        quorum="controller.quorum.bootstrap.servers=$KAFKA_HOST:$KAFKA_CONTROLLER_PORT"
    fi
    sed -e "s|@NODE_ID@|$KAFKA_NODE_ID|g" \
        -e "s|@QUORUM_LINE@|$quorum|g" \
        -e "s|@HOST@|$KAFKA_HOST|g" \
        -e "s|@PORT@|$KAFKA_PORT|g" \
        -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
        -e "s|@DATA_DIR@|$DATA_DIR|g" \
        "$KAFKA_CONF_DIR/server.properties.in" >"$PROPS.tmp"
    if [[ -n "$KAFKA_EXTRA_PROPERTIES" ]]; then
        [[ -f "$KAFKA_EXTRA_PROPERTIES" ]] || die "no such file: $KAFKA_EXTRA_PROPERTIES"
        { echo; echo "# from $KAFKA_EXTRA_PROPERTIES"; cat "$KAFKA_EXTRA_PROPERTIES"; } >>"$PROPS.tmp"
    fi
    mv "$PROPS.tmp" "$PROPS"
}

format_storage() {
    [[ -f "$DATA_DIR/meta.properties" ]] && return 0
    local mode=(--standalone)
    [[ -n "$KAFKA_QUORUM_VOTERS" ]] && mode=()
    # one argument per line: no word splitting or globbing of values like [name=…]
    local extra=()
    [[ -n "$KAFKA_FORMAT_ARGS" ]] && mapfile -t extra <<<"$KAFKA_FORMAT_ARGS"
    log "formatting $DATA_DIR (cluster id $KAFKA_CLUSTER_ID)"
    "$JAVA" "${QUICK_JVM[@]}" -Dlog4j2.configurationFile="$KAFKA_CONF_DIR/tools-log4j2.xml" \
        -cp "$CP" kafka.tools.StorageTool format \
        -t "$KAFKA_CLUSTER_ID" -c "$PROPS" "${mode[@]}" "${extra[@]}" --ignore-formatted >"$LOGS_DIR/format.out" 2>&1 \
        || { cat "$LOGS_DIR/format.out" >&2; die "storage format failed"; }
}

# one real request: list topics
serves_requests() {
    local cfg=()
    [[ -n "$KAFKA_CLIENT_CONFIG" ]] && cfg=(--command-config "$KAFKA_CLIENT_CONFIG")
    timeout 30 "$JAVA" "${QUICK_JVM[@]}" \
        -Dlog4j2.configurationFile="$KAFKA_CONF_DIR/tools-log4j2.xml" \
        -cp "$CP" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" "${cfg[@]}" --list >/dev/null 2>&1
}

broker_ready() { port_open "$KAFKA_HOST" "$KAFKA_PORT" && serves_requests; }

show_logs() {
    show_tail "$LOGS_DIR/kafka.out" 30
    show_tail "$LOGS_DIR/server.log" 40
}

cmd_up() {
    local pid start
    if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
        echo "kafka already up on $KAFKA_HOST:$KAFKA_PORT"
        return 0
    fi
    start=$SECONDS
    cmd_fetch
    mkdir -p "$DATA_DIR" "$LOGS_DIR"
    if ! pid="$(broker_pid)"; then
        rm -f "$PID_FILE"
        write_props
        format_storage
        port_open "$KAFKA_HOST" "$KAFKA_CONTROLLER_PORT" \
            && die "controller port $KAFKA_HOST:$KAFKA_CONTROLLER_PORT is taken by another process"
        # shellcheck disable=SC2086  # $KAFKA_HEAP_OPTS/$KAFKA_OPTS: word lists
        spawn_detached "$PID_FILE" "$LOGS_DIR/kafka.out" "$PWD" \
            "$JAVA" $KAFKA_HEAP_OPTS \
            -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
            -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
            -Dkafka.logs.dir="$LOGS_DIR" \
            -Dlog4j2.configurationFile="$KAFKA_CONF_DIR/log4j2.xml" \
            $KAFKA_OPTS \
            -cp "$CP" kafka.Kafka "$PROPS"
        pid="$(await_pid broker_pid)" || { show_logs; die "broker did not start"; }
        log "started broker pid $pid ($KAFKA_HOST:$KAFKA_PORT, home $KAFKA_HOME_DIR)"
    else
        log "broker pid $pid is running but $KAFKA_HOST:$KAFKA_PORT is not open yet; waiting"
    fi
    if await_ready "$pid" "$KAFKA_START_TIMEOUT" "$PID_FILE" broker show_logs broker_ready; then
        echo "kafka up on $KAFKA_HOST:$KAFKA_PORT (pid $pid, $((SECONDS - start)) s)"
        return 0
    fi
    show_logs
    die "broker not serving on $KAFKA_HOST:$KAFKA_PORT after ${KAFKA_START_TIMEOUT} s (still running as pid $pid; 'scripts/kafka.sh down' stops it)"
}

cmd_down() { stop_service "$PID_FILE" "$BROKER_CMDLINE" broker kafka; }

cmd_status() {
    report_status kafka "$KAFKA_HOST:$KAFKA_PORT" "$KAFKA_HOME_DIR" broker_pid port_open "$KAFKA_HOST" "$KAFKA_PORT"
}

cmd_reset() {
    cmd_down
    rm -rf "$DATA_DIR"
    echo "kafka data removed ($DATA_DIR)"
}

cmd_run() {
    [[ $# -ge 1 ]] || die "usage: $0 run CLASS [ARGS...]"
    cmd_fetch
    # shellcheck disable=SC2086
    exec "$JAVA" $KAFKA_TOOL_OPTS \
        -Dlog4j2.configurationFile="$KAFKA_CONF_DIR/tools-log4j2.xml" \
        -cp "$CP" "$@"
}

case "${1:-}" in
    fetch) cmd_fetch ;;
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    reset) cmd_reset ;;
    run) shift; cmd_run "$@" ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
esac
