#!/usr/bin/env bash
# Quick start: install callvault and start the server on the embedded default
# (SQLite and ./callvault-data). Extra arguments go to `callvault serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/callvault serve "$@"
