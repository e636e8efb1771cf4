#!/usr/bin/env bash
# Ensures a Go toolchain and prints the path of its `go` binary as the last line (everything else
# goes to stderr). Uses `go` from PATH when there is one; otherwise installs the pinned release into
# <repo>/.tmp/go from the Go module proxy, where Go publishes its toolchains as the module
# golang.org/toolchain (what `GOTOOLCHAIN` downloads), checked against a pinned SHA-256. Debian's
# golang-go is not used: bookworm's is Go 1.19, older than the SDK modules and grpcurl need.
# Idempotent: a second run finds .tmp/go/bin/go. Linux amd64 only, as pinned; elsewhere install Go by hand.
set -euo pipefail

GO_VERSION="1.26.8"
# sha256 of https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go1.26.8.linux-amd64.zip
GO_ZIP_SHA256_LINUX_AMD64="30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/.tmp/go"

log() { echo "go.sh: $*" >&2; }
die() { log "$*"; exit 1; }

if command -v go >/dev/null 2>&1; then
  command -v go
  exit 0
fi
if [ -x "$DEST/bin/go" ]; then
  echo "$DEST/bin/go"
  exit 0
fi

[ "$(uname -sm)" = "Linux x86_64" ] || die "Go is not installed and only linux-amd64 is pinned here: install Go $GO_VERSION or later (https://go.dev/doc/install)"
command -v curl >/dev/null 2>&1 || die "Go is not installed, and curl, needed to fetch it, is not either"
if ! command -v unzip >/dev/null 2>&1; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "unzip is not installed and installing it needs root (or sudo)"
    sudo=(sudo -n)
  fi
  command -v apt-get >/dev/null 2>&1 || die "unzip is not installed and apt-get is not available; install it by hand"
  log "installing unzip (Debian package)"
  "${sudo[@]}" apt-get update -qq >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends unzip >&2
fi

proxy="${GOPROXY:-https://proxy.golang.org}"
proxy="${proxy%%[,|]*}"
case "$proxy" in http://* | https://*) ;; *) proxy="https://proxy.golang.org" ;; esac
module="v0.0.1-go$GO_VERSION.linux-amd64"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "installing Go $GO_VERSION into ${DEST#"$ROOT"/} from $proxy (golang.org/toolchain@$module)"
curl -fsSL --retry 3 -o "$work/go.zip" "$proxy/golang.org/toolchain/@v/$module.zip"
echo "$GO_ZIP_SHA256_LINUX_AMD64  $work/go.zip" | sha256sum -c --quiet - >&2 || die "the toolchain's SHA-256 is not the pinned one"
unzip -q "$work/go.zip" -d "$work/x"
mkdir -p "$ROOT/.tmp"
rm -rf "$DEST"
mv "$work/x/golang.org/toolchain@$module" "$DEST"
"$DEST/bin/go" version >&2
echo "$DEST/bin/go"
