"""A bulk historical load on S3: six months uploaded to moto's S3 at once converge through the real daemon, with a
real MLflow server whose artifacts live in that S3. (Its own file, so it runs beside test_daemon_end_to_end.py.)"""

from __future__ import annotations

import io

import dagster as dg
import pyarrow.parquet as pq
import pytest

from deploy_assets_tests.instance_records import materialized_partitions, wait_until_quiet
from deploy_assets_tests.s3_daemon import start_s3_platform

pytestmark = [pytest.mark.servers, pytest.mark.timeout(600)]

SIX_MONTHS = [f"2024-{m:02d}-01" for m in range(1, 7)]


def test_six_months_uploaded_to_s3_at_once_converge(moto_s3, mlflow_server, s3_buckets, dagster_daemon, monkeypatch):
    """The bulk historical load on S3 (moto) with the MLflow server: every month after the first is published to
    S3 and the table, each by exactly one registered version of its own, and no run fails."""
    platform = start_s3_platform(
        "bulk", moto_s3, mlflow_server, s3_buckets, dagster_daemon, monkeypatch,
        DEPLOY_ASSETS_FIRST_MONTH=SIX_MONTHS[0],
    )
    instance = platform.instance
    for month in SIX_MONTHS:
        platform.upload_month(month)
    scored = SIX_MONTHS[1:]
    wait_until_quiet(
        instance, lambda: sorted(set(materialized_partitions(instance, "prediction_table"))) == scored,
        describe=platform.log_tail, timeout=480,
    )
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in instance.get_runs())
    by_month = platform.versions_by_month()
    assert {m: len(v) for m, v in by_month.items()} == {m: 1 for m in scored}
    for month in scored:
        predictions = pq.read_table(io.BytesIO(platform.published(month)))
        assert set(predictions["model_version"].to_pylist()) == set(by_month[month])
    assert set(platform.table_rows()) == set(scored)
