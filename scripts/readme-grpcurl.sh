#!/usr/bin/env bash
# Runs the README's grpcurl and curl commands verbatim against a service started with `npm start`
# and checks that each succeeds and prints what the README shows.
#
# The commands are the `$ ...` lines (with their `\` continuation lines) of every fenced block that
# follows a `<!-- ci: grpcurl -->` or `<!-- ci: curl -->` line in README.md, run in the README's
# order against one service; the lines after a command, up to the next command or the end of the
# block, are its expected output. Output that is JSON must equal the README's except for the fields
# that differ on every run ("id", "keyId", "request_id", "startTime", "endTime", "day", and the
# base64 "value" of a Connect error detail, which holds the request id): any non-empty string. Any
# other output must equal it exactly.
#
# The service is started as the README says, with `npm start` (which builds dist/ first when the
# sources are newer than the last build) on a fresh DATA_DIR, so it prints a development key, which
# becomes LLM_API_KEY for the commands; HOST and PORT are taken from the commands' address
# (127.0.0.1:8080). If that port is already taken on this machine, the service listens on a free one
# and the commands' address is rewritten to it (said loudly). grpcurl comes from scripts/grpcurl.sh
# (pinned, Go module proxy) when it is not on PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
README="${README:-$ROOT/README.md}"

log() { echo "readme-grpcurl: $*" >&2; }
die() { log "FAILED: $*"; exit 1; }

[ -x node_modules/.bin/node ] || die "node_modules/.bin/node is missing: run \`npm ci\` first"
command -v setsid >/dev/null 2>&1 || die "setsid (util-linux) is needed to stop npm start's process group"
grpcurl_bin="$(bash scripts/grpcurl.sh </dev/null | tail -n 1)"
export PATH="$(dirname "$grpcurl_bin"):$PATH"

work="$(mktemp -d)"
service_pid=""
cleanup() {
  if [ -n "$service_pid" ] && kill -0 "$service_pid" 2>/dev/null; then
    # npm, its shell and the service: the process group setsid gave them.
    kill -TERM -- "-$service_pid" 2>/dev/null || true
    wait "$service_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# 1. The commands and their expected output, as JSON ([{command, expected}]).
python3 - "$README" >"$work/commands.json" <<'PY'
import json, re, sys

lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
commands, i, marked = [], 0, 0
while i < len(lines):
    if lines[i].strip() not in ("<!-- ci: grpcurl -->", "<!-- ci: curl -->"):
        i += 1
        continue
    marked += 1
    i += 1
    while i < len(lines) and not lines[i].startswith("```"):
        i += 1
    if i == len(lines):
        sys.exit("readme-grpcurl: a <!-- ci: ... --> marker is not followed by a fenced block")
    i += 1
    current = None
    while i < len(lines) and not lines[i].startswith("```"):
        line = lines[i]
        if line.startswith("$ "):
            current = {"command": line[2:], "expected": []}
            commands.append(current)
            while current["command"].endswith("\\"):
                i += 1
                current["command"] += "\n" + lines[i]
        elif current is not None:
            current["expected"].append(line)
        i += 1
    i += 1
for c in commands:
    while c["expected"] and not c["expected"][-1].strip():
        c["expected"].pop()
    c["expected"] = "\n".join(c["expected"])
if marked == 0 or not commands:
    sys.exit("readme-grpcurl: no `$ ...` commands in blocks marked <!-- ci: grpcurl --> or <!-- ci: curl -->")
json.dump(commands, sys.stdout)
PY

address="$(python3 -c '
import json, re, sys
found = {a for c in json.load(open(sys.argv[1])) for a in re.findall(r"\b(\d+\.\d+\.\d+\.\d+:\d+)\b", c["command"])}
if len(found) != 1:
    sys.exit(f"readme-grpcurl: the commands must all use one address, found {sorted(found) or None}")
print(found.pop())
' "$work/commands.json")"
host="${address%:*}"
port="${address##*:}"
log "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$work/commands.json") command(s) for $address"

if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
  port=0
  log "NOTE: $address is already in use on this machine: the service gets a free port and the commands' address is rewritten to it"
fi

