#!/usr/bin/env bash
# Ensures a throwaway Redis server for tests is running and prints its URL as the last line:
#   REDIS_URL=redis://127.0.0.1:56379
# Idempotent: installs the Debian `redis-server` package only when no server binary exists,
# starts a server only when ours is not already running. The server listens on 127.0.0.1 only,
# keeps nothing on disk (no RDB snapshots, no AOF) and lives in <repo>/.tmp/redis: it is for
# tests, never for data you want to keep.
# Everything but the last line goes to stderr, so `export "$(scripts/redis.sh | tail -n1)"` works.
# Env: REDIS_PORT (default 56379), REDIS_DIR (default <repo>/.tmp/redis). Stop it with scripts/redis-stop.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${REDIS_PORT:-56379}"
REDIS_DIR="${REDIS_DIR:-$ROOT/.tmp/redis}"
PIDFILE="$REDIS_DIR/redis.pid"
PORTFILE="$REDIS_DIR/redis.port"
LOG="$REDIS_DIR/redis.log"

log() { echo "redis.sh: $*" >&2; }
die() { log "$*"; exit 1; }

case "$PORT" in
  '' | *[!0-9]*) die "REDIS_PORT must be a port number (got '$PORT')" ;;
esac

install_redis() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "redis-server is not installed and installing it needs root (or sudo)"
    sudo=(sudo -n)
  fi
  command -v apt-get >/dev/null 2>&1 || die "redis-server is not installed and apt-get is not available; install it by hand"
  log "installing redis-server from the Debian packages"
  "${sudo[@]}" apt-get update >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server redis-tools >&2
}

find_bin() {
  local name=$1 candidate
  for candidate in "$(command -v "$name" 2>/dev/null || true)" "/usr/bin/$name" "/usr/local/bin/$name"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

SERVER="$(find_bin redis-server || true)"
CLI="$(find_bin redis-cli || true)"
if [ -z "$SERVER" ] || [ -z "$CLI" ]; then
  install_redis
  SERVER="$(find_bin redis-server)" || die "the redis-server package installed no redis-server binary"
  CLI="$(find_bin redis-cli)" || die "the redis-tools package installed no redis-cli binary"
fi

mkdir -p "$REDIS_DIR"

# One run at a time: a second concurrent run waits here, then finds the server running.
exec 9>"$REDIS_DIR/.lock"
flock -w 60 9 || die "another redis.sh run holds $REDIS_DIR/.lock"

ping() { [ "$("$CLI" -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = "PONG" ]; }

# The pid in our pidfile, when that process is alive and is a redis-server.
our_pid() {
  local pid
  [ -f "$PIDFILE" ] || return 1
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  case "$pid" in '' | *[!0-9]*) return 1 ;; esac
  kill -0 "$pid" 2>/dev/null || return 1
  grep -q redis "/proc/$pid/comm" 2>/dev/null || return 1
  echo "$pid"
}

if pid="$(our_pid)"; then
  # A test may have stopped it with SIGSTOP and died before SIGCONT: wake it, it is ours.
  kill -CONT "$pid" 2>/dev/null || true
  actual="$(cat "$PORTFILE" 2>/dev/null || echo "$PORT")"
  if [ "$actual" != "$PORT" ]; then
    log "the server in $REDIS_DIR (pid $pid) already runs on port $actual (not $PORT); using it"
    PORT="$actual"
  else
    log "already running on 127.0.0.1:$PORT (pid $pid, $REDIS_DIR)"
  fi
else
  rm -f "$PIDFILE"
  if ping "$PORT" || (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "another server already listens on 127.0.0.1:$PORT; set REDIS_PORT to a free port"
  fi
  log "starting $("$SERVER" --version | cut -d' ' -f1-3) on 127.0.0.1:$PORT (log: $LOG)"
  # 9>&-: the server must not inherit the lock, or it would hold it for as long as it runs.
  # save "" and appendonly no: nothing is written to disk; a restart starts empty.
  if ! "$SERVER" \
    --bind 127.0.0.1 \
    --port "$PORT" \
    --protected-mode yes \
    --dir "$REDIS_DIR" \
    --save "" \
    --appendonly no \
    --daemonize yes \
    --pidfile "$PIDFILE" \
    --logfile "$LOG" \
    --databases 16 >&2 9>&-; then
    tail -n 20 "$LOG" >&2 2>/dev/null || true
    die "the server did not start"
  fi
  echo "$PORT" >"$PORTFILE"
fi

# Wait until it answers PING (bounded to about 30 s).
ready=0
for _ in $(seq 1 60); do
  if ping "$PORT"; then
    ready=1
    break
  fi
  sleep 0.5
done
if [ "$ready" != 1 ]; then
  tail -n 20 "$LOG" >&2 2>/dev/null || true
  die "the server on 127.0.0.1:$PORT does not answer PING after 30 s (log: $LOG)"
fi

echo "REDIS_URL=redis://127.0.0.1:$PORT"
