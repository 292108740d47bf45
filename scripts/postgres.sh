#!/usr/bin/env bash
# A throwaway PostgreSQL for podiam's tests: the store conformance suite and the replica
# end-to-end tests run against it when PODIAM_TEST_POSTGRES_URL is set.
#
#   eval "$(scripts/postgres.sh start)"   # install if needed, init, start; prints the exports
#   scripts/postgres.sh stop               # stop the server, keep its data (start resumes it)
#   scripts/postgres.sh destroy            # stop and delete everything
#   scripts/postgres.sh env|status
#   scripts/postgres.sh createdb NAME      # a fresh database; prints its URL
#
# State lives in $PODIAM_PG_DIR (default: /tmp/podiam-pg-<uid>): data/, the server log, the port
# and the socket. Everything is idempotent: `start` on a running cluster only prints the exports.
# The server listens on 127.0.0.1 on a free port (kept across stop/start), trusts local
# connections (test use only) and runs as user `postgres` when this script runs as root
# (initdb and postgres refuse to run as root). Installs Debian's `postgresql` package when no
# PostgreSQL binaries are found.
set -euo pipefail

dir="${PODIAM_PG_DIR:-/tmp/podiam-pg-$(id -u)}"
db=podiam

log() { echo "postgres.sh: $*" >&2; }

find_bin() {
  local d
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    bin=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
    return 0
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then
      bin=$d
      return 0
    fi
  done
  return 1
}

install_pg() {
  find_bin && return 0
  [ "$(id -u)" = 0 ] || { log "PostgreSQL is not installed and installing it needs root"; exit 1; }
  log "installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the package's own cluster from being started: this script runs its own.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && created_policy=1
  fi
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql; } >&2 || {
    [ "$created_policy" = 1 ] && rm -f "$policy"
    log "apt-get install postgresql failed"
    exit 1
  }
  [ "$created_policy" = 1 ] && rm -f "$policy"
  find_bin || { log "no pg_ctl/initdb after installing postgresql"; exit 1; }
}

# Run a PostgreSQL program as the cluster's owner.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    if command -v runuser >/dev/null 2>&1; then
      runuser -u postgres -- "$@"
    else
      su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port() { cat "$dir/port"; }

url() { echo "postgres://postgres@127.0.0.1:$(port)/${1:-$db}"; }

running() {
  [ -f "$dir/data/PG_VERSION" ] && find_bin && as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

psql_cmd() {
  local p
  p="$bin/psql"
  [ -x "$p" ] || p=psql
  "$p" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(port)" -U postgres "$@"
}

print_env() {
  echo "export PODIAM_PG_DIR=$dir"
  echo "export PODIAM_TEST_POSTGRES_URL=$(url)"
}

start() {
  install_pg
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    log "user postgres is missing (it comes with the postgresql package)"
    exit 1
  fi
  mkdir -p "$dir"
  chmod 700 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    log "initializing a cluster in $dir/data"
    rm -rf "$dir/data"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 ||
      as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  [ -f "$dir/port" ] || free_port >"$dir/port"
  if ! running; then
    log "starting PostgreSQL on 127.0.0.1:$(port)"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $(port) -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null || { tail -n 30 "$dir/server.log" >&2; exit 1; }
  fi
  if [ -z "$(psql_cmd -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
    psql_cmd -d postgres -c "CREATE DATABASE $db" >&2
  fi
  print_env
}

stop() {
  if running; then
    log "stopping PostgreSQL ($dir)"
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  destroy)
    stop
    rm -rf "$dir"
    ;;
  env)
    [ -f "$dir/port" ] || { log "no cluster in $dir (run start)"; exit 1; }
    print_env
    ;;
  status)
    if running; then echo "running: $(url)"; else echo "stopped"; exit 3; fi
    ;;
  createdb)
    name="${2:?usage: postgres.sh createdb NAME}"
    [[ "$name" =~ ^[a-z_][a-z0-9_]*$ ]] || { log "database names here are [a-z_][a-z0-9_]*"; exit 2; }
    running || { log "not running (run start)"; exit 1; }
    psql_cmd -d postgres -c "CREATE DATABASE $name" >&2
    url "$name"
    ;;
  *)
    echo "usage: $0 start|stop|restart|destroy|env|status|createdb NAME" >&2
    exit 2
    ;;
esac
