"""Deploy any registered model: what a data scientist registers is what batch, web and stream serve.

Registered as `@champion` in a local MLflow store, each of
- (a) the zoomcamp's `DictVectorizer + LinearRegression` pipeline fitted on dicts, logged exactly as the zoomcamp
  does (`mlflow.sklearn.log_model`, no signature);
- (b) a random-forest pipeline fitted on bare arrays, logged with a signature (its only record of its inputs),
  reading the pickup hour and weekday;
- (c) a custom pyfunc `PythonModel` with a signature (`PU_DO` string, distance, pickup hour);
gives, for the same rides, the same predictions through batch scoring (`score_trips`, `score_batches`), `POST
/predict` and `/predict/batch` (the FastAPI app over its own `ChampionModel`) and the stream's Lambda path
(`stream.process_lambda_event`) as calling the model directly, stamped with its version. Versions whose inputs
cannot be determined or ask for a column the platform does not compute are refused at promotion with a named
error, and the web service keeps answering with the old champion.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline

from deploy_assets.core.challenger import compare_models
from deploy_assets.core.contract import ModelContractError, as_deployable, validate_model
from deploy_assets.core.errors import PromotionRefused
from deploy_assets.core.model import TrainedModel, rmse, train_duration_model
from deploy_assets.core.registry import RegistryClient
from deploy_assets.core.scoring import score_batches, score_trips
from deploy_assets.core.training import ZOOMCAMP_PIPELINE, train_model
from deploy_assets.serving import stream
from deploy_assets.serving.model_source import ChampionModel
from deploy_assets.serving.shadow import ShadowMirror
from deploy_assets.serving.web import create_app
from deploy_assets_tests.stream_records import CapturingOutput
from deploy_assets_tests.test_serving_web import rides_table, wait_for

REQUIREMENTS = ["scikit-learn", "numpy", "pandas"]
ZOOMCAMP_CATEGORICAL = ["PULocationID", "DOLocationID"]
RF_FEATURES = ["PULocationID", "DOLocationID", "trip_distance", "pickup_hour", "pickup_weekday"]


# --- the models, built and called the way their authors would ---------------------------------------------------


def zoomcamp_dicts(table: pa.Table) -> list[dict]:
    """The zoomcamp deployment module's prepare_features, on pandas."""
    df = table.to_pandas()
    df[ZOOMCAMP_CATEGORICAL] = df[ZOOMCAMP_CATEGORICAL].astype(str)
    df["PU_DO"] = df["PULocationID"] + "_" + df["DOLocationID"]
    return df[["PU_DO", "trip_distance"]].to_dict(orient="records")


def rf_frame(table: pa.Table) -> pd.DataFrame:
    df = table.to_pandas()
    df["pickup_hour"] = df["tpep_pickup_datetime"].dt.hour
    df["pickup_weekday"] = df["tpep_pickup_datetime"].dt.day_of_week
    return df[RF_FEATURES].astype({"pickup_hour": "int64", "pickup_weekday": "int64"})


def pyfunc_frame(table: pa.Table) -> pd.DataFrame:
    df = table.to_pandas()
    return pd.DataFrame(
        {
            "PU_DO": (df["PULocationID"].astype(str) + "_" + df["DOLocationID"].astype(str)).astype(object),
            "trip_distance": df["trip_distance"],
            "pickup_hour": df["tpep_pickup_datetime"].dt.hour.astype("int64"),
        }
    )


class RushHourModel(mlflow.pyfunc.PythonModel):
    """A custom pyfunc: minutes from distance, a rush-hour surcharge and a same-zone discount."""

    def predict(self, context, model_input, params=None):
        pickup, dropoff = model_input["PU_DO"].str.split("_", n=1).str[0], model_input["PU_DO"].str.split("_", n=1).str[1]
        rush = model_input["pickup_hour"].isin([7, 8, 9, 16, 17, 18]).to_numpy()
        return 4.0 + 2.7 * model_input["trip_distance"].to_numpy() + 3.0 * rush - 1.5 * (pickup == dropoff).to_numpy()


class Store:
    """A model name of its own in the session's sqlite store, with MLflow's fluent API pointed at it."""

    def __init__(self, tracking_uri: str, artifacts: str):
        self.tracking_uri = tracking_uri
        self.name = f"any-model-{uuid.uuid4().hex[:8]}"
        self.registry = RegistryClient(tracking_uri=tracking_uri, artifact_location=artifacts, experiment_name=self.name, model_name=self.name)
        client = mlflow.MlflowClient(tracking_uri=tracking_uri)
        self.experiment_id = client.create_experiment(f"{self.name}-scientist", artifact_location=f"{artifacts}/scientist")

    def log(self, log_model, **kwargs) -> str:
        """Log and register as a data scientist would; returns the new version."""
        with self.registry._fluent_api(), mlflow.start_run(experiment_id=self.experiment_id):
            info = log_model(name="model", registered_model_name=self.name, pip_requirements=REQUIREMENTS, **kwargs)
        return str(info.registered_model_version)


@pytest.fixture(scope="module")
def months() -> dict[str, pa.Table]:
    return {
        "2024-01-01": rides_table(2024, 1, rows=20_000, seed=61),
        "2024-02-01": rides_table(2024, 2, rows=3_000, seed=62),
        "2024-03-01": rides_table(2024, 3, rows=3_000, seed=63),
    }


