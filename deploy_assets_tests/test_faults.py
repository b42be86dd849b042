"""Faults of the things around the assets, produced for real, never by monkeypatching:
S3 gone while reading, the network cut in the middle of an upload, an MLflow tracking server that does not answer,
a writer SIGKILLed mid-write, the daemon restarted between two uploads; and the security basics (no credentials
in the repository or the image, none in a failing run's logs).

How each fault is made real, and why:
- S3 down while reading: a dedicated moto server (not the session's) is started, loaded, then stopped; the landing
  zone keeps pointing at its now dead endpoint.
- S3 failing while writing: moto keeps objects in memory, so stopping it would destroy the very object whose
  survival is under test. Instead the prediction store talks to the session's moto through a loopback TCP proxy
  (tcp_proxy.TcpProxy) that resets every connection once it has carried 64 KiB upstream: a real network failure
  in the middle of the PUT of the new object, while moto (and the old object) live on and can be inspected
  directly. Lifting the cut between two attempts shows the asset's RetryPolicy recovering from the outage.
- MLflow down: the registry points at a loopback port nothing listens on (a stopped server looks exactly like this
  to a client); starting and killing a dedicated MLflow server would cost ~30 s for the same ECONNREFUSED.
- Killed mid-write: a separate Python process writes a large predictions table with PredictionStore.write_month
  and is SIGKILLed as soon as its partial temporary object exists (local folder) or its multipart upload has
  begun (S3).
- Daemon restart: two `dagster-daemon run` processes, one after the other, on the same DAGSTER_HOME.

Clients retry on their own below the asset's RetryPolicy (botocore: AWS_MAX_ATTEMPTS, MLflow:
MLFLOW_HTTP_REQUEST_MAX_RETRIES); the tests turn those off through their standard variables so the time spent is the
policy's (about 2, 6 and 14 s, each ± 2 s of jitter), not minutes of client back-off.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deploy_assets.core.generate import generate_month, write_month
from deploy_assets.core.schema import tlc_file_name
from deploy_assets.resources import ModelRegistry, PredictionStore
from deploy_assets_tests import servers
from deploy_assets_tests.faults_util import (
    ALL_ASSETS,
    events_of_type,
    failure_chain,
    failure_message,
    materialized,
    raw_trips_path,
    retried_error,
    retry_messages,
    run_log_text,
    run_month,
    step_of,
    table_rows,
)
from deploy_assets_tests.instance_records import (
    landing_observations,
    materialized_partitions,
    run_partitions,
    wait_until_quiet,
)
from deploy_assets_tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(300)

ROWS = 5_000
TRAINING, MONTH = "2024-01-01", "2024-02-01"
REPO_ROOT = Path(__file__).resolve().parents[1]
# A recognisable dummy: if it shows up in a run's logs, the run leaked the secret.
SECRET = "NotARealSecretButRecognisable0123456789XYZ"


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def land_two_months(project) -> None:
    project.land(TRAINING, rows=ROWS, seed=0)
    project.land(MONTH, rows=ROWS, seed=1)


@pytest.fixture
def no_client_retries(monkeypatch):
    """Leave retrying to the assets' RetryPolicy (see the module docstring)."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # filesystems cached before the variables changed
    yield
    s3fs.S3FileSystem.clear_instance_cache()


def retry_waits(result: dg.ExecuteInProcessResult, node: str) -> list[float]:
    """The back-off the policy chose before each retry of `node`."""
    return [
        event.event_specific_data.seconds_to_wait
        for event in events_of_type(result, "STEP_UP_FOR_RETRY")
        if event.step_key == node
    ]


def retry_gaps(instance: dg.DagsterInstance, run_id: str, node: str) -> list[float]:
    """Measured seconds between each STEP_UP_FOR_RETRY of `node` and the restart that followed it."""
    gaps, waiting_since = [], None
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or event.step_key != node:
            continue
        if event.event_type_value == "STEP_UP_FOR_RETRY":
            waiting_since = record.timestamp
        elif event.event_type_value == "STEP_RESTARTED" and waiting_since is not None:
            gaps.append(record.timestamp - waiting_since)
            waiting_since = None
    return gaps


