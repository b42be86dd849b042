"""The batch core through real Dagster execution (in process) on generated months."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pyarrow.compute as pc
import pytest
from mlflow import MlflowClient

from deploy_assets.assets.landing import landing_observation, sort_landing
from deploy_assets.steps.ingest import RAW_CHECKS
from deploy_assets.core.drift import SIGNIFICANT_PSI
from deploy_assets.core.features import MAX_DURATION_MINUTES, MIN_DURATION_MINUTES, clean_trips
from deploy_assets.core.generate import generate_month
from deploy_assets.core.model import ZonePairStatistics, evaluate, train_duration_model
from deploy_assets.core.schema import read_trips
from deploy_assets.core.scoring import PREDICTION_SCHEMA
from deploy_assets.resources import QualityThresholds
from deploy_assets.partitions import Months
from deploy_assets.settings import Settings
from deploy_assets.core.objects import read_parquet, STAGING_PREFIX, write_parquet_atomic
from deploy_assets_tests.conftest import starting_state
from deploy_assets_tests.faults_util import snapshot, step_of, table_rows

TRAIN_KEY, SCORE_KEY, NEXT_KEY = "2024-01-01", "2024-02-01", "2024-03-01"
ALL_ASSETS = ["raw_trips", "duration_model", "trip_predictions", "prediction_table"]
MONTHS = Months.of(Settings())
FEATURES = ("PULocationID", "DOLocationID", "trip_distance")


def materialize_month(project, key=SCORE_KEY, assets=ALL_ASSETS, **kwargs):
    return project.materialize(assets, key, **kwargs)


def promotion_config(margin: float) -> dict:
    return {"ops": {step_of("model_promotion"): {"config": {"margin": margin}}}}


def registry_client(project) -> MlflowClient:
    return MlflowClient(tracking_uri=project.registry.tracking_uri, registry_uri=project.registry.tracking_uri)


def versions_for(project, partition_key: str) -> list[str]:
    found = registry_client(project).search_model_versions(
        f"name = '{project.registry.model_name}' and tags.partition = '{partition_key}'"
    )
    return sorted(str(v.version) for v in found)


def observe_landing(project, *keys: str) -> None:
    """Report the landed files as the landing sensor does (data version = the object's ETag / MD5)."""
    listing = sort_landing(project.landing.list_files(), MONTHS, project.landing.tlc_dataset)
    for key in keys:
        project.instance.report_runless_asset_event(landing_observation(project.key("landing_file"), key, listing.months[key]))


def clean_month(project, year: int, month: int):
    return clean_trips(read_trips(str(project.landing.month_path(year, month)), "test"), year, month).table


def score_month(project):
    """Two landed months; raw_trips[Jan] (with trip_statistics[Jan]) then every asset of Feb materialized."""
    project.land(TRAIN_KEY)
    project.land(SCORE_KEY, seed=1)
    raw_january = project.materialize(["raw_trips"], TRAIN_KEY)
    february = materialize_month(project)
    return raw_january, february


scored_month_state, project, scored_month = starting_state("scored_month", score_month)


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
    expected = clean_month(project, 2024, 2)["ride_id"]
    assert project.predictions.read_month(2024, 2)["ride_id"].equals(expected)


def test_ingest_writes_raw_trips_and_the_training_statistics_of_the_month_in_one_step(project, scored_month):
    raw_january, _ = scored_month
    # Selecting raw_trips selects the whole step: both outputs of the month, from the same cleaned rows.
    assert {e.asset_key.to_user_string() for e in raw_january.get_asset_materialization_events()} == {
        "yellow/raw_trips",
        "yellow/trip_statistics",
    }
    base = project.resources["parquet_io_manager"].create_io_manager(None)._base_path
    raw = read_parquet(base / "yellow" / "raw_trips" / f"{TRAIN_KEY}.parquet")
    assert raw.equals(clean_month(project, 2024, 1))
    # trip_statistics[M] is the month as training data: its zone-pair statistics, computed from the same rows.
    stored = ZonePairStatistics.from_stored(read_parquet(base / "yellow" / "trip_statistics" / f"{TRAIN_KEY}.parquet"))
    expected = ZonePairStatistics.from_table(raw)
    assert stored.rides == expected.rides == raw.num_rows
    assert stored.to_table().equals(expected.to_table())
    statistics_metadata = project.metadata(raw_january, "trip_statistics")
    assert statistics_metadata["rides"] == project.metadata(raw_january, "raw_trips")["dagster/row_count"]

    # The month's ingest is one unit: neither output can be selected without the other and the checks (no path
    # writes a month without its audit); selecting one with its required neighbours runs all of it.
    project.land(SCORE_KEY, seed=3)
    with pytest.raises(dg.DagsterInvalidDefinitionError) as refused:
        dg.materialize(
            project.defs.assets, selection=[project.key("trip_statistics")], partition_key=SCORE_KEY,
            instance=project.instance,
            resources=project.resources,
        )
    assert "does not support subsetting" in str(refused.value.__cause__)
    alone = project.materialize(["trip_statistics"], SCORE_KEY)
    assert {e.asset_key.to_user_string() for e in alone.get_asset_materialization_events()} == {
        "yellow/raw_trips",
        "yellow/trip_statistics",
    }
    assert {e.check_name for e in alone.get_asset_check_evaluations()} == set(RAW_CHECKS)
    raw_february = read_parquet(base / "yellow" / "raw_trips" / f"{SCORE_KEY}.parquet")
    assert raw_february.equals(clean_month(project, 2024, 2))
    assert ZonePairStatistics.from_stored(read_parquet(base / "yellow" / "trip_statistics" / f"{SCORE_KEY}.parquet")).to_table().equals(
        ZonePairStatistics.from_table(raw_february).to_table()
    )


def test_model_for_a_month_trains_on_the_months_before_and_is_tested_on_its_own(project, scored_month):
    raw_january, february = scored_month
    model_metadata = project.metadata(february, "duration_model")
    assert model_metadata["training_partitions"] == TRAIN_KEY
    # Every kept ride of January trains (no hold-out any more); every kept ride of February tests.
    assert model_metadata["train_rows"] == project.metadata(raw_january, "raw_trips")["dagster/row_count"]
    assert model_metadata["test_rows"] == project.metadata(february, "raw_trips")["dagster/row_count"]
    assert re.fullmatch(r"[0-9a-f]{16}", model_metadata["training_data_version"])

    # Refit from January alone: the published February predictions must be exactly that model's output, and
    # the reported test RMSE is that model's RMSE on February's rides.
    january, february_rides = clean_month(project, 2024, 1), clean_month(project, 2024, 2)
    expected = train_duration_model([january], holdout_fraction=0.0).model
    published = project.predictions.read_month(2024, 2)
    np.testing.assert_allclose(
        published["predicted_duration"].to_numpy(),
        expected.predict_arrays(*(february_rides[c].to_numpy() for c in FEATURES)),
    )
    assert model_metadata["test_rmse"] == pytest.approx(evaluate(expected, february_rides))
    evaluations = {e.check_name: e for e in february.get_asset_check_evaluations()}
    quality = evaluations["duration_model_quality"]
    assert quality.passed  # beats predicting January's mean duration on February's rides
    assert 0 < model_metadata["test_rmse"] < quality.metadata["mean_baseline_rmse"].value


def test_registered_version_records_its_partition_and_training_data(project, scored_month):
    _, february = scored_month
    model_metadata = project.metadata(february, "duration_model")
    client = registry_client(project)
    version = client.get_model_version(project.registry.model_name, project.registry.version_for_partition(SCORE_KEY))
    assert str(version.version) == str(model_metadata["model_version"])
    assert version.tags["partition"] == SCORE_KEY
    assert version.tags["training_partitions"] == TRAIN_KEY
    assert version.tags["training_data_version"] == model_metadata["training_data_version"]
    assert version.run_id == model_metadata["mlflow_run_id"]
    run = client.get_run(version.run_id)
    assert run.data.metrics["train_rows"] == model_metadata["train_rows"]
    # The MLflow run records what was measured: the RMSE on the month the model scores, not a hold-out it never
    # had, and no NaN.
    assert run.data.metrics["test_rmse"] == pytest.approx(model_metadata["test_rmse"])
    assert run.data.metrics["test_rows"] == model_metadata["test_rows"]
    assert run.data.params["test_month"] == SCORE_KEY
    assert not {"holdout_rmse", "holdout_rows", "train_rmse"} & set(run.data.metrics)
    # The robust fit records how many rides it bounded (a few of a generated month).
    assert run.data.metrics["rides_bounded"] == model_metadata["rides_bounded"] < 0.01 * model_metadata["train_rows"]
    # Training never promotes: @champion is model_promotion's business.
    assert project.registry.champion_version() is None


def test_every_materialization_reports_numeric_metadata(project, scored_month):
    _, february = scored_month
    raw = project.metadata(february, "raw_trips")
    assert raw["rows_read"] == raw["dagster/row_count"] + raw["rows_dropped"]
    assert raw["rows_dropped"] == sum(v for k, v in raw.items() if k.startswith("dropped_"))
    assert raw["dagster/uri"].endswith(".parquet")
    model = project.metadata(february, "duration_model")
    for key in ("model_version", "mlflow_run_id", "model_uri", "training_data_version"):
        assert model[key] not in (None, "")
    assert np.isfinite(model["test_rmse"]) and model["test_rmse"] > 0
    assert model["train_rows"] > 0 and model["test_rows"] == raw["dagster/row_count"]
    predictions = project.metadata(february, "trip_predictions")
    assert predictions["dagster/uri"].endswith("year=2024/month=02/predictions.parquet")
    assert predictions["dagster/row_count"] == raw["dagster/row_count"]
    assert "rows" not in predictions  # dagster/row_count says it
    assert predictions["model_version"] == model["model_version"]
    for key in ("mean_predicted_duration", "std_predicted_duration", "rmse", "mean_abs_diff"):
        assert np.isfinite(predictions[key])
    assert project.metadata(february, "prediction_table")["dagster/row_count"] == predictions["dagster/row_count"]
    table = project.metadata(february, "prediction_table")
    assert table["dagster/table_name"] == project.warehouse.table == "yellow_trip_predictions"
    assert project.metadata(february, "trip_statistics")["dagster/uri"].endswith(f"{SCORE_KEY}.parquet")
    # The in-step checks of every asset of the month were evaluated and passed; the comparison with a challenger
    # is skipped, there being none.
    evaluations = {e.check_name: e for e in february.get_asset_check_evaluations()}
    assert set(evaluations) == {
        "raw_trips_schema", "raw_trips_dirty_share", "raw_trips_volume",
        "duration_model_quality", "duration_model_drift", "trip_predictions_complete",
    }
    assert all(e.passed for e in evaluations.values()), {k: e.description for k, e in evaluations.items()}
    assert evaluations["duration_model_quality"].metadata["test_rmse"].value == pytest.approx(model["test_rmse"])


def drift_evaluation(result: dg.ExecuteInProcessResult):
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == "duration_model_drift"]
    return evaluation, {name: value.value for name, value in evaluation.metadata.items()}