@pytest.fixture(scope="module")
def store(mlflow_store: str, tmp_path_factory) -> Store:
    return Store(mlflow_store, str(tmp_path_factory.mktemp("any-model-artifacts")))


@pytest.fixture(scope="module")
def deployed(store: Store, months) -> dict:
    """The built-in champion (version 1), then the three models registered by hand: kind → (version, direct)."""
    train = months["2024-01-01"]
    builtin = train_duration_model([train])
    first = store.registry.log_and_register(builtin, "2024-02-01", ["2024-01-01"], {"smoothing": 5.0})
    store.registry.promote(first.version)

    zoomcamp = make_pipeline(DictVectorizer(), LinearRegression())
    zoomcamp.fit(zoomcamp_dicts(train), train["duration"].to_numpy())
    zoomcamp_version = store.log(mlflow.sklearn.log_model, sk_model=zoomcamp)  # no signature, as the zoomcamp

    forest = make_pipeline(RandomForestRegressor(n_estimators=12, max_depth=8, random_state=0))
    forest_input = rf_frame(train)
    forest.fit(forest_input.to_numpy(), train["duration"].to_numpy())  # bare arrays: no feature_names_in_
    forest_signature = mlflow.models.infer_signature(forest_input.head(5), forest.predict(forest_input.head(5).to_numpy()))
    forest_version = store.log(
        mlflow.sklearn.log_model, sk_model=forest, signature=forest_signature, skops_trusted_types=["sklearn.tree._tree.Tree"]
    )

    custom = RushHourModel()
    example = pyfunc_frame(train.slice(0, 5))
    custom_signature = mlflow.models.infer_signature(example, custom.predict(None, example))
    custom_version = store.log(mlflow.pyfunc.log_model, python_model=custom, signature=custom_signature)

    return {
        "builtin": (first.version, lambda table: builtin.model.predict(table.select(["PULocationID", "DOLocationID", "trip_distance"]).to_pandas())),
        "zoomcamp": (zoomcamp_version, lambda table: zoomcamp.predict(zoomcamp_dicts(table))),
        "random_forest": (forest_version, lambda table: forest.predict(rf_frame(table).to_numpy())),
        "custom_pyfunc": (custom_version, lambda table: custom.predict(None, pyfunc_frame(table))),
    }


def ride_json(table: pa.Table) -> list[dict]:
    return [
        {
            "PULocationID": pu,
            "DOLocationID": do,
            "trip_distance": distance,
            "tpep_pickup_datetime": pickup.isoformat(),
            "ride_id": ride_id,
        }
        for ride_id, pu, do, distance, pickup in zip(
            *(table[name].to_pylist() for name in ("ride_id", "PULocationID", "DOLocationID", "trip_distance", "tpep_pickup_datetime"))
        )
    ]


def lambda_event(rides: list[dict]) -> dict:
    records = []
    for i, ride in enumerate(rides):
        event = {"ride": {k: v for k, v in ride.items() if k != "ride_id"}, "ride_id": ride["ride_id"]}
        records.append(
            {
                "kinesis": {"partitionKey": str(i), "sequenceNumber": f"{i:020d}", "data": base64.b64encode(json.dumps(event).encode()).decode()},
                "eventID": f"shardId-000000000000:{i:020d}",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/ride_events",
            }
        )
    return {"Records": records}


# --- acceptance: each kind of model, promoted, served identically by batch, web and stream --------------------------


