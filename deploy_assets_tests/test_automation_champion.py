"""The champion as a node of the graph: @champion moved and rolled back under the champion scoring policy, with
the months reported stale over GraphQL in between and re-scored each time."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from deploy_assets_tests.daemon_platform import MONTHS, STALE_STATUS, Platform, pause_automation, resume_automation

pytestmark = [pytest.mark.servers, pytest.mark.timeout(900)]


def test_champion_moved_and_rolled_back_rescores_the_months_each_time(tmp_path):
    platform = Platform(tmp_path / "c", {"DEPLOY_ASSETS_SCORING_POLICY": "champion"})
    months = MONTHS[:3]
    scored = months[1:]
    try:
        platform.start()  # first: it creates the instance's storage the webserver opens
        platform.start_webserver()
        for month in months:
            platform.land(month)
        champion = lambda: platform.registry().get_model_version_by_alias(platform.model_name, "champion").version  # noqa: E731
        platform.wait_until(
            lambda: platform.converged(scored) and all(platform.scored_by(m) == {str(champion())} for m in scored),
            "every month scored by the champion",
        )
        platform.wait_quiet()
        versions = platform.versions_by_month()
        first, second = versions[scored[0]][0], versions[scored[1]][0]
        assert str(champion()) == second
        platform.wait_webserver()

        for target in (first, second):  # a move, then the roll-back
            # Automation paused: the move is observed, and the months scored by another version show as stale.
            pause_automation(platform)
            platform.registry().set_registered_model_alias(platform.model_name, "champion", target)
            platform.wait_until(
                lambda t=target: all(
                    (r := platform.instance.get_latest_data_version_record(
                        dg.AssetKey(["yellow", "champion_model"]), is_source=True, partition_key=m)) is not None
                    and r.asset_observation.data_version == t
                    for m in scored
                ),
                f"@champion {target} observed",
                timeout=60,
            )
            stale = platform.graphql(STALE_STATUS, {"partitions": scored})["assetNodes"][0]["staleStatusByPartition"]
            assert stale == ["STALE"] * len(scored)
            # Automation resumed: every month is re-scored by the new champion, and nothing else runs.
            ingested = platform.materialization_counts("raw_trips")
            resume_automation(platform)
            platform.wait_until(
                lambda t=target: all(platform.scored_by(m) == {t} for m in scored) and not platform.busy(),
                f"months re-scored by {target}",
            )
            platform.wait_quiet()
            fresh = platform.graphql(STALE_STATUS, {"partitions": scored})["assetNodes"][0]["staleStatusByPartition"]
            assert fresh == ["FRESH"] * len(scored)
            assert platform.materialization_counts("raw_trips") == ingested
            with duckdb.connect(str(platform.root / "predictions.duckdb"), read_only=True) as connection:
                served = connection.execute("SELECT DISTINCT model_version FROM trip_predictions").fetchall()
            assert served == [(target,)]
        assert platform.failed_runs() == []
    finally:
        platform.stop()
