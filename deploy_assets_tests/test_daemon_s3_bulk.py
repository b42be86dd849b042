"""A bulk historical load on S3: six months uploaded to moto's S3 at once converge through the real daemon, with a
real MLflow server whose artifacts live in that S3. (Its own file, so it runs beside test_daemon_end_to_end.py.)"""

from __future__ import annotations

import io
import uuid

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from deploy_assets.core.schema import tlc_file_name
from deploy_assets_tests.faults_util import materialized_partitions, wait_until_quiet
from deploy_assets_tests.test_daemon_end_to_end import SENSOR_INTERVAL, month_bytes, upload

pytestmark = [pytest.mark.servers, pytest.mark.timeout(600)]

SIX_MONTHS = [f"2024-{m:02d}-01" for m in range(1, 7)]


def test_six_months_uploaded_to_s3_at_once_converge(moto_s3, mlflow_server, s3_buckets, dagster_daemon, monkeypatch):
    """The bulk historical load on S3 (moto) with the MLflow server: every month after the first is published to
    S3 and the table, each by exactly one registered version of its own, and no run fails."""
    bucket = f"bulk-{uuid.uuid4().hex[:8]}"
    model_name = f"trip-duration-{bucket}"
    s3 = s3_buckets(bucket)
    daemon = dagster_daemon(
        env={
            "DEPLOY_ASSETS_DATA_URI": f"s3://{bucket}",
            "AWS_ENDPOINT_URL": moto_s3,
            "MLFLOW_S3_ENDPOINT_URL": moto_s3,
            "MLFLOW_TRACKING_URI": mlflow_server,
            "DEPLOY_ASSETS_MODEL_NAME": model_name,
            "DEPLOY_ASSETS_FIRST_MONTH": SIX_MONTHS[0],
            "DEPLOY_ASSETS_SENSOR_INTERVAL_SECONDS": str(SENSOR_INTERVAL),
        }
    )
    monkeypatch.setenv("DAGSTER_HOME", str(daemon.dagster_home))
    instance = dg.DagsterInstance.get()
    for month in SIX_MONTHS:
        upload(s3, bucket, tlc_file_name(int(month[:4]), int(month[5:7])), month_bytes(int(month[:4]), int(month[5:7])))
    scored = SIX_MONTHS[1:]
    wait_until_quiet(
        instance, lambda: sorted(set(materialized_partitions(instance, "prediction_table"))) == scored,
        describe=lambda: daemon.log_text()[-4000:], timeout=480,
    )
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in instance.get_runs())
    registry = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    by_month: dict[str, list[str]] = {}
    for version in registry.search_model_versions(f"name = '{model_name}'"):
        by_month.setdefault(version.tags["partition"], []).append(str(version.version))
    assert {m: len(v) for m, v in by_month.items()} == {m: 1 for m in scored}
    for month in scored:
        key = f"predictions/year={month[:4]}/month={month[5:7]}/predictions.parquet"
        predictions = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        assert set(predictions["model_version"].to_pylist()) == set(by_month[month])
    table_path = daemon.env["DEPLOY_ASSETS_PREDICTIONS_DB"].removeprefix("duckdb:///")
    with duckdb.connect(table_path, read_only=True) as connection:
        months = {m for (m,) in connection.execute("SELECT DISTINCT month::VARCHAR FROM trip_predictions").fetchall()}
    assert months == set(scored)
