#!/usr/bin/env bash
# Stops the test Redis server started by scripts/redis.sh. Idempotent.
# `--purge` also deletes its directory (<repo>/.tmp/redis, or REDIS_DIR).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REDIS_DIR="${REDIS_DIR:-$ROOT/.tmp/redis}"
PIDFILE="$REDIS_DIR/redis.pid"
PORTFILE="$REDIS_DIR/redis.port"

log() { echo "redis-stop.sh: $*" >&2; }

purge=0
case "${1:-}" in
  "") ;;
  --purge) purge=1 ;;
  *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac

pid=""
if [ -f "$PIDFILE" ]; then
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  case "$pid" in '' | *[!0-9]*) pid="" ;; esac
fi

if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q redis "/proc/$pid/comm" 2>/dev/null; then
  # SIGCONT first: a test may have left it stopped, and a stopped process does not act on SIGTERM.
  kill -CONT "$pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not exit after 10 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  log "stopped (pid $pid)"
else
  log "not running"
fi
rm -f "$PIDFILE" "$PORTFILE"

if [ "$purge" = 1 ]; then
  rm -rf "$REDIS_DIR"
  log "removed $REDIS_DIR"
fi
