"""The batch core through real Dagster execution (in process) on generated months."""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pyarrow.compute as pc
import pytest

from deploy_assets.core.features import MAX_DURATION_MINUTES, MIN_DURATION_MINUTES, clean_trips
from deploy_assets.core.model import train_duration_model
from deploy_assets.core.schema import read_trips
from deploy_assets.core.scoring import PREDICTION_SCHEMA
from deploy_assets.resources.storage import read_parquet

TRAIN_KEY, SCORE_KEY = "2024-01-01", "2024-02-01"
ALL_ASSETS = ["raw_trips", "duration_model", "trip_predictions", "prediction_table"]


def materialize_month(project, key=SCORE_KEY, assets=ALL_ASSETS, **kwargs):
    return project.materialize(assets, key, **kwargs)


@pytest.fixture
def scored_month(project):
    """Two landed months; raw_trips[Jan] then every asset of Feb materialized."""
    project.land(TRAIN_KEY)
    project.land(SCORE_KEY, seed=1)
    raw_january = project.materialize(["raw_trips"], TRAIN_KEY)
    february = materialize_month(project)
    return raw_january, february


def test_predictions_have_the_published_schema_and_valid_rows(project, scored_month):
    predictions = project.predictions.read_month(2024, 2)
    assert predictions.schema == PREDICTION_SCHEMA
    durations = predictions["actual_duration"].to_numpy()
    assert durations.min() >= MIN_DURATION_MINUTES and durations.max() <= MAX_DURATION_MINUTES
    ride_ids = predictions["ride_id"].to_pylist()
    assert all(re.fullmatch(r"2024/02_\d+", ride_id) for ride_id in ride_ids)
    assert len(set(ride_ids)) == len(ride_ids)
    assert not np.isnan(predictions["predicted_duration"].to_numpy()).any()
    np.testing.assert_allclose(
        predictions["diff"].to_numpy(), durations - predictions["predicted_duration"].to_numpy()
    )
    assert set(predictions["model_version"].to_pylist()) == {project.registry.version_for_partition(SCORE_KEY)}


def test_ride_ids_keep_the_row_index_of_the_source_file(project, scored_month):
    source = read_trips(str(project.landing.month_path(2024, 2)), "test")
    expected = clean_trips(source, 2024, 2).table["ride_id"]
    assert project.predictions.read_month(2024, 2)["ride_id"].equals(expected)


def test_model_for_a_month_never_saw_that_month(project, scored_month):
    raw_january, february = scored_month
    model_metadata = project.metadata(february, "duration_model")
    assert model_metadata["training_partitions"] == TRAIN_KEY
    raw_metadata = project.metadata(raw_january, "raw_trips")
    assert model_metadata["train_rows"] + model_metadata["holdout_rows"] == raw_metadata["rows_kept"]

    # Refit from January alone: the published February predictions must be exactly that model's output.
    january = clean_trips(read_trips(str(project.landing.month_path(2024, 1)), "test"), 2024, 1).table
    expected = train_duration_model([january]).model
    published = project.predictions.read_month(2024, 2)
    february = clean_trips(read_trips(str(project.landing.month_path(2024, 2)), "test"), 2024, 2).table
    np.testing.assert_allclose(
        published["predicted_duration"].to_numpy(),
        expected.predict_arrays(*(february[c].to_numpy() for c in ("PULocationID", "DOLocationID", "trip_distance"))),
    )


def test_registered_version_records_its_training_months(project, scored_month):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=project.registry.tracking_uri, registry_uri=project.registry.tracking_uri)
    version = client.get_model_version(project.registry.model_name, project.registry.version_for_partition(SCORE_KEY))
    assert version.tags["partition"] == SCORE_KEY
    assert version.tags["training_partitions"] == TRAIN_KEY
    run = client.get_run(version.run_id)
    assert run.data.metrics["holdout_rmse"] > 0
    assert project.registry.champion_version() == str(version.version)


def test_every_materialization_reports_numeric_metadata(project, scored_month):
    raw_january, february = scored_month
    raw = project.metadata(february, "raw_trips")
    assert raw["rows_read"] == raw["rows_kept"] + raw["rows_dropped"]
    assert raw["rows_dropped"] == sum(v for k, v in raw.items() if k.startswith("dropped_"))
    model = project.metadata(february, "duration_model")
    for key in ("model_version", "mlflow_run_id", "holdout_rmse", "train_rows"):
        assert model[key] not in (None, "")
    predictions = project.metadata(february, "trip_predictions")
    assert predictions["dagster/uri"].endswith("year=2024/month=02/predictions.parquet")
    assert predictions["rows"] == predictions["dagster/row_count"] > 0
    assert predictions["model_version"] == model["model_version"]
    for key in ("mean_predicted_duration", "std_predicted_duration", "rmse"):
        assert np.isfinite(predictions[key])
    assert project.metadata(february, "prediction_table")["dagster/row_count"] == predictions["rows"]


def test_rematerializing_replaces_the_single_object_and_the_table_rows(project, scored_month):
    month_dir = project.predictions.month_path(2024, 2).parent
    first = project.predictions.read_month(2024, 2)

    # A retrained model (new version) re-scores the month.
    materialize_month(project)
    assert sorted(p.name for p in month_dir.iterdir()) == ["predictions.parquet"]
    second = project.predictions.read_month(2024, 2)
    new_version = project.registry.version_for_partition(SCORE_KEY)
    assert set(first["model_version"].to_pylist()) != {new_version}
    assert set(second["model_version"].to_pylist()) == {new_version}
    assert second.num_rows == first.num_rows

    path = project.warehouse.url.removeprefix("duckdb:///")
    with duckdb.connect(path, read_only=True) as connection:
        rows, versions = connection.execute(
            "SELECT count(*), list(DISTINCT model_version) FROM trip_predictions WHERE month = DATE '2024-02-01'"
        ).fetchone()
    assert rows == second.num_rows
    assert versions == [new_version]


def test_raw_trips_are_stored_per_partition_as_parquet(project, scored_month):
    stored = read_parquet(project.resources["parquet_io_manager"].create_io_manager(None)._base_path / "raw_trips" / "2024-02-01.parquet")
    assert stored.num_rows == project.predictions.read_month(2024, 2).num_rows
    assert pc.min(stored["duration"]).as_py() >= MIN_DURATION_MINUTES


def test_champion_policy_scores_with_the_champion(project, scored_month):
    champion = project.registry.champion_version()
    result = project.materialize(["trip_predictions"], SCORE_KEY, run_config={"ops": {"trip_predictions": {"config": {"model": "champion"}}}})
    assert project.metadata(result, "trip_predictions")["model_version"] == champion


def test_first_partition_has_nothing_to_train_on(project):
    project.land("2023-01-01")
    project.materialize(["raw_trips"], "2023-01-01")
    result = project.materialize(["duration_model"], "2023-01-01", raise_on_error=False)
    assert not result.success
    message = result.failure_data_for_node("duration_model").error.message
    assert "duration_model[2023-01-01]" in message and "no earlier month" in message


def test_missing_month_names_partition_and_file(project):
    result = project.materialize(["raw_trips"], "2024-05-01", raise_on_error=False)
    assert not result.success
    message = result.failure_data_for_node("raw_trips").error.message
    assert "raw_trips[2024-05-01]" in message
    assert "yellow_tripdata_2024-05.parquet" in message and "no such file" in message