def assert_backoff_is_exponential(result, instance, node: str) -> None:
    waits = retry_waits(result, node)
    assert len(waits) == 3, waits  # RETRY_POLICY: 3 retries
    # Exponential from 2 s: (2^n - 1) * 2 s = 2, 6, 14 s, each with ±2 s of jitter.
    for wait, nominal in zip(waits, (2, 6, 14)):
        assert nominal - 2 <= wait <= nominal + 2, waits
    gaps = retry_gaps(instance, result.run_id, node)
    assert len(gaps) == 3
    for gap, wait in zip(gaps, waits):
        assert gap >= wait - 0.5, (gaps, waits)


# --- what is retried ------------------------------------------------------------------------------------------------


def transient_errors() -> list[BaseException]:
    import botocore.exceptions as botocore_errors
    import requests
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

    throttled = botocore_errors.ClientError({"Error": {"Code": "SlowDown", "Message": "slow down"}}, "PutObject")
    unavailable = MlflowException("try later", error_code=TEMPORARILY_UNAVAILABLE)
    wrapped = RuntimeError("while writing")
    wrapped.__cause__ = botocore_errors.EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    return [
        botocore_errors.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        botocore_errors.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
        throttled,
        requests.exceptions.ConnectionError("refused"),
        ConnectionResetError("reset by peer"),
        TimeoutError("timed out"),
        unavailable,
        wrapped,  # a transient cause below another error
    ]


def permanent_errors() -> list[BaseException]:
    import botocore.exceptions as botocore_errors
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

    from deploy_assets.core.schema import MissingTripData

    return [
        AttributeError("'NoneType' object has no attribute 'num_rows'"),  # a bug
        KeyError("model_version"),
        ValueError("bad value"),
        MissingTripData("s3://landing/x.parquet", "no such file in the landing zone"),
        botocore_errors.ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "GetObject"),
        botocore_errors.ClientError({"Error": {"Code": "NoSuchKey", "Message": "missing"}}, "GetObject"),
        MlflowException("no such version", error_code=RESOURCE_DOES_NOT_EXIST),
        PermissionError(13, "Permission denied"),
    ]


def test_only_transient_errors_are_retried_and_a_bug_fails_at_once_naming_the_partition():
    from deploy_assets.assets.errors import PartitionError, failures_named, is_transient

    for error in transient_errors():
        assert is_transient(error), repr(error)
        with pytest.raises(PartitionError, match=rf"^trip_predictions\[{MONTH}\] failed: {type(error).__name__}: "):
            with failures_named("trip_predictions", MONTH):
                raise error
    for error in permanent_errors():
        assert not is_transient(error), repr(error)
        with pytest.raises(dg.Failure) as failure:
            with failures_named("trip_predictions", MONTH):
                raise error
        assert failure.value.allow_retries is False
        assert failure.value.description.startswith(f"trip_predictions[{MONTH}] failed: "), failure.value.description


def test_a_bug_in_a_step_fails_the_run_at_once_without_retries(project):
    """A real non-transient failure inside a step (a location that cannot be a folder): no STEP_UP_FOR_RETRY, one
    attempt, a message naming the asset and partition."""
    land_two_months(project)
    blocker = project.root / "not-a-folder"
    blocker.write_text("a file where the warehouse folder should be")
    from deploy_assets.resources import ParquetIOManager

    project.resources["parquet_io_manager"] = ParquetIOManager(uri=str(blocker / "warehouse"))
    started = time.monotonic()
    result = run_month(project, ["raw_trips"], TRAINING)
    assert not result.success
    assert not events_of_type(result, "STEP_UP_FOR_RETRY")
    assert time.monotonic() - started < 60
    assert not materialized(result)


# --- S3 ------------------------------------------------------------------------------------------------------------


