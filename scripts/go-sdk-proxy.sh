#!/usr/bin/env bash
# Serves this checkout's Go SDK (gen/go) as the released module github.com/llm-service/llm-service/gen/go
# at GO_SDK_VERSION from a module proxy on the file system, so that examples/go and sdk-tests/go require
# it by version, with no `replace`, exactly as a consumer's `go get` resolves the published one.
#   scripts/go-sdk-proxy.sh               build the proxy; print `export` lines for GOPROXY, GONOSUMDB and
#                                         GOMODCACHE last, for `eval "$(bash scripts/go-sdk-proxy.sh)"`
#   scripts/go-sdk-proxy.sh --write-sums  also bring the SDK's go.sum lines in examples/go and
#                                         sdk-tests/go up to date (`go mod tidy` there); run by
#                                         `npm run generate`
#   scripts/go-sdk-proxy.sh --check       fail when those lines are not the checkout's (`npm run check`)
# The proxy (.tmp/go-sdk/proxy) is the GOPROXY protocol's layout: <module>/@v/list, vX.Y.Z.info, .mod
# and .zip, the zip holding <module>@vX.Y.Z/<file> for every file of gen/go, as the Go module proxy
# builds it from the tag gen/go/vX.Y.Z. The printed GOPROXY puts it before the Go module cache's
# download directory and then the GOPROXY already in force, so only the SDK comes from it. GONOSUMDB
# keeps the checksum database out of it: the module's h1: hash is checked against go.sum alone.
# GOMODCACHE is a cache of its own (.tmp/go-sdk/modcache) from which the SDK is dropped on every run:
# a module cache keeps the first zip it saw for a version, and gen/go changes between releases.
set -euo pipefail

# The version the next release is tagged with (gen/go/vX.Y.Z); the consumers in this repository require it.
GO_SDK_VERSION="v0.1.0"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONSUMERS="examples/go sdk-tests/go"
WORK="$ROOT/.tmp/go-sdk"
PROXY="$WORK/proxy"
MODCACHE="$WORK/modcache"

log() { echo "go-sdk-proxy.sh: $*" >&2; }
die() { log "$*"; exit 1; }

mode=""
case "${1:-}" in
  "") ;;
  --write-sums | --check) mode="$1" ;;
  *) echo "usage: scripts/go-sdk-proxy.sh [--write-sums | --check]" >&2; exit 2 ;;
esac

command -v go >/dev/null 2>&1 || die "Go is not installed (bash scripts/go.sh installs it)"
if ! command -v zip >/dev/null 2>&1; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "zip is not installed and installing it needs root (or sudo)"
    sudo=(sudo -n)
  fi
  command -v apt-get >/dev/null 2>&1 || die "zip is not installed and apt-get is not available; install it by hand"
  log "installing zip (Debian package)"
  "${sudo[@]}" apt-get update -qq >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends zip >&2
fi

module="$(awk '$1 == "module" { print $2; exit }' gen/go/go.mod)"
[ -n "$module" ] || die "could not read the module path from gen/go/go.mod"
# Module paths are case-encoded in proxy URLs and cache paths: an upper-case letter becomes ! and its lower case.
escaped="$(printf '%s' "$module" | sed -E 's/([A-Z])/!\L\1/g')"
version="$GO_SDK_VERSION"

# --- the proxy ------------------------------------------------------------------------------------
nested="$(find gen/go -mindepth 2 -name go.mod)"
[ -z "$nested" ] || die "gen/go holds another module ($nested), which its zip would leave out"
vdir="$PROXY/$escaped/@v"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$module@$version"
cp -R gen/go/. "$stage/$module@$version/"
rm -rf "$PROXY"
mkdir -p "$vdir"
# -D: no directory entries (the Go module zip has files only); -X: no extra attributes.
(cd "$stage" && find "$module@$version" -type f | LC_ALL=C sort | zip -q -X -D "$vdir/$version.zip" -@)
cp gen/go/go.mod "$vdir/$version.mod"
released="$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ -- gen/go 2>/dev/null || true)"
printf '{"Version":"%s","Time":"%s"}\n' "$version" "${released:-1970-01-01T00:00:00Z}" >"$vdir/$version.info"
printf '%s\n' "$version" >"$vdir/list"

