{{/* Chart name, overridable. */}}
{{- define "dto.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name, used for every object of the release. Cluster-scoped objects (ClusterRoles, the
admission policy) carry it too, so that two releases never clash.
*/}}
{{- define "dto.fullname" -}}
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

{{- define "dto.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "dto.labels" -}}
helm.sh/chart: {{ include "dto.chart" . }}
{{ include "dto.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: durable-topic-operator
{{- end }}

{{/* Labels that select the operator's Pods. */}}
{{- define "dto.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dto.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dto.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dto.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "dto.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Name of the release's default DurabilityPolicy (cluster-scoped, so it carries the release). */}}
{{- define "dto.defaultPolicyName" -}}
{{- .Values.defaultPolicy.name | default (printf "%s-default" (include "dto.fullname" .)) }}
{{- end }}

{{/* Where the Kafka client files are mounted (properties, SASL password, TLS files). */}}
{{- define "dto.kafkaDir" -}}/etc/durabletopic/kafka{{- end }}

{{/* The librdkafka client properties file. Secrets are referenced by file, never inlined. */}}
{{- define "dto.clientProperties" -}}
{{- $k := .Values.kafka -}}
{{- $dir := include "dto.kafkaDir" . -}}
# librdkafka client properties of the durable-topic-operator, rendered by Helm.
# Secrets are not in this file: `KEY.file=PATH` makes the operator read KEY from a mounted Secret file.
security.protocol={{ $k.securityProtocol }}
{{- if hasPrefix "SASL_" $k.securityProtocol }}
sasl.mechanism={{ $k.sasl.mechanism }}
sasl.username={{ required "kafka.sasl.username is required with a SASL_* kafka.securityProtocol" $k.sasl.username }}
sasl.password.file={{ $dir }}/sasl-password
{{- end }}
{{- if $k.tls.caSecret.name }}
ssl.ca.location={{ $dir }}/ca.crt
{{- end }}
{{- if $k.tls.clientSecret.name }}
ssl.certificate.location={{ $dir }}/tls.crt
ssl.key.location={{ $dir }}/tls.key
{{- end }}
{{- range $key, $value := $k.extraProperties }}
{{ $key }}={{ $value }}
{{- end }}
{{- end }}

{{/* matchResources.namespaceSelector of the admission policy binding. */}}
{{- define "dto.admissionNamespaceSelector" -}}
{{- if .Values.admissionPolicy.namespaceSelector }}
{{- toYaml .Values.admissionPolicy.namespaceSelector }}
{{- else if .Values.watchNamespaces }}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: In
    values:
      {{- toYaml .Values.watchNamespaces | nindent 6 }}
{{- else }}
{}
{{- end }}
{{- end }}

{{/* Rules of the operator over its namespaced resources (a ClusterRole, or a Role per namespace). */}}
{{- define "dto.namespacedRules" -}}
# Watch and list DurableTopics (kopf, and the operator's own full listing); the finalizer.
- apiGroups: ["durabletopic.dev"]
  resources: ["durabletopics"]
  verbs: ["list", "watch", "patch"]
# Write their status (conditions, observedGeneration, what Kafka has).
- apiGroups: ["durabletopic.dev"]
  resources: ["durabletopics/status"]
  verbs: ["patch"]
# Events on DurableTopics (drift, refusals, deletions), through the core API.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# Client profile ConfigMaps (`<name>-client-profile`), owned by their DurableTopic: written by
# server-side apply only: `patch`, and `create` for the first apply, which creates the object.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["create", "patch"]
{{- end }}

{{/*
The Secrets and ConfigMaps the operator may read, as JSON: namespace -> {secrets: [names],
configMaps: [names]}, from the specs of kafkaClusters and from clusterSecretAccess.
*/}}
{{- define "dto.clusterSourceAccess" -}}
{{- $access := dict }}
{{- range $i, $cluster := .Values.kafkaClusters }}
{{- $where := printf "kafkaClusters[%d] (%s): spec" $i $cluster.name }}
{{- $spec := $cluster.spec | default dict }}
{{- $authentication := $spec.authentication | default dict }}
{{- range $method := list "sasl" "mutualTls" }}
{{- with get $authentication $method }}
{{- $ref := .secretRef | default dict }}
{{- $namespace := required (printf "%s.authentication.%s.secretRef.namespace is required" $where $method) $ref.namespace }}
{{- $name := required (printf "%s.authentication.%s.secretRef.name is required" $where $method) $ref.name }}
{{- include "dto.grantSource" (list $access $namespace "secrets" $name) }}
{{- end }}
{{- end }}
{{- $tls := $spec.tls | default dict }}
{{- with $tls.caRef }}
{{- $kind := eq (.kind | default "Secret") "ConfigMap" | ternary "configMaps" "secrets" }}
{{- $namespace := required (printf "%s.tls.caRef.namespace is required" $where) .namespace }}
{{- $name := required (printf "%s.tls.caRef.name is required" $where) .name }}
{{- include "dto.grantSource" (list $access $namespace $kind $name) }}
{{- end }}
{{- end }}
{{- range .Values.clusterSecretAccess }}
{{- $namespace := .namespace }}
{{- range .secrets }}
{{- include "dto.grantSource" (list $access $namespace "secrets" .) }}
{{- end }}
{{- range .configMaps }}
{{- include "dto.grantSource" (list $access $namespace "configMaps" .) }}
{{- end }}
{{- end }}
{{- toJson $access }}
{{- end }}

{{/* Adds a name to what the operator may read: (list $access namespace "secrets"|"configMaps" name). */}}
{{- define "dto.grantSource" -}}
{{- $access := index . 0 }}
{{- $namespace := index . 1 }}
{{- $names := get $access $namespace | default dict }}
{{- $_ := set $names (index . 2) (append (get $names (index . 2) | default list) (index . 3) | uniq | sortAlpha) }}
{{- $_ := set $access $namespace $names }}
{{- end }}