@pytest.mark.parametrize("kind", ["zoomcamp", "random_forest", "custom_pyfunc", "builtin"])
def test_registered_model_is_served_identically_by_batch_web_and_stream(kind, store, deployed, months):
    from fastapi.testclient import TestClient

    version, direct = deployed[kind]
    store.registry.promote(version, allow_backwards=True)  # builtin (partition 2024-02) after hand-registered ones
    assert store.registry.champion_version() == version
    month = months["2024-02-01"]
    expected = np.asarray(direct(month), dtype=np.float64)
    rides = ride_json(month)
    ride_ids = month["ride_id"].to_pylist()

    # Batch: the model as the registry loads it, scored whole and by record batches.
    batch = score_trips(month, store.registry.load(version), version)
    assert set(batch["model_version"].to_pylist()) == {version}
    assert batch["ride_id"].to_pylist() == ride_ids
    np.testing.assert_allclose(batch["predicted_duration"].to_numpy(), expected, rtol=1e-9, atol=1e-9)
    streamed = pa.Table.from_batches(list(score_batches(month.to_batches(max_chunksize=700), store.registry.load(version), version)))
    assert streamed.equals(batch)

    # Web: the app's own champion source, loading @champion.
    source = ChampionModel(RegistryClient(tracking_uri=store.tracking_uri, model_name=store.name), refresh_seconds=60)
    with TestClient(create_app(source)) as client:
        wait_for(lambda: client.get("/ready").status_code == 200, 60, "web app ready")
        answer = client.post("/predict/batch", json={"rides": rides})
        assert answer.status_code == 200, answer.text
        singles = [client.post("/predict", json=ride).json() for ride in rides[:40]]
    assert answer.json()["model_version"] == version and {s["model_version"] for s in singles} == {version}
    web = answer.json()["predictions"]
    assert [item["ride_id"] for item in web] == ride_ids
    np.testing.assert_allclose([item["ride_duration"] for item in web], expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose([s["ride_duration"] for s in singles], expected[:40], rtol=1e-9, atol=1e-9)

    # Stream: the Lambda handler's path over zoomcamp-shaped Kinesis events, with its own champion source.
    stream_source = ChampionModel(RegistryClient(tracking_uri=store.tracking_uri, model_name=store.name), refresh_seconds=60)
    assert stream_source.refresh()
    output = CapturingOutput()
    result = stream.process_lambda_event(lambda_event(rides), stream_source.current, output, stream.LogDeadLetter())
    assert result.batch_item_failures == []
    assert {event["version"] for event in output.events} == {version}
    assert [event["prediction"]["ride_id"] for event in output.events] == ride_ids
    np.testing.assert_allclose([e["prediction"]["ride_duration"] for e in output.events], expected, rtol=1e-9, atol=1e-9)


def test_zoomcamp_pipeline_is_scored_without_dicts_exactly(deployed, store, months):
    """The DictVectorizer fast path builds exactly DictVectorizer.transform's matrix: identical answers, bit for bit,
    on a table larger than one chunk."""
    version, direct = deployed["zoomcamp"]
    model = store.registry.load(version)
    assert model.contract.call == "dictvectorizer" and model.contract.columns == ("PU_DO", "trip_distance")
    month = pa.concat_tables([months["2024-01-01"]] * 12)  # 230k rides: two chunks
    assert np.array_equal(model.predict_rides(month), direct(month))


def test_a_dict_vectorizer_subclass_gets_records(months):
    """A DictVectorizer the platform does not know exactly is handed the records themselves (built per chunk from
    only the columns it reads), and answers as when the zoomcamp code calls it."""

    class MyVectorizer(DictVectorizer):
        pass

    train, month = months["2024-01-01"], months["2024-02-01"]
    pipeline = make_pipeline(MyVectorizer(), LinearRegression()).fit(zoomcamp_dicts(train), train["duration"].to_numpy())
    model = validate_model(pipeline, "records")
    assert model.contract.call == "records" and model.contract.columns == ("PU_DO", "trip_distance")
    np.testing.assert_array_equal(model.predict_rides(month, chunk_rows=1_000), pipeline.predict(zoomcamp_dicts(month)))


# --- validation at the door -----------------------------------------------------------------------------------------


def test_undeterminable_or_unknown_inputs_are_refused_and_web_keeps_the_old_champion(store, deployed, months):
    from fastapi.testclient import TestClient

    good, _ = deployed["zoomcamp"]
    store.registry.promote(good, allow_backwards=True)
    train = months["2024-01-01"]

    # A custom pyfunc without signature: nothing says what it reads.
    no_signature = store.log(mlflow.pyfunc.log_model, python_model=RushHourModel())
    with pytest.raises(ModelContractError, match=rf"model version {no_signature} cannot be deployed: its inputs cannot be determined"):
        store.registry.promote(no_signature)
    assert store.registry.champion_version() == good

    # A forest that asks for passenger_count, which the platform does not compute.
    frame = rf_frame(train).assign(passenger_count=np.int64(1))
    forest = RandomForestRegressor(n_estimators=3, max_depth=3, random_state=0).fit(frame.to_numpy(), train["duration"].to_numpy())
    signature = mlflow.models.infer_signature(frame.head(3), forest.predict(frame.head(3).to_numpy()))
    unknown_column = store.log(
        mlflow.sklearn.log_model, sk_model=forest, signature=signature, skops_trusted_types=["sklearn.tree._tree.Tree"]
    )
    with pytest.raises(ModelContractError, match=rf"model version {unknown_column} .*column 'passenger_count'") as refused:
        store.registry.promote(unknown_column, alias="challenger")
    assert refused.value.column == "passenger_count" and refused.value.version == unknown_column
    assert store.registry.champion_version() == good and store.registry.challenger_version() is None

    # Batch scoring with it fails at once, naming the version (the asset names the partition).
    with pytest.raises(ModelContractError, match=rf"model version {unknown_column}"):
        score_trips(months["2024-02-01"], store.registry.load(unknown_column), unknown_column)

    # Someone moves @champion past the door with MLflow's own client: the web service keeps the old champion.
    source = ChampionModel(RegistryClient(tracking_uri=store.tracking_uri, model_name=store.name), refresh_seconds=60)
    ride = ride_json(months["2024-02-01"].slice(0, 1))[0]
    with TestClient(create_app(source, manage_lifecycle=False)) as client:
        assert source.refresh()
        before = client.post("/predict", json=ride).json()
        mlflow.MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.tracking_uri).set_registered_model_alias(store.name, "champion", unknown_column)
        assert source.refresh_quietly() is False
        assert source.current.version == good
        assert "ModelContractError" in source.status()["last_error"] and "passenger_count" in source.status()["last_error"]
        after = client.post("/predict", json=ride).json()
        assert client.get("/ready").json()["model_version"] == good
        # The stream's Lambda path over the same source keeps answering with it too.
        output = CapturingOutput()
        stream.process_lambda_event(lambda_event([ride]), source.current, output, stream.LogDeadLetter())
    assert before == after and after["model_version"] == good
    assert [(e["version"], e["prediction"]["ride_duration"]) for e in output.events] == [(good, after["ride_duration"])]
    store.registry.promote(good, allow_backwards=True)