@pytest.mark.servers
def test_s3_down_while_reading_is_retried_with_backoff_then_fails_naming_the_partition(
    project, tmp_path, aws_test_env, no_client_retries, monkeypatch
):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    moto, endpoint = servers.start_moto(tmp_path / "moto")
    try:
        import boto3

        client = boto3.session.Session().client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket="landing")
        client.put_object(
            Bucket="landing", Key=tlc_file_name(2024, 2), Body=parquet_bytes(generate_month(2024, 2, ROWS))
        )
        # The deployment's landing zone is that bucket, on that endpoint.
        project.use(landing_uri="s3://landing", aws_endpoint_url=endpoint)
        assert project.landing.read_month(2024, 2).num_rows == ROWS  # readable while S3 is up
    finally:
        moto.stop()

    started = time.monotonic()
    result = run_month(project, ["raw_trips"], MONTH)
    elapsed = time.monotonic() - started

    assert not result.success
    # What the UI shows for the step (yellow_ingest, which writes raw_trips and trip_statistics): "Exceeded
    # max_retries of 3", caused by the last attempt's error, which names the asset and partition, the unreachable
    # endpoint and the object.
    outer, cause, *_ = failure_chain(result, "raw_trips")
    url = f"{endpoint}/landing/{tlc_file_name(2024, 2)}"
    assert outer == "RetryRequestedFromPolicy: Exceeded max_retries of 3"
    assert cause == (
        f"PartitionError: deploy_assets.assets.errors.PartitionError: yellow/raw_trips[{MONTH}] failed:"
        f' EndpointConnectionError: Could not connect to the endpoint URL: "{url}"'
    )
    # Every attempt failed the same way, each named after the partition; the waits grew exponentially.
    attempts = retry_messages(result, "raw_trips")
    assert len(attempts) == 3 and all(
        f"yellow/raw_trips[{MONTH}] failed: EndpointConnectionError" in m for m in attempts
    ), attempts
    assert_backoff_is_exponential(result, project.instance, step_of("raw_trips"))
    assert elapsed < 60
    # Nothing stored, nothing downstream.
    assert not raw_trips_path(project, MONTH).exists()
    assert not materialized(result)
    # The run's whole event log (messages, stack traces, config) never shows the secret key.
    assert SECRET not in run_log_text(project.instance, result.run_id)


def s3_keys(client, bucket: str) -> list[str]:
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def watch_for_retry(instance: dg.DagsterInstance, node: str, timeout: float) -> tuple[str, list[str]]:
    """Wait for the newest run to put `node` up for retry; returns (run_id, the failed attempts' messages)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = instance.get_runs(limit=1)
        if runs:
            records = instance.all_logs(runs[0].run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)
            messages = [
                retried_error(record.dagster_event.event_specific_data.error)
                for record in records
                if record.dagster_event.step_key == node
            ]
            if messages:
                return runs[0].run_id, messages
        time.sleep(0.05)
    raise AssertionError(f"{node} was not put up for retry within {timeout}s")


@pytest.mark.servers
def test_network_cut_mid_upload_keeps_the_old_predictions_and_the_retry_recovers(
    project, moto_s3, s3_buckets, no_client_retries
):
    bucket = f"predictions-{uuid.uuid4().hex[:8]}"
    s3 = s3_buckets(bucket)
    key = "year=2024/month=02/predictions.parquet"
    with TcpProxy(int(moto_s3.rsplit(":", 1)[1])) as proxy:
        # The deployment publishes to the bucket, through the proxy (its landing zone stays a local folder).
        project.use(predictions_uri=f"s3://{bucket}", aws_endpoint_url=proxy.endpoint)
        land_two_months(project)
        assert run_month(project, ["raw_trips"], TRAINING).success
        assert run_month(project, ALL_ASSETS, MONTH).success
        old = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        old_rows = table_rows(project, MONTH)
        assert len(old) > 2 * 64 * 1024  # the new object cannot slip under the cut

        # February re-uploaded with other rides: ingested and its model re-tested (no S3 involved; its training
        # month is unchanged, so it is the same registered version) ...
        version = project.registry.version_for_partition(MONTH)
        project.land(MONTH, rows=ROWS, seed=5)
        assert run_month(project, ["raw_trips", "duration_model"], MONTH).success
        assert project.registry.version_for_partition(MONTH) == version
        # ... then scored while every connection to S3 is reset after 64 KiB: the PUT of the new (staged) object
        # breaks, before anything is published.
        proxy.cut_uploads_after(64 * 1024)
        outcome: dict = {}
        scoring = ["trip_predictions", "prediction_table"]
        runner = threading.Thread(target=lambda: outcome.setdefault("result", run_month(project, scoring, MONTH)))
        runner.start()
        try:
            run_id, attempts = watch_for_retry(project.instance, step_of("trip_predictions"), timeout=60)
            # Between the failed attempt and the retry: the old object is whole and alone, and the SQL rows of
            # the month are the old ones (prediction_table has not run).
            assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == old
            assert s3_keys(s3, bucket) == [key]
            assert table_rows(project, MONTH) == old_rows
            assert proxy.cut_connections >= 1
            assert attempts[0].startswith(
                f"deploy_assets.assets.errors.PartitionError: yellow/trip_predictions[{MONTH}] failed: "
            )
        finally:
            proxy.restore()  # the network comes back: a later attempt gets through
            runner.join(timeout=120)
    result = outcome["result"]

    assert result.success
    assert 1 <= len(retry_messages(result, "trip_predictions")) <= 2  # the restore may land after a quick retry
    new = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert new != old
    assert s3_keys(s3, bucket) == [key]  # replaced in place, no staged object left
    scored = pq.read_table(io.BytesIO(new))
    assert scored.num_rows == len(table_rows(project, MONTH))
    assert set(scored["model_version"].to_pylist()) == {version}


# --- MLflow --------------------------------------------------------------------------------------------------------


@pytest.mark.servers
def test_mlflow_unreachable_is_retried_then_fails_naming_the_tracking_uri(project, no_client_retries):
    land_two_months(project)
    assert run_month(project, ["raw_trips"], TRAINING).success
    dead = f"http://127.0.0.1:{servers.free_port()}"
    project.resources["registry"] = ModelRegistry(tracking_uri=dead, artifact_location=None)

    result = run_month(project, ALL_ASSETS, MONTH)

    assert not result.success
    assert "yellow/raw_trips" in materialized(result)  # ingest does not need MLflow
    outer, message, *_ = failure_chain(result, "duration_model")
    assert outer == "RetryRequestedFromPolicy: Exceeded max_retries of 3"
    # The first thing training asks the registry: is a model for this month and training data registered?
    assert re.search(
        rf"PartitionError: yellow/duration_model\[{MONTH}\] failed: RegistryError: MLflow at {re.escape(dead)}:"
        rf" could not look up the model for {MONTH} trained on data version [0-9a-f]{{16}}: ",
        message,
    ), message
    assert re.search(r"Connection refused|Failed to establish a new connection|Max retries exceeded", message)
    assert len(retry_messages(result, "duration_model")) == 3
    assert not {"yellow/duration_model", "yellow/trip_predictions", "yellow/prediction_table"} & materialized(result)
    assert not project.predictions.month_path(2024, 2).exists()


# --- killed mid-write ----------------------------------------------------------------------------------------------

WRITER = """
import sys
import numpy as np, pyarrow as pa, pyarrow.compute as pc
from deploy_assets.core.scoring import PREDICTION_SCHEMA
from deploy_assets.resources.predictions_store import PredictionStore

