"""The commands a new user runs: definitions validate from the repo root, and the README's main job."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_definitions_validate_from_the_repo_root(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_demo_materializes_a_month_end_to_end(tmp_path):
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
    objects = list((tmp_path / "data" / "predictions").rglob("*.parquet"))
    assert [p.relative_to(tmp_path / "data" / "predictions").as_posix() for p in objects] == [
        "year=2024/month=02/predictions.parquet"
    ]
    assert pq.read_metadata(objects[0]).num_rows > 15_000
    assert "2024/02_0" in result.stdout
