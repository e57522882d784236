#!/usr/bin/env bash
# A throwaway PostgreSQL for tests and CI: its own data directory in a new temporary folder,
# reachable only over 127.0.0.1 (trust auth, user "postgres") at a free port, and gone again
# after `stop`. Durability is switched off (fsync, synchronous_commit, full_page_writes): the
# data is thrown away anyway, and the server starts in about 2 s.
#
#   scripts/postgres.sh start [DIR]   initdb into DIR (default: a new mktemp -d folder) and start
#                                     the server; prints two lines: the URI, then DIR
#                                     (postgresql://postgres@127.0.0.1:PORT/postgres)
#   scripts/postgres.sh stop DIR      stop that server and delete DIR
#   scripts/postgres.sh pause DIR     stop that server (-m fast: its clients' sessions are ended,
#                                     what was committed is kept) and keep DIR, for outage tests
#   scripts/postgres.sh resume DIR    start a paused server again, on the same port
#   scripts/postgres.sh restart DIR   pause, then resume (a restart under its clients)
#   scripts/postgres.sh replica PRIMARY_DIR
#                                     a streaming hot standby (read-only) of that started
#                                     server, in a new folder at a free port; prints its URI,
#                                     then its folder, as `start` does; `stop` it the same way
#
# The binaries: PG_BINDIR if set, else the folder of `initdb` on PATH, else Debian's
# /usr/lib/postgresql/<newest>/bin. initdb refuses to run as root: as root, the server runs as
# the `postgres` OS user (Debian's postgresql package makes it), and DIR is handed to that user.
# ASYNCTRACK_POSTGRES_WATCH_PID=PID makes `start` leave a watcher that stops the server and
# deletes DIR once process PID has gone (a test run killed before its own cleanup).
set -euo pipefail

MARKER=.asynctrack-postgres  # `stop` deletes only a folder that `start` made a server in

die() { echo "postgres.sh: $*" >&2; exit 1; }

find_bindir() {
  if [ -n "${PG_BINDIR:-}" ]; then echo "$PG_BINDIR"; return; fi
  local initdb
  if initdb=$(command -v initdb 2>/dev/null); then
    dirname "$(readlink -f "$initdb")"; return
  fi
  local newest=""
  for cand in /usr/lib/postgresql/*/bin; do
    if [ -x "$cand/initdb" ]; then newest=$cand; fi
  done
  [ -n "$newest" ] || die "PostgreSQL not found (no initdb on PATH nor in /usr/lib/postgresql/*/bin)"
  echo "$newest"
}

# Run a command as the user who owns the cluster: postgres when we are root, else ourselves.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Hand the folder to the user the server runs as; false where that user cannot write in it.
owned_by_server_user() {
  [ "$(id -u)" -eq 0 ] || return 0
  chown postgres: "$1" && runuser -u postgres -- test -w "$1"
}

free_port() {
  python3 - <<'EOF'
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
EOF
}

# The options every start of the server in $2 gets, listening on port $1.
server_options() {
  echo "-c listen_addresses=127.0.0.1 -p $1 -k $2 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
}

made_here() {
  [ -f "$1/$MARKER" ] || die "$1 was not made by '$0 start' (no $MARKER in it): not touching it"
}

# Stop the server in $1 (if running) in mode $2, keeping its folder. immediate: a throwaway
# cluster needs no clean shutdown checkpoint. fast, for a server that starts again: with
# synchronous_commit off, an immediate stop (a crash) loses the last commits it acknowledged.
halt() {
  local dir=$1 mode=$2 bindir
  bindir=$(cat "$dir/$MARKER")
  if [ -f "$dir/data/postmaster.pid" ]; then
    if ! as_owner "$bindir/pg_ctl" stop -D "$dir/data" -m "$mode" -w -t 10 >/dev/null 2>&1; then
      local pid
      pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
      if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
      rm -f -- "$dir/data/postmaster.pid"
    fi
  fi
}

stop() {
  made_here "$1"
  halt "$1" immediate
  rm -rf -- "$1"
}

# Start the paused server in $1 again on the port `start` chose (clients reconnect to it).
resume() {
  local dir=$1 bindir port
  made_here "$dir"
  bindir=$(cat "$dir/$MARKER")
  port=$(cat "$dir/port")
  as_owner "$bindir/pg_ctl" start -D "$dir/data" -w -t 30 -l "$dir/server.log" -o \
      "$(server_options "$port" "$dir")" >/dev/null 2>&1 || {
    tail -n 20 "$dir/server.log" >&2 || true
    die "the server in $dir did not start again on port $port (log above)"
  }
}

