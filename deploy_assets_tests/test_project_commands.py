"""The commands a new user runs: definitions validate from the repo root, and the README's main job."""

from __future__ import annotations

import pytest

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from deploy_assets.core.months import Month

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEPLOYMENTS = ("fhv", "green", "yellow")  # deploy_assets/defs/<name>/defs.yaml
ASSETS = ("landing_file", "champion_model", "raw_trips", "trip_statistics", "duration_model", "model_promotion",
          "trip_predictions", "prediction_table")
MODELS = {"yellow": "trip-duration", "green": "green-trip-duration", "fhv": "fhv-trip-duration"}  # (defs.yaml)
SCORED = {"yellow": "2024-02-01", "green": "2024-02-01", "fhv": "2021-02-01"}  # the demo's month of each


@pytest.mark.servers  # starts real processes
def test_definitions_validate_from_the_repo_root(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


@pytest.mark.servers  # starts real processes
def test_the_dg_cli_loads_the_deployments_declared_in_the_defs_folder(tmp_path):
    """`dg check defs` validates every defs.yaml and loads the definitions; `dg list defs` shows each
    deployment's assets (`<name>/...`) in its own group and the component type the YAML names; `dg launch`
    materializes one deployment's month."""
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path),
        "DEPLOY_ASSETS_DATA_URI": str(tmp_path / "data"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "DEPLOY_ASSETS_PREDICTIONS_DB": f"duckdb:///{tmp_path / 'predictions.duckdb'}",
        "DEPLOY_ASSETS_FIRST_MONTH": "2024-01-01",
    }

    def dg_cli(*args: str) -> str:
        result = subprocess.run([str(BIN / "dg"), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    checked = dg_cli("check", "defs")
    assert "All component YAML validated successfully" in checked and "All definitions loaded successfully" in checked
    listed = json.loads(dg_cli("list", "defs", "--json"))
    groups = {asset["asset_key"]: asset["group_name"] for asset in listed["assets"]}
    assert groups == {f"{name}/{asset}": name for name in DEPLOYMENTS for asset in ASSETS}
    components = json.loads(dg_cli("list", "components", "--json"))
    assert "deploy_assets.components.ModelDeployment" in {c["key"] for c in components["items"]}

    from deploy_assets.core.datasets import GREEN
    from deploy_assets.core.generate import generate_month, write_month

    write_month(generate_month(2024, 1, 2_000, dataset=GREEN), str(tmp_path / "data" / "landing"), 2024, 1, dataset=GREEN)
    dg_cli("launch", "--assets", "green/raw_trips,green/trip_statistics", "--partition", "2024-01-01")
    stored = pq.read_table(tmp_path / "data" / "warehouse" / "green" / "raw_trips" / "2024-01-01.parquet")
    assert 0 < stored.num_rows <= 2_000


@pytest.mark.servers  # starts real processes
def test_demo_materializes_a_month_end_to_end(tmp_path, monkeypatch):
    env = {
        **os.environ,
        "DEPLOY_ASSETS_DATA_URI": str(tmp_path / "data"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "DEPLOY_ASSETS_PREDICTIONS_DB": f"duckdb:///{tmp_path / 'predictions.duckdb'}",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    result = subprocess.run(
        [str(BIN / "deploy-assets-demo"), "--rows", "20000"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # Every declared deployment scored a month into its own predictions (`<data>/predictions/<name>/...`): February
    # 2024, or for fhv (2021 only) the first month of its range a model can score.
    predictions = tmp_path / "data" / "predictions"
    objects = sorted(predictions.rglob("*.parquet"))
    assert [p.relative_to(predictions).as_posix() for p in objects] == [
        f"{name}/year={SCORED[name][:4]}/month={SCORED[name][5:7]}/predictions.parquet" for name in DEPLOYMENTS
    ]
    assert all(pq.read_metadata(path).num_rows > 15_000 for path in objects)
    assert "2024/02_0" in result.stdout

    # One model per deployment, for February, trained on January and promoted (the job includes model_promotion).
    from mlflow import MlflowClient

    tracking = env["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    for name, path in zip(DEPLOYMENTS, objects):
        [version] = client.search_model_versions(f"name = '{MODELS[name]}'")
        trained_on = Month.from_key(SCORED[name]).previous.key
        assert version.tags["partition"] == SCORED[name] and version.tags["training_partitions"] == trained_on
        assert set(pq.read_table(path, columns=["model_version"])[0].to_pylist()) == {str(version.version)}

    # `scripts/dev.sh` afterwards (the daemon on the same instance) finds nothing to do: each landing sensor's
    # first look reports nothing (the demo recorded what landed), and automation's first evaluation requests
    # nothing (everything the demo scored is up to date; the first month has nothing to train on). The code
    # location is loaded as the daemon would load it, with the demo's environment.
    import dagster as dg

    from deploy_assets.declared import component_tree

    for name in ("DEPLOY_ASSETS_DATA_URI", "MLFLOW_TRACKING_URI", "DEPLOY_ASSETS_PREDICTIONS_DB", "DAGSTER_HOME"):
        monkeypatch.setenv(name, env[name])
    defs = component_tree().build_defs()

    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        for name in DEPLOYMENTS:
            landing_sensor = defs.resolve_sensor_def(f"{name}_landing_sensor")
            reported = landing_sensor(dg.build_sensor_context(instance=instance))
            assert reported.asset_events == [], name
            # ... having listed the demo's landing folder, its service's two months in it.
            scored = Month.from_key(SCORED[name])
            landed = {f"{name}_tripdata_{month.key[:7]}.parquet" for month in (scored.previous, scored)}
            assert landed <= set(json.loads(reported.cursor)["objects"]), reported.cursor
        assert dg.evaluate_automation_conditions(defs=defs, instance=instance).total_requested == 0
