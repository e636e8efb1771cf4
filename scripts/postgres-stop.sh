#!/usr/bin/env bash
# Stops the test PostgreSQL server started by scripts/postgres.sh. Idempotent.
# `--purge` also deletes its cluster directory (<repo>/.tmp/pg, or PG_DIR).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_DIR="${PG_DIR:-$ROOT/.tmp/pg}"
DATA="$PG_DIR/data"

log() { echo "postgres-stop.sh: $*" >&2; }

purge=0
case "${1:-}" in
  "") ;;
  --purge) purge=1 ;;
  *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac

as_owner() {
  if [ "$(id -u)" -ne 0 ]; then
    "$@"
  elif command -v runuser >/dev/null 2>&1; then
    runuser -u postgres -- "$@"
  else
    su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
  fi
}

pg_ctl_bin=""
if [ -f "$DATA/PG_VERSION" ]; then
  version="$(cat "$DATA/PG_VERSION")"
  for candidate in "/usr/lib/postgresql/$version/bin/pg_ctl" "$(command -v pg_config >/dev/null 2>&1 && pg_config --bindir)/pg_ctl"; do
    if [ -x "$candidate" ]; then
      pg_ctl_bin="$candidate"
      break
    fi
  done
fi

if [ -n "$pg_ctl_bin" ] && as_owner "$pg_ctl_bin" -D "$DATA" status >/dev/null 2>&1; then
  as_owner "$pg_ctl_bin" -D "$DATA" -m fast -w -t 30 stop >&2
  log "stopped"
else
  log "not running"
fi

if [ "$purge" = 1 ]; then
  rm -rf "$PG_DIR"
  log "removed $PG_DIR"
fi
