{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "crdb-migrate.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name: the release name, plus the chart name unless it already contains it. */}}
{{- define "crdb-migrate.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "crdb-migrate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "crdb-migrate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "crdb-migrate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "crdb-migrate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "crdb-migrate.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
A migration version as a string. Versions are 14-digit integers; an unquoted one in a values
file arrives as a float64 and would print as 2.0240101e+13, so numbers go through int64.
*/}}
{{- define "crdb-migrate.version" -}}
{{- if kindIs "string" . }}{{ . }}{{ else }}{{ . | int64 }}{{ end }}
{{- end }}

{{/*
The Job podFailurePolicy, built from the exit codes (src/exit.rs, Exit::pod_failure_action): the ONE
place in this chart where the exit codes live. tests/deploy.rs checks these lists against the
binary's table. Argument: the container name.
  - DisruptionTarget (eviction, preemption, node drain): Ignore, not counted against backoffLimit.
  - permanent failures: FailJob at once, retrying cannot help.
  - transient failures: Count against backoffLimit and retry.
podFailurePolicy requires restartPolicy: Never.
*/}}
{{- define "crdb-migrate.podFailurePolicy" -}}
rules:
  - action: Ignore
    onPodConditions:
      - type: DisruptionTarget
        status: "True"
  - action: FailJob
    onExitCodes:
      containerName: {{ . }}
      operator: In
      values: [20, 21, 30, 31, 32, 33]
  - action: Count
    onExitCodes:
      containerName: {{ . }}
      operator: In
      values: [10, 11, 12, 13, 143]
{{- end }}

{{/* Pod-level securityContext: the "restricted" Pod Security Standard, as uid/gid 65532. */}}
{{- define "crdb-migrate.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container-level securityContext: read-only root, no privilege escalation, no capabilities. */}}
{{- define "crdb-migrate.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* DATABASE_URL from the existing Secret. */}}
{{- define "crdb-migrate.databaseEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "database.urlSecret.name is required" .Values.database.urlSecret.name }}
      key: {{ .Values.database.urlSecret.key }}
{{- end }}

{{/* The read-only certificate volume mount, when a TLS Secret is configured. */}}
{{- define "crdb-migrate.certsVolumeMount" -}}
{{- if .Values.database.tlsSecret.name }}
volumeMounts:
  - name: certs
    mountPath: {{ .Values.database.tlsSecret.mountPath }}
    readOnly: true
{{- end }}
{{- end }}

{{- define "crdb-migrate.certsVolume" -}}
{{- if .Values.database.tlsSecret.name }}
volumes:
  - name: certs
    secret:
      secretName: {{ .Values.database.tlsSecret.name }}
      defaultMode: {{ .Values.database.tlsSecret.defaultMode }}
{{- end }}
{{- end }}

{{- /*
The run settings both migration Jobs share (target, timeouts, environment, switches), as env
entries; MIGRATE_PHASE is set by each Job.
*/ -}}
{{- define "crdb-migrate.runEnv" -}}
{{- with .Values.targetVersion }}
- name: MIGRATE_TARGET_VERSION
  value: {{ include "crdb-migrate.version" . | quote }}
{{- end }}
- name: MIGRATE_WAIT_TIMEOUT
  value: {{ .Values.waitTimeout | quote }}
- name: MIGRATE_LEASE_TTL
  value: {{ .Values.leaseTtl | quote }}
- name: MIGRATE_LEASE_TIMEOUT
  value: {{ .Values.leaseTimeout | quote }}
{{- with .Values.environment }}
- name: ENVIRONMENT
  value: {{ . | quote }}
{{- end }}
- name: MIGRATE_ALLOW_NEWER_SCHEMA
  value: {{ .Values.allowNewerSchema | quote }}
- name: MIGRATE_CREATE_DATABASE
  value: {{ .Values.createDatabase | quote }}
- name: LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- end }}

{{- /*
MIGRATE_PHASE of the main hook Job: `phase` validated ("" applies everything).
*/ -}}
{{- define "crdb-migrate.phase" -}}
{{- $phase := .Values.phase | default "" -}}
{{- if not (has $phase (list "" "expand" "contract")) -}}
{{- fail (printf "phase must be \"\", \"expand\" or \"contract\", got %q" $phase) -}}
{{- end -}}
{{- $phase -}}
{{- end }}