# --- the cache, and the SDK's hashes as go computes them from that zip ---------------------------
if [ -d "$MODCACHE" ]; then
  chmod -R u+w "$MODCACHE/$escaped@$version" "$MODCACHE/cache/download/$escaped" 2>/dev/null || true
  rm -rf "$MODCACHE/$escaped@$version" "$MODCACHE/cache/download/$escaped"
fi
mkdir -p "$MODCACHE"
upstream="$(go env GOPROXY)"
default_cache="$(go env GOMODCACHE)/cache/download"
# Evaluated twice in one shell: the GOPROXY in force already starts with these two.
case "$upstream" in "file://$PROXY,"*) upstream="${upstream#*,}"; upstream="${upstream#*,}" ;; esac
export GOPROXY="file://$PROXY,file://$default_cache${upstream:+,$upstream}"
export GONOSUMDB="$module"
export GOMODCACHE="$MODCACHE"

# Outside any module, so only the SDK's zip and go.mod are fetched; go checks the zip's layout here.
download="$(cd "$stage" && GO111MODULE=on go mod download -json "$module@$version")" ||
  die "go rejected the module served from $PROXY (above): $download"
sum="$(printf '%s\n' "$download" | sed -n 's/^\t"Sum": "\(.*\)",\{0,1\}$/\1/p')"
gomodsum="$(printf '%s\n' "$download" | sed -n 's/^\t"GoModSum": "\(.*\)",\{0,1\}$/\1/p')"
[ -n "$sum" ] && [ -n "$gomodsum" ] || die "go mod download gave no hashes: $download"
log "$module@$version from $PROXY: $sum"

want_lines() { printf '%s %s %s\n%s %s/go.mod %s\n' "$module" "$version" "$sum" "$module" "$version" "$gomodsum"; }
have_lines() { grep -F "$module " "$1/go.sum" || true; }
required() { (cd "$1" && go mod edit -json) | grep -A1 -F "\"Path\": \"$module\"" | sed -n 's/^.*"Version": "\(.*\)".*$/\1/p'; }

case "$mode" in
  --write-sums)
    for dir in $CONSUMERS; do
      # A stale line for the same version would fail the download as a checksum mismatch.
      grep -v -F "$module " "$dir/go.sum" >"$stage/go.sum" || true
      cat "$stage/go.sum" >"$dir/go.sum"
      (cd "$dir" && go mod edit -require="$module@$version" -dropreplace="$module" && go mod tidy)
      [ "$(have_lines "$dir")" = "$(want_lines)" ] || die "$dir/go.sum did not get the SDK's hashes"
      log "$dir: requires $module $version; go.sum brought up to date"
    done
    ;;
  --check)
    for dir in $CONSUMERS; do
      [ "$(required "$dir")" = "$version" ] ||
        die "$dir/go.mod must require $module $version (it has '$(required "$dir")'): run \`bash scripts/go-sdk-proxy.sh --write-sums\`"
      if (cd "$dir" && go mod edit -json) | grep -A1 -F '"Old": {' | grep -q -F "\"Path\": \"$module\""; then
        die "$dir/go.mod has a replace: it must take the SDK from the module proxy, as a consumer does"
      fi
      [ "$(have_lines "$dir")" = "$(want_lines)" ] ||
        die "$dir/go.sum's lines for $module are not gen/go's (it changed): run \`npm run generate\` (or \`bash scripts/go-sdk-proxy.sh --write-sums\`) and commit them"
    done
    log "examples/go and sdk-tests/go require $version with gen/go's hashes"
    ;;
esac

printf "export GOPROXY='%s' GONOSUMDB='%s' GOMODCACHE='%s'\n" "$GOPROXY" "$GONOSUMDB" "$GOMODCACHE"
