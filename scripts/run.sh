#!/usr/bin/env bash
# Runs Portcullis for development on http://127.0.0.1:8080: starts what it needs, then
# `portcullis serve` creates and migrates the database, loads the default policies into an
# empty one, and generates a development signing key (var/) on first start.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/services.sh
# Plain HTTP in development: a Secure cookie would not come back from the browser.
export PORTCULLIS_SESSION__SECURE_COOKIE="${PORTCULLIS_SESSION__SECURE_COOKIE:-false}"
exec cargo run --release -- serve "$@"
