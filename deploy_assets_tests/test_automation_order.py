"""Months landing newest first, one at a time, converge to the same end state as months landing at once."""

from __future__ import annotations

import dagster as dg
import pytest

from deploy_assets_tests.daemon_platform import (
    MONTHS,
    assert_one_version_per_month,
    platform,  # noqa: F401 - the fixture
)

pytestmark = [pytest.mark.servers, pytest.mark.timeout(900)]


def test_months_landing_newest_first_reach_the_same_end_state(platform):
    platform.start()
    instance = platform.instance
    for month in reversed(MONTHS):
        platform.land(month)
        # The next (older) month lands only once this one was seen: they truly arrive out of order.
        platform.wait_until(
            lambda m=month: instance.get_latest_data_version_record(
                dg.AssetKey(["yellow", "landing_file"]), is_source=True, partition_key=m
            )
            is not None,
            f"yellow/landing_file[{month}] observed",
            timeout=60,
        )
    scored = MONTHS[1:]
    platform.wait_until(lambda: platform.converged(scored), "every month after the first published")
    platform.wait_quiet()
    assert platform.failed_runs() == []
    assert_one_version_per_month(platform, scored)
    assert set(platform.table_months()) == set(scored)


# --- the champion as a node of the graph ---------------------------------------------------------------------
