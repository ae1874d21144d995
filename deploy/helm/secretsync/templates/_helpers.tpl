{{/* The chart's name. */}}
{{- define "secretsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object names: the release name when it contains the chart's name (release `secretsync` gives exactly the
names of deploy/), else `<release>-secretsync`. */}}
{{- define "secretsync.fullname" -}}
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

{{/* Selector labels: exactly deploy/'s. */}}
{{- define "secretsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "secretsync.name" . }}
{{- end }}

{{/* Labels of every object: deploy/'s plus Helm's standard ones. */}}
{{- define "secretsync.labels" -}}
{{ include "secretsync.selectorLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "secretsync.serviceAccountName" -}}
{{- default (include "secretsync.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/* The digest key Secret: in the release's namespace, which the Role lets the controller create. */}}
{{- define "secretsync.digestKeySecret" -}}
{{- default (printf "%s/%s-digest-key" .Release.Namespace (include "secretsync.fullname" .)) .Values.digestKeySecret }}
{{- end }}
