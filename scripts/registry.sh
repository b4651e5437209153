#!/usr/bin/env bash
# Local schema registry for the Schema Registry serialisation: Apicurio Registry
# 2.6 (Confluent-compatible API under /apis/ccompat/v7, schemas kept in memory),
# run straight from the distribution that Maven fetches. No Docker.
#
# Usage: scripts/registry.sh fetch|up|down|status|url
#
#   fetch   unpack the registry application into $REGISTRY_APP_DIR (once; a
#           stamp file holding the pom's hash makes later calls instant and
#           offline)
#   up      fetch if needed, start the registry in the background and wait
#           until its Confluent-compatible API answers (no-op when it does)
#   down    stop the registry (SIGTERM, up to 30 s, then SIGKILL); its
#           schemas are forgotten
#   status  exit 0 if the API answers, 1 otherwise
#   url     print the SCHEMA_REGISTRY_URL of the local registry
#
# Environment (all optional):
#   REGISTRY_HOME_DIR        state dir: logs/, registry.pid (default <repo>/.registry)
#   REGISTRY_APP_DIR         the application (default <repo>/.registry/app)
#   REGISTRY_HOST            listen address (default 127.0.0.1)
#   REGISTRY_PORT            HTTP port (default 8081)
#   REGISTRY_HEAP_OPTS       default "-Xms64m -Xmx256m"
#   REGISTRY_OPTS            extra JVM options (e.g. -Dkey=value Quarkus settings)
#   REGISTRY_START_TIMEOUT   seconds `up` waits for the API (default 90)
#   JAVA_HOME                java is $JAVA_HOME/bin/java if set, else `java` (17 or later)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

POM="$REPO_ROOT/registry/pom.xml"

REGISTRY_HOME_DIR="${REGISTRY_HOME_DIR:-$REPO_ROOT/.registry}"
REGISTRY_APP_DIR="${REGISTRY_APP_DIR:-$REPO_ROOT/.registry/app}"
REGISTRY_HOST="${REGISTRY_HOST:-127.0.0.1}"
REGISTRY_PORT="${REGISTRY_PORT:-8081}"
REGISTRY_HEAP_OPTS="${REGISTRY_HEAP_OPTS:--Xms64m -Xmx256m}"
REGISTRY_OPTS="${REGISTRY_OPTS:-}"
REGISTRY_START_TIMEOUT="${REGISTRY_START_TIMEOUT:-90}"

API_PATH="/apis/ccompat/v7"
URL="http://$REGISTRY_HOST:$REGISTRY_PORT$API_PATH"
LOGS_DIR="$REGISTRY_HOME_DIR/logs"
PID_FILE="$REGISTRY_HOME_DIR/registry.pid"
REGISTRY_CMDLINE='apicurio-registry-app'  # grep pattern of the registry's command line

runner_jar() {
    local jars=("$REGISTRY_APP_DIR"/apicurio-registry-app-*-runner.jar)
    [[ -f "${jars[0]}" ]] || return 1
    echo "${jars[0]}"
}

cmd_fetch() {
    fetched "$POM" "$REGISTRY_APP_DIR" && return 0
    local start=$SECONDS
    maven_fetch "$POM" "$REGISTRY_APP_DIR" "the registry application" dependency:unpack registry.app.dir \
        "runner jar and lib/" 'apicurio-registry-app-*-runner.jar' lib
    log "fetched in $((SECONDS - start)) s"
}

# true if GET $API_PATH/subjects answers 200 (plain bash: no curl needed)
api_answers() {
    # shellcheck disable=SC2016  # the inner script's own $0..$2 and $status
    timeout 5 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "GET %s/subjects HTTP/1.0\r\nHost: %s:%s\r\nAccept: application/json\r\n\r\n" "$2" "$0" "$1" >&3
        IFS= read -r status <&3
        [[ "$status" =~ ^HTTP/1\.[01]\ 200 ]]
    ' "$REGISTRY_HOST" "$REGISTRY_PORT" "$API_PATH" 2>/dev/null
}

# pid from the pid file if that process is alive and is this registry
registry_pid() { live_pid "$PID_FILE" "$REGISTRY_CMDLINE"; }

check_java() {
    local version major
    command -v "$JAVA" >/dev/null || die "java not found (install Java 17 or later, or set JAVA_HOME)"
    version="$("$JAVA" -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n 1)"
    major="${version%%.*}"
    [[ "$major" =~ ^[0-9]+$ && "$major" -ge 17 ]] \
        || die "the registry needs Java 17 or later; $JAVA is version '${version:-unknown}' (set JAVA_HOME)"
}

show_logs() { show_tail "$LOGS_DIR/registry.out" 40; }

cmd_up() {
    local pid start jar
    if api_answers; then
        echo "registry already up on $URL"
        return 0
    fi
    start=$SECONDS
    cmd_fetch
    check_java
    mkdir -p "$LOGS_DIR"
    if ! pid="$(registry_pid)"; then
        rm -f "$PID_FILE"
        port_open "$REGISTRY_HOST" "$REGISTRY_PORT" \
            && die "port $REGISTRY_HOST:$REGISTRY_PORT is taken by another process (set REGISTRY_PORT)"
        jar="$(runner_jar)" || die "no runner jar in $REGISTRY_APP_DIR"
        # Working directory: the state dir, so nothing lands in the work tree.
        # shellcheck disable=SC2086  # $REGISTRY_HEAP_OPTS/$REGISTRY_OPTS: word lists
        spawn_detached "$PID_FILE" "$LOGS_DIR/registry.out" "$REGISTRY_HOME_DIR" \
            "$JAVA" $REGISTRY_HEAP_OPTS -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
            -Djava.awt.headless=true \
            -Dquarkus.http.host="$REGISTRY_HOST" -Dquarkus.http.port="$REGISTRY_PORT" \
            $REGISTRY_OPTS \
            -jar "$jar"
        pid="$(await_pid registry_pid)" || { show_logs; die "registry did not start"; }
        log "started registry pid $pid ($REGISTRY_HOST:$REGISTRY_PORT, logs $LOGS_DIR/registry.out)"
    else
        log "registry pid $pid is running but its API does not answer yet; waiting"
    fi
    if await_ready "$pid" "$REGISTRY_START_TIMEOUT" "$PID_FILE" registry show_logs api_answers; then
        echo "registry up on $URL (pid $pid, $((SECONDS - start)) s)"
        return 0
    fi
    show_logs
    die "registry API not answering on $REGISTRY_HOST:$REGISTRY_PORT after ${REGISTRY_START_TIMEOUT} s (still running as pid $pid; 'scripts/registry.sh down' stops it)"
}

cmd_down() { stop_service "$PID_FILE" "$REGISTRY_CMDLINE" registry registry; }

cmd_status() { report_status registry "$URL" "$REGISTRY_HOME_DIR" registry_pid api_answers; }

case "${1:-}" in
    fetch) cmd_fetch ;;
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    url) echo "$URL" ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
esac