def test_estimator_specs_name_what_is_wrong(months):
    from deploy_assets.core.batches import table_batch_source
    from deploy_assets.core.training import build_estimator

    with pytest.raises(ValueError, match="'sklearn.nothing.Here' cannot be imported"):
        build_estimator("sklearn.nothing.Here")
    with pytest.raises(ValueError, match="not a dotted path"):
        build_estimator("LinearRegression")
    with pytest.raises(ValueError, match=r"unknown ride features \['passenger_count'\]"):
        train_model([months["2024-01-01"]], 0.2, {"estimator": "sklearn.linear_model.Ridge", "features": ["passenger_count"]})
    # Months as tables or as BatchSources (what the assets read) give the same model.
    config = {"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": 0.5}, "features": ["trip_distance", "pickup_hour"]}
    from_tables = train_model([months["2024-01-01"]], 0.2, config)
    from_batches = train_model([table_batch_source(months["2024-01-01"], batch_rows=3_000)], 0.2, config)
    assert from_tables.holdout_rmse == from_batches.holdout_rmse and from_tables.train_rows == from_batches.train_rows


def test_validate_model_smoke_batch_names_the_version():
    from sklearn.base import BaseEstimator, RegressorMixin

    class Unanswering(RegressorMixin, BaseEstimator):
        feature_names_in_ = np.array(["trip_distance"])

        def predict(self, X):
            return np.full(len(X), np.nan)

    forest = RandomForestRegressor(n_estimators=2, max_depth=2).fit(pd.DataFrame({"trip_distance": [1.0, 2.0]}), [3.0, 4.0])
    assert validate_model(forest, "7").contract.columns == ("trip_distance",)
    with pytest.raises(ModelContractError, match="model version 8 .*not a model"):
        validate_model(object(), "8")
    with pytest.raises(ModelContractError, match="model version 9 .*inputs cannot be determined"):
        validate_model(RandomForestRegressor(n_estimators=2).fit(np.array([[1.0], [2.0]]), [3.0, 4.0]), "9")
    with pytest.raises(ModelContractError, match="model version 10 .*expected finite numbers"):
        validate_model(Unanswering(), "10")


# --- registry: backwards moves, retried runs, challenger -----------------------------------------------------------


def test_promotion_never_moves_backwards_unless_rolling_back(store, months):
    registry = RegistryClient(tracking_uri=store.tracking_uri, artifact_location=store.registry.artifact_location,
                              experiment_name=f"{store.name}-order", model_name=f"{store.name}-order")
    trained = train_duration_model([months["2024-01-01"]])
    march = registry.log_and_register(trained, "2024-03-01", ["2024-02-01"], {}, training_data_version="abc").version
    february = registry.log_and_register(trained, "2024-02-01", ["2024-01-01"], {}).version
    assert registry.find_version("2024-03-01", "abc") == march
    assert registry.find_version("2024-03-01", "other") is None and registry.find_version("2024-02-01", "abc") is None
    assert registry.version_tags(march)["training_data_version"] == "abc"

    registry.promote(march)
    with pytest.raises(PromotionRefused, match=rf"stays on version {march}.*2024-02-01, older than 2024-03-01"):
        registry.promote(february)
    assert registry.champion_version() == march
    registry.promote(february, allow_backwards=True)  # the documented roll-back
    assert registry.champion_version() == february

    assert registry.challenger_version() is None
    registry.promote(march, alias="challenger")
    assert registry.challenger_version() == march and registry.champion_version() == february


def test_promote_command_moves_the_challenger_to_champion(store, months, monkeypatch, capsys):
    from deploy_assets import promote

    registry = RegistryClient(tracking_uri=store.tracking_uri, artifact_location=store.registry.artifact_location,
                              experiment_name=f"{store.name}-cli", model_name=f"{store.name}-cli")
    trained = train_duration_model([months["2024-01-01"]])
    old = registry.log_and_register(trained, "2024-02-01", ["2024-01-01"], {}).version
    new = registry.log_and_register(trained, "2024-03-01", ["2024-02-01"], {}).version
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.tracking_uri)
    monkeypatch.setenv("DEPLOY_ASSETS_MODEL_NAME", registry.model_name)
    promote.main([new])
    promote.main([old, "--alias", "challenger"])
    with pytest.raises(SystemExit, match="refused: .*older than 2024-03-01"):
        promote.main(["@challenger"])
    assert registry.champion_version() == new
    promote.main(["@challenger", "--allow-backwards"])
    assert registry.champion_version() == old and registry.challenger_version() is None  # the challenger won
    assert f"@champion → version {old}" in capsys.readouterr().out



