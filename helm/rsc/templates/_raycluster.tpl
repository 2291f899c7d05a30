{{/*
The Ray cluster shared by the RayService and the RayCluster: a head that runs no tasks, a CPU worker
group and an optional GPU worker group. Called with (dict "root" $ "component" "serve").
*/}}
{{- define "rsc.rayClusterSpec" -}}
{{- $root := .root -}}
{{- $values := $root.Values -}}
rayVersion: {{ $values.rayVersion | quote }}
authOptions:
  mode: token
  {{- with $values.ray.auth.existingSecret }}
  secretName: {{ . }}
  {{- end }}
enableInTreeAutoscaling: false
headGroupSpec:
  rayStartParams:
    num-cpus: "0"
    dashboard-host: 0.0.0.0
    metrics-export-port: {{ $values.datadog.metricsPort | quote }}
  template:
    {{- include "rsc.rayPodMetadata" (dict "root" $root "component" .component "role" "ray-head") | nindent 4 }}
    spec:
      {{- include "rsc.rayPodSpec" (dict "root" $root) | nindent 6 }}
      containers:
        - name: ray-head
          image: {{ include "rsc.image" $root }}
          imagePullPolicy: {{ $values.image.pullPolicy }}
          ports:
            - {name: gcs, containerPort: 6379}
            - {name: dashboard, containerPort: 8265}
            - {name: client, containerPort: 10001}
            - {name: serve, containerPort: 8000}
            - {name: metrics, containerPort: {{ $values.datadog.metricsPort }}}
          {{- include "rsc.rayContainerCommon" $root | nindent 10 }}
          resources:
            {{- toYaml $values.ray.head.resources | nindent 12 }}
workerGroupSpecs:
  - groupName: cpu
    replicas: {{ $values.ray.cpuWorkers.replicas }}
    minReplicas: {{ $values.ray.cpuWorkers.replicas }}
    maxReplicas: {{ $values.ray.cpuWorkers.replicas }}
    rayStartParams:
      metrics-export-port: {{ $values.datadog.metricsPort | quote }}
    template:
      {{- include "rsc.rayPodMetadata" (dict "root" $root "component" .component "role" "ray-worker") | nindent 6 }}
      spec:
        {{- include "rsc.rayPodSpec" (dict "root" $root) | nindent 8 }}
        containers:
          - name: ray-worker
            image: {{ include "rsc.image" $root }}
            imagePullPolicy: {{ $values.image.pullPolicy }}
            ports:
              - {name: serve, containerPort: 8000}
              - {name: metrics, containerPort: {{ $values.datadog.metricsPort }}}
            {{- include "rsc.rayContainerCommon" $root | nindent 12 }}
            resources:
              {{- toYaml $values.ray.cpuWorkers.resources | nindent 14 }}
  {{- with $values.ray.gpuWorkers }}
  {{- if gt (int .replicas) 0 }}
  - groupName: gpu
    replicas: {{ .replicas }}
    minReplicas: {{ .replicas }}
    maxReplicas: {{ .replicas }}
    rayStartParams:
      metrics-export-port: {{ $values.datadog.metricsPort | quote }}
    template:
      {{- include "rsc.rayPodMetadata" (dict "root" $root "component" $.component "role" "ray-gpu-worker") | nindent 6 }}
      spec:
        {{- include "rsc.rayPodSpec" (dict "root" $root) | nindent 8 }}
        {{- with .nodeSelector }}
        nodeSelector:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        {{- with .tolerations }}
        tolerations:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        containers:
          - name: ray-worker
            image: {{ include "rsc.gpuImage" $root }}
            imagePullPolicy: {{ $values.image.pullPolicy }}
            ports:
              - {name: serve, containerPort: 8000}
              - {name: metrics, containerPort: {{ $values.datadog.metricsPort }}}
            {{- include "rsc.rayContainerCommon" $root | nindent 12 }}
            resources:
              requests:
                {{- toYaml .resources.requests | nindent 16 }}
                nvidia.com/gpu: {{ .gpusPerWorker }}
              limits:
                {{- toYaml .resources.limits | nindent 16 }}
                nvidia.com/gpu: {{ .gpusPerWorker }}
  {{- end }}
  {{- end }}
{{- end }}

{{- define "rsc.rayPodMetadata" -}}
metadata:
  labels:
    {{- include "rsc.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}-{{ .role }}
    rsc.io/ray-node: "true"
  {{- if .root.Values.datadog.enabled }}
  annotations:
    {{- $container := ternary "ray-head" "ray-worker" (eq .role "ray-head") }}
    {{- $instance := dict "openmetrics_endpoint" (printf "http://%%%%host%%%%:%v" .root.Values.datadog.metricsPort) "tags" (list) }}
    {{- range $key, $value := .root.Values.datadog.tags }}
    {{- $_ := set $instance "tags" (append $instance.tags (printf "%s:%s" $key $value)) }}
    {{- end }}
    ad.datadoghq.com/{{ $container }}.checks: {{ dict "ray" (dict "init_config" (dict) "instances" (list $instance)) | toJson | quote }}
  {{- end }}
{{- end }}

{{- define "rsc.rayPodSpec" -}}
serviceAccountName: {{ include "rsc.serviceAccountName" .root }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
volumes:
  - name: shm
    emptyDir:
      medium: Memory
      sizeLimit: {{ .root.Values.ray.shmSize }}
{{- end }}

{{- define "rsc.rayContainerCommon" -}}
securityContext:
  {{- toYaml .Values.containerSecurityContext | nindent 2 }}
volumeMounts:
  - {name: shm, mountPath: /dev/shm}
{{- if or .Values.storage.existingSecret .Values.storage.s3EndpointUrl }}
{{- with .Values.storage.existingSecret }}
envFrom:
  - secretRef:
      name: {{ . }}
{{- end }}
{{- end }}
env:
  - name: RAY_AUTH_MODE
    value: token
  {{- with .Values.storage.s3EndpointUrl }}
  - name: AWS_ENDPOINT_URL
    value: {{ . | quote }}
  - name: MLFLOW_S3_ENDPOINT_URL
    value: {{ . | quote }}
  {{- end }}
{{- end }}
