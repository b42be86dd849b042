#!/usr/bin/env bash
# Install the project into .venv on a fresh machine (Debian packages first, then the Python packages).
#   scripts/bootstrap.sh          runtime dependencies
#   scripts/bootstrap.sh --dev    plus test and benchmark tools
# Idempotent: the venvs are installed again only when setup.py or constraints.txt (or the checkov pin) change.
#
# The Python packages are installed by uv (from PyPI, itself installed with pip) when it can be had, else by pip:
# the same pins (-c constraints.txt), several times faster. With --dev the PostgreSQL install, the project's venv
# and checkov's venv run side by side; the script fails if any of them does.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--dev" ] && extras="[dev,lambda]"  # lambda: the Lambda runtime client the serving image runs
UV_VERSION="0.13.9"
CHECKOV_VERSION="3.3.30"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

command -v python3 >/dev/null 2>&1 || apt_install python3
python3 -c "import venv, ensurepip" 2>/dev/null || apt_install python3-venv python3-pip

# --- steps that may run side by side: each logs to a file, printed if it fails ---------------------------------
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
pids=() names=()
in_background() {  # in_background NAME COMMAND...
  "${@:2}" >"$logs/$1.log" 2>&1 &
  pids+=("$!") names+=("$1")
}
wait_all() {
  local i failed=""
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      failed+=" ${names[$i]}"
      echo "bootstrap: ${names[$i]} failed:" >&2
      tail -n 40 "$logs/${names[$i]}.log" >&2
    fi
  done
  pids=() names=()
  [ -z "$failed" ] || { echo "bootstrap: failed:$failed" >&2; return 1; }
}

# PostgreSQL server binaries for deploy_assets_tests/test_postgres.py (it runs initdb + postgres itself, on a
# temporary directory and a free port): Debian puts them in /usr/lib/postgresql/VERSION/bin, off PATH.
have_postgres_server() {
  local bin
  for bin in /usr/lib/postgresql/*/bin; do
    [ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ] && [ -x "$bin/postgres" ] && return 0
  done
  return 1
}
# The only apt step left: nothing else touches apt's lock while it runs.
if [ -n "$extras" ] && ! have_postgres_server; then in_background postgresql apt_install postgresql; fi

# --- Python packages ----------------------------------------------------------------------------------------
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=".venv/.installed${extras}-$(cat setup.py constraints.txt | sha1sum | cut -c1-12)"
checkov_installed() {
  [ -x .venv-checkov/bin/checkov ] && [ "$(.venv-checkov/bin/python -c \
    'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null)" = "$CHECKOV_VERSION" ]
}
need_checkov=""
if [ -n "$extras" ] && ! checkov_installed; then need_checkov=1; fi

# uv lives in the venv's folder, outside its site-packages: the project's environment holds only the lock's packages.
uv=""
if [ ! -e "$stamp" ] || [ -n "$need_checkov" ]; then
  if [ ! -x .venv/uv/bin/uv ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check --target .venv/uv "uv==${UV_VERSION}" \
      || echo "bootstrap: could not install uv, installing with pip" >&2
  fi
  if .venv/uv/bin/uv --version >/dev/null 2>&1; then uv=.venv/uv/bin/uv; fi
fi
# uv does not read pip's configuration: it uses PyPI, trusting the system's certificates as pip is set up to here.
export UV_NATIVE_TLS=1 UV_NO_PROGRESS=1

# pip_install PYTHON ARGS...: uv if present (compiling bytecode, as pip does), else pip.
pip_install() {
  local python="$1"
  shift
  if [ -n "$uv" ]; then
    "$uv" pip install -q --python "$python" --compile-bytecode "$@"
  else
    "$python" -m pip install -q --disable-pip-version-check "$@"
  fi
}

install_project() {
  # pip stays in the venv, upgraded, for scripts/lock.py.
  pip_install .venv/bin/python --upgrade pip
  # The versions the images install (constraints.txt, from scripts/lock.py): the tests run what ships.
  pip_install .venv/bin/python -c constraints.txt -e ".${extras}"
  rm -f .venv/.installed*
  touch "$stamp"
}

# checkov (terraform/Dockerfile scanner) pins its own dependencies: it gets a venv of its own.
install_checkov() {
  rm -rf .venv-checkov
  python3 -m venv .venv-checkov
  pip_install .venv-checkov/bin/python "checkov==${CHECKOV_VERSION}"
  .venv-checkov/bin/checkov --version >/dev/null
}

[ -e "$stamp" ] || in_background project-venv install_project
[ -z "$need_checkov" ] || in_background checkov-venv install_checkov
wait_all
