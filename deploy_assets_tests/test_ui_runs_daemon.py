"""What a Dagster UI user does beside the running daemon: asset-graph backfills of months that already exist. Real
daemon and webserver, GraphQL as the UI sends it; bounded waits on real events."""

from __future__ import annotations

import time

import pytest

from deploy_assets_tests import servers
from deploy_assets_tests.automation_platform import Platform, graphql

pytestmark = [pytest.mark.servers, pytest.mark.timeout(900)]

JAN, FEB, MAR, APR = (f"2024-{m:02d}-01" for m in range(1, 5))
MATERIALIZABLE = ["raw_trips", "trip_statistics", "duration_model", "model_promotion", "trip_predictions",
                  "prediction_table"]

LAUNCH_BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""
BACKFILL_STATUS = """
query Status($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } } }
"""
STALE = """
query Stale($keys: [AssetKeyInput!]!, $partitions: [String!]!) {
  assetNodes(assetKeys: $keys) { assetKey { path } staleStatusByPartition(partitions: $partitions) }
}
"""


class UI:
    """The daemon's platform and a webserver over the same instance: what a browser user sees and launches."""

    def __init__(self, platform: Platform, tmp_path):
        self.platform = platform
        platform.start()  # first: it creates the instance's storage the webserver opens
        env = servers.child_env({**platform.env, "DAGSTER_HOME": str(platform.home)})
        self.webserver, self.port = servers.start_dagster_webserver(env, tmp_path / "webserver")
        servers.wait_dagster_webserver(self.webserver, self.port)

    def stop(self) -> None:
        self.webserver.stop()
        self.platform.stop()
        assert not self.webserver.survivors()

    def backfill(self, assets: list[str], partitions: list[str]) -> str:
        params = {"assetSelection": [{"path": [a]} for a in assets], "partitionNames": partitions, "fromFailure": False}
        launched = graphql(self.port, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        return launched["backfillId"]

    def backfill_status(self, backfill_id: str) -> str:
        return graphql(self.port, BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]["status"]

    def stale_partitions(self, months: list[str]) -> dict[str, list[str]]:
        """Every (asset, month) the UI shows Unsynced."""
        keys = [{"path": [a]} for a in MATERIALIZABLE]
        nodes = graphql(self.port, STALE, {"keys": keys, "partitions": months})["assetNodes"]
        stale = {}
        for node in nodes:
            months_stale = [m for m, s in zip(months, node["staleStatusByPartition"], strict=True) if s == "STALE"]
            if months_stale:
                stale[node["assetKey"]["path"][0]] = months_stale
        return stale


@pytest.fixture
def ui(tmp_path):
    ui = UI(Platform(tmp_path / "p"), tmp_path)
    yield ui
    ui.stop()


def test_asset_graph_backfills_of_existing_months_leave_nothing_unsynced(ui):
    platform = ui.platform
    months = [JAN, FEB, MAR, APR]
    for month in months:
        platform.land(month)
    platform.wait_until(lambda: platform.converged(months[1:]), "every month after the first published")
    platform.wait_quiet()
    versions = platform.versions_by_month()
    assert ui.stale_partitions(months) == {}

    # The asset graph's "Launch backfill" over two existing months whose files did not change.
    selection = ["raw_trips", "trip_statistics", "duration_model", "trip_predictions", "prediction_table"]
    started = time.time()
    backfill = ui.backfill(selection, [FEB, MAR])
    platform.wait_until(lambda: ui.backfill_status(backfill) == "COMPLETED_SUCCESS", "the backfill completed")
    runs_after_backfill = platform.wait_quiet()
    # Identical data: the same content versions, so nothing is Unsynced, no model version is added, and
    # automation has nothing to do.
    assert ui.stale_partitions(months) == {}
    assert platform.versions_by_month() == versions
    assert len(platform.instance.get_runs()) == runs_after_backfill
    assert not [
        r.dagster_run.run_id for r in platform.instance.get_run_records()
        if r.dagster_run.tags.get("dagster/from_automation_condition") and r.create_timestamp.timestamp() > started
    ]

    # February's file replaced by other rides: February is re-ingested and re-scored, March's model (trained on
    # February) retrained and March re-scored, April untouched; then nothing is left Unsynced.
    april_before = platform.published(APR)
    platform.land(FEB, seed=7)
    platform.wait_until(lambda: len(platform.versions_by_month().get(MAR, [])) == 2, "March's model retrained")
    platform.wait_until(
        lambda: platform.scored_by(MAR) == {max(platform.versions_by_month()[MAR], key=int)} and not platform.busy(),
        "March re-scored by its new model",
    )
    platform.wait_quiet()
    assert ui.stale_partitions(months) == {}
    assert platform.published(APR) == april_before
    assert platform.versions_by_month()[FEB] == versions[FEB]  # trained on January, which did not change
    assert platform.failed_runs() == []
