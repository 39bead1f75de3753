#!/usr/bin/env bash
# Install everything the tests need (Debian packages included) and run the whole
# suite: lint, type check, then pytest (unit, PostgreSQL and end-to-end with SIPp).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --dev
.venv/bin/ruff check src tests bench fuzz
.venv/bin/ruff format --check src tests bench fuzz
.venv/bin/mypy
exec .venv/bin/pytest "$@"