def test_drift_covers_trip_distance_from_counts_tallied_at_ingest(project, scored_month):
    _, february = scored_month
    evaluation, drift = drift_evaluation(february)
    assert evaluation.passed
    assert np.isfinite(drift["psi_trip_distance"]) and 0 <= drift["psi_trip_distance"] < 0.1
    present = [drift[f"psi_{name}"] for name in ("PULocationID", "DOLocationID", "trip_distance")]
    assert drift["drift_score"] == max(present)

    # trip_statistics[Jan] as older code wrote it (no distance counts): the distance PSI is missing, not failed,
    # and the training data version is the same (the counts do not change what the model learns from).
    base = project.resources["parquet_io_manager"].create_io_manager(None)._base_path
    path = base / "yellow" / "trip_statistics" / f"{TRAIN_KEY}.parquet"
    write_parquet_atomic(path, read_parquet(path).replace_schema_metadata(None))
    older = materialize_month(project, assets=["duration_model"])
    evaluation, drift = drift_evaluation(older)
    assert evaluation.passed and drift["psi_trip_distance"] is None
    assert drift["drift_score"] == max(drift["psi_PULocationID"], drift["psi_DOLocationID"])
    version = project.metadata(february, "duration_model")["training_data_version"]
    assert project.metadata(older, "duration_model")["training_data_version"] == version


