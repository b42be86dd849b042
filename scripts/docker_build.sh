#!/usr/bin/env bash
# Build the code-location image where no base image can be pulled, and prove it loads the definitions.
# Not part of CI (`make docker-build`; needs root, several minutes and ~2 GB of disk).
#
#   1. a Debian bookworm root filesystem from debootstrap, with python3 + python3-venv, imported as
#      local/bookworm-python:3.11 (a stand-in for python:3.11-slim: same Debian, same Python minor);
#   2. docker build --build-arg BASE_IMAGE=local/bookworm-python:3.11 -t deploy-assets:dev . and the same with
#      --target serving -t deploy-assets-serving:dev (both from constraints.txt);
#   3. checks inside the image, with a read-only root filesystem as on ECS:
#      `dagster definitions validate -m deploy_assets.definitions`; the image's dagster packages accept
#      deploy/dagster.prod.yaml; the default CMD (the gRPC code server) reports healthy through the HEALTHCHECK;
#   4. smoke test of the production layout (SMOKE=0 skips it): the three services from this one image, with
#      deploy/dagster.prod.yaml and deploy/workspace.yaml unchanged, against a local PostgreSQL with TLS (the
#      config requires sslmode=require) and moto standing in for ECS and S3: the webserver must load the
#      `deploy_assets` location from the `code-location` gRPC server, and the daemon must report healthy.
#      Needs PostgreSQL's server binaries and the dev venv (.venv with moto[server]).
#
# Environment: BASE_TAG (default local/bookworm-python:3.11), IMAGE (default deploy-assets:dev), SERVING_IMAGE
# (default deploy-assets-serving:dev),
# DEBIAN_MIRROR (default: the first mirror this machine's apt sources use), REBUILD_BASE=1 to rebuild the base,
# SMOKE=0 to stop after step 3.
#
# The local base copies this machine's extra CA certificates (/usr/local/share/ca-certificates) and points pip
# at the system bundle, so that pip inside `docker build` works behind the same TLS-inspecting egress as the
# host. That trust lives only in the local stand-in base, never in the Dockerfile: an image built FROM the
# official python:3.11-slim does not get it.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_TAG="${BASE_TAG:-local/bookworm-python:3.11}"
IMAGE="${IMAGE:-deploy-assets:dev}"
SERVING_IMAGE="${SERVING_IMAGE:-deploy-assets-serving:dev}"
SUITE=bookworm

log() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need=()
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# A daemon: reuse a running one; otherwise start one and stop exactly that one on exit.
started_dockerd=""
containers=()
moto_pid=""
pg_data=""
smoke_dir=""
cleanup() {
  for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  if [ -n "$moto_pid" ]; then kill "$moto_pid" 2>/dev/null || true; fi
  if [ -n "$pg_data" ]; then runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_data" -m fast stop >/dev/null 2>&1 || true; fi
  if [ -n "$smoke_dir" ]; then rm -rf "$smoke_dir"; fi
  if [ -n "${rootfs:-}" ] && [ -d "$rootfs" ]; then as_root rm -rf "$rootfs"; fi
  if [ -n "$started_dockerd" ]; then stop_dockerd; fi
}
# `as_root dockerd &` forks a shell (and maybe sudo) whose pid is not dockerd's: dockerd writes its own pid to
# --pidfile, and the containerd it manages to its exec-root. SIGTERM makes dockerd stop that containerd too;
# both are waited for, then killed if still there.
dockerd_pidfile=/tmp/deploy-assets-dockerd.pid
dockerd_exec_root=/tmp/deploy-assets-dockerd-exec
pid_in() { [ -s "$1" ] && tr -dc 0-9 <"$1"; }
alive() {  # running, not a zombie
  local state
  [ -n "$1" ] && state="$(ps -o stat= -p "$1" 2>/dev/null)" && [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}
stop_dockerd() {
  local dockerd_pid containerd_pid pid
  dockerd_pid="$(pid_in "$dockerd_pidfile" || true)"
  # No pidfile yet (it died or never came up): the forked shell's own child, or that shell if it exec'd dockerd.
  [ -n "$dockerd_pid" ] || dockerd_pid="$(pgrep -o -P "$started_dockerd" || echo "$started_dockerd")"
  containerd_pid="$(pid_in "$dockerd_exec_root/containerd/containerd.pid" || true)"
  log "stopping the dockerd this script started (pid ${dockerd_pid:-unknown}, containerd ${containerd_pid:-none})"
  [ -n "$dockerd_pid" ] && as_root kill -TERM "$dockerd_pid" 2>/dev/null || true
  for _ in $(seq 60); do
    alive "$dockerd_pid" || alive "$containerd_pid" || break
    sleep 0.5
  done
  for pid in "$dockerd_pid" "$containerd_pid"; do
    if alive "$pid"; then echo "pid $pid still running 30 s after SIGTERM: killing it" >&2; as_root kill -KILL "$pid" || true; fi
  done
  wait "$started_dockerd" 2>/dev/null || true
}
trap cleanup EXIT
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  as_root rm -f "$dockerd_pidfile"
  as_root dockerd --pidfile "$dockerd_pidfile" --exec-root "$dockerd_exec_root" >/tmp/deploy-assets-dockerd.log 2>&1 &
  started_dockerd=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start: see /tmp/deploy-assets-dockerd.log" >&2; exit 1; }
fi

if [ -n "${REBUILD_BASE:-}" ] || ! docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
  mirror="${DEBIAN_MIRROR:-}"
  if [ -z "$mirror" ]; then
    mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
  fi
  if [ -z "$mirror" ]; then
    mirror="$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
  fi
  [ -n "$mirror" ] || { echo "no Debian mirror found in apt sources: set DEBIAN_MIRROR" >&2; exit 1; }

  rootfs="$(mktemp -d /tmp/bookworm-rootfs.XXXXXX)"
  log "debootstrap $SUITE into $rootfs"
  as_root debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$rootfs" "$mirror" >/tmp/deploy-assets-debootstrap.log 2>&1 \
    || { tail -20 /tmp/deploy-assets-debootstrap.log >&2; exit 1; }

  extra_cas=(/usr/local/share/ca-certificates/*.crt)
  if [ -e "${extra_cas[0]}" ]; then
    as_root cp "${extra_cas[@]}" "$rootfs/usr/local/share/ca-certificates/"
    as_root chroot "$rootfs" update-ca-certificates >/dev/null
  fi
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' | as_root tee "$rootfs/etc/pip.conf" >/dev/null
  as_root chroot "$rootfs" apt-get clean
  as_root rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/"*.bin

  log "docker import -> $BASE_TAG"
  as_root tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$BASE_TAG" >/dev/null
  as_root rm -rf "$rootfs"
  rootfs=""
fi
docker run --rm "$BASE_TAG" python3 -c 'import sys, venv; print("base python", sys.version.split()[0])'

log "docker build -> $IMAGE and $SERVING_IMAGE (target serving)"
start=$(date +%s)
# --network host: the build's pip reaches the package index the way the host does.
docker build --network host --build-arg BASE_IMAGE="$BASE_TAG" -t "$IMAGE" .
docker build --network host --build-arg BASE_IMAGE="$BASE_TAG" --target serving -t "$SERVING_IMAGE" .
echo "built in $(( $(date +%s) - start )) s"
docker image ls "$IMAGE"
docker image ls "$SERVING_IMAGE"

ro=(--read-only --tmpfs /tmp:rw,exec,mode=1777)
log "dagster definitions validate (read-only root filesystem)"
# The validation loads an instance: a throwaway one under /tmp, since the image's own (dagster.prod.yaml)
# needs the production Postgres.
docker run --rm "${ro[@]}" -e DAGSTER_HOME=/tmp "$IMAGE" \
  sh -c 'touch /tmp/dagster.yaml && exec dagster definitions validate -m deploy_assets.definitions'

log "the one-shot month scorer and the serving image's entry points (read-only root filesystem)"
docker run --rm "${ro[@]}" "$IMAGE" deploy-assets-score-month --help >/dev/null
docker run --rm "${ro[@]}" "$SERVING_IMAGE" python -c \
  'import deploy_assets.serving.web, deploy_assets.serving.stream.lambda_handler, awslambdaric.bootstrap; print("serving image imports OK")'
if docker run --rm "$SERVING_IMAGE" python -c 'import dagster' 2>/dev/null; then
  echo "the serving image must not contain dagster" >&2; exit 1
fi

log "the image's dagster packages accept its production instance config (dummy environment, no connection)"
docker run --rm "${ro[@]}" \
  -e DAGSTER_PG_HOST=db -e DAGSTER_PG_PORT=5432 -e DAGSTER_PG_USERNAME=u -e DAGSTER_PG_PASSWORD=p -e DAGSTER_PG_DB=d \
  -e DAGSTER_ECS_CLUSTER=c -e DAGSTER_RUN_TASK_DEFINITION=t -e DAGSTER_COMPUTE_LOGS_BUCKET=b \
  -e DAGSTER_COMPUTE_LOGS_PREFIX=p "$IMAGE" python3 -c '
import importlib, os
from dagster._config import process_config, resolve_to_config_type
from dagster._core.instance.ref import InstanceRef
from dagster._serdes.config_class import ConfigurableClassData
ref = InstanceRef.from_dir(os.environ["DAGSTER_HOME"])
for field, data in zip(ref._fields, ref):
    if isinstance(data, ConfigurableClassData):
        klass = getattr(importlib.import_module(data.module_name), data.class_name)
        result = process_config(resolve_to_config_type(klass.config_type()), data.config_dict)
        assert result.success, (field, [e.message for e in result.errors])
        print("  " + field + ": " + data.module_name + "." + data.class_name)
'

log "code server (the image's CMD) and its HEALTHCHECK command"
container="deploy-assets-check-$$"
containers+=("$container")
docker run -d --name "$container" "${ro[@]}" "$IMAGE" >/dev/null
healthy=""
for _ in $(seq 90); do
  if docker exec "$container" dagster api grpc-health-check -p 4000 >/dev/null 2>&1; then healthy=1; break; fi
  sleep 2
done
if [ -z "$healthy" ]; then
  docker logs "$container" >&2 || true
  echo "code server did not become healthy" >&2
  exit 1
fi
docker exec "$container" dagster api grpc-health-check -p 4000
docker exec "$container" id
docker rm -f "$container" >/dev/null
log "OK: $IMAGE loads deploy_assets.definitions and serves it on port 4000"

[ "${SMOKE:-1}" = 0 ] && exit 0

# ---- 4. smoke test: webserver + daemon + code location with the production instance and workspace ---------
pg_bin="$(dirname "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -1)")"
if [ ! -x "$pg_bin/initdb" ] || [ ! -x .venv/bin/moto_server ] || ! id postgres >/dev/null 2>&1; then
  echo "smoke test skipped: needs PostgreSQL (apt-get install postgresql) and .venv with moto[server]" >&2
  exit 0
fi
log "smoke test: PostgreSQL with TLS, moto for ECS/S3, the three Dagster services from $IMAGE"
smoke_dir="$(mktemp -d /tmp/deploy-assets-smoke.XXXXXX)"
chown postgres "$smoke_dir" && chmod 755 "$smoke_dir"
pg_port=55432 moto_port=55000 web_port=53000
pg_password="$(openssl rand -hex 16)"
pg_data="$smoke_dir/pgdata"
install -d -o postgres -m 700 "$pg_data"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" \
  -keyout "$smoke_dir/server.key" -out "$smoke_dir/server.crt" 2>/dev/null
chown postgres "$smoke_dir/server.key" "$smoke_dir/server.crt"
chmod 600 "$smoke_dir/server.key"
printf '%s\n' "$pg_password" > "$smoke_dir/pwfile"
chown postgres "$smoke_dir/pwfile"
runuser -u postgres -- "$pg_bin/initdb" -D "$pg_data" -U dagster --auth=scram-sha-256 \
  --pwfile="$smoke_dir/pwfile" >/dev/null
rm -f "$smoke_dir/pwfile"
runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_data" -l "$smoke_dir/postgres.log" -w start -o \
  "-p $pg_port -k $smoke_dir -c listen_addresses=127.0.0.1 -c ssl=on \
   -c ssl_cert_file=$smoke_dir/server.crt -c ssl_key_file=$smoke_dir/server.key" >/dev/null
PGPASSWORD="$pg_password" psql "host=127.0.0.1 port=$pg_port user=dagster dbname=postgres sslmode=require" \
  -qc "CREATE DATABASE dagster" >/dev/null

.venv/bin/moto_server -H 127.0.0.1 -p "$moto_port" >"$smoke_dir/moto.log" 2>&1 &
moto_pid=$!
aws_env=(-e AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" -e AWS_ACCESS_KEY_ID=testing
  -e AWS_SECRET_ACCESS_KEY=testing -e AWS_DEFAULT_REGION=us-east-1 -e AWS_REGION=us-east-1)
for _ in $(seq 30); do curl -fs "http://127.0.0.1:$moto_port/moto-api/" >/dev/null 2>&1 && break; sleep 1; done
AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
AWS_DEFAULT_REGION=us-east-1 .venv/bin/python - <<'PY'
import boto3
boto3.client("s3").create_bucket(Bucket="smoke-dagster")
boto3.client("ecs").create_cluster(clusterName="smoke")
boto3.client("ecs").register_task_definition(
    family="smoke-run",
    containerDefinitions=[{"name": "run", "image": "deploy-assets:dev", "essential": True, "memory": 4096}],
)
PY

dagster_env=(-e DAGSTER_PG_HOST=127.0.0.1 -e DAGSTER_PG_PORT="$pg_port" -e DAGSTER_PG_USERNAME=dagster
  -e DAGSTER_PG_PASSWORD="$pg_password" -e DAGSTER_PG_DB=dagster -e DAGSTER_ECS_CLUSTER=smoke
  -e DAGSTER_RUN_TASK_DEFINITION=smoke-run -e DAGSTER_COMPUTE_LOGS_BUCKET=smoke-dagster
  -e DAGSTER_COMPUTE_LOGS_PREFIX=compute-logs)
# Host networking stands in for the VPC; --add-host stands in for the Service Connect name.
net=(--network host --add-host code-location:127.0.0.1)
for service in code-location webserver daemon; do
  containers+=("deploy-assets-smoke-$service-$$")
done
docker run -d --name "deploy-assets-smoke-code-location-$$" "${net[@]}" "${ro[@]}" "${dagster_env[@]}" "${aws_env[@]}" \
  -e DEPLOY_ASSETS_DATA_URI=/tmp/data "$IMAGE" >/dev/null
docker run -d --name "deploy-assets-smoke-webserver-$$" "${net[@]}" "${ro[@]}" "${dagster_env[@]}" "${aws_env[@]}" \
  "$IMAGE" dagster-webserver -h 127.0.0.1 -p "$web_port" -w /opt/dagster/workspace.yaml >/dev/null
docker run -d --name "deploy-assets-smoke-daemon-$$" "${net[@]}" "${ro[@]}" "${dagster_env[@]}" "${aws_env[@]}" \
  "$IMAGE" dagster-daemon run -w /opt/dagster/workspace.yaml >/dev/null

if ! .venv/bin/python - "$web_port" <<'PY'; then
import json, sys, time, urllib.request

url = f"http://127.0.0.1:{sys.argv[1]}/graphql"
query = """{
  workspaceOrError { ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } }
  instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } }
}"""
deadline, last = time.time() + 240, None
while time.time() < deadline:
    try:
        request = urllib.request.Request(url, json.dumps({"query": query}).encode(), {"Content-Type": "application/json"})
        data = json.load(urllib.request.urlopen(request, timeout=10))["data"]
        entries = data["workspaceOrError"]["locationEntries"]
        daemons = data["instance"]["daemonHealth"]["allDaemonStatuses"]
        last = (entries, daemons)
        loaded = [e for e in entries if e["name"] == "deploy_assets"
                  and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"]
        required = [d for d in daemons if d["required"]]
        if loaded and required and all(d["healthy"] for d in required):
            print("  location deploy_assets:", loaded[0]["loadStatus"])
            print("  daemons healthy:", ", ".join(d["daemonType"] for d in required))
            sys.exit(0)
    except Exception as error:  # not up yet
        last = repr(error)
    time.sleep(3)
print("not ready after 240 s:", json.dumps(last, indent=1)[:3000], file=sys.stderr)
sys.exit(1)
PY
  for service in code-location webserver daemon; do
    echo "--- $service" >&2
    docker logs --tail 30 "deploy-assets-smoke-$service-$$" >&2 || true
  done
  exit 1
fi
log "OK: webserver, daemon and code location run on the production instance config (Postgres over TLS)"
