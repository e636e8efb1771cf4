#!/usr/bin/env bash
# `npm run check`: typecheck (src and test), eslint, buf lint, buf breaking against the
# main branch (when it has a proto/ directory) and generated-code freshness (gen/ must
# be exactly what `npm run generate` writes). Stops at the first failing step.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# The project's tools (tsc, eslint, buf, protoc-gen-es, Node 24) also when run as `bash scripts/check.sh`.
export PATH="$ROOT/node_modules/.bin:$PATH"

step() { printf '\n==> check: %s\n' "$*" >&2; }
fail() { printf 'check: FAILED: %s\n' "$*" >&2; exit 1; }

step "typecheck (tsc -p tsconfig.json --noEmit)"
tsc -p tsconfig.json --noEmit || fail "TypeScript errors (above)"

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

step "generated code is fresh (buf generate into a temp dir, compare with gen/)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
buf generate --output "$tmp" || fail "buf generate failed (above)"
if ! diff -r "$tmp/gen" gen >"$tmp/gen.diff" 2>&1; then
  head -n 60 "$tmp/gen.diff" >&2
  fail "gen/ is stale: run \`npm run generate\` and commit gen/"
fi
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  untracked="$(git ls-files --others --exclude-standard -- gen)"
  if [ -n "$untracked" ]; then
    printf '%s\n' "$untracked" >&2
    fail "generated files under gen/ are not committed: git add gen/"
  fi
fi

printf '\ncheck: all steps passed\n' >&2
