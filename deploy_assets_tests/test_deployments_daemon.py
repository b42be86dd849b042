"""Two deployments over one landing folder through the real dagster-daemon: yellow and green months landed at
once converge each on its own (its runs, its registered model, its objects and table), and a corrupt green month
fails alone, named by deployment, month and cause, while every yellow month is published."""

from __future__ import annotations

import pytest

from deploy_assets.core.datasets import GREEN as GREEN_FILES
from deploy_assets.core.months import Month
from deploy_assets_tests.daemon_platform import MONTHS, Platform, assert_one_version_per_month

pytestmark = [pytest.mark.servers, pytest.mark.timeout(900)]

YELLOW = MONTHS[:3]
GREEN, CORRUPT = MONTHS[:2], MONTHS[2]


def test_yellow_and_green_landed_at_once_converge_apart_and_a_corrupt_green_month_fails_alone(tmp_path):
    platform = Platform(tmp_path / "p", {"DEPLOY_ASSETS_DEPLOYMENTS": "yellow,green"})
    try:
        platform.start()
        for month in YELLOW:
            platform.land(month)
        for month in GREEN:
            platform.land(month, deployment="green")
        (platform.landing / GREEN_FILES.file_name(Month.from_key(CORRUPT))).write_bytes(b"PAR1 not really parquet")

        platform.wait_until(
            lambda: platform.converged(YELLOW[1:]) and platform.converged(GREEN[1:], "green")
            and platform.failed_runs(),
            "yellow's and green's months published and the corrupt green month failed", failures_allowed=True,
        )
        platform.wait_quiet(failures_allowed=True)  # automation ticked again: the failed month is not retried

        (failure,) = platform.failed_runs()
        assert f" {CORRUPT}: " in failure and f"green/raw_trips[{CORRUPT}] failed" in failure, failure
        assert f"green_tripdata_{CORRUPT[:7]}.parquet: not a readable Parquet file" in failure, failure
        assert_one_version_per_month(platform, YELLOW[1:])
        assert_one_version_per_month(platform, GREEN[1:], "green")
        assert set(platform.table_months()) == set(YELLOW[1:])
        assert set(platform.table_months("green")) == set(GREEN[1:])
        assert platform.published(CORRUPT, "green") is None
        # Each deployment ingested its own files only: yellow's every month, green's the readable ones.
        assert set(platform.materialization_counts("raw_trips")) == set(YELLOW)
        assert set(platform.materialization_counts("raw_trips", "green")) == set(GREEN)
    finally:
        platform.stop()
