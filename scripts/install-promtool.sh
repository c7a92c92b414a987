#!/usr/bin/env bash
# Installs promtool and prometheus (Debian/Ubuntu package "prometheus") for the
# alert-rule tests (test/observability/promtool.test.ts) and the live alert test
# (test/observability/prometheus-live.test.ts, which starts its own prometheus). Idempotent: does nothing when promtool is
# already on PATH. Needs root (or sudo) and apt. The package's prometheus service is
# not started in containers without an init system; nothing else is touched.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  echo "install-promtool: $(promtool --version 2>&1 | head -n1) already installed"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-promtool: apt-get not found; install promtool (Prometheus >= 2.37) and put it on PATH" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-promtool: need root or sudo to apt-get install prometheus" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends prometheus

command -v promtool >/dev/null 2>&1 || { echo "install-promtool: promtool still not on PATH" >&2; exit 1; }
echo "install-promtool: installed $(promtool --version 2>&1 | head -n1)"
