"""The daemon tests' platform (`daemon_platform.Platform`) on S3: a bucket of its own on moto's S3, a model name of
its own in the MLflow server (artifacts in that S3), and what a user does and reads there (uploads, published
objects, registered versions, table rows).

The months uploaded are yellow's unless `deployment` says otherwise: the code location's `yellow` deployment (its
model `DEPLOY_ASSETS_MODEL_NAME`, its table `trip_predictions`, its predictions under `predictions/yellow/`), loaded
alone unless `DEPLOY_ASSETS_DEPLOYMENTS` names more; `green` shares the landing prefix, its files told apart by
name."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from typing import Any

import dagster as dg
import duckdb
import pyarrow.parquet as pq
from mlflow import MlflowClient

from deploy_assets.core.datasets import DATASETS
from deploy_assets.core.generate import generate_month
from deploy_assets.core.months import Month
from deploy_assets.partitions import year_month
from deploy_assets_tests.daemon_platform import Platform, model_and_table

SENSOR_INTERVAL = 2
ROWS = 5_000
DEPLOYMENT = "yellow"


def month_bytes(partition_key: str, seed: int = 0, deployment: str = DEPLOYMENT) -> bytes:
    """A generated month of the deployment's TLC service in its schema, as the Parquet bytes a user uploads."""
    sink = io.BytesIO()
    pq.write_table(generate_month(*year_month(partition_key), ROWS, seed=seed, dataset=DATASETS[deployment]), sink)
    return sink.getvalue()


def predictions_key(partition_key: str, deployment: str = DEPLOYMENT) -> str:
    year, month = year_month(partition_key)
    return f"predictions/{deployment}/year={year}/month={month:02d}/predictions.parquet"


@dataclass
class S3Platform:
    bucket: str
    model_name: str
    s3: Any
    daemon: Platform
    instance: dg.DagsterInstance
    registry: MlflowClient

    def upload(self, name: str, body: bytes) -> str:
        """PUT an object under the landing prefix; returns its ETag."""
        return self.s3.put_object(Bucket=self.bucket, Key=f"landing/{name}", Body=body)["ETag"].strip('"')

    def upload_month(self, partition_key: str, seed: int = 0, deployment: str = DEPLOYMENT) -> str:
        name = DATASETS[deployment].file_name(Month.from_key(partition_key))
        return self.upload(name, month_bytes(partition_key, seed, deployment))

    def published(self, partition_key: str, deployment: str = DEPLOYMENT) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=predictions_key(partition_key, deployment))["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None

    def versions(self, deployment: str = DEPLOYMENT) -> list:
        model_name = model_and_table(deployment, self.model_name)[0]
        return self.registry.search_model_versions(f"name = '{model_name}'")

    def versions_by_month(self, deployment: str = DEPLOYMENT) -> dict[str, list[str]]:
        by_month: dict[str, list[str]] = {}
        for version in self.versions(deployment):
            by_month.setdefault(version.tags["partition"], []).append(str(version.version))
        return by_month

    def table_rows(self, deployment: str = DEPLOYMENT) -> dict[str, int]:
        """Rows per month in the deployment's SQL table."""
        path = self.daemon.env["DEPLOY_ASSETS_PREDICTIONS_DB"].removeprefix("duckdb:///")
        table = model_and_table(deployment, self.model_name)[1]
        with duckdb.connect(path, read_only=True) as connection:
            query = f"SELECT month::VARCHAR, count(*) FROM {table} GROUP BY 1"
            return dict(connection.execute(query).fetchall())

    def log_tail(self) -> str:
        return self.daemon.log_tail()


def start_s3_platform(
    prefix: str, moto_s3: str, mlflow_server: str, s3_buckets, daemon_platform, monkeypatch, **env: str
) -> S3Platform:
    """A fresh bucket and (yellow's) model name, and the daemon running over them with the sensors ticking every
    2 s."""
    bucket = f"{prefix}-{uuid.uuid4().hex[:8]}"
    model_name = f"trip-duration-{bucket}"
    s3 = s3_buckets(bucket)
    daemon = daemon_platform(
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
    monkeypatch.setenv("DAGSTER_HOME", str(daemon.home))
    return S3Platform(
        bucket=bucket,
        model_name=model_name,
        s3=s3,
        daemon=daemon,
        instance=dg.DagsterInstance.get(),
        registry=MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server),
    )
