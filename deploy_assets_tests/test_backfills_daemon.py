"""Backfills executed by a real dagster-daemon, launched the ways an operator launches them.

a. The UI: `launchPartitionBackfill` posted to a real `dagster-webserver`, with the parameters the UI's
   "Launch backfill" dialog sends when the launch target is the job `yellow_month_end_to_end` (the job's partition
   set as `selector`, `assetSelection`, `partitionNames`). The daemon's backfill daemon executes it, one run per
   month (every asset holds one month per run: `assets/versions.py`), in month order.
b. The CLI: `dagster job backfill -j yellow_month_end_to_end --partitions A,B,C --noprompt` against the daemon's
   DAGSTER_HOME. The CLI itself creates one run per partition and submits them to the run queue; the daemon's run
   coordinator launches them one at a time, in month order. (`dagster asset materialize --partition-range` is
   refused by Dagster: a range in one run needs `BackfillPolicy.single_run()`.)

Either way every month ends with one predictions object whose `model_version` is the version registered for
that month (MLflow tag `partition`), and the DuckDB table holds the same rows: the yellow deployment's (its
predictions under `<data>/predictions/yellow`, its table `trip_predictions`).

Asset-graph backfills over existing months are in test_ui_runs_daemon.py.

Yellow's automation sensor starts RUNNING by default and would launch its own runs for the generated months, so
it is stopped (`dagster sensor stop`) before any month lands; the landing sensors keep running (they only report).
The code location loads yellow only (`daemon_platform.Platform`'s `DEPLOY_ASSETS_DEPLOYMENTS`).
Every wait is bounded and fails with the tail of the daemon's and webserver's logs; both are stopped at the end.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from mlflow import MlflowClient

from deploy_assets.core.generate import generate_month, write_month
from deploy_assets.partitions import year_month
from deploy_assets.resources.predictions_store import PredictionStore
from deploy_assets_tests import servers
from deploy_assets_tests.daemon_platform import Platform

pytestmark = [pytest.mark.servers, pytest.mark.timeout(600)]

REPO = servers.REPO_ROOT
ROWS = 3_000
MODEL_NAME = "trip-duration"
DEPLOYMENT = "yellow"
JOB = f"{DEPLOYMENT}_month_end_to_end"
TABLE = "trip_predictions"  # yellow's table (its defs.yaml)
REPOSITORY = {"repositoryLocationName": "deploy_assets", "repositoryName": "__repository__"}
# The job's assets, as the job page's "Launch backfill" selects them (raw_trips and trip_statistics are one step).
ASSETS = ["raw_trips", "trip_statistics", "duration_model", "model_promotion", "trip_predictions", "prediction_table"]
# raw_trips and trip_statistics are written by one step (yellow_ingest), which cannot be subset: both are selected.
INGEST = f"{DEPLOYMENT}/raw_trips,{DEPLOYMENT}/trip_statistics"
TRAINING_MONTH = "2024-01-01"  # only ingested: the first model trains on it
UI_MONTHS = ["2024-02-01", "2024-03-01", "2024-04-01"]
CLI_MONTHS = ["2024-05-01", "2024-06-01", "2024-07-01"]
BACKFILL_TIMEOUT = 240.0  # generous: a 2-core machine shared with other work runs a month in 30–100 s
TERMINAL_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

# The mutation the UI's "Launch backfill" dialog (LaunchAssetChoosePartitionsDialog) sends. Its parameters: with
# the job's partition set as `selector` when the launch target is a (non-hidden) job, e.g. from the job's page;
# without a selector (a pure asset backfill) when it is the hidden `__ASSET_JOB`, e.g. from the asset graph,
# where the assets' first common job is `__ASSET_JOB`.
LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId launchedRunIds }
    ... on PartitionSetNotFoundError { message }
    ... on PartitionKeysNotFoundError { message partitionKeys }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on UnauthorizedError { message }
    ... on PythonError { message stack }
  }
}
"""

BACKFILL_STATUS = """
query BackfillStatus($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill {
      id
      status
      isAssetBackfill
      numPartitions
      partitionNames
      error { message stack }
      runs { runId status tags { key value } }
    }
    ... on BackfillNotFoundError { message }
    ... on PythonError { message stack }
  }
}
"""


