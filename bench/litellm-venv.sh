#!/usr/bin/env bash
# Ensures a Python venv with LiteLLM's proxy for `BENCH_PEERS=litellm npm run bench` and prints the
# venv's path as the last line (everything else goes to stderr).
#
# `pip install 'litellm[proxy]'` does not work from PyPI alone: the extra names a package the
# registry does not serve. So this installs `litellm`, reads the `proxy` extra's requirements from
# its metadata and installs them one at a time, skipping (and naming) any that fail.
# The venv is kept in .tmp/bench/litellm-venv (git-ignored) and reused while its marker file names
# the same litellm version spec: a second run installs nothing.
# Env: LITELLM_SPEC (default `litellm`), LITELLM_VENV (default <repo>/.tmp/bench/litellm-venv).
set -euo pipefail

log() { echo "litellm-venv.sh: $*" >&2; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LITELLM_VENV:-$root/.tmp/bench/litellm-venv}"
spec="${LITELLM_SPEC:-litellm}"
marker="$venv/.bench-ready"

if [ -f "$marker" ] && [ "$(head -n1 "$marker")" = "$spec" ] && [ -x "$venv/bin/litellm" ]; then
  log "reusing $venv ($(sed -n 2p "$marker"))"
  echo "$venv"
  exit 0
fi

python="$(command -v python3 || true)"
[ -n "$python" ] || { log "python3 not found"; exit 1; }
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
log "creating $venv with $("$python" --version 2>&1)"
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input -q)
"${pip[@]}" install --upgrade pip >&2
log "pip install $spec"
"${pip[@]}" install "$spec" >&2

# The proxy extra's requirements, as PEP 508 strings with the `extra == "proxy"` marker removed.
mapfile -t reqs < <("$venv/bin/python" - <<'EOF'
import re
from importlib.metadata import requires
for r in requires("litellm") or []:
    if re.search(r"""extra\s*==\s*["']proxy["']""", r):
        req, _, marker = r.partition(";")
        marker = re.sub(r"""(\s*(and|or)\s*)?extra\s*==\s*["']proxy["']""", "", marker).strip()
        marker = re.sub(r"^(and|or)\s+", "", marker)
        print(req.strip() + (f"; {marker}" if marker and marker not in ("()",) else ""))
EOF
)
log "the proxy extra names ${#reqs[@]} requirements; installing them one by one"
skipped=()
for r in "${reqs[@]}"; do
  if "${pip[@]}" install "$r" >&2 2>/dev/null; then
    log "  installed: $r"
  else
    log "  skipped (pip could not install it): $r"
    skipped+=("$r")
  fi
done
version="$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("litellm"))')"
printf '%s\nlitellm %s\nskipped: %s\n' "$spec" "$version" "${skipped[*]:-none}" >"$marker"
log "ready: litellm $version${skipped:+ (skipped: ${skipped[*]})}"
echo "$venv"
