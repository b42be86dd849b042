#!/usr/bin/env bash
# Install the project into .venv on a fresh machine (Debian packages first, then pip).
#   scripts/bootstrap.sh          runtime dependencies
#   scripts/bootstrap.sh --dev    plus test and benchmark tools
# Idempotent: pip runs again only when setup.py changes.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--dev" ] && extras="[dev,lambda]"  # lambda: the Lambda runtime client the serving image runs

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

command -v python3 >/dev/null 2>&1 || apt_install python3
python3 -c "import venv, ensurepip" 2>/dev/null || apt_install python3-venv python3-pip

# PostgreSQL server binaries for deploy_assets_tests/test_postgres.py (it runs initdb + postgres itself, on a
# temporary directory and a free port): Debian puts them in /usr/lib/postgresql/VERSION/bin, off PATH.
have_postgres_server() {
  local bin
  for bin in /usr/lib/postgresql/*/bin; do
    [ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ] && [ -x "$bin/postgres" ] && return 0
  done
  return 1
}
if [ -n "$extras" ] && ! have_postgres_server; then apt_install postgresql; fi

[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=".venv/.installed${extras}-$(cat setup.py constraints.txt | sha1sum | cut -c1-12)"
if [ ! -e "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  # The versions the images install (constraints.txt, from scripts/lock.py): the tests run what ships.
  .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".${extras}"
  rm -f .venv/.installed*
  touch "$stamp"
fi

# checkov (terraform/Dockerfile scanner) pins its own dependencies: it gets a venv of its own.
if [ -n "$extras" ] && [ ! -x .venv-checkov/bin/checkov ]; then
  python3 -m venv .venv-checkov
  .venv-checkov/bin/python -m pip install -q --disable-pip-version-check "checkov==3.3.30"
fi
