{{/* Naming and labels only (C22): every other template stays dumb. */}}

{{- define "rsc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rsc.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "rsc.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "rsc.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "rsc.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "rsc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rsc
{{- end }}

{{- define "rsc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rsc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rsc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rsc.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "rsc.pipelineServiceAccountName" -}}
{{- default (printf "%s-pipeline" (include "rsc.fullname" .)) .Values.pipeline.serviceAccount.name }}
{{- end }}

{{- define "rsc.mlflowName" -}}
{{- printf "%s-mlflow" (include "rsc.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Host headers MLflow accepts: the Service's DNS names with any port, localhost, and the extras. */}}
{{- define "rsc.mlflowAllowedHosts" -}}
{{- $name := include "rsc.mlflowName" . -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list $name (printf "%s:*" $name) (printf "%s.%s:*" $name $ns) (printf "%s.%s.svc:*" $name $ns) (printf "%s.%s.svc.cluster.local:*" $name $ns) "localhost:*" "127.0.0.1:*" -}}
{{- concat $hosts .Values.mlflow.allowedHosts | join "," -}}
{{- end }}

{{- define "rsc.trackingUri" -}}
{{- default (printf "http://%s:%v" (include "rsc.mlflowName" .) .Values.mlflow.port) .Values.serve.trackingUri }}
{{- end }}

{{- define "rsc.image" -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag }}
{{- end }}

{{- define "rsc.gpuImage" -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.gpuTag }}
{{- end }}
