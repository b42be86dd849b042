"""The seed's own job: the fhv deployment (FHV months of 2021, no trip distance, unknown zones kept as -1) scores
months with the zoomcamp homework's model as the homework's script does, and refuses a model that needs a column
FHV rides lack."""

from __future__ import annotations

import mlflow
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sklearn.pipeline import make_pipeline

from deploy_assets.core.datasets import FHV
from deploy_assets.core.errors import ModelContractError
from deploy_assets.core.features import clean_trips
from deploy_assets.core.generate import generate_month, write_month
from deploy_assets.core.model import ZonePairDurationRegressor
from deploy_assets.declared import deployment_settings
from deploy_assets_tests import homework
from deploy_assets_tests.stream_records import CapturingOutput, records

ROWS = 20_000
JANUARY, SCORED = "2021-01-01", ("2021-02-01", "2021-03-01")


def use_fhv(project) -> None:
    """The project's deployment as the shipped fhv one declares it (its own files, store and model name; the
    built-in trainer, which these tests' months are enough for)."""
    shipped = deployment_settings("fhv")
    project.use(
        name="fhv", dataset=shipped.dataset, missing_zones=shipped.missing_zones, first_month=shipped.first_month,
        last_month=shipped.last_month, scoring_policy=shipped.scoring_policy,
    )


def test_the_shipped_fhv_deployment_is_the_homeworks_year():
    shipped = deployment_settings("fhv")
    assert (shipped.dataset, shipped.missing_zones, shipped.scoring_policy) == ("fhv", "keep", "champion")
    assert (shipped.first_month, shipped.last_month) == ("2021-01-01", "2021-12-01")
    assert shipped.registered_model == "fhv-trip-duration"


def land_fhv(project, key: str, seed: int) -> str:
    year, month = int(key[:4]), int(key[5:7])
    table = generate_month(year, month, ROWS, seed=seed, dataset=FHV)
    return write_month(table, project.landing.uri, year, month, dataset=FHV)


def test_the_homework_model_scores_fhv_months_as_the_homework_script_does(project, capsys, monkeypatch):
    use_fhv(project)
    january = land_fhv(project, JANUARY, seed=1)
    files = {key: land_fhv(project, key, seed=index + 2) for index, key in enumerate(SCORED)}
    zones = homework.read_data(january)["PUlocationID"]
    assert 0.10 < (zones == "-1").mean() < 0.20  # FHV's unknown zones, as the homework reads them

    # The notebook's model, logged the zoomcamp's way (no signature) under the deployment's model, and promoted.
    dv, lr = homework.train(january)
    registry = project.registry
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.tracking_uri)  # the notebook's fluent API, this test only
    notebook = mlflow.MlflowClient().create_experiment("homework", artifact_location=str(project.root / "notebook"))
    with mlflow.start_run(experiment_id=notebook):
        logged = mlflow.sklearn.log_model(make_pipeline(dv, lr), "model", registered_model_name=registry.model_name)
    version = str(logged.registered_model_version)
    registry.promote(version, by="data scientist", reason="the homework's model")

    for key in SCORED:
        assert project.materialize(["raw_trips", "trip_predictions"], key).success
        year, month = int(key[:4]), int(key[5:7])
        ours = project.predictions.read_month(year, month).to_pandas().set_index("ride_id")
        script = homework.score(files[key], year, month, dv, lr).set_index("ride_id")
        common = ours.index.intersection(script.index)
        # The rides the script scores and the platform keeps (it also drops pickups outside the month).
        assert len(common) >= 0.95 * len(script) and set(ours["model_version"]) == {version}
        assert not ours["prediction_adjusted"].any()
        np.testing.assert_allclose(
            ours.loc[common, "predicted_duration"], script.loc[common, "predicted_duration"], rtol=1e-9, atol=1e-9
        )
        with capsys.disabled():
            print(
                f"\nfhv {key}: mean predicted duration {ours['predicted_duration'].mean():.4f} min (platform,"
                f" {len(ours)} rides) vs {script['predicted_duration'].mean():.4f} min (homework script, {len(script)})"
            )
        # Online: the fhv deployment's web service and stream consumer, serving @champion, answer the same.
        rides, expected = online_sample(files[key], year, month, script)
        assert any(ride["DOLocationID"] == -1 for ride in rides)  # unknown zones as the homework reads them
        assert served_by_web(registry, rides) == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert served_by_stream(registry, rides) == pytest.approx(expected, rel=1e-9, abs=1e-9)


