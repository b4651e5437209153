# Helpers shared by scripts/kafka.sh, scripts/registry.sh and
# scripts/kafka-cluster.sh. Sourced right after `set -euo pipefail`, never run.
#
# Sets SCRIPT_FILE (the sourcing script), SCRIPT_NAME (its file name, the
# prefix of log lines), SCRIPT_DIR, REPO_ROOT and JAVA ($JAVA_HOME/bin/java if
# JAVA_HOME is set, else `java`).
# shellcheck shell=bash disable=SC2034  # the variables are for the sourcing script

SCRIPT_FILE="${BASH_SOURCE[1]}"
SCRIPT_NAME="$(basename "$SCRIPT_FILE")"
SCRIPT_DIR="$(cd "$(dirname "$SCRIPT_FILE")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
if [[ -n "${JAVA_HOME:-}" ]]; then JAVA="$JAVA_HOME/bin/java"; else JAVA=java; fi

log() { echo "$SCRIPT_NAME: $*" >&2; }
die() { log "$*"; exit 1; }

# Print the script's header comment (line 2 up to `set -euo`) without the "# ".
usage() {
    sed -n '2,/^set -euo/p' "$SCRIPT_FILE" | sed -e '$d' -e 's/^# \{0,1\}//'
}

# Usage: pom_hash POM
pom_hash() { sha256sum "$1" | cut -d' ' -f1; }

# Usage: fetched POM DIR: true if DIR's stamp file holds the hash of POM.
fetched() { [[ -f "$2/.fetched" && "$(cat "$2/.fetched")" == "$(pom_hash "$1")" ]]; }

# Usage: maven_fetch POM DIR WHAT GOAL PROPERTY MISSING PATTERN...
# Fill DIR once per version of POM: run `mvn GOAL` with -DPROPERTY set to a
# temporary directory, check that each PATTERN (a glob inside it) matches,
# stamp it with the pom's hash and move it to DIR. WHAT names the download in
# the log, MISSING what the error says is absent when a PATTERN matches nothing.
maven_fetch() {
    local pom=$1 dir=$2 what=$3 goal=$4 property=$5 missing=$6
    shift 6
    fetched "$pom" "$dir" && return 0
    command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
    mkdir -p "$(dirname "$dir")"
    # serialise concurrent fetches (several brokers started at once)
    exec 9>"$dir.lock"
    flock 9
    if ! fetched "$pom" "$dir"; then
        local tmp="$dir.tmp.$$" pattern
        rm -rf "$tmp"
        log "fetching $what with Maven into $dir"
        mkdir -p "$tmp"
        if ! mvn -q -B -f "$pom" "$goal" \
                -D"$property=$tmp" -Dstyle.color=never >"$tmp.log" 2>&1; then
            cat "$tmp.log" >&2
            rm -rf "$tmp" "$tmp.log"
            die "mvn $goal failed"
        fi
        rm -f "$tmp.log"
        for pattern in "$@"; do
            compgen -G "$tmp/$pattern" >/dev/null \
                || { rm -rf "$tmp"; die "fetch incomplete: no $missing in $tmp"; }
        done
        pom_hash "$pom" >"$tmp/.fetched"
        rm -rf "$dir"
        mv "$tmp" "$dir"
    fi
    exec 9>&-
}

# Usage: port_open HOST PORT: true if something accepts TCP connections there.
port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# Usage: live_pid PID_FILE PATTERN
# Print the pid in PID_FILE if that process is alive and its command line
# matches PATTERN (grep): a stale pid file or a reused pid is no match.
live_pid() {
    local pid
    [[ -f "$1" ]] || return 1
    pid="$(cat "$1" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$2" || return 1
    echo "$pid"
}

# Usage: spawn_detached PID_FILE OUT_FILE WORK_DIR COMMAND...
# Start COMMAND in the background in WORK_DIR, stdin /dev/null, output to
# OUT_FILE. The inner bash writes its own pid then execs COMMAND: the pid file
# holds COMMAND's pid whatever setsid does. setsid + nohup detach it from the
# caller's session, process group and terminal; the exec leaves no shell
# waiting for it.
spawn_detached() {
    local pid_file=$1 out=$2 work_dir=$3
    shift 3
    # shellcheck disable=SC2016  # $$, $0 and $@ are the inner bash's
    (cd "$work_dir" && exec setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$pid_file" "$@" \
        </dev/null >"$out" 2>&1) &
}

# Usage: await_pid FUNCTION: print what FUNCTION prints (a pid) once it
# succeeds, trying for 5 s; fail if it never does.
await_pid() {
    local pid
    for _ in $(seq 50); do
        pid="$("$1")" && { echo "$pid"; return 0; }
        sleep 0.1
    done
    return 1
}

# Usage: await_ready PID TIMEOUT PID_FILE WHAT LOGS_FUNCTION READY_COMMAND...
# Wait up to TIMEOUT seconds for READY_COMMAND to succeed; fail on timeout.
# If PID exits meanwhile: LOGS_FUNCTION, remove PID_FILE, die naming WHAT.
await_ready() {
    local pid=$1 deadline=$((SECONDS + $2)) pid_file=$3 what=$4 logs=$5
    shift 5
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || { "$logs"; rm -f "$pid_file"; die "$what exited during start-up"; }
        "$@" && return 0
        sleep 0.5
    done
    return 1
}

# Usage: stop_service PID_FILE PATTERN WHAT NAME
# Stop the process of PID_FILE (see live_pid): SIGTERM, up to 30 s, then
# SIGKILL. Print "NAME down", or "NAME not running" if there was none.
stop_service() {
    local pid_file=$1 what=$3 name=$4 pid
    if ! pid="$(live_pid "$pid_file" "$2")"; then
        rm -f "$pid_file"
        echo "$name not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$what pid $pid still alive after 30 s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pid_file"
    echo "$name down"
}

# Usage: report_status NAME WHERE HOME PID_FUNCTION READY_COMMAND...
# Say whether NAME is up at WHERE (READY_COMMAND succeeds), with its pid if
# PID_FUNCTION finds one (else it was not started for the state dir HOME).
# Exit status 0 if up, 1 if down.
report_status() {
    local name=$1 where=$2 home=$3 pid_function=$4 pid
    shift 4
    if "$@"; then
        if pid="$("$pid_function")"; then
            echo "$name up on $where (pid $pid)"
        else
            echo "$name up on $where (not started by this script for $home)"
        fi
        return 0
    fi
    echo "$name down ($where)"
    return 1
}

# Usage: show_tail FILE LINES: the last LINES lines of FILE on stderr.
show_tail() {
    log "--- tail of $1 ---"
    tail -n "$2" "$1" >&2 2>/dev/null || true
}