def test_promote_command_records_who_promoted_what_from_which_version_and_why(store, months, monkeypatch):
    import getpass

    import dagster as dg

    from deploy_assets import promote
    from deploy_assets.declared import deployment_settings
    from deploy_assets.deployment import standalone
    from deploy_assets.resources.mlflow_registry import ModelRegistry

    name = f"{store.name}-audit"
    registry = RegistryClient(tracking_uri=store.tracking_uri, artifact_location=store.registry.artifact_location,
                              experiment_name=name, model_name=name)
    trained = train_duration_model([months["2024-01-01"]])
    old = registry.log_and_register(trained, "2024-02-01", ["2024-01-01"], {}).version
    new = registry.log_and_register(trained, "2024-03-01", ["2024-02-01"], {}).version
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.tracking_uri)
    monkeypatch.setenv("DEPLOY_ASSETS_MODEL_NAME", name)
    promote.main([new, "--by", "alice", "--reason", "March retrained on the new zones"])
    promote.main([old, "--allow-backwards", "--reason", "March model scores badly"])
    audit = registry.promotion_audit(old)
    assert {k: audit[k] for k in ("promoted_by", "promoted_from", "reason")} == {
        "promoted_by": getpass.getuser(), "promoted_from": new, "reason": "March model scores badly",
    }
    assert registry.promotion_audit(new)["promoted_by"] == "alice" and registry.promotion_audit(new)["promoted_from"] == "none"
    # The champion's observations carry it: what the UI shows on yellow/champion_model (the declared yellow
    # deployment, whose model is DEPLOY_ASSETS_MODEL_NAME's, as the command's).
    champion_sensor = standalone(deployment_settings("yellow")).get_sensor_def("yellow_champion_sensor")
    resource = ModelRegistry(tracking_uri=store.tracking_uri, artifact_location=store.registry.artifact_location)
    with dg.instance_for_test() as instance:  # the sensor asks it which runs are scoring
        result = champion_sensor(dg.build_sensor_context(instance=instance, cursor=new, resources={"registry": resource}))
    assert {event.metadata["promoted_from"].value for event in result.asset_events} == {new}
    assert {event.metadata["reason"].value for event in result.asset_events} == {"March model scores badly"}

# --- pluggable training -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        ZOOMCAMP_PIPELINE,
        {"estimator": "sklearn.pipeline.Pipeline", "params": {"steps": [{"estimator": "sklearn.ensemble.RandomForestRegressor", "params": {"n_estimators": 8, "max_depth": 6, "random_state": 0}}]},
         "features": ["PULocationID", "DOLocationID", "trip_distance", "pickup_hour"]},
    ],
    ids=["zoomcamp", "random_forest"],
)
def test_trained_sklearn_models_are_logged_with_signature_and_served(config, store, months):
    trained = train_model([months["2024-01-01"]], 0.2, config)
    assert isinstance(trained, TrainedModel) and np.isfinite(trained.holdout_rmse) and trained.holdout_rows > 0
    registered = store.registry.log_and_register(trained, "2024-02-01", ["2024-01-01"], {"estimator": config["estimator"]})
    with store.registry._fluent_api():
        loaded = mlflow.pyfunc.load_model(registered.model_uri)
    assert loaded.metadata.signature is not None and loaded.metadata.saved_input_example_info is not None
    month = months["2024-02-01"]
    expected = as_deployable(trained.model).predict_rides(month)
    got = score_trips(month, store.registry.validate(registered.version), registered.version)
    np.testing.assert_array_equal(got["predicted_duration"].to_numpy(), expected)
    assert trained.holdout_rmse == pytest.approx(rmse(trained.holdout["duration"].to_numpy(), as_deployable(trained.model).predict_rides(trained.holdout)))


# --- champion vs challenger ---------------------------------------------------------------------------------------


def test_champion_and_challenger_compared_on_the_same_rides_for_two_months(store, deployed, months):
    champion_version, champion_direct = deployed["builtin"]
    challenger_version, challenger_direct = deployed["zoomcamp"]
    champion, challenger = store.registry.load(champion_version), store.registry.load(challenger_version)
    for key in ("2024-02-01", "2024-03-01"):
        month = months[key]
        published = score_trips(month, champion, champion_version)
        comparison, shadow = compare_models(month, champion, challenger, champion_version, challenger_version, 5.0, published)
        actual = month["duration"].to_numpy()
        assert comparison.rides == month.num_rows
        assert comparison.champion_rmse == pytest.approx(rmse(actual, champion_direct(month)))
        assert comparison.challenger_rmse == pytest.approx(rmse(actual, challenger_direct(month)))
        differing = np.mean(np.abs(champion_direct(month) - challenger_direct(month)) > 5.0)
        assert comparison.share_differing == pytest.approx(differing)
        assert set(shadow["model_version"].to_pylist()) == {challenger_version}
        assert set(published["model_version"].to_pylist()) == {champion_version}  # the shadow never replaces it
        assert all(isinstance(value, (int, float, str)) for value in comparison.metadata().values())


