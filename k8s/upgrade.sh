#!/usr/bin/env bash
# One command for a region's release. The new version takes no production
# traffic until the load gate has passed against it:
#   1. canary: `helm upgrade --install <release>-canary --set canary.enabled=true
#      --atomic --wait` -- the new api pods behind their own Service
#      (<release>-canary-api), migrations (pre-install hook, expand/contract),
#      no Ingress, so the processor never reaches them
#   2. the k6 load gate against the canary Service: `helm test <release>-canary`
#      (default) or the k6-operator TestRun (k8s/k6/testrun.yaml)
#   3. gate passed -> promote: `helm upgrade --install <release> --atomic
#      --wait` (a failed rollout is rolled back by --atomic itself)
#   4. the canary release is uninstalled in every case
# A failed gate leaves the release serving production untouched: the new
# version never had its traffic.
#
# Usage: k8s/upgrade.sh <region> [--gate helm|operator] [extra helm upgrade args...]
#   e.g. k8s/upgrade.sh us-east-1 --set image.digest=sha256:...
# Environment: RELEASE (swipe-authorizer), NAMESPACE (swipe-authorizer),
#   TIMEOUT (10m, rollout), GATE_TIMEOUT (15m), CANARY_REPLICAS (2; 6 with
#   --gate operator), HELM / KUBECTL (binaries).
set -euo pipefail

RELEASE="${RELEASE:-swipe-authorizer}"
NAMESPACE="${NAMESPACE:-swipe-authorizer}"
TIMEOUT="${TIMEOUT:-10m}"
GATE_TIMEOUT="${GATE_TIMEOUT:-15m}"
HELM="${HELM:-helm}"
KUBECTL="${KUBECTL:-kubectl}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/helm/swipe-authorizer"
CANARY="$RELEASE-canary"

log() { printf '[upgrade] %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

[ $# -ge 1 ] || die "usage: k8s/upgrade.sh <region> [--gate helm|operator] [helm args...]"
REGION="$1"
shift
GATE="helm"
if [ "${1:-}" = "--gate" ]; then
  GATE="${2:-}"
  shift 2 || die "--gate needs helm or operator"
fi
case "$GATE" in helm | operator) ;; *) die "--gate must be helm or operator, got '$GATE'" ;; esac
VALUES="$CHART/values/$REGION.yaml"
[ -f "$VALUES" ] || die "no values file for region '$REGION' ($VALUES)"
if [ "$GATE" = "operator" ]; then CANARY_REPLICAS="${CANARY_REPLICAS:-6}"; else CANARY_REPLICAS="${CANARY_REPLICAS:-2}"; fi

# The chart ships a copy of the gate; refuse to release a drifted one.
cmp -s "$ROOT/loadtest/gate.js" "$CHART/files/k6-gate.js" || die "helm/swipe-authorizer/files/k6-gate.js differs from loadtest/gate.js"
cmp -s "$ROOT/loadtest/common.js" "$CHART/files/k6-common.js" || die "helm/swipe-authorizer/files/k6-common.js differs from loadtest/common.js"

# For the log: the revision serving now (none on a first install).
previous=""
if status_json="$("$HELM" status "$RELEASE" -n "$NAMESPACE" -o json 2>/dev/null)"; then
  previous="$(printf '%s' "$status_json" | grep -o '"version":[0-9][0-9]*' | head -n 1 | cut -d: -f2 || true)"
fi
log "region=$REGION release=$RELEASE namespace=$NAMESPACE serving revision=${previous:-none} gate=$GATE canary=$CANARY x$CANARY_REPLICAS"

remove_canary() {
  log "uninstalling $CANARY"
  "$HELM" uninstall "$CANARY" -n "$NAMESPACE" --wait --timeout "$TIMEOUT" || log "could not uninstall $CANARY: remove it by hand"
}

log "1/3 canary: helm upgrade --install $CANARY (canary.enabled=true) --atomic"
if ! "$HELM" upgrade --install "$CANARY" "$CHART" \
  --namespace "$NAMESPACE" --create-namespace \
  -f "$VALUES" \
  --atomic --cleanup-on-fail --wait --timeout "$TIMEOUT" "$@" \
  --set canary.enabled=true --set canary.replicas="$CANARY_REPLICAS"; then
  log "canary did not come up; $RELEASE is untouched (revision ${previous:-none})"
  remove_canary
  exit 1
fi

gate_helm() {
  "$HELM" test "$CANARY" -n "$NAMESPACE" --timeout "$GATE_TIMEOUT" --logs
}

gate_operator() {
  local name="swipe-authorizer-gate" stage="" deadline codes rc=0
  "$KUBECTL" -n "$NAMESPACE" create configmap swipe-authorizer-k6-gate-large \
    --from-file=gate.js="$ROOT/loadtest/gate.js" --from-file=common.js="$ROOT/loadtest/common.js" \
    --dry-run=client -o yaml | "$KUBECTL" -n "$NAMESPACE" apply -f - || return 1
  "$KUBECTL" -n "$NAMESPACE" delete testrun "$name" --ignore-not-found --wait=true || return 1
  "$KUBECTL" -n "$NAMESPACE" apply -f "$ROOT/k8s/k6/testrun.yaml" || return 1
  deadline=$((SECONDS + 1800))
  while [ "$SECONDS" -lt "$deadline" ]; do
    stage="$("$KUBECTL" -n "$NAMESPACE" get testrun "$name" -o jsonpath='{.status.stage}' 2>/dev/null || true)"
    case "$stage" in finished | error) break ;; esac
    sleep 10
  done
  log "TestRun stage: ${stage:-unknown}"
  if [ "$stage" = "finished" ]; then
    # The runner pods still exist (no cleanup: post): read every exit code.
    codes="$("$KUBECTL" -n "$NAMESPACE" get pods -l "k6_cr=$name,runner=true" \
      -o jsonpath='{range .items[*]}{.status.containerStatuses[0].state.terminated.exitCode}{"\n"}{end}')" || codes=""
    log "runner exit codes: $(printf '%s' "$codes" | tr '\n' ' ')"
    if [ -z "$codes" ] || printf '%s\n' "$codes" | grep -qv '^0$'; then rc=1; fi
  else
    rc=1
  fi
  "$KUBECTL" -n "$NAMESPACE" delete testrun "$name" --ignore-not-found --wait=false || true
  return "$rc"
}

log "2/3 k6 gate ($GATE) against $CANARY"
if ! "gate_$GATE"; then
  log "gate FAILED: not promoting; $RELEASE keeps serving revision ${previous:-none}"
  remove_canary
  exit 1
fi

log "3/3 gate passed: promoting, helm upgrade --install $RELEASE --atomic"
if ! "$HELM" upgrade --install "$RELEASE" "$CHART" \
  --namespace "$NAMESPACE" --create-namespace \
  -f "$VALUES" \
  --atomic --cleanup-on-fail --wait --timeout "$TIMEOUT" "$@"; then
  log "promotion failed; --atomic has already restored revision ${previous:-none}"
  remove_canary
  exit 1
fi
remove_canary
log "release $RELEASE is live in $REGION"
exit 0
