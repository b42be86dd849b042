"""Backfills from the CLI: one run over a range of months writes one object per month, equal to single runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from deploy_assets.core.generate import generate_month, write_month
from deploy_assets.partitions import year_month
from deploy_assets.resources.storage import PredictionStore

REPO = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).parent / "dagster")
MONTHS = [f"{2024 + (m - 1) // 12}-{(m - 1) % 12 + 1:02d}-01" for m in range(1, 14)]  # 2024-01 … 2025-01
ROWS = 3_000


def cli_env(root: Path) -> dict:
    return {
        **os.environ,
        "DEPLOY_ASSETS_DATA_URI": str(root / "data"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "DEPLOY_ASSETS_PREDICTIONS_DB": f"duckdb:///{root / 'predictions.duckdb'}",
        "DAGSTER_HOME": str(root / "dagster_home"),
    }


def dagster_cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    (root / "dagster_home").mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "deploy_assets.definitions", *args],
        cwd=REPO, env=cli_env(root), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def test_cli_partition_range_backfill_writes_one_object_per_month_equal_to_single_runs(tmp_path, project):
    backfill_root = tmp_path / "backfill"
    for key in MONTHS:
        year, month = year_month(key)
        table = generate_month(year, month, ROWS, seed=month)
        write_month(table, str(backfill_root / "data" / "landing"), year, month)
        project.land(key, table=table)

    # The CLI: January's raw trips (the first model trains on them), then one run for twelve months.
    dagster_cli(backfill_root, "--select", "raw_trips", "--partition", MONTHS[0])
    dagster_cli(
        backfill_root,
        "--select", "raw_trips,duration_model,trip_predictions,prediction_table",
        "--partition-range", f"{MONTHS[1]}...{MONTHS[-1]}",
    )

    # The same months materialized one partition per run, in process, in a separate project.
    project.materialize(["raw_trips"], MONTHS[0])
    for key in MONTHS[1:]:
        project.materialize(["raw_trips", "duration_model", "trip_predictions", "prediction_table"], key)

    backfilled = PredictionStore(uri=str(backfill_root / "data" / "predictions"))
    objects = sorted(p.relative_to(backfill_root / "data" / "predictions").as_posix()
                     for p in (backfill_root / "data" / "predictions").rglob("*") if p.is_file())
    assert objects == [f"year={k[:4]}/month={k[5:7]}/predictions.parquet" for k in MONTHS[1:]]
    for index, key in enumerate(MONTHS[1:], start=1):
        year, month = year_month(key)
        ours = backfilled.read_month(year, month)
        assert ours.equals(project.predictions.read_month(year, month)), key
        assert set(ours["model_version"].to_pylist()) == {str(index)}  # month i scored by duration_model[i]

    with duckdb.connect(str(backfill_root / "predictions.duckdb"), read_only=True) as connection:
        per_month = dict(connection.execute("SELECT month::VARCHAR, count(*) FROM trip_predictions GROUP BY 1").fetchall())
    assert per_month == {key: backfilled.read_month(*year_month(key)).num_rows for key in MONTHS[1:]}
