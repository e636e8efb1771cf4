#!/usr/bin/env bash
# Ensures the chart's validation tools in <repo>/.tmp/k8s and prints that directory as the last line:
#   bin/helm          helm, built with `go install` from the Go module proxy (helm.sh/helm/v3)
#   bin/kubeconform   kubeconform, the same way (github.com/yannh/kubeconform)
#   schemas/v<K>-standalone-strict/<kind>-<group>-<version>.json
#                     Kubernetes JSON schemas for kubeconform, for each version in KUBE_VERSIONS.
# kubeconform fetches its schemas from GitHub by default, which this machine (and CI) cannot reach. The
# offline source: the PyPI package kubernetes-validate ships the JSON schemas of each Kubernetes release
# (generated from that release's OpenAPI spec, the same kubernetes-json-schema layout kubeconform uses),
# as "v<K>-local-strict" directories whose files refer to one shared _definitions.json by an absolute
# path under an https:// $id; the wheel is fetched with `pip download` (checked against its sha256) and
# each chosen version's directory is copied out without the $id and with that path made relative, so
# kubeconform resolves it to the file beside it.
# Idempotent: each part is rebuilt only when its pin changed. Go's module and build caches make a
# rebuild after `rm -rf .tmp/k8s` quick.
set -euo pipefail

HELM_VERSION="v3.22.1"
KUBECONFORM_VERSION="v0.8.0"
KUBERNETES_VALIDATE_VERSION="1.37.0"
KUBERNETES_VALIDATE_SHA256="85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion: native gRPC probes are GA in 1.27) and
# the newest the package ships.
KUBE_VERSIONS="${KUBE_VERSIONS:-1.27.0 1.37.0}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tmp/k8s"
log() { printf 'k8s-tools: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

command -v go >/dev/null 2>&1 || die "Go is not installed; helm and kubeconform are built with go install"
mkdir -p "$TOOLS/bin"

# go install <module path>@<version> into bin/ with the given -ldflags, unless the stamp says that build is there.
install_go_tool() {
  local name=$1 pkg=$2 version=$3 ldflags=$4
  local stamp="$TOOLS/bin/.$name-build" want="$version $ldflags"
  if [ -x "$TOOLS/bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return; fi
  local started=$SECONDS
  log "building $name $version with $(go version | cut -d' ' -f3) (go install $pkg@$version)"
  GOBIN="$TOOLS/bin" go install -ldflags "$ldflags" "$pkg@$version" >&2
  printf '%s' "$want" >"$stamp"
  log "$name $version built in $((SECONDS - started)) s"
}

# The -X flags of helm's Makefile: its version, and the Kubernetes version of its client-go module (v0.37 →
# 1.37) as the default for `helm template` and lint's deprecation rules (left out, they say 1.20).
helm_k8s="-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37"
helm_k8s="$helm_k8s -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37"
install_go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION $helm_k8s"
install_go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" "-X main.version=$KUBECONFORM_VERSION"

# --- schemas ------------------------------------------------------------------------------------
schema_pins="$KUBERNETES_VALIDATE_VERSION $KUBE_VERSIONS relative-refs"
if [ "$(cat "$TOOLS/schemas/.pins" 2>/dev/null)" != "$schema_pins" ]; then
  python="${PYTHON:-python3}"
  command -v "$python" >/dev/null 2>&1 || die "$python is not installed; the schemas come from a PyPI wheel"
  wheel_dir="$TOOLS/wheel"
  wheel="$wheel_dir/kubernetes_validate-$KUBERNETES_VALIDATE_VERSION-py3-none-any.whl"
  if ! echo "$KUBERNETES_VALIDATE_SHA256  $wheel" | sha256sum -c --status 2>/dev/null; then
    log "downloading kubernetes-validate $KUBERNETES_VALIDATE_VERSION from PyPI (the Kubernetes JSON schemas)"
    rm -rf "$wheel_dir"
    "$python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
      -d "$wheel_dir" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" >&2
    echo "$KUBERNETES_VALIDATE_SHA256  $wheel" | sha256sum -c --status ||
      die "kubernetes-validate $KUBERNETES_VALIDATE_VERSION: the wheel's sha256 is not the pinned one"
  fi
  rm -rf "$TOOLS/schemas"
  mkdir -p "$TOOLS/schemas"
  "$python" - "$wheel" "$TOOLS/schemas" $KUBE_VERSIONS <<'PY'
import json, os, sys, zipfile
wheel, out, versions = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for version in versions:
        prefix = f"kubernetes_validate/kubernetes-json-schema/v{version}-local-strict/"
        names = [n for n in z.namelist() if n.startswith(prefix) and n.endswith(".json")]
        if not names:
            sys.exit(f"k8s-tools: kubernetes-validate has no schemas for Kubernetes {version}")
        target = os.path.join(out, f"v{version}-standalone-strict")
        os.makedirs(target)
        for name in names:
            text = z.read(name).decode("utf-8").replace('"/api/_definitions.json#', '"_definitions.json#')
            schema = json.loads(text)
            schema.pop("$id", None)  # an https:// base would send the relative reference to the network
            with open(os.path.join(target, name[len(prefix):]), "w", encoding="utf-8") as f:
                json.dump(schema, f)
        print(f"k8s-tools: {len(names)} schemas for Kubernetes {version}", file=sys.stderr)
PY
  printf '%s' "$schema_pins" >"$TOOLS/schemas/.pins"
fi

echo "$TOOLS"
