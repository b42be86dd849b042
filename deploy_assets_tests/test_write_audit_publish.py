"""Nothing unchecked is published, and a month is registered once, whatever happens to the run.

In-process materializations over the test project (local folders, sqlite MLflow store, DuckDB); the killed step
is a real SIGKILL of a separate process right after the model version was registered.
"""

from __future__ import annotations

import pytest

import subprocess
import sys
import textwrap

import dagster as dg

from deploy_assets.resources import QualityThresholds
from deploy_assets_tests import servers

TRAIN, MONTH = "2024-01-01", "2024-02-01"
ALL = ["raw_trips", "duration_model", "trip_predictions", "prediction_table"]


def table_rows(project, month: str) -> list[tuple]:
    import duckdb

    warehouse = project.warehouse  # bound to the deployment's table
    path = warehouse.url.removeprefix("duckdb:///")
    with duckdb.connect(path, read_only=True) as connection:
        return connection.execute(
            f"SELECT * FROM {warehouse.table} WHERE month = ? ORDER BY ride_id", [month]
        ).fetchall()


def test_a_failing_blocking_check_leaves_the_published_object_and_rows_byte_identical(project):
    project.land(TRAIN)
    project.land(MONTH, seed=1)
    assert project.materialize(["raw_trips"], TRAIN).success
    assert project.materialize(ALL, MONTH).success
    published = project.predictions.month_path(2024, 2)
    before, rows_before = published.read_bytes(), table_rows(project, MONTH)

    # The month changes upstream, and its new predictions break a blocking check (a limit lowered to 10 min).
    project.land(MONTH, seed=2)
    project.resources["thresholds"] = QualityThresholds(max_predicted_minutes=10)
    result = project.materialize(ALL, MONTH, raise_on_error=False)

    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failure.step_key == "yellow__trip_predictions"
    message = failure.event_specific_data.error.message
    assert f"yellow/trip_predictions[{MONTH}] failed: check trip_predictions_complete failed" in message
    assert "predictions outside 0–10 min" in message
    [check] = [
        e.event_specific_data for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        and e.event_specific_data.check_name == "trip_predictions_complete"
    ]
    assert not check.passed
    assert published.read_bytes() == before
    assert table_rows(project, MONTH) == rows_before
    assert not project.predictions.staging_path(2024, 2).exists()  # the audited-and-refused object is gone
    assert [e.asset_key for e in result.get_asset_materialization_events()].count(project.key("trip_predictions")) == 0


KILL_AFTER_REGISTERING = textwrap.dedent(
    """
    import os, signal, sys
    import dagster as dg
    from deploy_assets.core.registry import RegistryClient
    from deploy_assets.definitions import defs

    register = RegistryClient.log_and_register

    def register_then_die(self, *args, **kwargs):
        registered = register(self, *args, **kwargs)
        print("registered", registered.version, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # the worker dies before the step can record anything

    RegistryClient.log_and_register = register_then_die
    keys = [dg.AssetKey.from_user_string(key) for key in sys.argv[2].split(",")]
    selection = dg.AssetSelection.assets(*keys).required_multi_asset_neighbors()
    dg.materialize(defs.assets, selection=selection, partition_key=sys.argv[1], instance=dg.DagsterInstance.get(), resources=defs.resources)
    """
)


@pytest.mark.servers  # starts real processes
def test_a_step_killed_right_after_registering_then_retried_registers_one_version(tmp_path):
    home = servers.prepare_dagster_home(tmp_path / "dagster_home")
    model_name = "trip-duration-killed"
    env = servers.child_env(
        {
            "DAGSTER_HOME": str(home),
            "DEPLOY_ASSETS_DATA_URI": str(tmp_path / "data"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "DEPLOY_ASSETS_PREDICTIONS_DB": f"duckdb:///{tmp_path / 'predictions.duckdb'}",
            "DEPLOY_ASSETS_MODEL_NAME": model_name,
        }
    )
    from deploy_assets.core.generate import generate_month, write_month

    for key, seed in ((TRAIN, 0), (MONTH, 1)):
        year, month = int(key[:4]), int(key[5:7])
        write_month(generate_month(year, month, 5_000, seed=seed), str(tmp_path / "data" / "landing"), year, month)

    def run(script: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", script, *args], env=env, cwd=servers.REPO_ROOT, capture_output=True, text=True,
            timeout=300,
        )

    materialize = (
        "import sys, dagster as dg\nfrom deploy_assets.definitions import defs\n"
        "keys = [dg.AssetKey.from_user_string(key) for key in sys.argv[2].split(',')]\n"
        "selection = dg.AssetSelection.assets(*keys).required_multi_asset_neighbors()\n"
        "assert dg.materialize(defs.assets, selection=selection, partition_key=sys.argv[1],"
        " instance=dg.DagsterInstance.get(), resources=defs.resources).success\n"
    )
    assert run(materialize, TRAIN, "yellow/raw_trips").returncode == 0
    assert run(materialize, MONTH, "yellow/raw_trips").returncode == 0

    killed = run(KILL_AFTER_REGISTERING, MONTH, "yellow/duration_model")
    assert killed.returncode == -9, killed.stdout + killed.stderr
    assert "registered 1" in killed.stdout

    retried = run(materialize, MONTH, "yellow/duration_model,yellow/trip_predictions,yellow/prediction_table")
    assert retried.returncode == 0, retried.stdout[-3000:] + retried.stderr[-3000:]

    from mlflow import MlflowClient

    uri = env["MLFLOW_TRACKING_URI"]
    versions = MlflowClient(tracking_uri=uri, registry_uri=uri).search_model_versions(f"name = '{model_name}'")
    assert [(str(v.version), v.tags["partition"]) for v in versions] == [("1", MONTH)]
