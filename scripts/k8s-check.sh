#!/usr/bin/env bash
# Validates the Helm chart (deploy/helm/llm-service) and the plain manifests rendered from it:
#   helm lint --strict, with the default values and with the other value sets below;
#   helm template of each value set, checked by kubeconform -strict against the Kubernetes JSON schemas
#   of the oldest supported release and the newest one (scripts/k8s-tools.sh's KUBE_VERSIONS);
#   values that cannot work (several pods without Postgres, a misspelt value) fail to render;
#   deploy/manifests/ is what scripts/render-manifests.sh writes now.
# No cluster is needed. The tools come from scripts/k8s-tools.sh (built once, cached in .tmp/k8s).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CHART=deploy/helm/llm-service

tools="$(bash scripts/k8s-tools.sh </dev/null | tail -n 1)"
export PATH="$tools/bin:$PATH"
kube_versions="$(sed -n 's/^KUBE_VERSIONS="${KUBE_VERSIONS:-\(.*\)}"$/\1/p' scripts/k8s-tools.sh)"
[ -n "$kube_versions" ] || { echo "k8s-check: no KUBE_VERSIONS in scripts/k8s-tools.sh" >&2; exit 1; }
echo "k8s-check: $(helm version --short), kubeconform $(kubeconform -v), Kubernetes schemas $kube_versions"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Each value set: a name and helm's --set/--values arguments.
cat >"$work/full-values.yaml" <<'EOF'
catalogue:
  models:
    - id: gpt-4o-mini
      contextWindow: 128000
      maxOutputTokens: 16384
      deployments:
        - { provider: openai, model: gpt-4o-mini, apiKeyEnv: OPENAI_API_KEY }
providerKeys:
  existingSecret: llm-provider-keys
  values: { ANTHROPIC_API_KEY: not-a-real-key }
database: { url: "postgres://llm:secret@postgres:5432/llm" }
redis: { existingSecret: "", url: "redis://redis:6379" }
otel:
  endpoint: http://otel-collector.observability:4318
  resourceAttributes: deployment.environment.name=ci
  headersSecret: otlp-headers
metrics: { port: "9464" }
probes: { type: exec }
env: { LOG_LEVEL: warn, HTTP2_IDLE_TIMEOUT_MS: 60000 }
EOF
value_sets=(
  "defaults|"
  "manifests|--values deploy/helm/manifests-values.yaml"
  "full|--values $work/full-values.yaml"
  "fixed-replicas|--set autoscaling.enabled=false --set replicaCount=3 --set service.headless.enabled=false --set podDisruptionBudget.enabled=false"
  "one-embedded-pod|--set autoscaling.enabled=false --set replicaCount=1 --set database.existingSecret= --set redis.existingSecret="
)

schema_location="$tools/schemas/{{.NormalizedKubernetesVersion}}-standalone{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json"
conform() {
  local version
  for version in $kube_versions; do
    kubeconform -strict -summary -kubernetes-version "$version" -schema-location "$schema_location" "$@"
  done
}

for set in "${value_sets[@]}"; do
  name="${set%%|*}"
  # shellcheck disable=SC2206 # the arguments are word-split on purpose
  args=(${set#*|})
  echo "--- $name: helm lint, helm template | kubeconform"
  helm lint --strict --quiet "$CHART" "${args[@]}"
  helm template llm-service "$CHART" --namespace llm-service "${args[@]}" >"$work/$name.yaml"
  conform "$work/$name.yaml"
done

# What the templates compute, in the rendered output.
expect() {
  local file=$1 pattern=$2 what=$3
  grep -Eq -- "$pattern" "$file" || { echo "k8s-check: $what: no match for /$pattern/ in the '$(basename "$file" .yaml)' render" >&2; exit 1; }
}
expect "$work/defaults.yaml" 'terminationGracePeriodSeconds: 25$' "preStop 5 s + SHUTDOWN_GRACE_MS 10 s + flush 10 s"
expect "$work/defaults.yaml" '^ +value: "10000"$' "SHUTDOWN_GRACE_MS"
grep -A1 -- '- name: REPLICA_COUNT' "$work/defaults.yaml" | grep -q 'value: "10"' ||
  { echo "k8s-check: REPLICA_COUNT is not the HPA's maxReplicas (10) in the default render" >&2; exit 1; }
grep -A1 -- '- name: REPLICA_COUNT' "$work/fixed-replicas.yaml" | grep -q 'value: "3"' ||
  { echo "k8s-check: REPLICA_COUNT is not replicaCount (3) without the HPA" >&2; exit 1; }
expect "$work/fixed-replicas.yaml" '^  replicas: 3$' "replicas without the HPA"
expect "$work/defaults.yaml" 'appProtocol: kubernetes.io/h2c' "the Service's appProtocol"
expect "$work/defaults.yaml" 'clusterIP: None' "the headless Service"
expect "$work/defaults.yaml" '^kind: HorizontalPodAutoscaler$' "the HPA"
expect "$work/defaults.yaml" '^kind: PodDisruptionBudget$' "the PDB"
helm template llm-service "$CHART" --set shutdown.graceMs=30500 >"$work/grace.yaml"
expect "$work/grace.yaml" 'terminationGracePeriodSeconds: 46$' "5 + ceil(30.5) + 10"

# Several pods on embedded databases would each have their own keys and ledger: refused.
if helm template llm-service "$CHART" --set database.existingSecret= >"$work/refused.yaml" 2>"$work/refused.err"; then
  echo "k8s-check: the chart rendered several pods without Postgres; it must refuse" >&2
  exit 1
fi
grep -q 'more than one pod needs Postgres' "$work/refused.err" ||
  { echo "k8s-check: unexpected error for several pods without Postgres:" >&2; cat "$work/refused.err" >&2; exit 1; }

# values.schema.json: a misspelt value is an error, not silently ignored.
if helm template llm-service "$CHART" --set replicaCont=3 >/dev/null 2>"$work/typo.err"; then
  echo "k8s-check: the chart accepted an unknown value (replicaCont); values.schema.json must refuse it" >&2
  exit 1
fi
grep -q "additional properties 'replicaCont' not allowed" "$work/typo.err" ||
  { echo "k8s-check: unexpected error for an unknown value:" >&2; cat "$work/typo.err" >&2; exit 1; }

echo "--- deploy/manifests: kubeconform, and up to date with the chart"
conform deploy/manifests/*.yaml
bash scripts/render-manifests.sh "$work/manifests"
if ! diff -ru deploy/manifests "$work/manifests"; then
  echo "k8s-check: deploy/manifests is not what the chart renders: run bash scripts/render-manifests.sh" >&2
  exit 1
fi
echo "k8s-check: chart and manifests valid"
