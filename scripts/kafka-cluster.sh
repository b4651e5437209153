#!/usr/bin/env bash
# Local 3-node Apache Kafka cluster on one machine: three KRaft nodes, each a
# combined broker + controller, with a static controller quorum
# (controller.quorum.voters), all run by scripts/kafka.sh from the same jars.
# For failover tests: kill a node, watch leadership move, restart it.
#
# Usage: scripts/kafka-cluster.sh up|down|status|bootstrap [NODE...]
#
#   up         start the nodes (default 1 2 3) in parallel and wait until each
#              serves requests; a node already up is left alone, so `up` also
#              restarts a node that died
#   down       stop the nodes in parallel (one at a time, the last node would
#              wait for a quorum that is gone)
#   status     say which nodes are up; exit 0 only if every one named is
#   bootstrap  print the bootstrap servers of the nodes (host:port,...)
#
# Node N has node.id N, its state in $KAFKA_CLUSTER_DIR/node-N (data/, logs/,
# kafka.pid, server.properties), PLAINTEXT port $KAFKA_CLUSTER_PORT + 100*(N-1)
# and CONTROLLER port one above: 39092/39093, 39192/39193, 39292/39293.
# Topics default to replication factor 3; a node that dies is fenced after 3 s
# (broker.session.timeout.ms), so its partitions get new leaders quickly.
#
# Environment (all optional):
#   KAFKA_CLUSTER_DIR       base dir (default <repo>/.kafka/cluster)
#   KAFKA_CLUSTER_PORT      PLAINTEXT port of node 1 (default 39092)
#   KAFKA_EXTRA_PROPERTIES  appended to every node's server.properties, after
#                           the cluster's own replication settings
#   KAFKA_START_TIMEOUT     seconds each node may take to start (default 120)
#   KAFKA_HOST, KAFKA_LIB_DIR, KAFKA_HEAP_OPTS, KAFKA_OPTS, JAVA_HOME: as for
#   scripts/kafka.sh (KAFKA_HOME_DIR, KAFKA_PORT, KAFKA_CONTROLLER_PORT,
#   KAFKA_NODE_ID and KAFKA_QUORUM_VOTERS are set per node by this script)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_SH="$SCRIPT_DIR/kafka.sh"

KAFKA_CLUSTER_DIR="${KAFKA_CLUSTER_DIR:-$REPO_ROOT/.kafka/cluster}"
KAFKA_CLUSTER_PORT="${KAFKA_CLUSTER_PORT:-39092}"
KAFKA_HOST="${KAFKA_HOST:-127.0.0.1}"
export KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
USER_EXTRA="${KAFKA_EXTRA_PROPERTIES:-}"
NODES=(1 2 3)

if ! [[ "$KAFKA_CLUSTER_PORT" =~ ^[0-9]+$ ]] || ((KAFKA_CLUSTER_PORT < 1024 || KAFKA_CLUSTER_PORT > 65000)); then
    die "KAFKA_CLUSTER_PORT=$KAFKA_CLUSTER_PORT: expected a port between 1024 and 65000"
fi

port_of() { echo $((KAFKA_CLUSTER_PORT + 100 * ($1 - 1))); }
controller_port_of() { echo $(($(port_of "$1") + 1)); }
home_of() { echo "$KAFKA_CLUSTER_DIR/node-$1"; }

voters() {
    local n out=()
    for n in "${NODES[@]}"; do out+=("$n@$KAFKA_HOST:$(controller_port_of "$n")"); done
    (IFS=,; echo "${out[*]}")
}

bootstrap() {
    local n out=()
    for n in "$@"; do out+=("$KAFKA_HOST:$(port_of "$n")"); done
    (IFS=,; echo "${out[*]}")
}

