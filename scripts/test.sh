#!/usr/bin/env bash
# Install with test tools, then run the whole test suite (it starts and stops its own servers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --dev
# A test file per worker at a time (module fixtures stay shared). Four workers for the whole suite: most tests wait
# on real servers. The fast tier (-m "not servers") only computes, in process: one worker per core is quicker there
# (measured on the 2-core machine: 2 workers 74-78 s, 3 workers 81 s, 4 workers 92 s). A -n of your own wins.
workers=4
for arg in "$@"; do
  if [[ "$arg" =~ ^[[:space:]]*not[[:space:]]+servers[[:space:]]*$ ]]; then
    workers=auto
  fi
done
exec .venv/bin/python -m pytest deploy_assets_tests -n "$workers" --dist loadfile "$@"
