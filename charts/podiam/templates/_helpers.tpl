{{/*
Object names are fixed (podiam, podiam-agent, podiam-webhook, ...) as in deploy/: podiam is one
per cluster, and the names are what the documentation and `kubectl -n <ns> exec deploy/podiam`
use. The namespace is the release's.
*/}}

{{- define "podiam.labels" -}}
app.kubernetes.io/part-of: podiam
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "podiam.image" -}}
{{ printf "%s:%s" .Values.image.repository (toString .Values.image.tag) }}
{{- end -}}

{{/* The control plane's URL inside the cluster (its Service). */}}
{{- define "podiam.serviceUrl" -}}
{{ printf "http://podiam.%s.svc:%v" .Release.Namespace .Values.controlPlane.service.port }}
{{- end -}}

{{/* podiamUrl, or the control plane's Service when the chart deploys it. */}}
{{- define "podiam.endpoint" -}}
{{- if .Values.podiamUrl -}}
{{ .Values.podiamUrl }}
{{- else if .Values.controlPlane.enabled -}}
{{ include "podiam.serviceUrl" . }}
{{- else -}}
{{ fail "podiamUrl is required when controlPlane.enabled is false: the agent and the webhook need podiam's URL" }}
{{- end -}}
{{- end -}}

{{- define "podiam.requireClusterName" -}}
{{- if not .Values.clusterName -}}
{{ fail "clusterName is required by the agent and the webhook: the cluster's name in podiam's EKS API" }}
{{- end -}}
{{- end -}}

{{/*
The Secret a component's AWS credentials come from ("" when it uses the SDK's default chain).
Argument: dict "root" $ "component" "agent"|"webhook".
*/}}
{{- define "podiam.credentialsSecret" -}}
{{- $c := index .root.Values .component "credentials" -}}
{{- if $c.existingSecret -}}
{{ $c.existingSecret }}
{{- else if or $c.accessKeyId $c.secretAccessKey -}}
{{- if not (and $c.accessKeyId $c.secretAccessKey) -}}
{{ fail (printf "%s.credentials: accessKeyId and secretAccessKey go together" .component) }}
{{- end -}}
{{ printf "podiam-%s-aws" .component }}
{{- end -}}
{{- end -}}

{{/* The webhook's TLS Secret. */}}
{{- define "podiam.webhookTlsSecret" -}}
{{- if eq .Values.webhook.tls.mode "secret" -}}
{{ .Values.webhook.tls.secretName | default "podiam-webhook-tls" }}
{{- else -}}
podiam-webhook-tls
{{- end -}}
{{- end -}}

{{/* DNS names of the webhook's serving certificate: the Service's, and extraDnsNames. */}}
{{- define "podiam.webhookDnsNames" -}}
{{- $ns := .Release.Namespace -}}
{{- $names := list "podiam-webhook" (printf "podiam-webhook.%s" $ns) (printf "podiam-webhook.%s.svc" $ns) (printf "podiam-webhook.%s.svc.cluster.local" $ns) -}}
{{- concat $names .Values.webhook.tls.extraDnsNames | uniq | toJson -}}
{{- end -}}

{{/* The opt-out label: pods carrying it are never sent to the webhook (podiam's own included). */}}
{{- define "podiam.skipLabel" -}}
{{ printf "%s/skip-pod-identity-webhook" .Values.webhook.annotationPrefix }}
{{- end -}}
