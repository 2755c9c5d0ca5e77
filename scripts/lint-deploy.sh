#!/usr/bin/env bash
# Lints what deploys Portcullis without running it (no Docker engine or cluster here): the
# Kubernetes manifests against the API schemas (kubernetes-validate, strict: unknown fields are
# errors) and, with yamllint, those and docker-compose.yml. Both linters install from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v yamllint >/dev/null && command -v kubernetes-validate >/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check yamllint kubernetes-validate
yamllint -c deploy/kubernetes/.yamllint deploy/kubernetes/*.yaml docker-compose.yml
kubernetes-validate --kubernetes-version 1.30.0 --strict deploy/kubernetes/*.yaml
