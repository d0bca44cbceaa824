{{/*
Names, labels and image references shared by every template.
Kubernetes names are capped at 63 characters, so every name helper truncates.
*/}}

{{- define "benchcal.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "benchcal.fullname" -}}
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

{{- define "benchcal.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "benchcal.labels" -}}
helm.sh/chart: {{ include "benchcal.chart" . }}
{{ include "benchcal.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: benchcal
{{- end -}}

{{/* Selector labels of the operator pod (immutable once deployed: keep them stable). */}}
{{- define "benchcal.selectorLabels" -}}
app.kubernetes.io/name: {{ include "benchcal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "benchcal.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "benchcal.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository[:tag|@digest]; the digest wins, the tag defaults to the chart appVersion. */}}
{{- define "benchcal.imageRef" -}}
{{- $img := index . 0 -}}
{{- $root := index . 1 -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default $root.Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{- define "benchcal.operatorImage" -}}
{{- include "benchcal.imageRef" (list .Values.image .) -}}
{{- end -}}

{{- define "benchcal.evaluatorImage" -}}
{{- include "benchcal.imageRef" (list .Values.jobImages.evaluator .) -}}
{{- end -}}

{{/* The reducer runs in the evaluator image unless a reducer repository is given. */}}
{{- define "benchcal.reducerImage" -}}
{{- $r := .Values.jobImages.reducer | default dict -}}
{{- if $r.repository -}}
{{- include "benchcal.imageRef" (list $r .) -}}
{{- else -}}
{{- include "benchcal.evaluatorImage" . -}}
{{- end -}}
{{- end -}}

{{/* Namespaces that get the evaluator NetworkPolicies: the watched ones (namespace mode), else the
release namespace; plus networkPolicy.namespaces. A NetworkPolicy is namespaced, so in cluster mode
a run in a namespace not listed here runs without one (docs/operations.md, threat model). */}}
{{- define "benchcal.networkPolicyNamespaces" -}}
{{- $nss := list .Release.Namespace -}}
{{- if .Values.watchNamespaces -}}
{{- $nss = .Values.watchNamespaces -}}
{{- end -}}
{{- concat $nss .Values.networkPolicy.namespaces | uniq | toJson -}}
{{- end -}}

{{/* Fail early on combinations the schema cannot express. */}}
{{- define "benchcal.validate" -}}
{{- if and (not .Values.rbac.clusterScoped) (empty .Values.watchNamespaces) -}}
{{- fail "rbac.clusterScoped=false needs watchNamespaces: list the namespaces to watch (e.g. --set 'watchNamespaces={ml-evals}'), or set rbac.clusterScoped=true to watch all namespaces" -}}
{{- end -}}
{{- if and .Values.networkPolicy.enabled (empty .Values.networkPolicy.apiServer.cidrs) -}}
{{- fail "networkPolicy.enabled=true needs networkPolicy.apiServer.cidrs: a NetworkPolicy cannot name the API server; give its endpoints' addresses (kubectl get endpoints kubernetes -n default), e.g. --set 'networkPolicy.apiServer.cidrs={10.0.0.10/32}'" -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) -}}
{{- fail "metrics.serviceMonitor.enabled=true needs metrics.enabled=true" -}}
{{- end -}}
{{- end -}}
