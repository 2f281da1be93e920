#!/usr/bin/env bash
# System packages the test suite needs (a real Prometheus and Alertmanager, kubectl, PostgreSQL, a newer Node
# for the MCP conformance suite).
# Installs only what is missing; needs root (or sudo) on a fresh Debian/Ubuntu machine.
set -euo pipefail
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
# Debian's kubernetes-client conflicts with an already installed kubectl package: only when kubectl is absent.
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
# ssh-keygen / ssh-agent: signed approvals are checked against real OpenSSH (tests skip without it)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
# PostgreSQL server binaries for the shared-state tests (tests/support/postgres.py starts a cluster on loopback)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if ((${#need[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
