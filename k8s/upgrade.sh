#!/usr/bin/env bash
# One command for a region's release:
#   1. helm upgrade --install --atomic --wait  (pre-upgrade hook: migrations;
#      a failed hook or rollout is rolled back by --atomic itself)
#   2. the k6 load gate: `helm test` (default) or the k6-operator TestRun
#   3. the gate failed -> helm rollback to the revision that ran before, exit 1
#
# Usage: k8s/upgrade.sh <region> [--gate helm|operator] [extra helm upgrade args...]
#   e.g. k8s/upgrade.sh us-east-1 --set image.digest=sha256:...
# Environment: RELEASE (swipe-authorizer), NAMESPACE (swipe-authorizer),
#   TIMEOUT (10m, rollout), GATE_TIMEOUT (15m), HELM / KUBECTL (binaries).
set -euo pipefail

RELEASE="${RELEASE:-swipe-authorizer}"
NAMESPACE="${NAMESPACE:-swipe-authorizer}"
TIMEOUT="${TIMEOUT:-10m}"
GATE_TIMEOUT="${GATE_TIMEOUT:-15m}"
HELM="${HELM:-helm}"
KUBECTL="${KUBECTL:-kubectl}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/helm/swipe-authorizer"

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

# The chart ships a copy of the gate; refuse to release a drifted one.
cmp -s "$ROOT/loadtest/gate.js" "$CHART/files/k6-gate.js" || die "helm/swipe-authorizer/files/k6-gate.js differs from loadtest/gate.js"
cmp -s "$ROOT/loadtest/common.js" "$CHART/files/k6-common.js" || die "helm/swipe-authorizer/files/k6-common.js differs from loadtest/common.js"

# The revision to go back to: the one deployed now (none on a first install).
previous=""
if status_json="$("$HELM" status "$RELEASE" -n "$NAMESPACE" -o json 2>/dev/null)"; then
  previous="$(printf '%s' "$status_json" | grep -o '"version":[0-9][0-9]*' | head -n 1 | cut -d: -f2 || true)"
fi
log "region=$REGION release=$RELEASE namespace=$NAMESPACE previous revision=${previous:-none} gate=$GATE"

log "helm upgrade --install --atomic"
if ! "$HELM" upgrade --install "$RELEASE" "$CHART" \
  --namespace "$NAMESPACE" --create-namespace \
  -f "$VALUES" \
  --atomic --cleanup-on-fail --wait --timeout "$TIMEOUT" "$@"; then
  log "upgrade failed; --atomic has already restored revision ${previous:-none}"
  exit 1
fi

gate_helm() {
  "$HELM" test "$RELEASE" -n "$NAMESPACE" --timeout "$GATE_TIMEOUT" --logs
}

gate_operator() {
  local name="swipe-authorizer-gate" stage="" deadline codes
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
  [ "$stage" = "finished" ] || return 1
  codes="$("$KUBECTL" -n "$NAMESPACE" get pods -l "k6_cr=$name,runner=true" \
    -o jsonpath='{range .items[*]}{.status.containerStatuses[0].state.terminated.exitCode}{"\n"}{end}')"
  [ -n "$codes" ] || return 1
  ! printf '%s\n' "$codes" | grep -qv '^0$'
}

log "k6 gate ($GATE)"
if "gate_$GATE"; then
  log "gate passed: release $RELEASE is live in $REGION"
  exit 0
fi

if [ -z "$previous" ]; then
  log "gate FAILED on a first install: nothing to roll back to; the release stays installed but unproven"
  exit 1
fi
log "gate FAILED: rolling back to revision $previous"
"$HELM" rollback "$RELEASE" "$previous" -n "$NAMESPACE" --wait --timeout "$TIMEOUT" --cleanup-on-fail
log "rolled back to revision $previous"
exit 1
