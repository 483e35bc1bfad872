{{- define "mooring.name" -}}mooring{{- end -}}

{{- define "mooring.labels" -}}
app.kubernetes.io/part-of: mooring
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "mooring.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "mooring.source.name" -}}{{ .Release.Name }}-source-controller{{- end -}}
{{- define "mooring.kustomize.name" -}}{{ .Release.Name }}-kustomize-controller{{- end -}}

{{- define "mooring.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "mooring.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- /* The ports the controllers listen on: one definition for the Deployments and the policies. */}}
{{- define "mooring.metricsPort" -}}8080{{- end -}}
{{- define "mooring.artifactPort" -}}9090{{- end -}}

{{/* The port of the source-controller's webhook receiver server. */}}
{{- define "mooring.receiverPort" -}}9292{{- end -}}

{{- define "mooring.source.selector" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: source-controller
{{- end -}}

{{- define "mooring.kustomize.selector" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: kustomize-controller
{{- end -}}

{{- /* Egress both controllers need: DNS and the API server. */}}
{{- define "mooring.egress.common" -}}
- ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
  {{- with .Values.networkPolicy.dns.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
- ports:
    {{- range .Values.networkPolicy.apiServer.ports }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
  {{- with .Values.networkPolicy.apiServer.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- /* Ingress both controllers need: metrics (and the probes, which share its port). */}}
{{- define "mooring.ingress.metrics" -}}
- ports:
    - {port: {{ include "mooring.metricsPort" . }}, protocol: TCP}
  {{- with .Values.networkPolicy.metrics.from }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
