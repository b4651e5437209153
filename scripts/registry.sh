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

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
POM="$REPO_ROOT/registry/pom.xml"

REGISTRY_HOME_DIR="${REGISTRY_HOME_DIR:-$REPO_ROOT/.registry}"
REGISTRY_APP_DIR="${REGISTRY_APP_DIR:-$REPO_ROOT/.registry/app}"
REGISTRY_HOST="${REGISTRY_HOST:-127.0.0.1}"
REGISTRY_PORT="${REGISTRY_PORT:-8081}"
REGISTRY_HEAP_OPTS="${REGISTRY_HEAP_OPTS:--Xms64m -Xmx256m}"
REGISTRY_OPTS="${REGISTRY_OPTS:-}"
REGISTRY_START_TIMEOUT="${REGISTRY_START_TIMEOUT:-90}"
if [[ -n "${JAVA_HOME:-}" ]]; then JAVA="$JAVA_HOME/bin/java"; else JAVA=java; fi

API_PATH="/apis/ccompat/v7"
LOGS_DIR="$REGISTRY_HOME_DIR/logs"
PID_FILE="$REGISTRY_HOME_DIR/registry.pid"
STAMP="$REGISTRY_APP_DIR/.fetched"

log() { echo "registry.sh: $*" >&2; }
die() { log "$*"; exit 1; }

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

fetched() { [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(pom_hash)" ]]; }

runner_jar() {
    local jars=("$REGISTRY_APP_DIR"/apicurio-registry-app-*-runner.jar)
    [[ -f "${jars[0]}" ]] || return 1
    echo "${jars[0]}"
}

cmd_fetch() {
    fetched && return 0
    command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
    mkdir -p "$(dirname "$REGISTRY_APP_DIR")"
    exec 9>"$REGISTRY_APP_DIR.lock"
    flock 9
    if ! fetched; then
        local tmp="$REGISTRY_APP_DIR.tmp.$$" start=$SECONDS
        rm -rf "$tmp"
        log "fetching the registry application with Maven into $REGISTRY_APP_DIR"
        mkdir -p "$tmp"
        if ! mvn -q -B -f "$POM" dependency:unpack \
                -Dregistry.app.dir="$tmp" -Dstyle.color=never >"$tmp.log" 2>&1; then
            cat "$tmp.log" >&2
            rm -rf "$tmp" "$tmp.log"
            die "mvn dependency:unpack failed"
        fi
        rm -f "$tmp.log"
        ls "$tmp"/apicurio-registry-app-*-runner.jar "$tmp"/lib >/dev/null 2>&1 \
            || { rm -rf "$tmp"; die "fetch incomplete: no runner jar and lib/ in $tmp"; }
        pom_hash >"$tmp/.fetched"
        rm -rf "$REGISTRY_APP_DIR"
        mv "$tmp" "$REGISTRY_APP_DIR"
        log "fetched in $((SECONDS - start)) s"
    fi
    exec 9>&-
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

port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# pid from the pid file if that process is alive and is this registry
registry_pid() {
    local pid
    [[ -f "$PID_FILE" ]] || return 1
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'apicurio-registry-app' || return 1
    echo "$pid"
}

check_java() {
    local version major
    command -v "$JAVA" >/dev/null || die "java not found (install Java 17 or later, or set JAVA_HOME)"
    version="$("$JAVA" -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n 1)"
    major="${version%%.*}"
    [[ "$major" =~ ^[0-9]+$ && "$major" -ge 17 ]] \
        || die "the registry needs Java 17 or later; $JAVA is version '${version:-unknown}' (set JAVA_HOME)"
}

show_logs() {
    log "--- tail of $LOGS_DIR/registry.out ---"
    tail -n 40 "$LOGS_DIR/registry.out" >&2 2>/dev/null || true
}

cmd_up() {
    local pid start deadline jar
    if api_answers; then
        echo "registry already up on http://$REGISTRY_HOST:$REGISTRY_PORT$API_PATH"
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
        # As in kafka.sh: the inner bash writes its own pid, then execs java;
        # setsid + nohup detach the registry from the caller's session.
        # Working directory: the state dir, so nothing lands in the work tree.
        # shellcheck disable=SC2016,SC2086  # $REGISTRY_HEAP_OPTS/$REGISTRY_OPTS: word lists
        (cd "$REGISTRY_HOME_DIR" && setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
            "$JAVA" $REGISTRY_HEAP_OPTS -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
            -Djava.awt.headless=true \
            -Dquarkus.http.host="$REGISTRY_HOST" -Dquarkus.http.port="$REGISTRY_PORT" \
            $REGISTRY_OPTS \
            -jar "$jar" \
            </dev/null >"$LOGS_DIR/registry.out" 2>&1 &)
        for _ in $(seq 50); do
            pid="$(registry_pid)" && break
            sleep 0.1
        done
        [[ -n "${pid:-}" ]] || { show_logs; die "registry did not start"; }
        log "started registry pid $pid ($REGISTRY_HOST:$REGISTRY_PORT, logs $LOGS_DIR/registry.out)"
    else
        log "registry pid $pid is running but its API does not answer yet; waiting"
    fi
    deadline=$((SECONDS + REGISTRY_START_TIMEOUT))
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || { show_logs; rm -f "$PID_FILE"; die "registry exited during start-up"; }
        if api_answers; then
            echo "registry up on http://$REGISTRY_HOST:$REGISTRY_PORT$API_PATH (pid $pid, $((SECONDS - start)) s)"
            return 0
        fi
        sleep 0.5
    done
    show_logs
    die "registry API not answering on $REGISTRY_HOST:$REGISTRY_PORT after ${REGISTRY_START_TIMEOUT} s (still running as pid $pid; 'scripts/registry.sh down' stops it)"
}

cmd_down() {
    local pid
    if ! pid="$(registry_pid)"; then
        rm -f "$PID_FILE"
        echo "registry not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "registry pid $pid still alive after 30 s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$PID_FILE"
    echo "registry down"
}

cmd_status() {
    local pid
    if api_answers; then
        if pid="$(registry_pid)"; then
            echo "registry up on http://$REGISTRY_HOST:$REGISTRY_PORT$API_PATH (pid $pid)"
        else
            echo "registry up on http://$REGISTRY_HOST:$REGISTRY_PORT$API_PATH (not started by this script for $REGISTRY_HOME_DIR)"
        fi
        return 0
    fi
    echo "registry down (http://$REGISTRY_HOST:$REGISTRY_PORT$API_PATH)"
    return 1
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

case "${1:-}" in
    fetch) cmd_fetch ;;
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    url) echo "http://$REGISTRY_HOST:$REGISTRY_PORT$API_PATH" ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
esac