# A new folder for a server (DIR if given, empty; else a new temporary one), owned by the user
# the server runs as: its path.
new_dir() {
  local dir
  if [ -n "${1:-}" ]; then
    dir=$1
    mkdir -p -- "$dir"
    [ -z "$(ls -A -- "$dir")" ] || die "$dir is not empty"
    dir=$(cd "$dir" && pwd)
    owned_by_server_user "$dir" || die "the postgres user cannot write $dir (is a parent folder private?)"
  else
    # As root, a private TMPDIR (say under /root) is out of the postgres user's reach: /tmp then.
    dir=$(mktemp -d "${TMPDIR:-/tmp}/asynctrack-pg.XXXXXX")
    if ! owned_by_server_user "$dir"; then
      rmdir -- "$dir"
      dir=$(mktemp -d /tmp/asynctrack-pg.XXXXXX)
      owned_by_server_user "$dir" || { rmdir -- "$dir"; die "the postgres user cannot write $dir"; }
    fi
  fi
  echo "$dir"
}

# Start the cluster in $1/data at a free port; print the URI, then $1 (deleted on failure).
launch() {
  local dir=$1 bindir port attempt
  bindir=$(cat "$dir/$MARKER")
  # A free port can be taken between choosing it and binding it: try a few.
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    if as_owner "$bindir/pg_ctl" start -D "$dir/data" -w -t 30 -l "$dir/server.log" -o \
        "$(server_options "$port" "$dir")" >/dev/null 2>&1; then
      echo "$port" >"$dir/port"
      if [ -n "${ASYNCTRACK_POSTGRES_WATCH_PID:-}" ]; then
        watch "$ASYNCTRACK_POSTGRES_WATCH_PID" "$dir"
      fi
      echo "postgresql://postgres@127.0.0.1:$port/postgres"
      echo "$dir"
      return 0
    fi
    # a failed start may leave a half-started postmaster behind
    as_owner "$bindir/pg_ctl" stop -D "$dir/data" -m immediate -w -t 5 >/dev/null 2>&1 || true
  done
  cat "$dir/server.log" >&2 || true
  rm -rf -- "$dir"
  die "the server did not start (log above)"
}

start() {
  local bindir dir
  bindir=$(find_bindir)
  [ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ] || die "no initdb/pg_ctl in $bindir"
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    die "running as root and there is no 'postgres' OS user to run initdb as (initdb refuses root)"
  fi
  dir=$(new_dir "${1:-}")
  echo "$bindir" >"$dir/$MARKER"
  if ! as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C \
      --no-sync >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    rm -rf -- "$dir"
    die "initdb failed"
  fi
  launch "$dir"
}

# A streaming hot standby of the started server in $1: a base backup taken over the
# replication protocol (initdb's pg_hba trusts replication from 127.0.0.1, and PostgreSQL's
# default wal_level is replica), started read-only at a free port of its own and following
# the primary from then on. Prints its URI, then its folder (`stop` it as any other).
replica() {
  local primary=$1 bindir dir
  made_here "$primary"
  bindir=$(cat "$primary/$MARKER")
  [ -f "$primary/port" ] || die "$primary has no port: was it started by '$0 start'?"
  dir=$(new_dir "")
  echo "$bindir" >"$dir/$MARKER"
  if ! as_owner "$bindir/pg_basebackup" -D "$dir/data" -h 127.0.0.1 -p "$(cat "$primary/port")" \
      -U postgres -X stream -R --no-sync >"$dir/basebackup.log" 2>&1; then
    cat "$dir/basebackup.log" >&2
    rm -rf -- "$dir"
    die "pg_basebackup from $primary failed"
  fi
  launch "$dir"
}

# A detached watcher: once process $1 has gone, stop the server in $2 (if still there).
watch() {
  local pid=$1 dir=$2 self
  self=$(readlink -f "$0")
  setsid bash -c '
    while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done
    if [ -d "$2" ]; then exec bash "$3" stop "$2"; fi
  ' watcher "$pid" "$dir" "$self" </dev/null >/dev/null 2>&1 &
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) [ -n "${2:-}" ] || die "usage: $0 stop DIR"; stop "$2" ;;
  pause) [ -n "${2:-}" ] || die "usage: $0 pause DIR"; made_here "$2"; halt "$2" fast ;;
  resume) [ -n "${2:-}" ] || die "usage: $0 resume DIR"; resume "$2" ;;
  restart) [ -n "${2:-}" ] || die "usage: $0 restart DIR"; made_here "$2"; halt "$2" fast; resume "$2" ;;
  replica) [ -n "${2:-}" ] || die "usage: $0 replica PRIMARY_DIR"; replica "$2" ;;
  *) echo "usage: $0 start [DIR] | stop DIR | pause DIR | resume DIR | restart DIR | replica PRIMARY_DIR" >&2; exit 2 ;;
esac
