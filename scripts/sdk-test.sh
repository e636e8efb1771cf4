#!/usr/bin/env bash
# Runs the SDK test suites against the real service:
#   scripts/sdk-test.sh [go] [python] [ts]      (no argument: all three)
# Each suite starts the service itself (sdk-tests/go/service_test.go, sdk-tests/python/conftest.py,
# sdk-tests/ts/packed-sdk.ts) on a free loopback port. `go` serves gen/go as its release version from a
# module proxy on disk (scripts/go-sdk-proxy.sh), which examples/go and sdk-tests/go require without a
# replace; a new module also builds and runs examples/go on the oldest Go that gen/go/go.mod allows.
# `ts` packs sdk/ts with npm and installs the
# tarball from the npm registry into empty projects (the TypeScript SDK's own tests are in test/sdk,
# part of `npm test`). With DATABASE_URL set it gets a fresh Postgres database and the tests
# also read the ledger rows; without it, PGlite in a temporary directory (CI=true requires the former).
# Needs `npm ci` (the service runs under the project's Node with tsx), Go and Python 3; the pinned
# tools come from scripts/sdk-tools.sh. Stops at the first failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '\n--> sdk-test: %s\n' "$*" >&2; }
die() { printf 'sdk-test: FAILED: %s\n' "$*" >&2; exit 1; }

[ -x node_modules/.bin/node ] || die "node_modules/.bin/node is missing: run \`npm ci\` first"
tools="$(bash scripts/sdk-tools.sh | tail -n 1)"
python="$tools/venv/bin/python"
# No __pycache__ directories in the work tree.
export PYTHONDONTWRITEBYTECODE=1
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

run_go() {
  log "go vet: gen/go"
  (cd gen/go && go vet ./...)

  # examples/go and sdk-tests/go require the SDK by version, without a replace: this serves gen/go
  # as that version from a module proxy on disk and checks their go.sum lines are its hashes.
  log "gen/go as a released module (scripts/go-sdk-proxy.sh)"
  local env_line
  env_line="$(bash scripts/go-sdk-proxy.sh --check | tail -n 1)" || die "scripts/go-sdk-proxy.sh --check failed (above)"
  eval "$env_line"

  log "go vet: examples/go, sdk-tests/go"
  (cd examples/go && go vet ./...)
  (cd sdk-tests/go && go vet ./...)

  log "go test (sdk-tests/go: grpc-go and connect-go clients, examples/go, and examples/go in a new module on gen/go's oldest Go)"
  local out
  out="$(mktemp)"
  # -v lists every test; the pass count below catches a run that found no tests.
  if ! (cd sdk-tests/go && go test -count=1 -v ./...) 2>&1 | tee "$out"; then
    rm -f "$out"
    die "go test failed (above)"
  fi
  local passed failed
  passed="$(grep -c -- '--- PASS' "$out" || true)"
  failed="$(grep -c -- '--- FAIL' "$out" || true)"
  rm -f "$out"
  [ "$passed" -gt 0 ] || die "go test ran no tests"
  [ "$failed" -eq 0 ] || die "go test reported $failed failure(s)"
  echo "go-sdk: $passed passed, $failed failed"
}

run_ts() {
  log "npm pack sdk/ts, install the tarball into empty Node and browser projects, call the service (sdk-tests/ts/packed-sdk.ts)"
  # The project's Node (and so the npm it runs under) first on PATH.
  PATH="$ROOT/node_modules/node/bin:$PATH" node --import tsx sdk-tests/ts/packed-sdk.ts ||
    die "the packed TypeScript SDK test failed (above)"
}

run_python() {
  # Installed the way a consumer installs it (pip builds a wheel from the project, then installs
  # that), into a directory of its own put first on PYTHONPATH: the tools venv supplies the
  # dependencies and stays unchanged. Built from a copy, so setuptools' build/ and *.egg-info stay
  # out of gen/python.
  log "pip install gen/python (llm-service-sdk) into a fresh directory"
  local tmp="$scratch/python"
  mkdir -p "$tmp/project"
  cp -R gen/python/. "$tmp/project/"
  "$python" -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps \
    --target "$tmp/site" "$tmp/project"

  log "pytest (sdk-tests/python: the stubs on grpc and grpc.aio, LlmClient, AsyncLlmClient, packaging, examples/python)"
  local code=0
  (cd sdk-tests/python && PYTHONPATH="$tmp/site" "$python" -m pytest -v) || code=$?
  case "$code" in
    0) ;;
    5) die "pytest collected no tests (exit 5)" ;;
    *) die "pytest failed with exit code $code (above)" ;;
  esac
}

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(go python ts)
for suite in "${suites[@]}"; do
  case "$suite" in
    go) run_go ;;
    python) run_python ;;
    ts) run_ts ;;
    *) die "unknown suite '$suite' (go, python or ts)" ;;
  esac
done
