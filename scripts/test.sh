#!/usr/bin/env bash
# Runs every check: the module layering, unit tests, and the integration tests against real
# PostgreSQL, Redis and nginx (each test creates its own database and Redis namespace).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/services.sh
# The layering of DESIGN.md: no forbidden import between top-level modules, no cycle.
python3 scripts/layering.py
exec cargo test --locked "$@"
