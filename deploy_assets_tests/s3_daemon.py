"""The platform on S3 for daemon tests: a bucket of its own on moto's S3, a model name of its own in the MLflow
server (artifacts in that S3), and the real dagster-daemon pointed at both.

The months uploaded are yellow's: the code location's `yellow` deployment (its model `DEPLOY_ASSETS_MODEL_NAME`,
its table `trip_predictions`, its predictions under `predictions/yellow/`) is the one under test; `green` shares
the landing prefix and finds no file of its own there."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from typing import Any

import dagster as dg
import duckdb
import pyarrow.parquet as pq
from mlflow import MlflowClient

from deploy_assets.core.generate import generate_month
from deploy_assets.core.schema import tlc_file_name
from deploy_assets.partitions import year_month

SENSOR_INTERVAL = 2
ROWS = 5_000
DEPLOYMENT = "yellow"
TABLE = "trip_predictions"  # yellow's table (its defs.yaml)


def month_bytes(partition_key: str, seed: int = 0) -> bytes:
    """A generated month in the TLC schema, as the Parquet bytes a user uploads."""
    sink = io.BytesIO()
    pq.write_table(generate_month(*year_month(partition_key), ROWS, seed=seed), sink)
    return sink.getvalue()


def predictions_key(partition_key: str) -> str:
    year, month = year_month(partition_key)
    return f"predictions/{DEPLOYMENT}/year={year}/month={month:02d}/predictions.parquet"


@dataclass
class S3Platform:
    bucket: str
    model_name: str
    s3: Any
    daemon: Any
    instance: dg.DagsterInstance
    registry: MlflowClient

    def upload(self, name: str, body: bytes) -> str:
        """PUT an object under the landing prefix; returns its ETag."""
        return self.s3.put_object(Bucket=self.bucket, Key=f"landing/{name}", Body=body)["ETag"].strip('"')

    def upload_month(self, partition_key: str, seed: int = 0) -> str:
        return self.upload(tlc_file_name(*year_month(partition_key)), month_bytes(partition_key, seed))

    def published(self, partition_key: str) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=predictions_key(partition_key))["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None

    def versions(self) -> list:
        return self.registry.search_model_versions(f"name = '{self.model_name}'")

    def versions_by_month(self) -> dict[str, list[str]]:
        by_month: dict[str, list[str]] = {}
        for version in self.versions():
            by_month.setdefault(version.tags["partition"], []).append(str(version.version))
        return by_month

    def table_rows(self) -> dict[str, int]:
        """Rows per month in yellow's SQL table."""
        path = self.daemon.env["DEPLOY_ASSETS_PREDICTIONS_DB"].removeprefix("duckdb:///")
        with duckdb.connect(path, read_only=True) as connection:
            query = f"SELECT month::VARCHAR, count(*) FROM {TABLE} GROUP BY 1"
            return dict(connection.execute(query).fetchall())

    def log_tail(self) -> str:
        return self.daemon.log_text()[-4000:]


def start_s3_platform(
    prefix: str, moto_s3: str, mlflow_server: str, s3_buckets, dagster_daemon, monkeypatch, **env: str
) -> S3Platform:
    """A fresh bucket and (yellow's) model name, and the daemon running over them with the sensors ticking every
    2 s."""
    bucket = f"{prefix}-{uuid.uuid4().hex[:8]}"
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
            **env,
        }
    )
    monkeypatch.setenv("DAGSTER_HOME", str(daemon.dagster_home))
    return S3Platform(
        bucket=bucket,
        model_name=model_name,
        s3=s3,
        daemon=daemon,
        instance=dg.DagsterInstance.get(),
        registry=MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server),
    )
