#!/usr/bin/env bash
# Makes sure a PostgreSQL server accepts connections on 127.0.0.1:5432, for the
# PostgreSQL event-store tests (user `postgres`, no password). Idempotent and
# non-interactive; meant for CI and developer machines running Debian, as root.
#
# Usage: bash scripts/ensure-postgres.sh
#
#   - a server already answers on 127.0.0.1:5432: nothing is changed;
#   - PostgreSQL is installed but stopped: its `main` cluster is started;
#   - PostgreSQL is not installed: it is installed with apt-get, then started.
#
# Whenever this script starts the server, it first makes connections from the loopback
# addresses (127.0.0.1, ::1) trusted in pg_hba.conf: any local user may then connect as
# any database user without a password. That is what the tests expect; do not run this on
# a machine whose local users must not reach each other's databases.
set -euo pipefail

host=127.0.0.1
port=5432
ready_timeout_secs=60

log() { echo "ensure-postgres: $*" >&2; }

ready() {
    command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h "$host" -p "$port"
}

# The newest installed major version that has a cluster configuration directory.
installed_version() {
    [[ -d /etc/postgresql ]] || return 1
    local version
    version="$(ls /etc/postgresql | sort -V | tail -n 1)"
    [[ -n "$version" ]] && command -v pg_ctlcluster >/dev/null 2>&1 && echo "$version"
}

install() {
    if [[ "$(id -u)" != 0 ]]; then
        log "PostgreSQL is not installed and installing it needs root"
        exit 1
    fi
    log "installing PostgreSQL with apt-get"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
}

# Makes loopback TCP connections trusted: rewrites the method of the existing
# `host all all 127.0.0.1/32` and `::1/128` rules, or adds rules if there are none.
trust_loopback() {
    local hba="/etc/postgresql/$1/main/pg_hba.conf"
    sed -E -i 's#^(host[[:space:]]+all[[:space:]]+all[[:space:]]+(127\.0\.0\.1/32|::1/128)[[:space:]]+)[^[:space:]]+#\1trust#' "$hba"
    local address
    for address in 127.0.0.1/32 ::1/128; do
        if ! grep -Eq "^host[[:space:]]+all[[:space:]]+all[[:space:]]+${address//./\\.}[[:space:]]+trust" "$hba"; then
            # pg_hba.conf is first-match: the rule goes first.
            sed -i "1i host all all $address trust" "$hba"
        fi
    done
}

start() {
    local version="$1"
    [[ -d "/etc/postgresql/$version/main" ]] || {
        log "creating the $version/main cluster"
        pg_createcluster "$version" main
    }
    trust_loopback "$version"
    if pg_ctlcluster --skip-systemctl-redirect "$version" main status >/dev/null 2>&1; then
        # Running, but not answering on $host:$port yet (still starting, or the rules
        # just changed): have it re-read pg_hba.conf.
        pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    else
        log "starting PostgreSQL $version/main"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start
    fi
}

if ready; then
    log "PostgreSQL is already accepting connections on $host:$port"
    exit 0
fi

if ! version="$(installed_version)"; then
    install
    version="$(installed_version)" || {
        log "PostgreSQL was installed but no cluster configuration appeared in /etc/postgresql"
        exit 1
    }
fi
start "$version"

for _ in $(seq "$ready_timeout_secs"); do
    if ready; then
        log "PostgreSQL $version is accepting connections on $host:$port"
        exit 0
    fi
    sleep 1
done
log "PostgreSQL $version did not accept connections on $host:$port within ${ready_timeout_secs}s"
exit 1
