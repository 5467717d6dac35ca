{{/*
Labels of every object: the two manifests/ gives everything, then Helm's.
*/}}
{{- define "gitops-guard.labels" -}}
app.kubernetes.io/name: gitops-guard
app.kubernetes.io/part-of: gitops-guard
{{ include "gitops-guard.helmLabels" . }}
{{- end }}

{{/*
Helm's own labels (tests/it/chart.rs ignores exactly these).
*/}}
{{- define "gitops-guard.helmLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The Pods' labels, and every selector of them.
*/}}
{{- define "gitops-guard.selectorLabels" -}}
app.kubernetes.io/name: gitops-guard
{{- end }}

{{/*
The ServiceAccount every binding names.
*/}}
{{- define "gitops-guard.subject" -}}
- {kind: ServiceAccount, name: gitops-guard, namespace: {{ .Release.Namespace }}}
{{- end }}

{{- define "gitops-guard.image" -}}
{{- $ref := printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- with .Values.image.digest }}{{ $ref = printf "%s@%s" $ref . }}{{ end -}}
{{- $ref -}}
{{- end }}

{{/*
The policy file: .Values.policy with mode and pinImages folded in; empty
when nothing is set (the guard then runs on its embedded defaults).
*/}}
{{- define "gitops-guard.policy" -}}
{{- $policy := deepCopy .Values.policy -}}
{{- with .Values.mode }}{{ $_ := set $policy "defaultMode" . }}{{ end -}}
{{- with .Values.pinImages -}}
{{- $images := deepCopy (get $policy "images" | default dict) -}}
{{- $_ := set $images "defaultMode" . -}}
{{- $_ := set $policy "images" $images -}}
{{- end -}}
{{- if $policy }}{{ toYaml $policy }}{{ end -}}
{{- end }}

{{/*
Certificate settings that cannot work together stop the render.
*/}}
{{- define "gitops-guard.checkCertificates" -}}
{{- $c := .Values.certificates -}}
{{- if not (has $c.source (list "own" "cert-manager")) -}}
{{- fail (printf "certificates.source must be own or cert-manager, not %q" $c.source) -}}
{{- end -}}
{{- if and (eq $c.source "cert-manager") $c.caBundle -}}
{{- fail "certificates.caBundle is for certificates.source=own; with cert-manager, cainjector fills caBundle" -}}
{{- end -}}
{{- end }}

{{/*
The webhook configurations' metadata.annotations: the cainjector
annotation, left out only when the chart sets caBundle itself.
*/}}
{{- define "gitops-guard.webhookAnnotations" -}}
{{- include "gitops-guard.checkCertificates" . -}}
{{- if not .Values.certificates.caBundle -}}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/gitops-guard-tls
{{- end }}
{{- end }}

{{/*
clientConfig of one webhook: (list $ "/path").
*/}}
{{- define "gitops-guard.clientConfig" -}}
{{- $ := index . 0 -}}
clientConfig:
  service: {name: gitops-guard, namespace: {{ $.Release.Namespace }}, path: {{ index . 1 }}, port: 443}
  {{- with $.Values.certificates.caBundle }}
  caBundle: {{ . }}
  {{- end }}
{{- end }}
