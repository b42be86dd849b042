#!/usr/bin/env bash
# Install with test tools, then run the whole test suite (it starts and stops its own servers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --dev
# Four workers, a test file each at a time (module fixtures stay shared): most tests wait on real servers.
exec .venv/bin/python -m pytest deploy_assets_tests -n 4 --dist loadfile "$@"