uri, endpoint, rows = sys.argv[1], sys.argv[2] or None, int(sys.argv[3])
rng = np.random.default_rng(0)
ride_id = pc.binary_join_element_wise(pa.scalar("2024/02_"), pc.cast(pa.array(np.arange(rows)), pa.string()), "")
offsets = np.sort(rng.integers(0, 28 * 86_400_000_000, rows)).astype("timedelta64[us]")
pickup = np.datetime64("2024-02-01", "us") + offsets
actual, predicted = rng.uniform(1, 60, rows), rng.uniform(1, 60, rows)
table = pa.table(
    [ride_id, pa.array(pickup), pa.array(rng.integers(1, 266, rows).astype(np.int32)),
     pa.array(rng.integers(1, 266, rows).astype(np.int32)), pa.array(actual), pa.array(predicted),
     pa.array(actual - predicted), pa.repeat(pa.scalar("2", pa.string()), rows), pa.repeat(pa.scalar(False), rows)],
    schema=PREDICTION_SCHEMA,
)
print("writing", flush=True)
PredictionStore(uri=uri, s3_endpoint_url=endpoint).write_month(2024, 2, table)
print("done", flush=True)
"""
BIG_ROWS = 3_000_000  # ~100 MB of Parquet: seconds to write, and more than one 50 MiB S3 part


def start_writer(uri: str, endpoint: str | None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, uri, endpoint or "", str(BIG_ROWS)],
        cwd=REPO_ROOT,
        env=servers.child_env({"PYTHONPATH": str(REPO_ROOT)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def kill_when(process: subprocess.Popen, condition, timeout: float = 120) -> None:
    """SIGKILL `process` as soon as `condition()` holds; fail if it finished writing first."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if condition():
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
                assert process.returncode == -signal.SIGKILL
                return
            if process.poll() is not None:
                raise AssertionError(f"the writer exited ({process.returncode}) before it could be killed mid-write:\n"
                                     f"{process.stdout.read()}")
            time.sleep(0.005)
        raise AssertionError("the writer never got to the middle of its write")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def old_predictions() -> pa.Table:
    return pa.table({"ride_id": ["2024/02_0", "2024/02_1"], "predicted_duration": [12.5, 7.25]})