def test_longer_trips_in_the_scored_month_warn_of_trip_distance_drift(project):
    project.land(TRAIN_KEY)
    february = generate_month(2024, 2, 20_000, seed=1)
    column = february.schema.get_field_index("trip_distance")
    project.land(SCORE_KEY, table=february.set_column(column, "trip_distance", pc.multiply(february[column], 2.0)))
    project.materialize(["raw_trips"], TRAIN_KEY)
    result = materialize_month(project, assets=["raw_trips", "duration_model"])

    evaluation, drift = drift_evaluation(result)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert drift["psi_trip_distance"] > SIGNIFICANT_PSI
    assert "psi_trip_distance" in evaluation.description
    # The zones did not move: only the distance is named.
    assert drift["psi_PULocationID"] < SIGNIFICANT_PSI and drift["psi_DOLocationID"] < SIGNIFICANT_PSI
    assert drift["drift_score"] == drift["psi_trip_distance"]


def test_a_ranged_run_records_each_check_on_its_own_month(project):
    """A backfill's single run over months A…B reports every check once per month, on that month, with the same
    metadata names as a one-month run: the UI plots them across partitions however the months were run."""
    months = [TRAIN_KEY, SCORE_KEY, NEXT_KEY]
    for seed, key in enumerate(months):
        project.land(key, seed=seed)
    project.materialize(["raw_trips"], TRAIN_KEY)
    ranged = dg.materialize(
        project.defs.assets,
        selection=dg.AssetSelection.assets(*map(project.key, ALL_ASSETS)).required_multi_asset_neighbors(),
        tags={"dagster/asset_partition_range_start": SCORE_KEY, "dagster/asset_partition_range_end": NEXT_KEY},
        instance=project.instance,
        resources=project.resources,
    )
    single = {e.check_name: e for e in materialize_month(project, NEXT_KEY).get_asset_check_evaluations()}

    by_check: dict[str, dict] = {}
    for evaluation in ranged.get_asset_check_evaluations():
        assert evaluation.partition not in by_check.setdefault(evaluation.check_name, {}), evaluation
        by_check[evaluation.check_name][evaluation.partition] = evaluation
    assert set(by_check) == set(single)
    for name, per_month in by_check.items():
        assert sorted(per_month) == [SCORE_KEY, NEXT_KEY], name
        assert all(e.passed for e in per_month.values()), {m: e.description for m, e in per_month.items()}
        assert set(per_month[NEXT_KEY].metadata) == set(single[name].metadata), name
        assert single[name].partition == NEXT_KEY
    # What the UI reads: one stored execution per check and month, each on its partition.
    storage = project.instance.event_log_storage
    for name in by_check:
        [asset] = {e.asset_key for e in by_check[name].values()}
        history = storage.get_asset_check_execution_history(dg.AssetCheckKey(asset, name), limit=10)
        ranged_records = [r for r in history if r.run_id == ranged.run_id]
        assert sorted(r.partition for r in ranged_records) == [SCORE_KEY, NEXT_KEY], name
        assert {r.status.value for r in ranged_records} == {"SUCCEEDED"}, name

    # The UI's check Partitions view (GraphQL partitionStatuses): each month passed, from the one-month run and
    # the ranged one alike; the challenger comparison is skipped (no challenger).
    statuses = check_partition_statuses(project)
    for name in ("raw_trips_schema", "raw_trips_dirty_share", "raw_trips_volume"):
        assert statuses[name] == {key: "SUCCEEDED" for key in months}, name
    for name in ("duration_model_quality", "duration_model_drift", "trip_predictions_complete"):
        assert statuses[name] == {SCORE_KEY: "SUCCEEDED", NEXT_KEY: "SUCCEEDED"}, name
    assert "SUCCEEDED" not in statuses["challenger_comparison"].values()

    # A month refused by a blocking check shows failed on that month, and only there.
    april = "2024-04-01"
    project.land(april, table=generate_month(2024, 4, 3_000, seed=4, dirty_fraction=0.35))
    assert not project.materialize(["raw_trips"], april, raise_on_error=False).success
    statuses = check_partition_statuses(project)
    assert statuses["raw_trips_dirty_share"] == {**{key: "SUCCEEDED" for key in months}, april: "FAILED"}


