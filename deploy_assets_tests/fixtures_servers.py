"""Pytest fixtures for real server processes (moto S3, MLflow tracking server, Dagster daemon).

Register once, e.g. in the root conftest.py: `pytest_plugins = ["deploy_assets_tests.fixtures_servers"]`
(a test module may also name it in its own `pytest_plugins`; it is registered only once either way).

- `moto_s3` (session): a moto S3 server on 127.0.0.1; yields its endpoint URL. Sets nothing in os.environ.
- `aws_test_env` (function): dummy AWS credentials (+ region) in os.environ for this test only.
- `s3_client` / `s3_buckets` (function): a boto3 client for moto; `s3_buckets("a", "b")` creates buckets and
  empties + deletes them after the test.
- `mlflow_server` (session): an MLflow tracking server with artifacts in moto's bucket `mlflow`; yields the
  tracking URI (clients need MLFLOW_S3_ENDPOINT_URL and AWS credentials; see `mlflow_client_env`).
- `mlflow_client_env` (function): the client-side environment for `mlflow_server` (endpoint + credentials),
  and MLflow's process-global tracking/registry URIs restored after the test.
- `daemon_platform` (function): factory `daemon_platform(env=None) -> daemon_platform.Platform`, started (a
  dagster-daemon and its code server over a fresh DAGSTER_HOME, data/MLflow/DuckDB locations isolated in tmp_path
  unless `env` overrides them); stopped at teardown.

Every fixture stops what it started, also when the test fails; a session-level finalizer then fails the session
if any process started through `servers` is still alive (and kills it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from deploy_assets_tests import servers

if TYPE_CHECKING:  # imported when used: loading it pulls in the project and MLflow, which the fast tier never needs
    from deploy_assets_tests.daemon_platform import Platform

SERVERS_MARKER = "servers: starts real server processes (moto S3, MLflow server, Dagster daemon); slow"
MLFLOW_BUCKET = "mlflow"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", SERVERS_MARKER)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Safety net for an interrupted session (Ctrl-C, internal error) where fixture finalizers did not run.
    servers.stop_all(timeout=5)


@pytest.fixture(scope="session", autouse=True)
def _no_server_process_survives() -> Iterator[None]:
    """Set up before, torn down after, every server fixture: fails the session if a started process lives on."""
    yield
    survivors = servers.surviving_processes()
    if survivors:
        servers.stop_all(timeout=5)
        pytest.fail(f"server processes outlived their fixtures (now killed): {survivors}", pytrace=False)


def _dummy_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in servers.DUMMY_AWS_ENV.items():
        monkeypatch.setenv(name, value)


def _boto3_s3(endpoint_url: str):
    import boto3

    # Credentials and region come from the environment (dummy values set by the caller's monkeypatch).
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url)


def _create_bucket(client, name: str) -> bool:
    """Create `name`; False if it already existed (owned by us)."""
    try:
        client.create_bucket(Bucket=name)
        return True
    except client.exceptions.BucketAlreadyOwnedByYou:
        return False


def _empty_and_delete_bucket(client, name: str) -> None:
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=name):
        objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if objects:
            client.delete_objects(Bucket=name, Delete={"Objects": objects})
    client.delete_bucket(Bucket=name)


def _clear_s3fs_cache() -> None:
    """fsspec caches S3FileSystem instances by constructor arguments, not by environment: a filesystem made
    before the endpoint variables changed would be reused. Drop them so each test resolves its own endpoint."""
    try:
        import s3fs
    except ImportError:
        return
    s3fs.S3FileSystem.clear_instance_cache()


# --- S3 -----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, endpoint = servers.start_moto(tmp_path_factory.mktemp("moto"))
    try:
        yield endpoint
    finally:
        process.stop()


@pytest.fixture
def aws_test_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Dummy AWS credentials and region in os.environ (no endpoint: tests choose env or explicit endpoint)."""
    _dummy_aws_env(monkeypatch)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    _clear_s3fs_cache()
    yield dict(servers.DUMMY_AWS_ENV)
    _clear_s3fs_cache()


@pytest.fixture
def s3_client(moto_s3: str, aws_test_env):
    return _boto3_s3(moto_s3)


@pytest.fixture
def s3_buckets(s3_client) -> Iterator[Callable[..., object]]:
    """`s3_buckets("landing", "predictions")` creates the buckets and returns the boto3 client; every bucket
    this test created is emptied and deleted afterwards, so tests sharing the session's moto stay independent."""
    created: list[str] = []

    def create(*names: str):
        for name in names:
            if _create_bucket(s3_client, name):
                created.append(name)
        return s3_client

    yield create
    for name in reversed(created):
        _empty_and_delete_bucket(s3_client, name)


# --- MLflow -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mlflow_server(moto_s3: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        _dummy_aws_env(monkeypatch)
        _create_bucket(_boto3_s3(moto_s3), MLFLOW_BUCKET)
    process, tracking_uri = servers.start_mlflow_server(
        tmp_path_factory.mktemp("mlflow-server"), s3_endpoint=moto_s3, artifact_root=f"s3://{MLFLOW_BUCKET}/artifacts"
    )
    try:
        yield tracking_uri
    finally:
        process.stop()


@pytest.fixture
def mlflow_client_env(mlflow_server: str, moto_s3: str, aws_test_env, monkeypatch: pytest.MonkeyPatch) -> str:
    """What an MLflow client of `mlflow_server` needs in its own process; returns the tracking URI.

    The server hands out s3:// artifact locations, so the client uploads/downloads artifacts itself:
    MLFLOW_S3_ENDPOINT_URL + AWS credentials. MLflow's module-global tracking/registry URIs (set by
    `mlflow.set_tracking_uri`) are restored after the test.
    """
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", moto_s3)
    for name, value in servers.QUIET_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(tracking_utils, "_tracking_uri", tracking_utils._tracking_uri)
    monkeypatch.setattr(registry_utils, "_registry_uri", registry_utils._registry_uri)
    return mlflow_server


# --- Dagster daemon -------------------------------------------------------------------------------------------


@pytest.fixture
def daemon_platform(tmp_path: Path) -> Iterator[Callable[..., Platform]]:
    """Factory: `daemon_platform(env={...})` starts a `daemon_platform.Platform` of its own under tmp_path (its own
    DAGSTER_HOME, data location, MLflow store and DuckDB file unless `env` points elsewhere; the `yellow` deployment
    only) and returns it once every daemon has heartbeated. Every platform started is stopped after the test."""
    from deploy_assets_tests.daemon_platform import Platform

    started: list[Platform] = []

    def start(env: Mapping[str, str] | None = None) -> Platform:
        platform = Platform(tmp_path / f"daemon-{len(started)}", dict(env or {}))
        started.append(platform)
        return platform.start()

    yield start
    errors = []
    for platform in reversed(started):
        try:
            platform.stop()
        except servers.ServerError as error:
            errors.append(str(error))
    if errors:
        pytest.fail("; ".join(errors), pytrace=False)
