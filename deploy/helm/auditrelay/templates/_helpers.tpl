{{/* The chart's name. */}}
{{- define "auditrelay.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, the name of its objects. */}}
{{- define "auditrelay.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "auditrelay.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "auditrelay.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the pods. */}}
{{- define "auditrelay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "auditrelay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The service account's name. */}}
{{- define "auditrelay.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "auditrelay.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding auditrelay.yaml, and its key. */}}
{{- define "auditrelay.configSecret" -}}
{{- default (include "auditrelay.fullname" .) .Values.existingSecret }}
{{- end }}
{{- define "auditrelay.configKey" -}}
{{- if .Values.existingSecret }}{{ .Values.existingSecretKey }}{{ else }}auditrelay.yaml{{ end }}
{{- end }}

{{/*
The configuration file the chart writes: the user's config with data_dir,
metrics_listen and, in PostgreSQL mode, the store block set by the chart.
*/}}
{{- define "auditrelay.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $_ := set $cfg "data_dir" "/data" }}
{{- $_ := set $cfg "metrics_listen" (printf ":%d" (int .Values.metrics.port)) }}
{{- if .Values.store.postgres.enabled }}
{{- $pg := dict "dsn" "${env:AUDITRELAY_POSTGRES_DSN}" }}
{{- with .Values.store.postgres.leaseTTL }}{{ $_ := set $pg "lease_ttl" . }}{{ end }}
{{- $_ := set $cfg "store" (dict "postgres" $pg) }}
{{- else if hasKey $cfg "store" }}
{{- fail "config.store is set by the chart: use store.postgres.enabled" }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* Checks of the values that no schema expresses. */}}
{{- define "auditrelay.check" -}}
{{- if and (not .Values.existingSecret) (empty .Values.config) }}
{{- fail "set config (the auditrelay.yaml, as YAML) or existingSecret (a Secret holding it)" }}
{{- end }}
{{- if and .Values.existingSecret (not (empty .Values.config)) }}
{{- fail "set config or existingSecret, not both" }}
{{- end }}
{{- if and .Values.store.postgres.enabled (not .Values.store.postgres.dsnSecret.name) }}
{{- fail "store.postgres.enabled needs store.postgres.dsnSecret.name: the Secret holding the DSN" }}
{{- end }}
{{- if and .Values.store.postgres.enabled (lt (int .Values.replicas) 1) }}
{{- fail "replicas must be at least 1" }}
{{- end }}
{{- end }}