CHECK_PARTITION_STATUSES = """
{
  assetNodes {
    assetKey { path }
    assetChecksOrError {
      ... on AssetChecks {
        checks {
          name
          partitionStatuses { ... on AssetCheckTimePartitionStatuses { ranges { startKey endKey status } } }
        }
      }
    }
  }
}
"""


def check_partition_statuses(project) -> dict[str, dict[str, str]]:
    """{check: {month: status}} as the Dagster UI reads it, from the project's instance."""
    from dagster._core.test_utils import in_process_test_workspace
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster_graphql.test.utils import execute_dagster_graphql

    origin = LoadableTargetOrigin(module_name="deploy_assets.definitions", attribute="defs")
    with in_process_test_workspace(project.instance, origin) as context:
        result = execute_dagster_graphql(context, CHECK_PARTITION_STATUSES)
    assert not result.errors, result.errors
    keys = MONTHS.keys()
    statuses: dict[str, dict[str, str]] = {}
    for node in result.data["assetNodes"]:
        if node["assetKey"]["path"][0] != project.deployment.name:
            continue  # another deployment's checks (the code location holds every declared one)
        for check in (node["assetChecksOrError"] or {}).get("checks", []):
            per_month = statuses.setdefault(check["name"], {})
            for span in (check["partitionStatuses"] or {}).get("ranges", []):
                for key in keys[keys.index(span["startKey"]) : keys.index(span["endKey"]) + 1]:
                    per_month[key] = span["status"]
    return statuses