# What the UI loads before it offers "Launch backfill": the job's partition set and each asset's jobs.
LAUNCH_CONTEXT = """
query LaunchContext($selector: RepositorySelector!, $job: String!, $keys: [AssetKeyInput!]) {
  partitionSetsOrError(repositorySelector: $selector, pipelineName: $job) {
    __typename
    ... on PartitionSets { results { name } }
    ... on PythonError { message }
  }
  assetNodes(assetKeys: $keys) { assetKey { path } jobNames }
}
"""

def dagster_cli(env: dict, *args: str, timeout: float = 180.0) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [servers.binary("dagster"), *args],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
    )
    assert result.returncode == 0, f"dagster {' '.join(args)}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result


def failure_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """What a failed run said: step failures with their error, then the run failure."""
    messages = []
    for entry in instance.all_logs(run_id):  # EventLogEntry objects
        event = entry.dagster_event
        if event is None or not event.is_failure:
            continue
        error = getattr(event.event_specific_data, "error", None)
        messages.append(f"{event.step_key or 'run'}: {entry.message}" + (f" | {error.message.strip()}" if error else ""))
    return messages[:6]


def backfill_runs(instance: dg.DagsterInstance, backfill_id: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id})))


def wait_for_backfill_runs(
    platform: Platform, instance: dg.DagsterInstance, backfill_id: str, expected_runs: int, timeout: float = BACKFILL_TIMEOUT
) -> list[dg.DagsterRun]:
    """Until the backfill has `expected_runs` runs, all finished; fails at once on a failed run."""
    deadline = time.monotonic() + timeout
    while True:
        current = backfill_runs(instance, backfill_id)
        for run in current:
            if run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
                pytest.fail(f"backfill {backfill_id}: run {run.run_id} {run.status}: "
                            f"{failure_messages(instance, run.run_id)}\n{platform.log_tail()}")
        if len(current) >= expected_runs and all(run.is_finished for run in current):
            return current
        if time.monotonic() > deadline:
            pytest.fail(f"backfill {backfill_id}: expected {expected_runs} finished runs after {timeout:.0f}s, saw "
                        f"{[(r.run_id[:8], r.status.value) for r in current]}\n{platform.log_tail()}")
        time.sleep(1)


def land_months(data: Path, keys: list[str]) -> None:
    for key in keys:
        year, month = year_month(key)
        write_month(generate_month(year, month, ROWS, seed=month), str(data / "landing"), year, month)


def assert_months_published(root: Path, tracking_uri: str, keys: list[str]) -> dict[str, str]:
    """One predictions object per month, every row stamped with the version registered for that month, and the
    same rows in DuckDB. Returns {month: model version}."""
    store = PredictionStore(uri=str(root / "data" / "predictions" / DEPLOYMENT))
    registry = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    versions = {}
    for key in keys:
        year, month = year_month(key)
        assert store.month_path(year, month).exists(), f"no predictions object for {key}"
        registered = registry.search_model_versions(f"name = '{MODEL_NAME}' and tags.partition = '{key}'")
        assert len(registered) == 1, f"{key}: {len(registered)} registered versions"
        versions[key] = str(registered[0].version)
        scored = store.read_month(year, month)
        assert scored.num_rows > 0.9 * ROWS
        assert set(scored["model_version"].to_pylist()) == {versions[key]}, key
    assert len(set(versions.values())) == len(keys), versions  # a model per month

    with duckdb.connect(str(root / "predictions.duckdb"), read_only=True) as connection:
        rows = dict(connection.execute(
            f"SELECT month::VARCHAR, count(*) FROM {TABLE} GROUP BY 1").fetchall())
    for key in keys:
        assert rows.get(key) == store.read_month(*year_month(key)).num_rows, (key, rows)
    return versions