def test_shadow_mode_mirrors_to_the_challenger_without_changing_answers(store, deployed, months):
    from fastapi.testclient import TestClient

    champion_version, champion_direct = deployed["builtin"]
    challenger_version, challenger_direct = deployed["random_forest"]
    store.registry.promote(champion_version, allow_backwards=True)
    store.registry.promote(challenger_version, alias="challenger")
    month = months["2024-03-01"]
    rides = ride_json(month)

    shadow = ShadowMirror(
        ChampionModel(RegistryClient(tracking_uri=store.tracking_uri, model_name=store.name, champion_alias="challenger"), refresh_seconds=60),
        threshold_minutes=5.0,
        log_every_rides=500,
    )
    source = ChampionModel(RegistryClient(tracking_uri=store.tracking_uri, model_name=store.name), refresh_seconds=60, shadow=shadow)
    try:
        with TestClient(create_app(source)) as client:
            wait_for(lambda: client.get("/ready").status_code == 200, 60, "web app ready")
            wait_for(lambda: shadow.source.current is not None, 60, "challenger loaded")
            answer = client.post("/predict/batch", json={"rides": rides}).json()
            singles = [client.post("/predict", json=ride).json() for ride in rides[:20]]
            assert shadow.drain(30)
            ready = client.get("/ready").json()
        # The stream's Lambda path over the same source: answers are the champion's, the rides are mirrored too.
        source.start()
        output = CapturingOutput()
        stream.process_lambda_event(lambda_event(rides), source.current, output, stream.LogDeadLetter())
        assert shadow.drain(30)
        streamed = shadow.status()
    finally:
        source.stop()
    expected = champion_direct(month)
    assert answer["model_version"] == champion_version and {s["model_version"] for s in singles} == {champion_version}
    np.testing.assert_allclose([item["ride_duration"] for item in answer["predictions"]], expected, rtol=1e-12)
    np.testing.assert_allclose([s["ride_duration"] for s in singles], expected[:20], rtol=1e-12)

    status = ready["shadow"]
    challenger = challenger_direct(month)
    compared = np.concatenate([np.abs(expected - challenger), np.abs(expected[:20] - challenger[:20])])
    assert status["versions"] == [champion_version, challenger_version]
    assert status["rides"] == month.num_rows + 20 and status["errors"] == 0 and status["dropped"] == 0
    assert status["mean_abs_diff"] == pytest.approx(compared.mean())
    assert status["share_differing"] == pytest.approx(np.mean(compared > 5.0))
    assert {event["version"] for event in output.events} == {champion_version}
    np.testing.assert_allclose([e["prediction"]["ride_duration"] for e in output.events], expected, rtol=1e-12)
    assert streamed["rides"] == status["rides"] + month.num_rows and streamed["errors"] == 0


def test_shadow_mode_from_the_environment():
    source = ChampionModel.from_env({"MLFLOW_TRACKING_URI": "http://127.0.0.1:1", "DEPLOY_ASSETS_SHADOW_ALIAS": "challenger",
                                     "DEPLOY_ASSETS_SHADOW_THRESHOLD_MINUTES": "3"})
    assert source.alias == "champion" and source.shadow.source.alias == "challenger"
    assert source.shadow.threshold_minutes == 3.0
    assert ChampionModel.from_env({"MLFLOW_TRACKING_URI": "http://127.0.0.1:1"}).shadow is None


# --- serving without the orchestrator -----------------------------------------------------------------------------

NO_DAGSTER = """
import sys

class NoDagster:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("dagster", "dagster_aws", "dagster_postgres", "dagster_webserver"):
            raise ImportError(f"{name} is not installed in a serving-only environment")

sys.meta_path.insert(0, NoDagster())
import pkgutil
import deploy_assets.core, deploy_assets.serving
for package in (deploy_assets.core, deploy_assets.serving):
    for module in pkgutil.iter_modules(package.__path__):
        __import__(f"{package.__name__}.{module.name}")
from fastapi.testclient import TestClient
from deploy_assets.core.registry import RegistryClient
from deploy_assets.serving.model_source import ChampionModel
from deploy_assets.serving.web import create_app

source = ChampionModel(RegistryClient(tracking_uri=sys.argv[1], model_name=sys.argv[2]), refresh_seconds=60)
with TestClient(create_app(source, manage_lifecycle=False)) as client:
    assert source.refresh()
    ride = {"PULocationID": 132, "DOLocationID": 236, "trip_distance": 17.5, "ride_id": "r1"}
    print(client.post("/predict", json=ride).json()["model_version"])
assert not [name for name in sys.modules if name.startswith("dagster")]
"""


