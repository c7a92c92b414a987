{{/* Names ----------------------------------------------------------------- */}}
{{- define "swipe-authorizer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "swipe-authorizer.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "swipe-authorizer.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "swipe-authorizer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "swipe-authorizer.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels: common labels; selector labels take a dict {ctx, component}. */}}
{{- define "swipe-authorizer.labels" -}}
helm.sh/chart: {{ include "swipe-authorizer.chart" . }}
app.kubernetes.io/name: {{ include "swipe-authorizer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: swipe-authorizer
{{- with .Values.region }}
topology.swipe-authorizer.io/region: {{ . }}
{{- end }}
{{- end -}}

{{- define "swipe-authorizer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "swipe-authorizer.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "swipe-authorizer.componentLabels" -}}
{{ include "swipe-authorizer.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Image reference: digest wins over tag; tag defaults to appVersion. */}}
{{- define "swipe-authorizer.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "swipe-authorizer.secretName" -}}
{{- default (printf "%s-secrets" (include "swipe-authorizer.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* terminationGracePeriodSeconds = preStop sleep + ceil(SHUTDOWN_GRACE_MS / 1000) + 5 s margin. */}}
{{- define "swipe-authorizer.terminationGrace" -}}
{{- $graceS := div (add (int .ctx.Values.config.shutdownGraceMs) 999) 1000 -}}
{{- add (int .preStop) $graceS 5 -}}
{{- end -}}

{{/* Fails rendering on combinations the schema cannot express. */}}
{{- define "swipe-authorizer.validate" -}}
{{- if and .Values.api.autoscaling.enabled (gt (int .Values.api.autoscaling.minReplicas) (int .Values.api.autoscaling.maxReplicas)) -}}
{{- fail "api.autoscaling.minReplicas must be <= api.autoscaling.maxReplicas" -}}
{{- end -}}
{{- if and .Values.ingress.processor.mtls.enabled (not .Values.ingress.processor.mtls.caSecret) -}}
{{- fail "ingress.processor.mtls.caSecret (namespace/name) is required when mTLS is enabled" -}}
{{- end -}}
{{- if and .Values.ingress.processor.enabled (not .Values.ingress.processor.tls.secretName) -}}
{{- fail "ingress.processor.tls.secretName is required: the processor webhook is served over TLS only" -}}
{{- end -}}
{{- if and (not .Values.secrets.existingSecret) (eq .Values.config.nodeEnv "production") -}}
{{- if or (not .Values.secrets.signatureSecrets) (not .Values.secrets.apiTokens) -}}
{{- fail "production needs secrets.existingSecret, or secrets.signatureSecrets and secrets.apiTokens" -}}
{{- end -}}
{{- end -}}
{{- if ge (int .Values.ingress.upstreamKeepaliveTimeoutS) 10 -}}
{{- fail "ingress.upstreamKeepaliveTimeoutS must stay below the api's ~10 s idle timeout (uWebSockets.js): a POST on a connection the api just closed is a 502" -}}
{{- end -}}
{{- $startupS := mul (int .Values.api.probes.startup.periodSeconds) (int .Values.api.probes.startup.failureThreshold) -}}
{{- if lt (int $startupS) (add (include "swipe-authorizer.bootHydrateBudgetS" . | int) 10) -}}
{{- fail (printf "api.probes.startup allows %d s, less than the boot hydrate budget (%s s) + 10 s: pods would be killed while hydrating" $startupS (include "swipe-authorizer.bootHydrateBudgetS" .)) -}}
{{- end -}}
{{- if .Values.loadGate.enabled -}}
{{- /* Round-robin storm: each trip gets rate x 60 / trips swipes a minute; it must stay below the limit. */ -}}
{{- if ge (mul (int .Values.loadGate.rate) 60) (mul (int .Values.loadGate.trips) (int .Values.config.maxSwipesPerMinute)) -}}
{{- fail (printf "loadGate.trips (%d) too few for loadGate.rate (%d/s): round-robin swipes reach %d or more a minute per trip, the velocity limit (config.maxSwipesPerMinute %d): the gate would measure VELOCITY_LIMIT declines" (int .Values.loadGate.trips) (int .Values.loadGate.rate) (div (mul (int .Values.loadGate.rate) 60) (int .Values.loadGate.trips)) (int .Values.config.maxSwipesPerMinute)) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.canary.enabled (not (hasSuffix "-canary" .Release.Name)) -}}
{{- fail "canary.enabled needs a release of its own whose name ends in -canary (k8s/upgrade.sh installs <release>-canary)" -}}
{{- end -}}
{{- if and .Values.redis.auth.enabled (not .Values.redis.auth.existingSecret) -}}
{{- fail "redis.auth.existingSecret is required when redis.auth.enabled" -}}
{{- end -}}
{{- with .Values.regions -}}
{{- if .peers -}}
{{- if not $.Values.region -}}
{{- fail "regions.peers needs region (this region's name)" -}}
{{- end -}}
{{- if not .secret.name -}}
{{- fail "regions.peers needs regions.secret.name: the Secret holding REGION_SECRETS (never in values)" -}}
{{- end -}}
{{- if not (and .ingress.enabled .ingress.host .ingress.tls.secretName) -}}
{{- fail "regions.peers needs regions.ingress (enabled, host, tls.secretName): the peers forward to it" -}}
{{- end -}}
{{- range .peers -}}
{{- if eq .name $.Values.region -}}
{{- fail (printf "regions.peers names this region (%s)" .name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (not .Values.database.existingSecret) (not .Values.secrets.existingSecret) (not .Values.database.url) -}}
{{- fail "set database.existingSecret (e.g. the CloudNativePG <cluster>-app Secret) or database.url" -}}
{{- end -}}
{{- end -}}

{{/* REGION_PEERS: name=url pairs, comma-separated (src/regions/config.ts). */}}
{{- define "swipe-authorizer.regionPeers" -}}
{{- $pairs := list -}}
{{- range .peers -}}
{{- $pairs = append $pairs (printf "%s=%s" .name .url) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* Seconds the api's boot hydrate check may take (src/cli.ts, hydrateAtBoot: 120_000 ms). */}}
{{- define "swipe-authorizer.bootHydrateBudgetS" -}}120{{- end -}}

{{/* Where the Redis CA is mounted (REDIS_TLS_CA_FILE). */}}
{{- define "swipe-authorizer.redisCaDir" -}}/etc/swipe-authorizer/redis-tls{{- end -}}

{{/* Volume and mount for the Redis CA, when TLS uses a CA Secret. */}}
{{- define "swipe-authorizer.redisCaVolume" -}}
{{- if and .Values.redis.tls.enabled .Values.redis.tls.caSecret }}
- name: redis-tls-ca
  secret:
    secretName: {{ .Values.redis.tls.caSecret }}
    items:
      - key: {{ .Values.redis.tls.caKey }}
        path: ca.crt
{{- end }}
{{- end -}}
{{- define "swipe-authorizer.redisCaMount" -}}
{{- if and .Values.redis.tls.enabled .Values.redis.tls.caSecret }}
- name: redis-tls-ca
  mountPath: {{ include "swipe-authorizer.redisCaDir" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* Environment shared by api, persister and the migration Job (CONTRACT.md §6). */}}
{{- define "swipe-authorizer.env" -}}
- name: NODE_ENV
  value: {{ .Values.config.nodeEnv | quote }}
- name: LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
- name: REDIS_PREFIX
  value: {{ .Values.config.redisPrefix | quote }}
- name: PARTITIONS
  value: {{ .Values.config.partitions | quote }}
- name: DECISION_TIMEOUT_MS
  value: {{ .Values.config.decisionTimeoutMs | quote }}
- name: FAILOPEN_ENABLED
  value: {{ .Values.config.failopen.enabled | quote }}
- name: FAILOPEN_MAX_CENTS
  value: {{ .Values.config.failopen.maxCents | quote }}
- name: FAILOPEN_SHOPPER_MAX_CENTS
  value: {{ .Values.config.failopen.shopperMaxCents | quote }}
- name: FAILOPEN_WINDOW_S
  value: {{ .Values.config.failopen.windowS | quote }}
- name: MAX_SWIPES_PER_MINUTE
  value: {{ .Values.config.maxSwipesPerMinute | quote }}
- name: TRIP_TTL_S
  value: {{ .Values.config.tripTtlS | quote }}
- name: SHUTDOWN_GRACE_MS
  value: {{ .Values.config.shutdownGraceMs | quote }}
- name: SA_REGION
  value: {{ .Values.region | quote }}
{{- if .Values.region }}
- name: REGION
  value: {{ .Values.region | quote }}
{{- end }}
{{- with .Values.regions }}
{{- if .peers }}
- name: REGION_PEERS
  value: {{ include "swipe-authorizer.regionPeers" . | quote }}
- name: REGION_FORWARD_TIMEOUT_MS
  value: {{ .forwardTimeoutMs | quote }}
- name: REGION_SECRETS
  valueFrom:
    secretKeyRef:
      name: {{ .secret.name }}
      key: {{ .secret.key }}
{{- end }}
{{- end }}
{{- if .Values.redis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
{{- else }}
- name: REDIS_URL
  value: {{ .Values.redis.url | quote }}
{{- end }}
{{- with .Values.redis.clusterNodes }}
- name: REDIS_CLUSTER_NODES
  value: {{ join "," . | quote }}
{{- end }}
{{- with .Values.redis.auth }}
{{- if .enabled }}
{{- with .username }}
- name: REDIS_USERNAME
  value: {{ . | quote }}
{{- end }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .passwordKey }}
{{- end }}
{{- end }}
- name: REDIS_TLS
  value: {{ .Values.redis.tls.enabled | quote }}
{{- if .Values.redis.tls.enabled }}
{{- if .Values.redis.tls.caSecret }}
- name: REDIS_TLS_CA_FILE
  value: {{ printf "%s/ca.crt" (include "swipe-authorizer.redisCaDir" .) | quote }}
{{- end }}
{{- with .Values.redis.tls.servername }}
- name: REDIS_TLS_SERVERNAME
  value: {{ . | quote }}
{{- end }}
{{- end }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ default (include "swipe-authorizer.secretName" .) .Values.database.existingSecret }}
      key: {{ ternary .Values.database.existingSecretKey "DATABASE_URL" (not (empty .Values.database.existingSecret)) }}
- name: SIGNATURE_SECRETS
  valueFrom:
    secretKeyRef:
      name: {{ include "swipe-authorizer.secretName" . }}
      key: {{ .Values.secrets.signatureSecretsKey }}
- name: API_TOKENS
  valueFrom:
    secretKeyRef:
      name: {{ include "swipe-authorizer.secretName" . }}
      key: {{ .Values.secrets.apiTokensKey }}
{{- range $name := list "STRIPE_WEBHOOK_SECRETS" "MARQETA_BASIC_AUTH" "LITHIC_WEBHOOK_SECRETS" }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "swipe-authorizer.secretName" $ }}
      key: {{ $name }}
      optional: true
{{- end }}
- name: STRIPE_API_VERSION
  value: {{ .Values.config.processors.stripeApiVersion | quote }}
- name: PARTIAL_APPROVALS
  value: {{ .Values.config.processors.partialApprovals | quote }}
- name: UNKNOWN_CARD_RECORDS_PER_MINUTE
  value: {{ .Values.config.processors.unknownCardRecordsPerMinute | quote }}
- name: UNKNOWN_CARD_RETENTION_DAYS
  value: {{ .Values.config.processors.unknownCardRetentionDays | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ include "swipe-authorizer.fullname" . | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ printf "deployment.environment=%s,cloud.region=%s,service.version=%s" .Values.config.nodeEnv (default "unknown" .Values.region) .Chart.AppVersion | quote }}
{{- with .Values.config.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
- name: OTEL_TRACES_SAMPLER
  value: parentbased_traceidratio
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $.Values.config.otel.samplerRatio | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Topology spread across zones (hard) and nodes (soft). Takes {ctx, component}. */}}
{{- define "swipe-authorizer.topologySpread" -}}
{{- if .ctx.Values.topologySpread.enabled -}}
topologySpreadConstraints:
  - maxSkew: {{ .ctx.Values.topologySpread.zoneMaxSkew }}
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: {{ .ctx.Values.topologySpread.zoneWhenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "swipe-authorizer.selectorLabels" . | nindent 8 }}
    matchLabelKeys: [pod-template-hash]
  - maxSkew: {{ .ctx.Values.topologySpread.hostnameMaxSkew }}
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: {{ .ctx.Values.topologySpread.hostnameWhenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "swipe-authorizer.selectorLabels" . | nindent 8 }}
    matchLabelKeys: [pod-template-hash]
{{- end }}
{{- end -}}

{{/* Annotation that rolls pods when the chart-managed Secret changes. */}}
{{- define "swipe-authorizer.secretChecksum" -}}
{{- if not .Values.secrets.existingSecret -}}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end -}}
{{- end -}}

{{/* The peers' CIDRs, comma-separated (the inter-region ingress' source ranges). */}}
{{- define "swipe-authorizer.regionCidrs" -}}
{{- $cidrs := list -}}
{{- range .peers -}}
{{- $cidrs = append $cidrs .cidr -}}
{{- end -}}
{{- join "," $cidrs -}}
{{- end -}}
