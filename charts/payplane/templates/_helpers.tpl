{{- define "payplane.name" -}}payplane-operator{{- end -}}
{{- define "payplane.labels" -}}
app.kubernetes.io/name: payplane-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: payplane
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "payplane.selector" -}}
app.kubernetes.io/name: payplane-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
