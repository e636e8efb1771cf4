{{/* The release's resource name: <release>-llm-service, or the release name when it already says llm-service. */}}
{{- define "llm-service.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "llm-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llm-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llm-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "llm-service.labels" -}}
{{ include "llm-service.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* REPLICA_COUNT: limitsReplicaCount when set; else the HPA's maximum, or replicaCount without the HPA. */}}
{{- define "llm-service.limitsReplicaCount" -}}
{{- if .Values.limitsReplicaCount -}}
{{- .Values.limitsReplicaCount | int -}}
{{- else if .Values.autoscaling.enabled -}}
{{- .Values.autoscaling.maxReplicas | int -}}
{{- else -}}
{{- .Values.replicaCount | int -}}
{{- end -}}
{{- end -}}

{{/* preStop sleep + SHUTDOWN_GRACE_MS rounded up to seconds + the flush after it. */}}
{{- define "llm-service.terminationGracePeriodSeconds" -}}
{{- $graceSeconds := div (add (.Values.shutdown.graceMs | int) 999) 1000 -}}
{{- add (.Values.shutdown.preStopSleepSeconds | int) $graceSeconds (.Values.shutdown.flushSeconds | int) -}}
{{- end -}}

{{/* The connections Secret the chart makes, from database.url and redis.url. */}}
{{- define "llm-service.envSecretData" -}}
{{- $data := dict -}}
{{- if .Values.database.url -}}
{{- $_ := set $data .Values.database.secretKey .Values.database.url -}}
{{- end -}}
{{- if .Values.redis.url -}}
{{- $_ := set $data .Values.redis.secretKey .Values.redis.url -}}
{{- end -}}
{{- toYaml $data -}}
{{- end -}}

{{- define "llm-service.hasDatabase" -}}
{{- if or .Values.database.existingSecret .Values.database.url -}}true{{- end -}}
{{- end -}}

{{- define "llm-service.catalogueConfigMap" -}}
{{- if .Values.existingCatalogueConfigMap -}}
{{- .Values.existingCatalogueConfigMap -}}
{{- else if .Values.catalogue -}}
{{- printf "%s-catalogue" (include "llm-service.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Refuse values that cannot work. */}}
{{- define "llm-service.validate" -}}
{{- $many := or .Values.autoscaling.enabled (gt (.Values.replicaCount | int) 1) -}}
{{- if and $many (not (include "llm-service.hasDatabase" .)) -}}
{{- fail "more than one pod needs Postgres: set database.existingSecret (or database.url). Without it each pod keeps its own embedded database (its own API keys and ledger)." -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (.Values.autoscaling.minReplicas | int) (.Values.autoscaling.maxReplicas | int)) -}}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" -}}
{{- end -}}
{{- if not (has .Values.probes.type (list "grpc" "exec")) -}}
{{- fail "probes.type must be grpc or exec" -}}
{{- end -}}
{{- end -}}
