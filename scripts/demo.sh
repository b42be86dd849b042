#!/usr/bin/env bash
# Install, then materialize one month end to end on the embedded default (local files, local MLflow, DuckDB).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/deploy-assets-demo "$@"
