# Images of deploy_assets (GitHub issues 7 and 14). Two targets from one file, both installed from the committed
# lock (constraints.txt, scripts/lock.py), so a build next month gets the versions the tests ran with:
#
#   runtime (default)  Dagster: every Dagster process on ECS (only the command differs, see terraform/ecs.tf) and
#                      the one-shot month scorer:
#     code location (default CMD)  dagster code-server start ... -p 4000 -m deploy_assets.definitions
#     webserver                    dagster-webserver -h 0.0.0.0 -p 3000 -w /opt/dagster/workspace.yaml
#     daemon                       dagster-daemon run -w /opt/dagster/workspace.yaml
#     run workers                  the command the EcsRunLauncher passes (dagster api execute_run ...)
#     one month, one shot          docker run --rm -e DATE=2021-03-01 -e BUCKET=my-bucket IMAGE deploy-assets-score-month
#   serving            the slim online runtime (no Dagster): the prediction web service (default CMD) and, with the
#                      Lambda runtime interface client as entry point, the stream-scoring functions
#                      (terraform/web.tf, terraform/lambda.tf).
#
# The instance config is deploy/dagster.prod.yaml: every secret and address comes from the environment at run
# time, so no image holds credentials.
#
#   docker build -t deploy-assets:TAG .                                  (runtime)
#   docker build --target serving -t deploy-assets-serving:TAG .         (serving)
#   docker build --build-arg BASE_IMAGE=local/bookworm-python:3.11 ...   (scripts/docker_build.sh)
#
# BASE_IMAGE must provide python3 (3.11, the version constraints.txt was resolved for) with the venv module, and
# useradd/groupadd.
ARG BASE_IMAGE=python:3.11-slim

# ---- builder: a wheel of the project, installed with its locked dependencies into a self-contained venv -------
#checkov:skip=CKV_DOCKER_7:The base comes from ARG BASE_IMAGE, whose default python:3.11-slim carries a version tag; release builds may pass a digest.
FROM ${BASE_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build
COPY constraints.txt ./
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --upgrade pip setuptools wheel

COPY setup.py ./
COPY deploy_assets/ ./deploy_assets/

# install_requires includes dagster-postgres (the production instance, deploy/dagster.prod.yaml).
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /build/dist . \
    && /opt/venv/bin/pip install -c constraints.txt /build/dist/deploy_assets-*.whl \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall -y wheel setuptools \
    && /opt/venv/bin/python -m pip uninstall -y pip

# ---- serving-builder: the project wheel without its Dagster dependencies, plus the serving and Lambda extras -----
FROM ${BASE_IMAGE} AS serving-builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build
COPY constraints.txt ./
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --upgrade pip setuptools wheel

COPY setup.py ./
COPY deploy_assets/ ./deploy_assets/

# `setup.py --serving-requirements` prints the serving set (the `serving` extra); awslambdaric is the `lambda` one.
RUN /opt/venv/bin/python setup.py --serving-requirements > serving-requirements.txt \
    && /opt/venv/bin/pip wheel --no-deps --wheel-dir /build/dist . \
    && /opt/venv/bin/pip install -c constraints.txt -r serving-requirements.txt "awslambdaric>=3,<5" \
    && /opt/venv/bin/pip install --no-deps /build/dist/deploy_assets-*.whl \
    && /opt/venv/bin/python -c "import deploy_assets.serving.web, deploy_assets.serving.stream.lambda_handler, awslambdaric" \
    && /opt/venv/bin/pip uninstall -y wheel setuptools \
    && /opt/venv/bin/python -m pip uninstall -y pip

# ---- serving: web service (CMD) and stream Lambdas (entry point python -m awslambdaric, set by the function) -----
FROM ${BASE_IMAGE} AS serving

ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache

RUN groupadd --gid 10001 serving \
    && useradd --uid 10001 --gid serving --home-dir /tmp --no-create-home --shell /usr/sbin/nologin serving

COPY --from=serving-builder /opt/venv /opt/venv

# Lambda and ECS both run it with a read-only root filesystem; only /tmp is written (MLflow's download cache).
VOLUME ["/tmp"]
WORKDIR /tmp
USER serving:serving

EXPOSE 9696

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9696/health', timeout=4)"]

CMD ["deploy-assets-web", "--host", "0.0.0.0", "--port", "9696"]

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
