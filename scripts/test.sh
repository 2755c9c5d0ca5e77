#!/usr/bin/env bash
# Runs every test: unit tests, and the integration tests against real PostgreSQL, Redis and
# nginx (each test creates its own database and Redis namespace).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/services.sh
exec cargo test --locked "$@"
