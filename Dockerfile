# Code-location image for deploy_assets (GitHub issue 7, "Production deployment").
#
# One image serves every Dagster process on ECS; only the command differs (see terraform/ecs.tf):
#   code location (default CMD)  dagster code-server start ... -p 4000 -m deploy_assets.definitions
#   webserver                    dagster-webserver -h 0.0.0.0 -p 3000 -w /opt/dagster/workspace.yaml
#   daemon                       dagster-daemon run -w /opt/dagster/workspace.yaml
#   run workers                  the command the EcsRunLauncher passes (dagster api execute_run ...)
# The instance config is deploy/dagster.prod.yaml: every secret and address comes from the environment at run
# time, so the image holds no credentials.
#
#   docker build -t deploy-assets:TAG .
#   docker build --build-arg BASE_IMAGE=local/bookworm-python:3.11 -t deploy-assets:dev .   (scripts/docker_build.sh)
#
# BASE_IMAGE must provide python3 (3.10+) with the venv module, and useradd/groupadd.
ARG BASE_IMAGE=python:3.11-slim

# ---- builder: a wheel of the project, installed with its dependencies into a self-contained venv ------------
#checkov:skip=CKV_DOCKER_7:The base comes from ARG BASE_IMAGE, whose default python:3.11-slim carries a version tag; release builds may pass a digest.
FROM ${BASE_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --upgrade pip setuptools wheel

COPY setup.py ./
COPY deploy_assets/ ./deploy_assets/

# dagster-postgres backs the production instance (deploy/dagster.prod.yaml); pip resolves the release that
# matches the dagster version setup.py pins. SQLAlchemy 2.1 breaks dagster-postgres (setup.py caps it).
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /build/dist . \
    && /opt/venv/bin/pip install /build/dist/deploy_assets-*.whl "dagster-postgres>=0.29,<0.30" \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall -y wheel setuptools \
    && /opt/venv/bin/python -m pip uninstall -y pip

# ---- runtime: the venv (no pip/setuptools/wheel left in it) and the instance config, nothing else ----------
FROM ${BASE_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    XDG_CACHE_HOME=/tmp/.cache

RUN groupadd --gid 10001 dagster \
    && useradd --uid 10001 --gid dagster --home-dir /opt/dagster --no-create-home --shell /usr/sbin/nologin dagster \
    && mkdir -p /opt/dagster/dagster_home /opt/dagster/app

COPY --from=builder /opt/venv /opt/venv
# Root-owned and read-only for the dagster user: the running processes cannot change their own configuration.
COPY deploy/dagster.prod.yaml /opt/dagster/dagster_home/dagster.yaml
COPY deploy/workspace.yaml /opt/dagster/workspace.yaml

# Every writable path is under /tmp (local artifact storage and compute-log staging are configured there in
# dagster.prod.yaml), so ECS can run the container with a read-only root filesystem. On Fargate a bind mount
# at a path declared here as a VOLUME starts with the image's content and permissions (/tmp stays 1777).
VOLUME ["/tmp"]

WORKDIR /opt/dagster/app
USER dagster:dagster

EXPOSE 4000

HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]

CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "deploy_assets.definitions"]