def test_a_month_is_registered_once_per_training_data(project, scored_month):
    [first] = versions_for(project, SCORE_KEY)
    before = project.predictions.read_month(2024, 2)

    # The same month again, same training data: the version is found, not registered a second time.
    again = materialize_month(project)
    assert versions_for(project, SCORE_KEY) == [first]
    metadata = project.metadata(again, "duration_model")
    # Its run id and URI are those of the version found, the same as when it was registered.
    first_metadata = {k: v.value for k, v in project.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=project.key("duration_model"), asset_partitions=[SCORE_KEY]), limit=2
    ).records[1].asset_materialization.metadata.items()}
    assert str(metadata["model_version"]) == first
    assert (metadata["mlflow_run_id"], metadata["model_uri"]) == (first_metadata["mlflow_run_id"], first_metadata["model_uri"])
    assert metadata["model_uri"] == f"models:/{project.registry.model_name}/{first}"
    assert project.predictions.read_month(2024, 2).equals(before)

    # Another smoothing is other training: a new version.
    smoother = {"ops": {step_of("duration_model"): {"config": {"params": {"smoothing": 50.0}}}}}
    materialize_month(project, assets=["duration_model"], run_config=smoother)
    assert len(versions_for(project, SCORE_KEY)) == 2


def test_a_changed_training_month_registers_a_new_model_and_replaces_the_object_and_the_rows(project, scored_month):
    month_dir = project.predictions.month_path(2024, 2).parent
    first = project.predictions.read_month(2024, 2)
    [old_version] = versions_for(project, SCORE_KEY)

    # January re-uploaded with other rides (and observed, as the landing sensor does), re-ingested: February's
    # model trains on other data, so it is a new version, and it re-scores the month.
    project.land(TRAIN_KEY, seed=7)
    observe_landing(project, TRAIN_KEY)
    project.materialize(["raw_trips"], TRAIN_KEY)
    materialize_month(project, assets=["duration_model", "trip_predictions", "prediction_table"])

    new_version = project.registry.version_for_partition(SCORE_KEY)
    assert versions_for(project, SCORE_KEY) == sorted([old_version, new_version])
    assert sorted(p.name for p in month_dir.iterdir()) == ["predictions.parquet"]
    second = project.predictions.read_month(2024, 2)
    assert set(first["model_version"].to_pylist()) == {old_version}
    assert set(second["model_version"].to_pylist()) == {new_version}
    assert second.num_rows == first.num_rows
    assert not np.allclose(second["predicted_duration"].to_numpy(), first["predicted_duration"].to_numpy())
    # Nothing left in staging.
    assert not list((Path(project.predictions.uri) / STAGING_PREFIX).rglob("*.parquet"))

    path = project.warehouse.url.removeprefix("duckdb:///")
    with duckdb.connect(path, read_only=True) as connection:
        rows, versions = connection.execute(
            f"SELECT count(*), list(DISTINCT model_version) FROM {project.warehouse.table}"
            " WHERE month = DATE '2024-02-01'"
        ).fetchone()
    assert rows == second.num_rows
    assert versions == [new_version]