# The fhv deployment's online services, as terraform configures them.
SERVING_ENV = {
    "DEPLOY_ASSETS_DEPLOYMENT_NAME": "fhv", "DEPLOY_ASSETS_DATASET": "fhv", "DEPLOY_ASSETS_MISSING_ZONES": "keep",
}


def online_sample(file: str, year: int, month: int, script, rides: int = 300) -> tuple[list[dict], list[float]]:
    """Rides of the month as an online caller sends them (zones as integers, -1 unknown; no distance), and the
    homework script's predictions for them."""
    sample = homework.read_data(file).sample(rides, random_state=0)
    ids = [f"{year:04d}/{month:02d}_{index}" for index in sample.index]
    zones = zip(sample.PUlocationID, sample.DOlocationID)
    sent = [{"PULocationID": int(pu), "DOLocationID": int(do)} for pu, do in zones]
    return sent, script.loc[ids, "predicted_duration"].tolist()


def served_by_web(registry, rides: list[dict]) -> list[float]:
    from fastapi.testclient import TestClient

    from deploy_assets.serving.model_source import ChampionModel
    from deploy_assets.serving.web import app_for
    from deploy_assets.settings import ServingSettings

    source = ChampionModel(registry=registry, ride_columns=FHV.model_columns)
    assert source.refresh()  # loaded now, not by the app's background start
    with TestClient(app_for(source, ServingSettings.from_env(SERVING_ENV))) as client:
        answer = client.post("/deployments/fhv/predict/batch", json={"rides": rides})
    assert answer.status_code == 200, answer.text
    return [item["ride_duration"] for item in answer.json()["predictions"]]


def served_by_stream(registry, rides: list[dict]) -> list[float]:
    from deploy_assets.serving import stream
    from deploy_assets.serving.model_source import ChampionModel
    from deploy_assets.settings import ServingSettings

    settings, output = ServingSettings.from_env(SERVING_ENV), CapturingOutput()
    source = ChampionModel(registry=registry, ride_columns=FHV.model_columns)
    assert source.refresh()
    events = [{"ride": ride, "ride_id": i} for i, ride in enumerate(rides)]
    outcome = stream.handle_records(
        records(events), source.current, output, stream.LogDeadLetter(),
        features=settings.ride_dataset.features, rules=settings.ride_rules,
    )
    assert not outcome.dead_letters
    predictions = sorted((event["prediction"] for event in output.events), key=lambda p: p["ride_id"])
    return [prediction["ride_duration"] for prediction in predictions]


def test_fhv_months_keep_unknown_zones_as_minus_one_and_have_no_distance(project):
    use_fhv(project)
    land_fhv(project, JANUARY, seed=1)
    assert project.materialize(["raw_trips"], JANUARY).success
    stored = project.resources["parquet_io_manager"].partition_path(project.deployment.label("raw_trips"), JANUARY)
    table = pq.read_table(str(stored))
    assert table.schema.names == ["ride_id", "tpep_pickup_datetime", "PULocationID", "DOLocationID", "duration"]
    assert 0.10 < pc.mean(pc.cast(pc.equal(table["PULocationID"], -1), "int64")).as_py() < 0.20


def test_the_built_in_trainer_fits_fhv_zone_pairs_and_a_model_reading_trip_distance_is_refused(project):
    use_fhv(project)
    land_fhv(project, JANUARY, seed=1)
    land_fhv(project, SCORED[0], seed=2)
    assert project.materialize(["raw_trips"], JANUARY).success
    trained = project.materialize(["raw_trips", "duration_model"], SCORED[0])
    assert trained.success
    registry = project.registry
    built_in = registry.load(registry.version_for_partition(SCORED[0]))
    assert isinstance(built_in, ZonePairDurationRegressor)
    assert built_in.feature_columns == ("PULocationID", "DOLocationID")

    # A yellow-shaped model (zones and distance) registered under the fhv deployment's model: refused at the door.
    yellow = clean_trips(generate_month(2024, 1, 2_000, seed=3), 2024, 1).table
    rides = yellow.select(["PULocationID", "DOLocationID", "trip_distance"]).to_pandas()
    reads_distance = ZonePairDurationRegressor().fit(rides, yellow["duration"].to_numpy())
    trained_model = type("Trained", (), {
        "model": reads_distance, "train_rows": 1, "train_rmse": 1.0, "holdout_rows": 0, "holdout_rmse": float("nan"),
        "rides_bounded": None,
    })()
    version = registry.log_and_register(trained_model, "2021-06-01", ["2021-05-01"], {}).version
    with pytest.raises(ModelContractError, match=r"'trip_distance'.*deployment 'fhv'") as refused:
        registry.promote(version)
    assert refused.value.column == "trip_distance"
    assert registry.champion_version() != version
