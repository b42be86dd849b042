"""Backfills from the CLI: one run over a range of months writes one object per month, equal to single runs."""

from __future__ import annotations

import pytest

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb

from deploy_assets.core.generate import generate_month, write_month
from deploy_assets.partitions import year_month
from deploy_assets.resources.storage import PredictionStore

REPO = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).parent / "dagster")
MONTHS = [f"2024-{m:02d}-01" for m in range(1, 8)]  # 2024-01 … 2024-07: January trains, six months are scored
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


@pytest.mark.servers  # starts real processes
def test_cli_partition_range_backfill_writes_one_object_per_month_equal_to_single_runs(tmp_path, project):
    backfill_root = tmp_path / "backfill"
    for key in MONTHS:
        year, month = year_month(key)
        table = generate_month(year, month, ROWS, seed=month)
        write_month(table, str(backfill_root / "data" / "landing"), year, month)
        project.land(key, table=table)

    # The CLI: January ingested (raw_trips and trip_statistics are one step: the first model trains on the
    # latter), then one run for the six months after it.
    dagster_cli(backfill_root, "--select", "raw_trips,trip_statistics", "--partition", MONTHS[0])
    dagster_cli(
        backfill_root,
        "--select", "raw_trips,trip_statistics,duration_model,trip_predictions,prediction_table",
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

    # Two runs in the CLI's instance (January, then the range), and every month of the range has its own
    # materialization of every asset with its own numbers: a model per month, trained on the month before it.
    with dg.DagsterInstance.from_config(str(backfill_root / "dagster_home")) as instance:
        runs = instance.get_runs()
        assert len(runs) == 2 and all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
        [ranged] = [run for run in runs if run.tags.get("dagster/asset_partition_range_start")]
        assert (ranged.tags["dagster/asset_partition_range_start"], ranged.tags["dagster/asset_partition_range_end"]) == (
            MONTHS[1], MONTHS[-1]
        )
        for asset in ("raw_trips", "trip_statistics", "duration_model", "trip_predictions", "prediction_table"):
            records = instance.fetch_materializations(dg.AssetKey(asset), limit=100).records
            expected = MONTHS if asset in ("raw_trips", "trip_statistics") else MONTHS[1:]
            assert sorted(r.partition_key for r in records) == expected, asset
        for record in instance.fetch_materializations(dg.AssetKey("duration_model"), limit=100).records:
            metadata = {k: v.value for k, v in record.asset_materialization.metadata.items()}
            key = record.partition_key
            assert metadata["training_partitions"] == MONTHS[MONTHS.index(key) - 1], key
            assert str(metadata["model_version"]) == str(MONTHS.index(key)), key