def wait_for_backfill(platform: Platform, instance: dg.DagsterInstance, backfill_id: str, runs_finished: bool = False,
                      timeout: float = BACKFILL_TIMEOUT) -> dict:
    """Poll `partitionBackfillOrError` until the backfill is terminal (or, with `runs_finished`, until it has
    runs and all of them finished: the backfill daemon marks it complete only on its next tick, up to 30 s
    later); fails at once on a failed run."""
    deadline = time.monotonic() + timeout
    while True:
        backfill = platform.graphql(BACKFILL_STATUS, {"backfillId": backfill_id})["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        failed = [run for run in backfill["runs"] if run["status"] in ("FAILURE", "CANCELED")]
        if failed:
            pytest.fail(f"backfill {backfill_id}: run {failed[0]['runId']} {failed[0]['status']}: "
                        f"{failure_messages(instance, failed[0]['runId'])}\n{platform.log_tail()}")
        if backfill["status"] in TERMINAL_BACKFILL - {"COMPLETED", "COMPLETED_SUCCESS"}:
            pytest.fail(f"backfill {backfill_id} {backfill['status']}: {backfill['error']}\n{platform.log_tail()}")
        if backfill["status"] in TERMINAL_BACKFILL:
            return backfill
        if runs_finished and backfill["runs"] and all(run["status"] == "SUCCESS" for run in backfill["runs"]):
            return backfill
        if time.monotonic() > deadline:
            pytest.fail(f"backfill {backfill_id} still {backfill['status']} after {timeout:.0f}s: "
                        f"{[(r['runId'][:8], r['status']) for r in backfill['runs']]}\n{platform.log_tail()}")
        time.sleep(1)


def check_names(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    entries = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    return sorted({entry.dagster_event.asset_check_evaluation_data.check_name for entry in entries})


def test_ui_and_cli_backfills_are_executed_by_the_daemon(tmp_path, monkeypatch, record_property):
    started = time.monotonic()
    platform = Platform(tmp_path / "project", {"DEPLOY_ASSETS_MODEL_NAME": MODEL_NAME})
    root, tracking_uri = platform.root, platform.env["MLFLOW_TRACKING_URI"]
    try:
        platform.start()  # first: it creates the instance's storage the webserver opens
        platform.start_webserver()
        env = platform.process_env  # DAGSTER_HOME + data locations: what the daemon, the webserver and the CLI share
        # Automation (RUNNING by default) would launch its own runs: stop it before anything lands.
        dagster_cli(env, "sensor", "stop", "-w", "workspace.yaml", f"{DEPLOYMENT}_automation_sensor")
        land_months(root / "data", [TRAINING_MONTH, *UI_MONTHS, *CLI_MONTHS])
        # January is only ingested: duration_model[February] trains on it.
        dagster_cli(env, "asset", "materialize", "-m", "deploy_assets.definitions", "--select", INGEST,
                    "--partition", TRAINING_MONTH)
        platform.wait_webserver()
        monkeypatch.setenv("DAGSTER_HOME", str(platform.home))
        instance = dg.DagsterInstance.get()

        # --- a. the UI: "Launch backfill" for the job's assets, i.e. launchPartitionBackfill with the job's
        # partition set as selector + asset selection + partition names, executed by the daemon. -----------
        context = platform.graphql(LAUNCH_CONTEXT, {"selector": REPOSITORY, "job": JOB,
                                               "keys": [{"path": [DEPLOYMENT, a]} for a in ASSETS]})
        [partition_set] = context["partitionSetsOrError"]["results"]
        job_names = {"/".join(n["assetKey"]["path"]): n["jobNames"] for n in context["assetNodes"]}
        assert all(JOB in names for names in job_names.values()), job_names
        ui_started = time.monotonic()
        launched = platform.graphql(LAUNCH_BACKFILL, {"backfillParams": {
            "selector": {"partitionSetName": partition_set["name"], "repositorySelector": REPOSITORY},
            "assetSelection": [{"path": [DEPLOYMENT, name]} for name in ASSETS],
            "partitionNames": UI_MONTHS,
            "fromFailure": False,
            "tags": [{"key": "test", "value": "ui-backfill"}],
        }})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        # A range in one CLI run is refused: every asset holds one month per run.
        refused = subprocess.run(
            [servers.binary("dagster"), "asset", "materialize", "-m", "deploy_assets.definitions", "--select", INGEST,
             "--partition-range", f"{CLI_MONTHS[0]}...{CLI_MONTHS[-1]}"],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180,
        )
        assert refused.returncode != 0 and "single_run" in refused.stderr + refused.stdout, refused.stderr[-2000:]
        ui_backfill_id = launched["backfillId"]
        backfill = wait_for_backfill(platform, instance, ui_backfill_id, runs_finished=True)
        ui_seconds = time.monotonic() - ui_started
        assert backfill["isAssetBackfill"] is False and backfill["numPartitions"] == len(UI_MONTHS), backfill

        # One run per month, each the job over its month.
        ui_runs = backfill_runs(instance, ui_backfill_id)
        assert sorted(r.tags["dagster/partition"] for r in ui_runs) == UI_MONTHS, [(r.run_id[:8], r.tags) for r in ui_runs]
        assert all(r.status == dg.DagsterRunStatus.SUCCESS and r.job_name == JOB for r in ui_runs)
        assert all(r.tags["test"] == "ui-backfill" for r in ui_runs)
        ui_checks = sorted({name for r in ui_runs for name in check_names(instance, r.run_id)})
        ui_versions = assert_months_published(root, tracking_uri, UI_MONTHS)

        # --- b. the CLI: `dagster job backfill`, whose runs the daemon's run queue launches -----------------
        cli_started = time.monotonic()
        result = dagster_cli(env, "job", "backfill", "-w", "workspace.yaml", "-j", JOB,
                             "--partitions", ",".join(CLI_MONTHS), "--tags", json.dumps({"test": "cli-backfill"}),
                             "--noprompt")
        match = re.search(r"Launched backfill job `([^`]+)`", result.stdout)
        assert match, result.stdout[-2000:]
        cli_runs = wait_for_backfill_runs(platform, instance, match.group(1), expected_runs=len(CLI_MONTHS))
        cli_seconds = time.monotonic() - cli_started

        # The CLI ignores the backfill policy: one run per partition.
        assert len(cli_runs) == len(CLI_MONTHS)
        assert sorted(r.tags["dagster/partition"] for r in cli_runs) == CLI_MONTHS
        assert all(r.status == dg.DagsterRunStatus.SUCCESS and r.job_name == JOB for r in cli_runs)
        assert all(r.tags["test"] == "cli-backfill" for r in cli_runs)
        cli_checks = sorted({name for r in cli_runs for name in check_names(instance, r.run_id)})
        cli_versions = assert_months_published(root, tracking_uri, CLI_MONTHS)

        # The UI backfill has been marked complete meanwhile, still with its runs.
        backfill = wait_for_backfill(platform, instance, ui_backfill_id)
        assert backfill["status"] == "COMPLETED_SUCCESS", f"{backfill}\n{platform.log_tail()}"
        assert len(backfill_runs(instance, ui_backfill_id)) == len(UI_MONTHS)

        # Nothing else ran: no automation run (the landing sensor only reported what landed); 1 CLI ingest run
        # + 3 UI backfill runs + 3 CLI backfill runs.
        all_runs = instance.get_runs()
        assert not [r for r in all_runs if r.tags.get("dagster/from_automation_condition")]
        landing_file = dg.AssetKey([DEPLOYMENT, "landing_file"])
        observed_months = {r.partition_key for r in instance.fetch_observations(landing_file, limit=100).records}
        assert observed_months <= {TRAINING_MONTH, *UI_MONTHS, *CLI_MONTHS}
        assert len(all_runs) == 1 + len(UI_MONTHS) + len(CLI_MONTHS), [(r.run_id[:8], r.tags) for r in all_runs]

        observed = {
            "asset_job_names": job_names,
            "ui_backfill": {"runs": len(ui_runs), "seconds": round(ui_seconds, 1),
                            "model_versions": ui_versions, "checks": ui_checks},
            "cli_backfill": {"runs": len(cli_runs), "seconds": round(cli_seconds, 1),
                             "model_versions": cli_versions, "checks": cli_checks},
            "test_seconds": round(time.monotonic() - started, 1),
        }
        record_property("observed", json.dumps(observed))
        print("OBSERVED", json.dumps(observed))
    finally:
        platform.stop()
