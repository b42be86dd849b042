"""A bulk historical load on S3 of two deployments at once: yellow and green months uploaded to one landing prefix
on moto's S3 converge through the real daemon, each deployment on its own (its months, its registered model, its
prediction objects and table), with a real MLflow server whose artifacts live in that S3. (Its own file, so it runs
beside test_daemon_end_to_end.py.)"""

from __future__ import annotations

import io

import dagster as dg
import pyarrow.parquet as pq
import pytest

from deploy_assets_tests.instance_records import materialized_partitions, wait_until_quiet
from deploy_assets_tests.s3_daemon import start_s3_platform

pytestmark = [pytest.mark.servers, pytest.mark.timeout(600)]

MONTHS = {
    "yellow": [f"2024-{m:02d}-01" for m in range(1, 5)],
    "green": [f"2024-{m:02d}-01" for m in range(1, 4)],
}


def test_yellow_and_green_months_uploaded_to_s3_at_once_converge_each_on_its_own(
    moto_s3, mlflow_server, s3_buckets, daemon_platform, monkeypatch
):
    """Every month after each deployment's first is published to S3 and its table, each by exactly one registered
    version of that deployment's own model, and no run fails."""
    platform = start_s3_platform(
        "bulk", moto_s3, mlflow_server, s3_buckets, daemon_platform, monkeypatch,
        DEPLOY_ASSETS_FIRST_MONTH="2024-01-01", DEPLOY_ASSETS_DEPLOYMENTS="yellow,green",
    )
    instance = platform.instance
    for deployment, months in MONTHS.items():
        for month in months:
            platform.upload_month(month, deployment=deployment)
    scored = {deployment: months[1:] for deployment, months in MONTHS.items()}

    def published() -> dict[str, list[str]]:
        return {d: sorted(set(materialized_partitions(instance, "prediction_table", d))) for d in MONTHS}

    wait_until_quiet(instance, lambda: published() == scored, describe=platform.log_tail, timeout=480)
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in instance.get_runs())
    for deployment, months in scored.items():
        by_month = platform.versions_by_month(deployment)
        assert {m: len(v) for m, v in by_month.items()} == {m: 1 for m in months}, deployment
        for month in months:
            predictions = pq.read_table(io.BytesIO(platform.published(month, deployment)))
            assert set(predictions["model_version"].to_pylist()) == set(by_month[month]), (deployment, month)
        assert set(platform.table_rows(deployment)) == set(months), deployment
    assert platform.versions("yellow")[0].name != platform.versions("green")[0].name