def test_raw_trips_are_stored_per_partition_as_parquet(project, scored_month):
    base = project.resources["parquet_io_manager"].create_io_manager(None)._base_path
    stored = read_parquet(base / "yellow" / "raw_trips" / "2024-02-01.parquet")
    assert stored.num_rows == project.predictions.read_month(2024, 2).num_rows
    assert pc.min(stored["duration"]).as_py() >= MIN_DURATION_MINUTES


def promotion(project, key: str, margin: float = 0.05) -> dict:
    return project.metadata(project.materialize(["model_promotion"], key, run_config=promotion_config(margin)), "model_promotion")


def test_promotion_is_its_own_step_and_never_moves_backwards(project, scored_month):
    february = project.registry.version_for_partition(SCORE_KEY)
    first = promotion(project, SCORE_KEY)
    assert first["decision"].startswith(f"promoted {february} (was None): RMSE {first['candidate_rmse']:.3f} on")
    assert project.registry.champion_version() == february
    assert promotion(project, SCORE_KEY)["decision"] == "already champion"

    project.land(NEXT_KEY, seed=2)
    materialize_month(project, key=NEXT_KEY)
    march = project.registry.version_for_partition(NEXT_KEY)
    assert project.registry.champion_version() == february  # training March moved nothing

    # A candidate worse than the champion on March's rides (beyond the margin) is kept out.
    strict = promotion(project, NEXT_KEY, margin=-0.5)
    assert strict["decision"].startswith(f"kept {february}: RMSE ")
    assert strict["candidate_version"] == march and strict["champion_version"] == february
    assert strict["candidate_rmse"] > strict["champion_rmse"] * 0.5
    assert project.registry.champion_version() == february

    # No worse within the margin: promoted.
    promoted = promotion(project, NEXT_KEY, margin=1.0)
    # The rule's numbers, of the same two models: the candidate, and the champion it was judged against.
    assert promoted["decision"] == (
        f"promoted {march} (was {february}): RMSE {promoted['candidate_rmse']:.3f} on {NEXT_KEY} vs the mean"
        f" baseline's {promoted['mean_baseline_rmse']:.3f} and {february}'s {promoted['champion_rmse']:.3f} on the"
        f" same rides (allowed up to {promoted['champion_rmse'] * 2:.3f})"
    )
    assert promoted["champion_version"] == february and promoted["champion_after"] == march
    assert project.registry.champion_version() == march

    # Re-running February's promotion (e.g. its month was retrained) never moves @champion back in time.
    backwards = promotion(project, SCORE_KEY, margin=1.0)
    assert backwards["decision"] == f"kept {march}: it is of a later month ({NEXT_KEY})"
    assert project.registry.champion_version() == march


def test_a_model_trained_on_a_corrupted_month_is_not_promoted_over_a_good_champion(project, scored_month):
    from deploy_assets_tests.test_core import odometer_errors

    february = project.registry.version_for_partition(SCORE_KEY)
    assert promotion(project, SCORE_KEY)["promoted"] is True  # a good champion, trained on a clean January
    # February re-landed with wrong distances the ride rules cannot see (20–75 miles at a plausible speed), and
    # March's model trained on it by plain least squares (robust fit off).
    project.land(SCORE_KEY, table=odometer_errors(generate_month(2024, 2, 20_000, seed=1), 0.001, (20.0, 75.0), True))
    observe_landing(project, SCORE_KEY)
    project.materialize(["raw_trips"], SCORE_KEY)
    project.land(NEXT_KEY, seed=2)
    plain = {"ops": {step_of("duration_model"): {"config": {"params": {"robust": False}}}}}
    materialize_month(project, key=NEXT_KEY, assets=["raw_trips", "duration_model"], run_config=plain)
    corrupted = project.registry.version_for_partition(NEXT_KEY)

    kept = promotion(project, NEXT_KEY)
    assert kept["promoted"] is False and project.registry.champion_version() == february
    assert kept["decision"] == (
        f"kept {february}: RMSE {kept['candidate_rmse']:.3f} vs {kept['champion_rmse']:.3f} on {NEXT_KEY} (the same"
        " rides; margin 5%)"
    )
    assert kept["candidate_version"] == corrupted and kept["candidate_rmse"] > 1.05 * kept["champion_rmse"]
    assert kept["champion_margin"] == 0.05 and "champion's on the same rides" in kept["rule"]
    assert kept["candidate_rmse"] < kept["mean_baseline_rmse"] * 0.95  # it does beat the baseline: only the champion stops it

    # The same month fitted robustly (the default) is as good as the champion, and is promoted.
    materialize_month(project, key=NEXT_KEY, assets=["duration_model"])
    assert project.registry.version_for_partition(NEXT_KEY) != corrupted
    assert promotion(project, NEXT_KEY)["promoted"] is True


