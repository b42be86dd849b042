"""End to end through real processes: moto S3, an MLflow tracking server, and dagster-daemon.

Yellow months uploaded to the landing prefix in S3 are reported by yellow's landing sensor (run by the real daemon)
as observations of yellow/landing_file (data version = the object's ETag); yellow's automation sensor then launches
the runs that read from S3, register a model per month in the MLflow server (artifacts in S3) and write the
predictions object to S3 (under `predictions/yellow/`). Every "nothing more happens" is proven by more sensor ticks
with no new run.
"""

from __future__ import annotations

import io
import time

import dagster as dg
import pyarrow.parquet as pq
import pytest

from deploy_assets.core.schema import tlc_file_name
from deploy_assets_tests.instance_records import (
    landing_observations,
    materialized_partitions,
    run_partitions,
    sensor_ticks,
    wait_until_quiet,
)
from deploy_assets_tests.s3_daemon import month_bytes, start_s3_platform

pytestmark = [pytest.mark.servers, pytest.mark.timeout(600)]

JAN, FEB = "2024-01-01", "2024-02-01"


def wait_for_ticks(instance: dg.DagsterInstance, name: str, more: int, daemon, timeout: float = 60) -> None:
    start = sensor_ticks(instance, name)
    deadline = time.monotonic() + timeout
    while sensor_ticks(instance, name) < start + more:
        if time.monotonic() > deadline:
            pytest.fail(f"{name} did not tick {more} more times in {timeout:.0f}s\n{daemon.log_tail()}")
        time.sleep(0.5)


def test_uploads_to_s3_converge_to_published_predictions_through_the_daemon(
    moto_s3, mlflow_server, s3_buckets, daemon_platform, monkeypatch
):
    platform = start_s3_platform("e2e", moto_s3, mlflow_server, s3_buckets, daemon_platform, monkeypatch)
    instance, s3, bucket, daemon = platform.instance, platform.s3, platform.bucket, platform.daemon
    registry, model_name, versions = platform.registry, platform.model_name, platform.versions

    def published() -> bytes | None:
        return platform.published(FEB)

    # Two months at once, beside odd keys: January is ingested (the first month: nothing before it to train on),
    # February trains on January, is registered, promoted, scored and published to S3 and the table.
    platform.upload("notes 2024-01-01T00:00:00.txt", b"not a month")
    platform.upload(f"archive/{tlc_file_name(2024, 2)}", b"an old copy")
    etags = {JAN: platform.upload_month(JAN), FEB: platform.upload_month(FEB)}
    wait_until_quiet(
        instance, lambda: published() is not None and materialized_partitions(instance, "prediction_table") == [FEB],
        describe=platform.log_tail, timeout=420,
    )

    assert sorted(landing_observations(instance, by_runs=False)) == sorted(etags.items())  # data version = ETag
    # Each month's ingest recorded the version it read: the same ETag, once.
    assert sorted(landing_observations(instance, by_runs=True)) == sorted(etags.items())
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
    assert platform.table_rows() == {FEB: predictions.num_rows}
    assert s3.list_objects_v2(Bucket="mlflow", Prefix="artifacts/")["KeyCount"] > 0
    published_keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="predictions/").get("Contents", [])]
    assert published_keys and not [key for key in published_keys if "/_staging/" in key], published_keys
    run_count, first_bytes = len(runs), published()

    # The same bytes uploaded again: same ETag, nothing reported, nothing launched.
    platform.upload(tlc_file_name(2024, 2), month_bytes(FEB))
    wait_for_ticks(instance, "yellow_landing_sensor", 2, daemon)
    wait_until_quiet(instance, lambda: True, describe=platform.log_tail)
    assert len(instance.get_runs()) == run_count
    assert len(landing_observations(instance, by_runs=False)) == 2

    # Changed bytes: February refreshes (re-ingested, its model re-tested, same version: its training month is
    # unchanged; re-scored and republished); January is not touched.
    new_etag = platform.upload_month(FEB, seed=5)
    wait_until_quiet(
        instance, lambda: materialized_partitions(instance, "prediction_table") == [FEB, FEB],
        describe=platform.log_tail, timeout=300,
    )
    assert landing_observations(instance, by_runs=False)[-1] == (FEB, new_etag)
    assert landing_observations(instance, by_runs=True)[-1] == (FEB, new_etag)
    assert materialized_partitions(instance, "raw_trips") == [JAN, FEB, FEB]
    assert materialized_partitions(instance, "duration_model") == [FEB, FEB]
    assert [v.version for v in versions()] == [version.version]
    assert published() != first_bytes
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in instance.get_runs())