# 2. The service, with `npm start` (a build first when dist/ is older than the sources), on a fresh
# database, in a process group of its own. Only these variables: CI's DATABASE_URL or REDIS_URL would
# give it a database that already has keys.
env -i PATH="$PATH" HOME="${HOME:-/tmp}" HOST="$host" PORT="$port" DATA_DIR="$work/data" \
  setsid npm start >"$work/service.out" 2>"$work/service.err" </dev/null &
service_pid=$!
actual=""
LLM_API_KEY=""
# Up to 5 minutes: a first `npm start` compiles the service and the playground.
for _ in $(seq 1 3000); do
  actual="$(sed -n 's/.*"address":"\([^"]*\)".*"message":"listening".*/\1/p' "$work/service.out" | head -n 1)"
  LLM_API_KEY="$(sed -n 's/.*export LLM_API_KEY=\([^[:space:]]*\).*/\1/p' "$work/service.err" | head -n 1)"
  [ -n "$actual" ] && [ -n "$LLM_API_KEY" ] && break
  kill -0 "$service_pid" 2>/dev/null || { cat "$work/service.out" "$work/service.err" >&2; die "the service exited before it was ready"; }
  sleep 0.1
done
[ -n "$actual" ] && [ -n "$LLM_API_KEY" ] ||
  { cat "$work/service.out" "$work/service.err" >&2; die "the service did not listen and print a development key within 5 minutes"; }
export LLM_API_KEY
[ "$actual" = "$address" ] || log "the service listens on $actual"
export README_ADDRESS="$address" ACTUAL_ADDRESS="$actual"

# 3. Each command, verbatim (bar the address, see above), in bash; its output against the README's.
python3 - "$work/commands.json" <<'PY'
import json, os, subprocess, sys

commands = json.load(open(sys.argv[1]))
readme_address, actual_address = os.environ["README_ADDRESS"], os.environ["ACTUAL_ADDRESS"]


def json_values(text):
    """The JSON values one after another in text (grpcurl prints a stream as several), or None."""
    decoder, values, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return values
        try:
            value, i = decoder.raw_decode(text, i)
        except ValueError:
            return None
        values.append(value)


# Fields whose values differ on every run: ids, times, and a Connect error detail's base64 "value"
# (the encoded ErrorInfo carries the request id).
VARYING = {"id", "keyId", "request_id", "startTime", "endTime", "day", "value"}


def differences(expected, actual, path="$"):
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                out.append(f"{path}.{key}: missing")
            elif key not in expected:
                out.append(f"{path}.{key}: not in the README ({json.dumps(actual[key])})")
            elif key in VARYING and isinstance(actual[key], str) and isinstance(expected[key], str):
                if not actual[key]:
                    out.append(f"{path}.{key}: empty")
            else:
                out.extend(differences(expected[key], actual[key], f"{path}.{key}"))
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: {len(actual)} items, the README shows {len(expected)}"]
        return [d for n, (e, a) in enumerate(zip(expected, actual)) for d in differences(e, a, f"{path}[{n}]")]
    return [] if expected == actual else [f"{path}: {json.dumps(actual)}, the README shows {json.dumps(expected)}"]


failures = 0
for n, c in enumerate(commands, 1):
    command = c["command"].replace(readme_address, actual_address)
    first = c["command"].splitlines()[0]
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
    problems = []
    if done.returncode != 0:
        problems.append(f"exit code {done.returncode}; stderr: {done.stderr.strip()}")
    else:
        expected, actual = c["expected"], done.stdout.rstrip("\n")
        want_json, got_json = json_values(expected), json_values(actual)
        if want_json and got_json is not None:
            if len(want_json) != len(got_json):
                problems.append(f"{len(got_json)} JSON message(s), the README shows {len(want_json)}")
            else:
                for m, (e, a) in enumerate(zip(want_json, got_json)):
                    problems.extend(f"message {m + 1}: {d}" for d in differences(e, a))
        elif actual != expected:
            problems.append("output differs from the README's")
        if problems:
            problems.append("output:\n" + actual)
    status = "ok" if not problems else "FAILED"
    print(f"readme-grpcurl: [{n}/{len(commands)}] {status}: $ {first}", file=sys.stderr)
    for p in problems:
        print("    " + p.replace("\n", "\n    "), file=sys.stderr)
    failures += bool(problems)

print(f"readme-grpcurl: {len(commands) - failures} passed, {failures} failed", file=sys.stderr)
sys.exit(1 if failures else 0)
PY