def test_champion_policy_scores_with_the_champion(project, scored_month):
    promotion(project, SCORE_KEY)
    champion = project.registry.champion_version()
    result = project.materialize(
        ["trip_predictions"], SCORE_KEY, run_config={"ops": {step_of("trip_predictions"): {"config": {"model": "champion"}}}}
    )
    assert project.metadata(result, "trip_predictions")["model_version"] == champion


def test_a_failing_audit_publishes_nothing_and_names_the_partition_and_the_check(project, scored_month):
    """Write-audit-publish: the new predictions are staged and audited; a failed blocking check leaves the
    published object byte for byte, the month's folder and its SQL rows as they were."""
    before = snapshot(project, SCORE_KEY)
    assert before.predictions is not None and before.table_rows
    # Every prediction (1-60 min) is above an absurdity limit of half a minute: the audit fails.
    project.resources["thresholds"] = QualityThresholds(max_predicted_minutes=0.5)
    result = materialize_month(project, assets=["trip_predictions", "prediction_table"], raise_on_error=False)

    assert not result.success
    message = result.failure_data_for_node(step_of("trip_predictions")).error.message
    assert f"yellow/trip_predictions[{SCORE_KEY}] failed: check trip_predictions_complete failed, nothing published:" in message
    assert "predictions outside 0–0.5 min" in message
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == "trip_predictions_complete"]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert not any(e.asset_key.to_user_string() in ("yellow/trip_predictions", "yellow/prediction_table")
                   for e in result.get_asset_materialization_events())
    after = snapshot(project, SCORE_KEY)
    assert after.predictions == before.predictions
    assert after.files == before.files == ("predictions.parquet",)
    assert after.table_rows == before.table_rows == table_rows(project, SCORE_KEY)
    assert not project.predictions.staging_path(2024, 2).exists()


def test_a_month_with_a_tenth_of_its_predictions_outside_the_range_fails_naming_the_share(project, scored_month):
    """Clipped predictions are counted; a month fails only when their share exceeds the threshold (5%), naming the
    share, and then nothing is published. Under the threshold, the month is published with the clipped values
    flagged and counted."""
    before = snapshot(project, SCORE_KEY)
    published = project.predictions.read_month(2024, 2)
    assert not any(published["prediction_adjusted"].to_pylist())  # the built-in model answers within 0–180 min
    # The range's top at the 90th percentile of the month's predictions: a model that overshoots it for 10%.
    top = float(np.quantile(published["predicted_duration"].to_numpy(), 0.9))
    project.resources["thresholds"] = QualityThresholds(max_predicted_minutes=top)
    result = materialize_month(project, assets=["trip_predictions", "prediction_table"], raise_on_error=False)
    assert not result.success
    message = result.failure_data_for_node(step_of("trip_predictions")).error.message
    assert re.search(rf"check trip_predictions_complete failed, nothing published: (9\.9|10\.0)% of predictions"
                     rf" outside 0–{top:g} min \(\d+ rides, output policy 'clip'; limit 5\.0%\)", message), message
    assert snapshot(project, SCORE_KEY) == before

    project.resources["thresholds"] = QualityThresholds(max_predicted_minutes=top, max_adjusted_share=0.2)
    result = materialize_month(project, assets=["trip_predictions", "prediction_table"])
    metadata = project.metadata(result, "trip_predictions")
    clipped = project.predictions.read_month(2024, 2)
    flags = clipped["prediction_adjusted"].to_numpy(zero_copy_only=False)
    assert metadata["predictions_adjusted"] == flags.sum() and 0.099 < metadata["adjusted_share"] <= 0.1
    assert metadata["output_policy"] == f"clip to 0–{top:g} min"
    np.testing.assert_array_equal(clipped["predicted_duration"].to_numpy()[flags], top)
    assert clipped["predicted_duration"].to_numpy().max() == top
    assert len(table_rows(project, SCORE_KEY)) == clipped.num_rows


