#!/usr/bin/env bash
# Ensures the pinned code generators and runtimes of the Go and Python SDKs in <repo>/.tmp/sdk and
# prints that directory as the last line:
#   .tmp/sdk/bin/protoc-gen-go, protoc-gen-go-grpc, protoc-gen-connect-go   (go install, Go module proxy)
#   .tmp/sdk/venv: grpcio-tools (protoc + the gRPC Python generator), grpcio, grpcio-status,
#                  protobuf, googleapis-common-protos, pytest   (PyPI, sdk-tests/python/requirements.txt)
# buf.gen.sdk.yaml runs them from there. Idempotent and quick when nothing changed: each part is
# rebuilt only when its pins differ from the ones it was built with. Needs Go and Python 3.10+; Go
# modules and pip downloads are cached where those tools cache them ($(go env GOMODCACHE), pip's
# cache), which outlive a clone, so a fresh clone on a machine that built them once downloads nothing.
set -euo pipefail

PROTOC_GEN_GO_VERSION="v1.36.12"      # google.golang.org/protobuf
PROTOC_GEN_GO_GRPC_VERSION="v1.6.2"   # google.golang.org/grpc/cmd/protoc-gen-go-grpc
PROTOC_GEN_CONNECT_GO_VERSION="v1.21.1" # connectrpc.com/connect

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tmp/sdk"
BIN="$TOOLS/bin"
VENV="$TOOLS/venv"
REQUIREMENTS="$ROOT/sdk-tests/python/requirements.txt"

log() { echo "sdk-tools.sh: $*" >&2; }
die() { log "$*"; exit 1; }

mkdir -p "$BIN"

# --- Go plugins ---------------------------------------------------------------------------------
command -v go >/dev/null 2>&1 || die "Go is not installed (https://go.dev/doc/install); it builds the Go SDK's protoc plugins"
go_pins="protoc-gen-go@$PROTOC_GEN_GO_VERSION protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION protoc-gen-connect-go@$PROTOC_GEN_CONNECT_GO_VERSION"
if [ "$(cat "$BIN/.pins" 2>/dev/null)" != "$go_pins" ] ||
  [ ! -x "$BIN/protoc-gen-go" ] || [ ! -x "$BIN/protoc-gen-go-grpc" ] || [ ! -x "$BIN/protoc-gen-connect-go" ]; then
  log "installing $go_pins with $(go version)"
  rm -f "$BIN/.pins"
  GOBIN="$BIN" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION" >&2
  GOBIN="$BIN" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION" >&2
  GOBIN="$BIN" go install "connectrpc.com/connect/cmd/protoc-gen-connect-go@$PROTOC_GEN_CONNECT_GO_VERSION" >&2
  printf '%s' "$go_pins" >"$BIN/.pins"
fi

# --- Python venv --------------------------------------------------------------------------------
python="${PYTHON:-python3}"
command -v "$python" >/dev/null 2>&1 || die "$python is not installed; the Python SDK's generator and tests need Python 3.10+"
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
  die "$("$python" --version 2>&1) is too old: the Python SDK needs 3.10+"
venv_pins="$("$python" --version 2>&1) $(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
if [ "$(cat "$VENV/.pins" 2>/dev/null)" != "$venv_pins" ] || [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV with $("$python" --version 2>&1) from ${REQUIREMENTS#"$ROOT"/}"
  rm -rf "$VENV"
  "$python" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS" >&2
  printf '%s' "$venv_pins" >"$VENV/.pins"
fi

echo "$TOOLS"
