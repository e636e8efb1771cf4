#!/usr/bin/env bash
# Ensures h2load (the HTTP/2 load generator from nghttp2) is installed and prints its path as the
# last line. Installs the Debian `nghttp2-client` package only when no h2load binary exists
# (with sudo -n when not root). Everything but the last line goes to stderr, so
# `h2load="$(bash scripts/h2load.sh | tail -n1)"` works. Used by `npm run bench`.
set -euo pipefail

log() { echo "h2load.sh: $*" >&2; }
die() { log "$*"; exit 1; }

find_bin() {
  local candidate
  for candidate in "$(command -v h2load 2>/dev/null || true)" /usr/bin/h2load /usr/local/bin/h2load; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

install_h2load() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "h2load is not installed and installing it needs root (or sudo)"
    sudo=(sudo -n)
  fi
  command -v apt-get >/dev/null 2>&1 || die "h2load is not installed and apt-get is not available; install nghttp2 by hand"
  log "installing nghttp2-client (h2load) from the Debian packages"
  "${sudo[@]}" apt-get update >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nghttp2-client >&2
}

BIN="$(find_bin || true)"
if [ -z "$BIN" ]; then
  install_h2load
  BIN="$(find_bin)" || die "the nghttp2-client package installed no h2load binary"
fi
log "$("$BIN" --version 2>/dev/null | head -n1)"
echo "$BIN"
