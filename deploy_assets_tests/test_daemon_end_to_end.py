"""End to end through real processes: moto S3, an MLflow tracking server, and dagster-daemon.

Months uploaded to the landing prefix in S3 are reported by the landing sensor (run by the real daemon) as
observations of landing_file (data version = the object's ETag); Dagster's automation sensor then launches the
runs that read from S3, register a model per month in the MLflow server (artifacts in S3) and write the
predictions object to S3. Every "nothing more happens" is proven by more sensor ticks with no new run.
"""

from __future__ import annotations

import io
import time
import uuid

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from deploy_assets.core.generate import generate_month
from deploy_assets.core.schema import tlc_file_name
from deploy_assets_tests.faults_util import materialized_partitions, run_partitions, sensor_ticks, wait_until_quiet

pytestmark = [pytest.mark.servers, pytest.mark.timeout(600)]

SENSOR_INTERVAL = 2
ROWS = 5_000
JAN, FEB = "2024-01-01", "2024-02-01"
PREDICTIONS_KEY = "predictions/year=2024/month=02/predictions.parquet"


def month_bytes(year: int, month: int, seed: int = 0) -> bytes:
    sink = io.BytesIO()
    pq.write_table(generate_month(year, month, ROWS, seed=seed), sink)
    return sink.getvalue()


def upload(client, bucket: str, name: str, body: bytes) -> str:
    """PUT an object under the landing prefix; returns its ETag."""
    return client.put_object(Bucket=bucket, Key=f"landing/{name}", Body=body)["ETag"].strip('"')


def landing_versions(instance: dg.DagsterInstance) -> list[tuple[str, str]]:
    """(month, data version) of every observation of landing_file, oldest first."""
    records = instance.fetch_observations(dg.AssetKey("landing_file"), limit=1000).records
    return [(r.partition_key, r.asset_observation.data_version) for r in reversed(records)]


def wait_for_ticks(instance: dg.DagsterInstance, name: str, more: int, daemon, timeout: float = 60) -> None:
    start = sensor_ticks(instance, name)
    deadline = time.monotonic() + timeout
    while sensor_ticks(instance, name) < start + more:
        if time.monotonic() > deadline:
            pytest.fail(f"{name} did not tick {more} more times in {timeout:.0f}s\n{daemon.log_text()[-4000:]}")
        time.sleep(0.5)


def test_uploads_to_s3_converge_to_published_predictions_through_the_daemon(
    moto_s3, mlflow_server, s3_buckets, dagster_daemon, monkeypatch
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
    registry = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    table_path = daemon.env["DEPLOY_ASSETS_PREDICTIONS_DB"].removeprefix("duckdb:///")

    def versions() -> list:
        return registry.search_model_versions(f"name = '{model_name}'")

    def published() -> bytes | None:
        try:
            return s3.get_object(Bucket=bucket, Key=PREDICTIONS_KEY)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None

    # Two months at once, beside odd keys: January is ingested (its model would train on December, which never
    # landed), February trains on January, is registered, promoted, scored and published to S3 and the table.
    upload(s3, bucket, "notes 2024-01-01T00:00:00.txt", b"not a month")
    upload(s3, bucket, f"archive/{tlc_file_name(2024, 2)}", b"an old copy")
    etags = {JAN: upload(s3, bucket, tlc_file_name(2024, 1), month_bytes(2024, 1)),
             FEB: upload(s3, bucket, tlc_file_name(2024, 2), month_bytes(2024, 2))}
    wait_until_quiet(
        instance, lambda: published() is not None and materialized_partitions(instance, "prediction_table") == [FEB],
        describe=lambda: daemon.log_text()[-4000:], timeout=420,
    )

    assert sorted(landing_versions(instance)) == sorted(etags.items())  # data version = S3's ETag
    assert materialized_partitions(instance, "raw_trips") == [JAN, FEB]
    assert materialized_partitions(instance, "duration_model") == [FEB]
    runs = instance.get_runs()
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
    assert all(run.tags.get("dagster/from_automation_condition") == "true" for run in runs)
    assert sorted({key for run in runs for key in run_partitions(run)}) == [JAN, FEB]
    [version] = versions()
    assert version.tags["partition"] == FEB and version.tags["training_partitions"] == JAN
    predictions = pq.read_table(io.BytesIO(published()))
    assert set(predictions["model_version"].to_pylist()) == {str(version.version)}
    assert str(registry.get_model_version_by_alias(model_name, "champion").version) == str(version.version)
    with duckdb.connect(table_path, read_only=True) as connection:
        rows = dict(connection.execute("SELECT month::VARCHAR, count(*) FROM trip_predictions GROUP BY 1").fetchall())
    assert rows == {FEB: predictions.num_rows}
    assert s3.list_objects_v2(Bucket="mlflow", Prefix="artifacts/")["KeyCount"] > 0
    assert not s3.list_objects_v2(Bucket=bucket, Prefix="predictions/_staging/").get("Contents")
    run_count, first_bytes = len(runs), published()

    # The same bytes uploaded again: same ETag, nothing reported, nothing launched.
    upload(s3, bucket, tlc_file_name(2024, 2), month_bytes(2024, 2))
    wait_for_ticks(instance, "landing_sensor", 2, daemon)
    wait_until_quiet(instance, lambda: True, describe=lambda: daemon.log_text()[-4000:])
    assert len(instance.get_runs()) == run_count
    assert len(landing_versions(instance)) == 2

    # Changed bytes: February refreshes (re-ingested, its model re-tested, same version: its training month is
    # unchanged; re-scored and republished); January is not touched.
    new_etag = upload(s3, bucket, tlc_file_name(2024, 2), month_bytes(2024, 2, seed=5))
    wait_until_quiet(
        instance, lambda: materialized_partitions(instance, "prediction_table") == [FEB, FEB],
        describe=lambda: daemon.log_text()[-4000:], timeout=300,
    )
    assert landing_versions(instance)[-1] == (FEB, new_etag)
    assert materialized_partitions(instance, "raw_trips") == [JAN, FEB, FEB]
    assert materialized_partitions(instance, "duration_model") == [FEB, FEB]
    assert [v.version for v in versions()] == [version.version]
    assert published() != first_bytes
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in instance.get_runs())