@pytest.mark.servers  # starts real processes
def test_serving_imports_and_answers_without_dagster(store, deployed):
    version, _ = deployed["zoomcamp"]
    store.registry.promote(version, allow_backwards=True)
    done = subprocess.run(
        [sys.executable, "-c", NO_DAGSTER, store.tracking_uri, store.name], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == version


# --- the ride feature set -----------------------------------------------------------------------------------------


def test_ride_features_are_the_same_from_a_month_and_from_online_rides(months):
    from deploy_assets.core.contract import feature_column
    from deploy_assets.serving.features import ride_columns
    from deploy_assets.serving.schemas import Ride

    month = months["2024-02-01"].slice(0, 500)
    rides = [Ride(**ride) for ride in ride_json(month)]
    online = ride_columns(rides, needs_pickup_time=True)
    frame = month.to_pandas()
    expected = {
        "PU_DO": (frame["PULocationID"].astype(str) + "_" + frame["DOLocationID"].astype(str)).tolist(),
        "pickup_hour": frame["tpep_pickup_datetime"].dt.hour.tolist(),
        "pickup_weekday": frame["tpep_pickup_datetime"].dt.day_of_week.tolist(),
        "trip_distance": frame["trip_distance"].tolist(),
    }
    for name, values in expected.items():
        dtype = "str" if name == "PU_DO" else ("float64" if name == "trip_distance" else "int64")
        for source in (month, month.to_batches()[0], online):
            column = feature_column(source, name, dtype)
            assert (column.to_pylist() if dtype == "str" else column.tolist()) == values, name
    assert feature_column(month, "PULocationID", "str").to_pylist() == frame["PULocationID"].astype(str).tolist()

    # An offset is converted to New York time (the TLC's clock); no pickup time means "now".
    utc = Ride(PULocationID=1, DOLocationID=2, trip_distance=1.0, tpep_pickup_datetime="2024-02-05T13:15:00Z")
    columns = ride_columns([utc, Ride(PULocationID=1, DOLocationID=2, trip_distance=1.0)], needs_pickup_time=True)
    assert feature_column(columns, "pickup_hour", "int64")[0] == 8
    assert feature_column(columns, "pickup_weekday", "int64")[0] == 0  # a Monday
    assert np.isfinite(columns["tpep_pickup_datetime"].astype("int64")).all()


# --- through the asset (dg.materialize): champion policy, and a refused version -----------------------------------


def test_trip_predictions_asset_scores_with_a_registered_pipeline_and_fails_at_once_on_a_bad_one(project):
    from deploy_assets.core.features import clean_trips
    from deploy_assets.core.generate import generate_month

    months = {}
    for month in (1, 2):
        key = f"2024-0{month}-01"
        table = generate_month(2024, month, 5_000, seed=month)
        project.land(key, table=table)
        project.materialize(["raw_trips"], key)
        months[month] = clean_trips(table, 2024, month).table
    registry = project.registry
    experiment = mlflow.MlflowClient(tracking_uri=registry.tracking_uri).create_experiment(
        f"{registry.model_name}-scientist", artifact_location=str(project.root / "scientist")
    )

    def log(**kwargs) -> str:
        with registry._fluent_api(), mlflow.start_run(experiment_id=experiment):
            info = mlflow.sklearn.log_model(name="model", registered_model_name=registry.model_name, pip_requirements=REQUIREMENTS, **kwargs)
        return str(info.registered_model_version)

    pipeline = make_pipeline(DictVectorizer(), LinearRegression()).fit(zoomcamp_dicts(months[1]), months[1]["duration"].to_numpy())
    version = log(sk_model=pipeline)
    project.registry.promote(version)
    champion = {"ops": {"yellow__trip_predictions": {"config": {"model": "champion"}}}}
    assert project.materialize(["trip_predictions"], "2024-02-01", run_config=champion).success
    published = project.root / "predictions" / "yellow" / "year=2024" / "month=02" / "predictions.parquet"
    scored = pq.read_table(published).to_pandas().set_index("ride_id")
    expected = dict(zip(months[2]["ride_id"].to_pylist(), pipeline.predict(zoomcamp_dicts(months[2]))))
    assert set(scored["model_version"]) == {version} and len(scored) == len(expected)
    np.testing.assert_allclose(scored["predicted_duration"].to_numpy(), [expected[i] for i in scored.index], rtol=1e-9)

    frame = rf_frame(months[1]).assign(passenger_count=np.int64(1))
    forest = RandomForestRegressor(n_estimators=2, max_depth=2, random_state=0).fit(frame.to_numpy(), months[1]["duration"].to_numpy())
    signature = mlflow.models.infer_signature(frame.head(3), forest.predict(frame.head(3).to_numpy()))
    bad = log(sk_model=forest, signature=signature, skops_trusted_types=["sklearn.tree._tree.Tree"])
    before = published.read_bytes()
    result = project.materialize(
        ["trip_predictions"], "2024-02-01", run_config={"ops": {"yellow__trip_predictions": {"config": {"model": bad}}}}, raise_on_error=False
    )
    assert not result.success
    kinds = [event.event_type_value for event in result.all_events]
    assert "STEP_UP_FOR_RETRY" not in kinds and kinds.count("STEP_FAILURE") == 1  # at once, no retries
    [failure] = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.message
    assert f"yellow/trip_predictions[2024-02-01] failed: ModelContractError: model version {bad}" in message
    assert "'passenger_count'" in message
    assert published.read_bytes() == before  # nothing published


def long_rides(table: pa.Table, count: int = 60) -> pa.Table:
    """`count` rides made 60–78 miles long and 59 minutes: plausible by the ride rules (≤ 80 mph), and far beyond
    what a linear model saw, so it extrapolates them past the declared 180 minutes."""
    distance = table["trip_distance"].to_numpy().copy()
    dropoff = table["tpep_dropoff_datetime"].to_numpy().copy()
    rows = np.arange(count) * (table.num_rows // count)
    distance[rows] = np.linspace(60.0, 78.0, count)
    dropoff[rows] = table["tpep_pickup_datetime"].to_numpy()[rows] + np.timedelta64(59 * 60, "s")
    table = table.set_column(table.schema.get_field_index("trip_distance"), "trip_distance", pa.array(distance))
    column = table.schema.get_field_index("tpep_dropoff_datetime")
    return table.set_column(column, "tpep_dropoff_datetime", pa.array(dropoff, pa.timestamp("us")))


def test_zoomcamp_notebook_champion_is_published_clipped_and_served_identically_by_batch_web_stream_and_lambda(project):
    """The zoomcamp's own pipeline (100,000 rides, fitted on dicts, logged without signature) as @champion: the
    month is published with the predictions the output policy clipped counted in its metadata, and batch,
    `POST /predict`, the stream's batch handler and the Lambda handler answer the same values, all in range."""
    from fastapi.testclient import TestClient

    from deploy_assets.core.contract import OUTPUT_POLICY
    from deploy_assets.core.features import clean_trips
    from deploy_assets.core.generate import generate_month

    january = clean_trips(generate_month(2024, 1, 100_000, seed=1), 2024, 1).table
    february = long_rides(generate_month(2024, 2, 20_000, seed=2))
    project.land("2024-02-01", table=february)
    assert project.materialize(["raw_trips"], "2024-02-01").success
    registry = project.registry
    experiment = mlflow.MlflowClient(tracking_uri=registry.tracking_uri).create_experiment(
        f"{registry.model_name}-notebook", artifact_location=str(project.root / "notebook")
    )
    pipeline = make_pipeline(DictVectorizer(), LinearRegression()).fit(zoomcamp_dicts(january), january["duration"].to_numpy())
    with registry._fluent_api(), mlflow.start_run(experiment_id=experiment):
        info = mlflow.sklearn.log_model(pipeline, name="model", registered_model_name=registry.model_name, pip_requirements=REQUIREMENTS)
    version = str(info.registered_model_version)
    project.registry.promote(version)

    champion = {"ops": {"yellow__trip_predictions": {"config": {"model": "champion"}}}}
    result = project.materialize(["trip_predictions", "prediction_table"], "2024-02-01", run_config=champion)
    metadata = project.metadata(result, "trip_predictions")
    published = project.predictions.read_month(2024, 2)
    predicted = published["predicted_duration"].to_numpy()
    flags = published["prediction_adjusted"].to_numpy(zero_copy_only=False)
    raw = dict(zip(published["ride_id"].to_pylist(), pipeline.predict(zoomcamp_dicts(clean_trips(february, 2024, 2).table))))
    outside = np.array([not 0 <= raw[ride_id] <= 180 for ride_id in published["ride_id"].to_pylist()])
    assert metadata["predictions_adjusted"] == flags.sum() == outside.sum() >= 50
    np.testing.assert_array_equal(flags, outside)
    assert predicted.min() >= OUTPUT_POLICY.min_minutes and predicted.max() == OUTPUT_POLICY.max_minutes

    # The same rides online: the adjusted ones and a sample of the others.
    rows = np.flatnonzero(flags | (np.arange(len(flags)) % 50 == 0))
    month = project.predictions.read_month(2024, 2).take(rows)
    cleaned = clean_trips(february, 2024, 2).table
    by_id = dict(zip(cleaned["ride_id"].to_pylist(), range(cleaned.num_rows)))
    rides = ride_json(cleaned.take([by_id[ride_id] for ride_id in month["ride_id"].to_pylist()]))
    expected = month["predicted_duration"].to_numpy()

    source = ChampionModel(RegistryClient(tracking_uri=registry.tracking_uri, model_name=registry.model_name), refresh_seconds=60)
    with TestClient(create_app(source, manage_lifecycle=False)) as client:
        assert source.refresh()
        web = [client.post("/predict", json=ride).json() for ride in rides]
    assert {answer["model_version"] for answer in web} == {version}
    assert np.array_equal([answer["ride_duration"] for answer in web], expected)

    handler = stream.StreamHandler(source, CapturingOutput(), stream.LogDeadLetter(), refresh_on_invoke=False)
    assert handler(lambda_event(rides)) == {"batchItemFailures": []}  # the Lambda entry point's call
    lambda_answers = [event["prediction"]["ride_duration"] for event in handler.output.events]
    assert np.array_equal(lambda_answers, expected)
    batch_output = CapturingOutput()
    outcome = stream.handle_records(
        stream.process_lambda_event(lambda_event(rides), source.current, CapturingOutput(), stream.LogDeadLetter()).records,
        source.current, batch_output, stream.LogDeadLetter(),
    )  # the micro-batch the stream consumer runs on the records it reads
    assert outcome.dead_letters == [] and np.array_equal([e["prediction"]["ride_duration"] for e in batch_output.events], expected)


def test_online_rides_batch_would_drop_or_answers_the_policy_refuses_are_refused_naming_why(months):
    """A deployment's other rules or output policy hold online through the same functions: the web answers 422
    naming the rule, the stream dead-letters the ride with the reason; the other rides are answered."""
    from fastapi.testclient import TestClient

    from deploy_assets.core.contract import OutputPolicy
    from deploy_assets.core.features import RideRules
    from deploy_assets.serving.model_source import StaticModel

    model = train_duration_model([months["2024-01-01"]]).model
    rides = [
        {"PULocationID": 132, "DOLocationID": 236, "trip_distance": 17.5, "ride_id": "long"},
        {"PULocationID": 132, "DOLocationID": 236, "trip_distance": 2.0, "ride_id": "short"},
    ]
    rules, policy = RideRules(max_distance_miles=10.0), OutputPolicy(max_minutes=20.0, action="drop")
    with TestClient(create_app(StaticModel(model, "5"), rules=rules)) as client:
        refused = client.post("/predict", json=rides[0])
        answered = client.post("/predict", json=rides[1])
    assert refused.status_code == 422 and refused.json()["detail"][0]["type"] == "invalid_ride"
    assert "valid-ride rule 'distance_above_10_mi'" in refused.json()["message"]
    assert answered.status_code == 200

    output = CapturingOutput()
    result = stream.process_lambda_event(lambda_event(rides), StaticModel(model, "5").current, output, stream.LogDeadLetter())
    assert result.batch_item_failures == [] and len(output.events) == 2  # the default rules and policy keep both
    records = result.records
    for kwargs, reason in (({"rules": rules}, "invalid_ride"), ({"policy": policy}, "prediction_outside_range")):
        output = CapturingOutput()
        outcome = stream.handle_records(records, StaticModel(model, "5").current, output, stream.LogDeadLetter(), **kwargs)
        assert [(letter.record.partition_key, letter.reason) for letter in outcome.dead_letters] == [("0", reason)]
        assert [event["prediction"]["ride_id"] for event in output.events] == ["short"]
    assert "outside 0–20 min (output policy 'drop')" in outcome.dead_letters[0].detail
