#!/usr/bin/env bash
# Runs Portcullis for development on http://127.0.0.1:8080: starts what it needs, then
# `portcullis serve` creates and migrates the database, loads the default policies into an
# empty one, and generates development signing and encryption keys (var/) on first start
# (development mode: --dev).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/services.sh
# Plain HTTP in development: a Secure cookie would not come back from the browser.
export PORTCULLIS_SESSION__SECURE_COOKIE="${PORTCULLIS_SESSION__SECURE_COOKIE:-false}"
# --dev: generate and keep development keys under var/ (a production start without keys stops).
exec cargo run --release -- --dev serve "$@"
