#!/usr/bin/env bash
# `npm run check`: typecheck (src and test), eslint, buf lint, buf breaking against the
# main branch (when it has a proto/ directory) and generated-code freshness (gen/ts, gen/go/llm
# and gen/python/src/llm_service/v1 must be exactly what `npm run generate` writes) and the Go SDK's
# go.sum lines in its consumers (scripts/go-sdk-proxy.sh --check). Stops at the first failing step.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# The project's tools (tsc, eslint, buf, protoc-gen-es, Node 24) also when run as `bash scripts/check.sh`.
export PATH="$ROOT/node_modules/.bin:$PATH"

step() { printf '\n==> check: %s\n' "$*" >&2; }
fail() { printf 'check: FAILED: %s\n' "$*" >&2; exit 1; }

step "typecheck (tsc: src, test, sdk, examples; web/ for the browser)"
tsc -p tsconfig.json --noEmit || fail "TypeScript errors (above)"
tsc -p web/tsconfig.json --noEmit || fail "TypeScript errors in web/ (above)"

step "eslint"
eslint . || fail "lint errors (above)"

step "buf lint"
buf lint || fail "buf lint found problems in proto/ (above)"

step "buf breaking against main"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git_dir="$(git rev-parse --absolute-git-dir)"
  against_ref=""
  for ref in refs/heads/main refs/remotes/origin/main; do
    if git rev-parse --verify --quiet "$ref^{commit}" >/dev/null; then
      against_ref="$ref"
      break
    fi
  done
  if [ -z "$against_ref" ]; then
    echo "check: skipped: no main branch (refs/heads/main or origin/main) to compare with" >&2
  elif ! git cat-file -e "$against_ref:proto" 2>/dev/null; then
    echo "check: skipped: $against_ref has no proto/ directory yet" >&2
  else
    echo "check: comparing proto/ with $against_ref" >&2
    buf breaking --against "$git_dir#format=git,ref=$against_ref" ||
      fail "proto/ has breaking changes against $against_ref (above)"
  fi
else
  echo "check: skipped: not a git checkout" >&2
fi

step "generated code is fresh (scripts/generate.sh into a temp dir, compare with gen/: ts, go, python)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# generate.sh installs the pinned Go and Python generators first if needed (scripts/sdk-tools.sh).
bash scripts/generate.sh --output "$tmp" || fail "scripts/generate.sh failed (above)"
for dir in $(bash scripts/generate.sh --list); do
  if ! diff -r "$tmp/$dir" "$dir" >"$tmp/gen.diff" 2>&1; then
    head -n 60 "$tmp/gen.diff" >&2
    fail "$dir is stale: run \`npm run generate\` and commit gen/"
  fi
done
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  untracked="$(git ls-files --others --exclude-standard -- gen)"
  if [ -n "$untracked" ]; then
    printf '%s\n' "$untracked" >&2
    fail "files under gen/ are not committed: git add gen/"
  fi
fi

step "the Go SDK's consumers (examples/go, sdk-tests/go) require it by version, with gen/go's go.sum hashes"
bash scripts/go-sdk-proxy.sh --check >/dev/null || fail "the Go SDK's consumers are out of step with gen/go (above)"

printf '\ncheck: all steps passed\n' >&2