def test_writer_killed_mid_write_leaves_the_previous_local_object_whole(tmp_path):
    store = PredictionStore(uri=str(tmp_path / "predictions"))
    store.write_month(2024, 2, old_predictions())
    final = Path(str(store.month_path(2024, 2)))
    before = final.read_bytes()

    def partial_temporary() -> bool:
        return any(p.stat().st_size > 1_000_000 for p in final.parent.glob(".predictions.parquet.*.tmp"))

    kill_when(start_writer(store.uri, None), partial_temporary)

    assert final.read_bytes() == before
    assert store.read_month(2024, 2).equals(old_predictions())
    # What the kill left: a hidden, incomplete temporary file, never the final name. Dataset readers skip it.
    [leftover] = final.parent.glob(".predictions.parquet.*.tmp")
    with pytest.raises(pa.ArrowInvalid):
        pq.read_table(leftover)
    assert pq.read_table(final.parent).equals(old_predictions())


@pytest.mark.servers
def test_writer_killed_mid_upload_leaves_the_previous_s3_object_whole(moto_s3, s3_buckets):
    bucket = f"killed-{uuid.uuid4().hex[:8]}"
    s3 = s3_buckets(bucket)
    store = PredictionStore(uri=f"s3://{bucket}", s3_endpoint_url=moto_s3)
    store.write_month(2024, 2, old_predictions())
    key = "year=2024/month=02/predictions.parquet"
    before = s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def upload_in_progress() -> bool:
        return bool(s3.list_multipart_uploads(Bucket=bucket).get("Uploads"))

    try:
        kill_when(start_writer(store.uri, moto_s3), upload_in_progress)

        assert s3_keys(s3, bucket) == [key]  # no partial object, not even under the temporary name
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == before
        assert store.read_month(2024, 2).equals(old_predictions())
    finally:
        # Left behind: an incomplete multipart upload, invisible to readers (the buckets' lifecycle rule
        # abort_incomplete_multipart_upload reclaims it in AWS).
        for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


# --- the daemon restarted ------------------------------------------------------------------------------------------


@pytest.mark.servers
def test_daemon_restarted_between_two_uploads_runs_each_month_exactly_once(daemon_platform, monkeypatch):
    """January lands and is ingested; the daemon stops; March lands while no daemon runs; a new daemon on the same
    DAGSTER_HOME (same sensor cursors, same automation cursor) ingests March once and January not again.

    Both months stay ingest-only: January is the first month, and March's model would train on February, which
    never lands."""
    interval = 2
    platform = daemon_platform(env={"DEPLOY_ASSETS_SENSOR_INTERVAL_SECONDS": str(interval)})
    data = Path(platform.env["DEPLOY_ASSETS_DATA_URI"])
    monkeypatch.setenv("DAGSTER_HOME", str(platform.home))
    with dg.DagsterInstance.get() as instance:
        write_month(generate_month(2024, 1, ROWS), str(data / "landing"), 2024, 1)
        wait_until_quiet(instance, lambda: "2024-01-01" in materialized_partitions(instance, "raw_trips"),
                         describe=platform.log_text)
        [january] = instance.get_runs()
        platform.daemon.stop()

        write_month(generate_month(2024, 3, ROWS, seed=1), str(data / "landing"), 2024, 3)

        # A new daemon process on the same instance: same storage, same cursors.
        platform.start()
        wait_until_quiet(instance, lambda: "2024-03-01" in materialized_partitions(instance, "raw_trips"),
                         describe=platform.log_text)
        runs = list(reversed(instance.get_runs()))

        assert [sorted(run_partitions(run)) for run in runs] == [["2024-01-01"], ["2024-03-01"]]
        assert runs[0].run_id == january.run_id
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs), [run.status for run in runs]
        assert all(run.tags.get("dagster/from_automation_condition") == "true" for run in runs), [r.tags for r in runs]
        # Each month observed once (the new daemon's landing sensor kept its cursor) and ingested once.
        reported = landing_observations(instance, by_runs=False)
        assert sorted(month for month, _ in reported) == ["2024-01-01", "2024-03-01"]
        assert sorted(landing_observations(instance, by_runs=True)) == sorted(reported)
        assert materialized_partitions(instance, "raw_trips") == ["2024-01-01", "2024-03-01"]
        assert materialized_partitions(instance, "duration_model") == []
    stored = sorted(p.name for p in (data / "warehouse" / "yellow" / "raw_trips").iterdir())
    assert stored == ["2024-01-01.parquet", "2024-03-01.parquet"]


