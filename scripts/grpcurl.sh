#!/usr/bin/env bash
# Ensures grpcurl is available and prints the path of the binary as the last line.
# Idempotent: uses grpcurl from PATH or $(go env GOPATH)/bin when present, otherwise
# installs the pinned version with `go install` (needs Go and the Go module proxy).
set -euo pipefail

GRPCURL_VERSION="${GRPCURL_VERSION:-v1.9.4}"

if command -v grpcurl >/dev/null 2>&1; then
  command -v grpcurl
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "grpcurl.sh: grpcurl is not on PATH and Go is not installed to build it" >&2
  exit 1
fi

gobin="$(go env GOBIN)"
if [ -z "$gobin" ]; then
  gobin="$(go env GOPATH)/bin"
fi
bin="$gobin/grpcurl"

if [ ! -x "$bin" ]; then
  echo "grpcurl.sh: installing grpcurl $GRPCURL_VERSION with $(go version)" >&2
  go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION" >&2
fi

echo "$bin"
