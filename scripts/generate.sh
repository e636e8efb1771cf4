#!/usr/bin/env bash
# `npm run generate`: proto/ → gen/ts (buf.gen.yaml: protoc-gen-es), gen/go/llm and
# gen/python/src/llm_service/v1 (buf.gen.sdk.yaml: protoc-gen-go, protoc-gen-go-grpc,
# protoc-gen-connect-go, grpcio-tools through scripts/protoc-gen-python-sdk.py). Installs the pinned Go and Python generators first when they are missing
# (scripts/sdk-tools.sh; needs Go, Python 3 and the Go module proxy and PyPI the first time).
#   scripts/generate.sh                 write into gen/
#   scripts/generate.sh --output DIR    write into DIR/gen/ instead (scripts/check.sh compares it)
# Without --output it also refreshes the Go SDK's go.sum lines in examples/go and sdk-tests/go.
# Only the directories listed in GENERATED_DIRS are written; gen/go/go.mod, gen/python/pyproject.toml,
# the Python convenience client (gen/python/src/llm_service/*.py) and the READMEs are kept by hand.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/node_modules/.bin:$PATH"

# What this script writes, relative to the output root (scripts/check.sh compares exactly these).
GENERATED_DIRS="gen/ts gen/go/llm gen/python/src/llm_service/v1"
if [ "${1:-}" = "--list" ]; then
  echo "$GENERATED_DIRS"
  exit 0
fi

out="."
out_args=()
if [ "${1:-}" = "--output" ]; then
  [ -n "${2:-}" ] || { echo "generate.sh: --output needs a directory" >&2; exit 2; }
  out="$2"
  out_args=(--output "$out")
elif [ $# -gt 0 ]; then
  echo "usage: scripts/generate.sh [--output DIR | --list]" >&2
  exit 2
fi

bash scripts/sdk-tools.sh >/dev/null

buf generate "${out_args[@]}"
buf generate --template buf.gen.sdk.yaml "${out_args[@]}"

# examples/go and sdk-tests/go take the SDK by version from a module proxy (scripts/go-sdk-proxy.sh):
# when gen/go changed, their go.sum lines for it follow (`npm run check` compares them).
if [ "$out" = "." ]; then
  bash scripts/go-sdk-proxy.sh --write-sums >/dev/null
fi