# --- security basics -----------------------------------------------------------------------------------------------

# Built from parts so that this file does not match its own patterns.
PRIVATE_KEY = re.compile("-----BEGIN " + r"(?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY" + "-----")
ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
SECRET_ASSIGNMENT = re.compile(
    r"(?i)aws_secret_access_key[\"']?\s*[=:]\s*[\"']?(?P<value>[^\s\"',)}]*)"
)
# Values a secret-key assignment may have: the dummy for emulated S3, and references to the environment.
ALLOWED_SECRET_VALUES = {"testing", ""}


def repository_files() -> list[Path]:
    """Tracked files, and untracked ones `git add .` would pick up."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    return [REPO_ROOT / name for name in listed if name and (REPO_ROOT / name).is_file()]


def test_no_credentials_in_the_repository():
    files = repository_files()
    assert len(files) > 50
    problems = []
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="replace")
        relative = path.relative_to(REPO_ROOT)
        problems += [f"{relative}: AWS access key id {m.group(0)[:8]}..." for m in ACCESS_KEY_ID.finditer(text)]
        problems += [f"{relative}: private key" for _ in PRIVATE_KEY.finditer(text)]
        for match in SECRET_ASSIGNMENT.finditer(text):
            value = match.group("value")
            if value not in ALLOWED_SECRET_VALUES and not value.startswith(("$", "os.", "var.", "<")):
                problems.append(f"{relative}: secret access key assigned {value[:4]}...")
        if path.name in {".env", "credentials", ".netrc", ".pgpass"} or path.suffix in {".pem", ".key", ".p12", ".pfx"}:
            problems.append(f"{relative}: a credentials file is tracked")
    assert not problems, problems


SECRET_NAME = re.compile(r"(?i)secret|passw|token|access_key|private|credential|api_?key")


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(instruction, arguments) with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        current += " " + line.rstrip("\\").strip()
        if not line.endswith("\\"):
            instruction, _, arguments = current.strip().partition(" ")
            lines.append((instruction.upper(), arguments.strip()))
            current = ""
    return lines


def test_dockerfile_bakes_in_no_secret():
    instructions = dockerfile_instructions((REPO_ROOT / "Dockerfile").read_text())
    env_and_args = [(kind, args) for kind, args in instructions if kind in {"ENV", "ARG"}]
    assert env_and_args  # the parser saw them
    for kind, arguments in env_and_args:
        names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", arguments) or [arguments.split()[0]]
        for name in names:
            assert not SECRET_NAME.search(name), f"{kind} {name}: secrets belong in the runtime environment"
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert not ACCESS_KEY_ID.search(text) and not PRIVATE_KEY.search(text)
    # Nothing copied wholesale into the image: the build context is an allow-list.
    copies = [args for kind, args in instructions if kind in {"COPY", "ADD"}]
    assert not any(re.match(r"^(--\S+\s+)*\.\s", args) for args in copies), copies
    assert "*" in (REPO_ROOT / ".dockerignore").read_text().splitlines()


@pytest.mark.servers
def test_failing_s3_run_does_not_log_the_secret_key(project, moto_s3, s3_buckets, monkeypatch):
    """A run that reads from S3 (signing every request with the secret) and fails: its event log, error chains and
    stack traces included, never contains the secret key."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    bucket = f"landing-{uuid.uuid4().hex[:8]}"
    s3 = s3_buckets(bucket)
    s3.put_object(Bucket=bucket, Key=tlc_file_name(2024, 2), Body=b"PAR1 this is not parquet PAR1")
    project.use(landing_uri=f"s3://{bucket}", aws_endpoint_url=moto_s3)

    result = run_month(project, ALL_ASSETS, MONTH)

    assert not result.success
    message = failure_message(result, "raw_trips")
    assert f"yellow/raw_trips[{MONTH}] failed: s3://{bucket}/{tlc_file_name(2024, 2)}: not a readable Parquet file" in message
    log = run_log_text(project.instance, result.run_id)
    assert "not a readable Parquet file" in log  # the log is what was searched
    assert SECRET not in log
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == SECRET  # ... while the run had it
