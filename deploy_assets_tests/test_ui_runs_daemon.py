"""What a Dagster UI user does beside the running daemon: a run launched as a file lands, and asset-graph backfills of
months that already exist. Real daemon and webserver, GraphQL as the UI sends it; bounded waits on real events.
The assets are the yellow deployment's (`yellow/raw_trips`, ...)."""

from __future__ import annotations

import os
import time

import dagster as dg
import pytest

from deploy_assets.core.generate import generate_month, write_month
from deploy_assets.core.schema import tlc_file_name
from deploy_assets_tests.daemon_platform import ROWS, Platform

pytestmark = [pytest.mark.servers, pytest.mark.timeout(900)]

REPOSITORY = {"repositoryLocationName": "deploy_assets", "repositoryName": "__repository__"}
DEPLOYMENT = "yellow"
JAN, FEB, MAR, APR = (f"2024-{m:02d}-01" for m in range(1, 5))
MATERIALIZABLE = ["raw_trips", "trip_statistics", "duration_model", "model_promotion", "trip_predictions",
                  "prediction_table"]

# The mutation behind the UI's "Materialize" of an asset partition: the hidden asset job, the selected assets
# (raw_trips and the sibling written by the same step, which the UI adds for a multi-asset that cannot be subset)
# and the partition tag.
LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
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


def path(asset: str) -> dict:
    """The GraphQL asset key of the deployment's `asset`."""
    return {"path": [DEPLOYMENT, asset]}


class UI:
    """The daemon's platform and a webserver over the same instance: what a browser user sees and launches."""

    def __init__(self, platform: Platform):
        self.platform = platform
        platform.start()  # first: it creates the instance's storage the webserver opens
        platform.start_webserver()
        platform.wait_webserver()

    def materialize(self, assets: list[str], partition: str) -> str:
        params = {
            "selector": {**REPOSITORY, "pipelineName": "__ASSET_JOB", "assetSelection": [path(a) for a in assets]},
            "mode": "default",
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
        }
        launched = self.platform.graphql(LAUNCH_RUN, {"params": params})["launchPipelineExecution"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        return launched["run"]["runId"]

    def backfill(self, assets: list[str], partitions: list[str]) -> str:
        params = {"assetSelection": [path(a) for a in assets], "partitionNames": partitions, "fromFailure": False}
        launched = self.platform.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        return launched["backfillId"]

    def backfill_status(self, backfill_id: str) -> str:
        return self.platform.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]["status"]

    def stale_partitions(self, months: list[str]) -> dict[str, list[str]]:
        """Every (asset, month) the UI shows Unsynced."""
        keys = [path(a) for a in MATERIALIZABLE]
        nodes = self.platform.graphql(STALE, {"keys": keys, "partitions": months})["assetNodes"]
        stale = {}
        for node in nodes:
            months_stale = [m for m, s in zip(months, node["staleStatusByPartition"], strict=True) if s == "STALE"]
            if months_stale:
                stale["/".join(node["assetKey"]["path"])] = months_stale
        return stale


@pytest.fixture
def ui(tmp_path):
    ui = UI(Platform(tmp_path / "p"))
    yield ui
    ui.platform.stop()


def ingest_runs(platform: Platform, month: str) -> list[str]:
    """Runs that wrote raw_trips[month]."""
    records = platform.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey([DEPLOYMENT, "raw_trips"]), asset_partitions=[month]), limit=100
    ).records
    return [record.run_id for record in records]


def latest_run(platform: Platform, asset: str, month: str) -> tuple[str, int]:
    [record] = platform.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey([DEPLOYMENT, asset]), asset_partitions=[month]), limit=1
    ).records
    return record.run_id, record.storage_id


def test_a_run_launched_as_its_file_lands_ingests_the_month_once_with_its_checks(ui):
    platform = ui.platform
    platform.land(JAN)
    platform.wait_until(lambda: platform.materialization_counts("raw_trips").get(JAN), "January ingested")

    # The user clicks Materialize on raw_trips[February] in the same second as its file lands (written aside,
    # then renamed into the landing folder, as an upload completes).
    upload = platform.root / "upload"
    write_month(generate_month(2024, 2, ROWS, seed=0), str(upload), 2024, 2)
    name = tlc_file_name(2024, 2)
    manual = ui.materialize(["raw_trips", "trip_statistics"], FEB)
    launched_at = time.time()
    os.replace(upload / name, platform.landing / name)
    assert time.time() - launched_at < 1.0
    assert platform.instance.get_run_by_id(manual).status in (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED)
    platform.wait_until(lambda: platform.converged([FEB]), "February published")
    platform.wait_quiet()

    # One ingest of February, the user's, and it carries its audit: the latest materializations of both outputs
    # are that run's, and each check evaluated February against that very materialization.
    assert ingest_runs(platform, FEB) == [manual]
    raw_run, raw_storage_id = latest_run(platform, "raw_trips", FEB)
    assert raw_run == latest_run(platform, "trip_statistics", FEB)[0] == manual
    evaluations = [
        entry.dagster_event.asset_check_evaluation_data
        for entry in platform.instance.all_logs(manual, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    ]
    assert sorted(e.check_name for e in evaluations) == ["raw_trips_dirty_share", "raw_trips_schema", "raw_trips_volume"]
    assert all(e.partition == FEB and e.passed for e in evaluations)
    assert {e.target_materialization_data.storage_id for e in evaluations} == {raw_storage_id}
    # Nothing else re-ran: automation did what was left (the model of February and what follows), once.
    assert platform.materialization_counts("duration_model") == {FEB: 1}
    assert platform.materialization_counts("trip_statistics") == {JAN: 1, FEB: 1}
    assert platform.failed_runs() == []


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
