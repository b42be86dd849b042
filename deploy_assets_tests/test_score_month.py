"""The image's one-shot command (`deploy-assets-score-month`, the seed's `docker run -e DATE=… -e BUCKET=… image`),
run outside Docker through the same console script, as a process with only environment variables.

- against moto's S3 with the seed's variables (`DATE`, `BUCKET`): every asset of the month of each deployment
  whose file for the month is in the bucket (here yellow's) is materialized and its predictions object lands in the
  bucket (under `predictions/yellow/`); exit 0;
- a month no deployment has a file for: exit 2 saying which files it looked for;
- a training month whose file is missing: exit 1, one line on stderr naming the partition and the cause, nothing
  published;
- a date that is not one: exit 2 naming it.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from deploy_assets.core.datasets import FHV
from deploy_assets.core.generate import generate_month, write_month
from deploy_assets.declared import declared_settings
from deploy_assets.score_month import UsageError, apply_seed_settings, deployments_to_score, partition_of
from deploy_assets.settings import ScoreMonthSettings, Settings
from deploy_assets_tests import servers

COMMAND = str(Path(sys.executable).parent / "deploy-assets-score-month")
ROWS = 5_000


def run(env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    assert Path(COMMAND).exists(), "console script missing: bash scripts/bootstrap.sh --dev (setup.py changed)"
    return subprocess.run([COMMAND], env=env, cwd=servers.REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def local_env(tmp_path: Path, **extra: str) -> dict:
    return servers.child_env(
        {
            "DEPLOY_ASSETS_DATA_URI": str(tmp_path / "data"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "DEPLOY_ASSETS_PREDICTIONS_DB": f"duckdb:///{tmp_path / 'predictions.duckdb'}",
            "DEPLOY_ASSETS_FIRST_MONTH": "2024-01-01",
            **extra,
        }
    )


def test_partition_and_seed_variables():
    assert partition_of("2021-03-01") == partition_of("2021-03-17") == partition_of("2021-03") == "2021-03-01"
    assert partition_of("2021-03-01T00:00:00") == "2021-03-01"
    seeded, notes = apply_seed_settings(Settings(), ScoreMonthSettings(bucket="s3://my-bucket/"), scratch="/tmp/x")
    assert seeded.data_uri == "s3://my-bucket/deploy-assets"
    assert seeded.mlflow_tracking_uri == "sqlite:////tmp/x/mlflow.db"
    assert seeded.artifact_location == "s3://my-bucket/deploy-assets/mlflow-artifacts"
    assert seeded.predictions_db == "duckdb:////tmp/x/predictions.duckdb"
    assert seeded.location("predictions") == "s3://my-bucket/deploy-assets/predictions/yellow" and len(notes) == 3
    assert apply_seed_settings(Settings(), ScoreMonthSettings()) == (Settings(), [])
    command = ScoreMonthSettings.from_env({"BUCKET": "b", "PREFIX": ""})
    kept, _ = apply_seed_settings(Settings.from_env({"DEPLOY_ASSETS_DATA_URI": "/kept"}), command)
    assert kept.data_uri == "/kept"
    assert apply_seed_settings(Settings(), command)[0].data_uri == "s3://b"


def test_a_month_is_scored_by_every_deployment_with_its_file_and_refused_naming_what_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("DEPLOY_ASSETS_DATA_URI", str(tmp_path))
    monkeypatch.setenv("DEPLOY_ASSETS_FIRST_MONTH", "2024-01-01")
    declared = declared_settings()
    landing = tmp_path / "landing"
    write_month(generate_month(2024, 2, 100, seed=1), str(landing), 2024, 2)
    assert [s.name for s in deployments_to_score("2024-02-01", declared)] == ["yellow"]
    with pytest.raises(UsageError) as refused:
        deployments_to_score("2024-02-01", declared, only="green")
    assert str(refused.value) == f"no deployment has a file for 2024-02-01 in {landing} (green: no green_tripdata_2024-02.parquet)"
    early_message = r"in .*landing \(fhv: no fhv_tripdata_2021-03.parquet; green starts in 2024-01-01; yellow starts in 2024-01-01\)"
    with pytest.raises(UsageError, match=early_message) as early:
        deployments_to_score("2021-03-01", declared)
    assert "no deployment has a file for 2021-03-01" in str(early.value)
    closed = {"yellow": dataclasses.replace(declared["yellow"], last_month="2024-01-01")}
    with pytest.raises(UsageError, match=r"\(yellow ends in 2024-01-01\)"):
        deployments_to_score("2024-02-01", closed)
    with pytest.raises(UsageError, match=r"DEPLOYMENT='blue': no such deployment under defs/ \(declared: fhv, green, yellow\)"):
        deployments_to_score("2024-02-01", declared, only="blue")


@pytest.mark.servers  # starts real processes
def test_bad_date_exits_2_naming_it(tmp_path):
    result = run(local_env(tmp_path, DATE="March 2021"))
    assert result.returncode == 2
    assert "DATE='March 2021'" in result.stderr


@pytest.mark.servers  # starts real processes
def test_a_missing_month_exits_2_and_a_missing_training_month_exits_1_naming_the_partition(tmp_path):
    landing = tmp_path / "data" / "landing"
    write_month(generate_month(2024, 1, ROWS, seed=1), str(landing), 2024, 1)  # the training month only

    result = run(local_env(tmp_path, DATE="2024-02-01"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == (
        f"score-month: no deployment has a file for 2024-02-01 in {landing} (fhv ends in 2021-12-01; green: no"
        " green_tripdata_2024-02.parquet; yellow: no yellow_tripdata_2024-02.parquet)"
    )

    (landing / "yellow_tripdata_2024-01.parquet").rename(landing / "yellow_tripdata_2024-02.parquet")  # M, not M-1
    result = run(local_env(tmp_path, DATE="2024-02-01"))
    assert result.returncode == 1, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("score-month 2024-02-01 failed: ingesting training month 2024-01-01 for ")
    assert "yellow/raw_trips[2024-01-01]" in last and "yellow_tripdata_2024-01.parquet: no such file" in last
    assert not (tmp_path / "data" / "predictions").exists()


@pytest.mark.servers
def test_seed_docker_run_variables_score_a_month_into_the_bucket(moto_s3, aws_test_env, s3_buckets, tmp_path):
    s3 = s3_buckets("score-month")
    env = servers.child_env(
        {
            # The seed's two variables and nothing else of the project's (a fresh container: no tracking server,
            # no database), plus where the months start here.
            "DATE": "2024-02-01",
            "BUCKET": "score-month",
            "DEPLOY_ASSETS_FIRST_MONTH": "2024-01-01",
        },
        s3_endpoint=moto_s3,
    )
    for name in ("MLFLOW_TRACKING_URI", "DEPLOY_ASSETS_PREDICTIONS_DB", "DEPLOY_ASSETS_DATA_URI", "DAGSTER_HOME"):
        env.pop(name, None)
    for month in (1, 2):
        write_month(generate_month(2024, month, ROWS, seed=month), str(tmp_path / "landing"), 2024, month)
        buffer = tmp_path / "landing" / f"yellow_tripdata_2024-{month:02d}.parquet"
        s3.upload_file(str(buffer), "score-month", f"deploy-assets/landing/{buffer.name}")

    result = run(env)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    [summary] = outcome["scored"]  # green has no file in the bucket: not scored
    assert outcome["partition"] == "2024-02-01" and summary["deployment"] == "yellow"
    assert summary["partition"] == "2024-02-01" and summary["training_months"] == ["2024-01-01"]
    key = "deploy-assets/predictions/yellow/year=2024/month=02/predictions.parquet"
    assert summary["predictions_uri"] == f"s3://score-month/{key}"
    local = tmp_path / "predictions.parquet"
    s3.download_file("score-month", key, str(local))
    table = pq.read_table(local)
    assert table.num_rows == summary["rows"] > 0.9 * ROWS
    assert set(table.column("model_version").to_pylist()) == set(summary["model_versions"])
    # The model of the month was logged to the bucket, not to a local folder.
    artifacts = s3.list_objects_v2(Bucket="score-month", Prefix="deploy-assets/mlflow-artifacts/")
    assert artifacts.get("KeyCount", 0) > 0


@pytest.mark.servers
def test_the_seeds_command_as_written_scores_the_fhv_month_of_2021(moto_s3, aws_test_env, s3_buckets, tmp_path):
    """`docker run -e DATE=2021-03-01 -e BUCKET=… image`: only the seed's two variables; the fhv deployment (its
    months from 2021-01) has February and March in the bucket, yellow and green start later."""
    s3 = s3_buckets("homework")
    env = servers.child_env({"DATE": "2021-03-01", "BUCKET": "homework"}, s3_endpoint=moto_s3)
    for name in ("MLFLOW_TRACKING_URI", "DEPLOY_ASSETS_PREDICTIONS_DB", "DEPLOY_ASSETS_DATA_URI", "DAGSTER_HOME",
                 "DEPLOY_ASSETS_FIRST_MONTH"):
        env.pop(name, None)
    for month in (2, 3):
        path = write_month(generate_month(2021, month, ROWS, seed=month, dataset=FHV), str(tmp_path), 2021, month, dataset=FHV)
        s3.upload_file(path, "homework", f"deploy-assets/landing/{Path(path).name}")

    result = run(env)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    [summary] = outcome["scored"]
    assert summary["deployment"] == "fhv" and summary["training_months"] == ["2021-02-01"]
    key = "deploy-assets/predictions/fhv/year=2021/month=03/predictions.parquet"
    assert summary["predictions_uri"] == f"s3://homework/{key}"
    local = tmp_path / "predictions.parquet"
    s3.download_file("homework", key, str(local))
    assert pq.read_table(local).num_rows == summary["rows"] > 0.9 * ROWS