# Replication settings of a 3-node cluster (the template's are for one node).
write_cluster_properties() {
    mkdir -p "$KAFKA_CLUSTER_DIR"
    {
        echo "# 3-node cluster (scripts/kafka-cluster.sh)"
        echo "default.replication.factor=3"
        echo "offsets.topic.replication.factor=3"
        echo "transaction.state.log.replication.factor=3"
        echo "transaction.state.log.min.isr=2"
        echo "share.coordinator.state.topic.replication.factor=3"
        echo "share.coordinator.state.topic.min.isr=2"
        echo "# a dead node is fenced (its partitions led elsewhere) after 3 s, not 9"
        echo "broker.heartbeat.interval.ms=500"
        echo "broker.session.timeout.ms=3000"
        if [[ -n "$USER_EXTRA" ]]; then
            [[ -f "$USER_EXTRA" ]] || die "no such file: $USER_EXTRA"
            echo "# from $USER_EXTRA"
            cat "$USER_EXTRA"
        fi
    } >"$KAFKA_CLUSTER_DIR/cluster.properties"
}

# run kafka.sh CMD for node N, output to node-N/CMD.out
node_cmd() {
    local cmd=$1 n=$2 home
    home="$(home_of "$n")"
    mkdir -p "$home"
    KAFKA_HOME_DIR="$home" KAFKA_HOST="$KAFKA_HOST" KAFKA_NODE_ID="$n" \
        KAFKA_PORT="$(port_of "$n")" KAFKA_CONTROLLER_PORT="$(controller_port_of "$n")" \
        KAFKA_QUORUM_VOTERS="$(voters)" KAFKA_EXTRA_PROPERTIES="$KAFKA_CLUSTER_DIR/cluster.properties" \
        bash "$KAFKA_SH" "$cmd" >"$home/$cmd.out" 2>&1
}

# run CMD on every node in parallel; print each node's output; fail if any failed
parallel() {
    local cmd=$1 n failed=0
    shift
    local -A pids=()
    for n in "$@"; do
        node_cmd "$cmd" "$n" &
        pids[$n]=$!
    done
    for n in "$@"; do
        if ! wait "${pids[$n]}"; then failed=1; fi
        sed "s/^/[node $n] /" "$(home_of "$n")/$cmd.out" >&2
    done
    return "$failed"
}

nodes_from_args() {
    local n
    if [[ $# -eq 0 ]]; then echo "${NODES[@]}"; return; fi
    for n in "$@"; do
        [[ " ${NODES[*]} " == *" $n "* ]] || die "no node $n (nodes: ${NODES[*]})"
    done
    echo "$@"
}

cmd_up() {
    local nodes start=$SECONDS
    read -ra nodes <<<"$(nodes_from_args "$@")"
    bash "$KAFKA_SH" fetch
    write_cluster_properties
    parallel up "${nodes[@]}" || die "some nodes did not start (logs under $KAFKA_CLUSTER_DIR/node-*/logs)"
    echo "kafka cluster up: $(bootstrap "${nodes[@]}") ($((SECONDS - start)) s, state in $KAFKA_CLUSTER_DIR)"
}

cmd_down() {
    local nodes
    read -ra nodes <<<"$(nodes_from_args "$@")"
    if [[ ! -f "$KAFKA_CLUSTER_DIR/cluster.properties" ]]; then
        echo "kafka cluster not running (no $KAFKA_CLUSTER_DIR)"
        return 0
    fi
    parallel down "${nodes[@]}"
    echo "kafka cluster down: node(s) ${nodes[*]}"
}

cmd_status() {
    local nodes n rc=0
    read -ra nodes <<<"$(nodes_from_args "$@")"
    for n in "${nodes[@]}"; do
        echo -n "node $n: "
        KAFKA_HOME_DIR="$(home_of "$n")" KAFKA_HOST="$KAFKA_HOST" KAFKA_PORT="$(port_of "$n")" \
            bash "$KAFKA_SH" status || rc=1
    done
    return "$rc"
}

case "${1:-}" in
    up) shift; cmd_up "$@" ;;
    down) shift; cmd_down "$@" ;;
    status) shift; cmd_status "$@" ;;
    bootstrap) shift; read -ra ns <<<"$(nodes_from_args "$@")"; bootstrap "${ns[@]}" ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
esac
