#!/usr/bin/env bash
# Ensures a throwaway PostgreSQL server for tests is running and prints its URL as the last line:
#   DATABASE_URL=postgres://postgres@127.0.0.1:55432/llm_test
# Idempotent: installs the Debian `postgresql` package only when no server binaries exist,
# creates a cluster in <repo>/.tmp/pg only once, starts it only when it is not running.
# The cluster trusts loopback connections only, listens on 127.0.0.1 only and trades
# durability for speed (fsync off): it is for tests, never for data you want to keep.
# Everything but the last line goes to stderr, so `export "$(scripts/postgres.sh | tail -n1)"` works.
# Env: PGPORT (default 55432), PG_DIR (default <repo>/.tmp/pg). Stop it with scripts/postgres-stop.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${PGPORT:-55432}"
PG_DIR="${PG_DIR:-$ROOT/.tmp/pg}"
DATA="$PG_DIR/data"
LOG="$PG_DIR/postgres.log"
DB_NAME="llm_test"
DB_USER="postgres"

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# The newest installed server's bin dir (/usr/lib/postgresql/<version>/bin on Debian). Commands on
# PATH are not used: /usr/bin/psql is Debian's pg_wrapper and /usr/local/bin/pg_ctl may be a symlink.
find_bindir() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ] && [ -x "$dir/pg_isready" ]; then
      echo "$dir"
      return 0
    fi
  done
  if command -v pg_config >/dev/null 2>&1; then
    dir="$(pg_config --bindir)"
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
      echo "$dir"
      return 0
    fi
  fi
  return 1
}

install_postgres() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "PostgreSQL is not installed and installing it needs root (or sudo)"
    sudo=(sudo -n)
  fi
  command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed and apt-get is not available; install it by hand"
  log "installing PostgreSQL from the Debian packages"
  "${sudo[@]}" apt-get update >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
}

# initdb and the server refuse to run as root: run them as the postgres OS user then.
as_owner() {
  if [ "$(id -u)" -ne 0 ]; then
    "$@"
  elif command -v runuser >/dev/null 2>&1; then
    runuser -u postgres -- "$@"
  else
    su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
  fi
}

BIN="$(find_bindir || true)"
if [ -z "$BIN" ]; then
  install_postgres
  BIN="$(find_bindir)" || die "the postgresql package installed no server binaries under /usr/lib/postgresql"
fi

mkdir -p "$PG_DIR"
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
  chown postgres: "$PG_DIR"
  as_owner test -w "$PG_DIR" || die "the postgres user cannot write $PG_DIR (is a parent directory closed to it?)"
fi

# One run at a time: a second concurrent run waits here, then finds the server running.
exec 9>"$PG_DIR/.lock"
flock -w 120 9 || die "another postgres.sh run holds $PG_DIR/.lock"

running_port() {
  [ -f "$DATA/postmaster.pid" ] || return 1
  as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1 || return 1
  sed -n 4p "$DATA/postmaster.pid"
}

if actual="$(running_port)"; then
  if [ "$actual" != "$PORT" ]; then
    log "the cluster in $DATA is already running on port $actual (not $PORT); using it"
    PORT="$actual"
  else
    log "already running on 127.0.0.1:$PORT ($DATA)"
  fi
else
  if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -t 2 >/dev/null 2>&1; then
    die "another server already listens on 127.0.0.1:$PORT; set PGPORT to a free port"
  fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    # A half-made cluster from an interrupted run: it is ours and empty, start over.
    rm -rf "$DATA"
    log "creating a cluster in $DATA with $("$BIN/postgres" --version)"
    as_owner "$BIN/initdb" -D "$DATA" -U "$DB_USER" --auth=trust --encoding=UTF8 --no-locale >&2
    cat >"$DATA/pg_hba.conf" <<'HBA'
# llm-service test cluster: trust, loopback only (the server listens on 127.0.0.1 only).
host    all    all    127.0.0.1/32    trust
host    all    all    ::1/128         trust
HBA
    cat >>"$DATA/postgresql.conf" <<'CONF'

# llm-service test cluster (scripts/postgres.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    [ "$(id -u)" -ne 0 ] || chown -R postgres: "$DATA"
  fi
  log "starting on 127.0.0.1:$PORT (log: $LOG)"
  # 9>&-: the server must not inherit the lock, or it would hold it for as long as it runs.
  if ! as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -o "-p $PORT" -w -t 30 start >&2 9>&-; then
    tail -n 20 "$LOG" >&2 || true
    die "the server did not start"
  fi
fi

# Wait until it accepts connections (bounded to about 30 s).
for _ in $(seq 1 60); do
  if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -t 1 >/dev/null 2>&1; then
    ready=1
    break
  fi
  sleep 0.5
done
[ "${ready:-0}" = 1 ] || die "the server on 127.0.0.1:$PORT does not accept connections after 30 s (log: $LOG)"

psql_admin() { "$BIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U "$DB_USER" -d postgres -v ON_ERROR_STOP=1 "$@"; }
if [ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != "1" ]; then
  log "creating database $DB_NAME"
  psql_admin -c "CREATE DATABASE $DB_NAME" >&2
fi

echo "DATABASE_URL=postgres://$DB_USER@127.0.0.1:$PORT/$DB_NAME"