def test_first_partition_has_nothing_to_train_on(project):
    project.land("2023-01-01")
    project.materialize(["raw_trips"], "2023-01-01")
    result = project.materialize(["duration_model"], "2023-01-01", raise_on_error=False)
    assert not result.success
    message = result.failure_data_for_node(step_of("duration_model")).error.message
    assert "yellow/duration_model[2023-01-01]" in message and "no earlier month" in message


def test_missing_month_names_partition_and_file(project):
    result = project.materialize(["raw_trips"], "2024-05-01", raise_on_error=False)
    assert not result.success
    message = result.failure_data_for_node(step_of("raw_trips")).error.message
    assert "yellow/raw_trips[2024-05-01]" in message
    assert "yellow_tripdata_2024-05.parquet" in message and "no such file" in message


@pytest.mark.parametrize(
    ("policy", "scoring_model"), [("partition", "duration_model"), ("champion", "champion_model")]
)
def test_the_scoring_policy_decides_what_trip_predictions_depends_on_and_its_default_config(policy, scoring_model):
    from deploy_assets.deployment import standalone

    defs = standalone(Settings.from_env({"DEPLOY_ASSETS_SCORING_POLICY": policy}))
    graph = defs.resolve_asset_graph()
    trip_predictions = dg.AssetKey(["yellow", "trip_predictions"])
    assert sorted(k.to_user_string() for k in graph.get(trip_predictions).parent_keys) == sorted(
        ["yellow/raw_trips", f"yellow/{scoring_model}"]
    )
    config = defs.resolve_assets_def(trip_predictions).op.config_schema.as_field().config_type.fields["model"]
    assert config.default_value == policy


def test_an_unknown_scoring_policy_is_refused_naming_the_variable():
    with pytest.raises(ValueError, match="DEPLOY_ASSETS_SCORING_POLICY='latest': expected 'partition' or 'champion'"):
        Settings.from_env({"DEPLOY_ASSETS_SCORING_POLICY": "latest"})


def test_the_month_steps_called_without_dagster_find_the_registered_model_and_stage_the_published_bytes(
    project, scored_month
):
    """The assets are thin wrappers: the steps called directly (as bench/ does) on the same objects do the same work."""
    from deploy_assets.core.objects import batch_source, read_parquet
    from deploy_assets.steps.publish import discard_staged
    from deploy_assets.steps.score import score_to_staging
    from deploy_assets.steps.train import train_month

    _, february = scored_month
    deployment, stored = project.deployment, project.resources["parquet_io_manager"]

    def rides(key: str):
        return batch_source(stored.partition_path(deployment.label("raw_trips"), key))

    window = deployment.months.training_keys(SCORE_KEY)
    statistics = [read_parquet(stored.partition_path(deployment.label("trip_statistics"), key)) for key in window]
    columns = deployment.clean_schema.names
    spec = {"estimator": "builtin", "params": {}}
    trained = train_month(
        spec, SCORE_KEY, window, statistics, [rides(key) for key in window], rides(SCORE_KEY), columns, project.registry
    )
    model_metadata = project.metadata(february, "duration_model")
    assert (trained.action, trained.version) == ("already registered", str(model_metadata["model_version"]))
    assert trained.metadata["test_rmse"] == pytest.approx(model_metadata["test_rmse"], rel=1e-5)

    staged = score_to_staging(
        rides(SCORE_KEY), project.registry, project.predictions, project.shadow_predictions,
        QualityThresholds(), columns, SCORE_KEY, trained.version,
    )
    discard_staged(project.predictions, SCORE_KEY)
    [published] = [e for e in february.get_asset_materialization_events() if e.asset_key == project.key("trip_predictions")]
    assert staged.digest == published.materialization.tags["dagster/data_version"]
    assert not staged.findings.problems
