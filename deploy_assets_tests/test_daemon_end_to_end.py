"""End to end through real processes: moto S3, an MLflow tracking server, and dagster-daemon.

A month uploaded to the landing bucket makes the landing sensor (run by the real daemon) launch a run, which
reads from S3, registers a model in the MLflow server (artifacts in S3) and writes the predictions object to S3.
"""

from __future__ import annotations

import io
import time
import uuid

import dagster as dg
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from deploy_assets.core.generate import generate_month
from deploy_assets.core.schema import tlc_file_name

pytestmark = [pytest.mark.servers, pytest.mark.timeout(600)]

SENSOR_INTERVAL = 3


def upload(client, bucket: str, year: int, month: int, seed: int = 0) -> None:
    sink = io.BytesIO()
    pq.write_table(generate_month(year, month, 5_000, seed=seed), sink)
    client.put_object(Bucket=bucket, Key=f"landing/{tlc_file_name(year, month)}", Body=sink.getvalue())


def runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return sorted(instance.get_runs(), key=lambda run: run.run_id)


def wait_for_runs(instance: dg.DagsterInstance, count: int, daemon, timeout: float = 180) -> list[dg.DagsterRun]:
    """Until `count` runs exist and all have finished; fails on a failed run, with the daemon's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = [instance.get_run_by_id(run.run_id) for run in runs(instance)]
        failed = [run for run in current if run.status == dg.DagsterRunStatus.FAILURE]
        if failed:
            messages = [
                entry.message
                for entry in instance.all_logs(failed[0].run_id)
                if entry.is_dagster_event and entry.dagster_event.is_failure
            ]
            pytest.fail(f"run {failed[0].run_id} failed: {messages}")
        if len(current) >= count and all(run.is_finished for run in current):
            return current
        time.sleep(1)
    pytest.fail(f"expected {count} finished runs, saw {[r.status for r in runs(instance)]}\n{daemon.log_text()[-4000:]}")


def test_uploads_launch_runs_that_publish_predictions_to_s3(
    moto_s3, mlflow_server, s3_buckets, dagster_daemon, tmp_path, monkeypatch
):
    bucket = f"e2e-{uuid.uuid4().hex[:8]}"
    model_name = f"trip-duration-{bucket}"
    s3 = s3_buckets(bucket)
    daemon = dagster_daemon(
        env={
            "DEPLOY_ASSETS_DATA_URI": f"s3://{bucket}",
            "AWS_ENDPOINT_URL": moto_s3,
            "MLFLOW_S3_ENDPOINT_URL": moto_s3,
            "MLFLOW_TRACKING_URI": mlflow_server,
            "DEPLOY_ASSETS_MODEL_NAME": model_name,
            "DEPLOY_ASSETS_SENSOR_INTERVAL_SECONDS": str(SENSOR_INTERVAL),
        }
    )
    monkeypatch.setenv("DAGSTER_HOME", str(daemon.dagster_home))
    instance = dg.DagsterInstance.get()

    # January first: nothing before it is ingested, so its run only ingests.
    upload(s3, bucket, 2024, 1)
    [january] = wait_for_runs(instance, 1, daemon)
    assert january.tags["dagster/partition"] == "2024-01-01"
    assert january.tags["trigger"] == "landing_sensor"

    # February: trains its model on January, registers it in the MLflow server, scores, publishes to S3.
    upload(s3, bucket, 2024, 2)
    finished = wait_for_runs(instance, 2, daemon)
    assert [r.tags["dagster/partition"] for r in finished].count("2024-02-01") == 1
    key = "predictions/year=2024/month=02/predictions.parquet"
    predictions = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    registry = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    [version] = registry.search_model_versions(f"name = '{model_name}'")
    assert set(predictions["model_version"].to_pylist()) == {str(version.version)}
    assert version.tags["partition"] == "2024-02-01"
    artifacts = s3.list_objects_v2(Bucket="mlflow", Prefix="artifacts/")["KeyCount"]
    assert artifacts > 0

    # The same bytes again: the run key repeats, nothing is launched.
    upload(s3, bucket, 2024, 2)
    time.sleep(4 * SENSOR_INTERVAL)
    assert len(runs(instance)) == 2

    # Changed bytes: exactly one new run.
    upload(s3, bucket, 2024, 2, seed=5)
    finished = wait_for_runs(instance, 3, daemon)
    time.sleep(2 * SENSOR_INTERVAL)
    assert len(runs(instance)) == 3
    assert [r.tags["dagster/partition"] for r in finished].count("2024-02-01") == 2
