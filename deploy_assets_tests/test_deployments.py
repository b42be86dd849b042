"""Model deployments declared in YAML: each is its own island (keys, sensors, job, pool, model, objects, table),
several run side by side from one landing zone, and a new one is a YAML file and nothing else."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from mlflow import MlflowClient

from deploy_assets.assets.model import TrainingConfig
from deploy_assets.assets.monthly import Deployment
from deploy_assets.core.training import ZOOMCAMP_PIPELINE
from deploy_assets.resources import QualityThresholds
from deploy_assets.core.generate import generate_month
from deploy_assets.core.months import Month
from deploy_assets.declared import component_tree, declared_settings
from deploy_assets.definitions import defs
from deploy_assets.deployment import build_definitions, standalone
from deploy_assets.settings import Settings

TRAIN, SCORE = "2024-01-01", "2024-02-01"
ROWS = 4_000
EVERY_STEP = ["raw_trips", "duration_model", "model_promotion", "trip_predictions", "prediction_table"]


def test_the_code_location_holds_the_shipped_deployments_each_under_its_own_names():
    declared = declared_settings()
    assert list(declared) == ["fhv", "green", "yellow"]
    assert {name: s.dataset for name, s in declared.items()} == {"fhv": "fhv", "green": "green", "yellow": "yellow"}
    yellow, green = declared["yellow"], declared["green"]
    # yellow keeps the names the online services and other applications know; green's follow from its name.
    assert (yellow.table, green.table) == ("trip_predictions", "green_trip_predictions")
    assert green.registered_model == "green-trip-duration" and yellow.registered_model != green.registered_model
    assert yellow.location("predictions").endswith("/predictions/yellow")
    assert green.location("predictions").endswith("/predictions/green")
    assert yellow.location("landing") == green.location("landing")  # one landing zone, told apart by file name

    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    for name in ("yellow", "green"):
        assert {f"{name}/{asset}" for asset in ("landing_file", "champion_model", *EVERY_STEP, "trip_statistics")} <= keys
        defs.resolve_job_def(f"{name}_month_end_to_end")
        for sensor in ("landing_sensor", "champion_sensor", "automation_sensor", "freshness_alert_sensor"):
            defs.resolve_sensor_def(f"{name}_{sensor}")
    assert all(key.split("/")[0] in ("yellow", "green", "fhv") for key in keys)
    graph = defs.resolve_asset_graph()
    pools = [graph.get(dg.AssetKey([name, "prediction_table"])).pools for name in ("yellow", "green")]
    assert pools == [{"yellow_predictions_db"}, {"green_predictions_db"}]
    job = defs.resolve_job_def("green_month_end_to_end")
    assert {key.path[0] for key in job.asset_layer.selected_asset_keys} == {"green"}


def test_a_deployments_own_names_never_come_from_the_environment(monkeypatch):
    """One variable would give every deployment the same model and table: a YAML deployment takes them from its
    YAML or its name; shared settings (the data root, the first month) still come from the environment."""
    monkeypatch.setenv("DEPLOY_ASSETS_PREDICTIONS_TABLE", "everyone")
    monkeypatch.setenv("DEPLOY_ASSETS_PREDICTIONS_URI", "/tmp/everyone")
    monkeypatch.setenv("DEPLOY_ASSETS_FIRST_MONTH", "2024-01-01")
    green = declared_settings()["green"]
    assert (green.table, green.location("predictions").rsplit("/", 1)[-1]) == ("green_trip_predictions", "green")
    assert green.first_month == "2024-01-01"
    assert Settings.from_env().table == "everyone"  # a program of one deployment still reads it


def test_a_code_location_loads_only_the_deployments_it_is_told_to(monkeypatch):
    """`DEPLOY_ASSETS_DEPLOYMENTS` gives a team a code location of its own deployments; a name that is not declared
    fails the load naming it, instead of a code location that silently serves nothing."""
    monkeypatch.setenv("DEPLOY_ASSETS_DEPLOYMENTS", "yellow")
    location = component_tree().build_defs()
    prefixes = {key.path[0] for key in location.resolve_all_asset_keys()}
    assert prefixes == {"yellow"}
    assert not [s.name for s in location.sensors if s.name.startswith("green")]

    monkeypatch.setenv("DEPLOY_ASSETS_DEPLOYMENTS", "yellow, blue")
    with pytest.raises(Exception) as failure:
        component_tree().build_defs()
    assert "DEPLOY_ASSETS_DEPLOYMENTS names blue: not declared under defs/" in "".join(
        str(e) for e in (failure.value, failure.value.__cause__) if e
    )


def test_a_deployments_declared_training_and_thresholds_are_its_defaults_and_unknown_ones_are_refused():
    """A deployment's `training:` is the default of its duration_model's run config (a run's config still wins) and
    its `thresholds:` replace the code location's for its checks only; the output policy is not one of them (batch
    and online apply the model contract's), and a misspelt key fails naming the deployment."""
    settings = Settings(name="quarterly", training={"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": 2.0}},
                        thresholds={"max_dropped_share": 0.3})
    config = TrainingConfig.declared(settings.training)
    assert (config().estimator, config().params, config().features) == ("sklearn.linear_model.Ridge", {"alpha": 2.0}, None)
    assert config(estimator="builtin").estimator == "builtin"
    assert TrainingConfig.declared(None) is TrainingConfig
    shared = QualityThresholds(volume_tolerance=0.9)
    limits = Deployment(settings).limits(shared)
    assert (limits.max_dropped_share, limits.volume_tolerance) == (0.3, 0.9)
    assert Deployment(Settings()).limits(shared) is shared

    with pytest.raises(ValueError, match=r"deployment 'q': DEPLOY_ASSETS_THRESHOLDS has max_predicted_minutes"):
        Settings(name="q", thresholds={"max_predicted_minutes": 90})
    with pytest.raises(ValueError, match=r"DEPLOY_ASSETS_TRAINING has estimatr; expected any of estimator"):
        Settings(name="q", training={"estimatr": "builtin"})
    assert Settings.from_env({"DEPLOY_ASSETS_THRESHOLDS": '{"volume_tolerance": 0.7}'}).thresholds == {"volume_tolerance": 0.7}


def test_a_deployment_of_a_closed_period_has_only_its_months():
    """`last_month`: the months of one year, say, and no new partition each month after it."""
    closed = Deployment(Settings(name="closed", first_month="2021-01-01", last_month="2021-04-01")).months
    assert closed.keys() == ["2021-01-01", "2021-02-01", "2021-03-01", "2021-04-01"]
    assert Deployment(Settings(first_month="2026-01-01")).months.keys()[0] == "2026-01-01"
    with pytest.raises(ValueError, match=r"DEPLOY_ASSETS_LAST_MONTH='2020-12-01': before the first month"):
        Settings(first_month="2021-01-01", last_month="2020-12-01")


def test_a_deployment_declared_without_automation_has_its_automation_sensor_stopped():
    manual = standalone(Settings(name="manual", automation=False)).resolve_sensor_def("manual_automation_sensor")
    assert manual.default_status == dg.DefaultSensorStatus.STOPPED
    assert defs.resolve_sensor_def("yellow_automation_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    assert Settings.from_env({"DEPLOY_ASSETS_AUTOMATION": "false"}).automation is False
    with pytest.raises(ValueError, match=r"DEPLOY_ASSETS_AUTOMATION='maybe': expected true or false"):
        Settings.from_env({"DEPLOY_ASSETS_AUTOMATION": "maybe"})


def two_deployments(project):
    """The project's yellow deployment and a green one beside it: the same landing zone, registry and database."""
    green = dataclasses.replace(
        project.settings, name="green", dataset="green", model_name=f"{project.settings.registered_model}-green"
    )
    return project.settings, green


def land(project, settings: Settings, key: str, seed: int = 0) -> str:
    from deploy_assets.core.generate import write_month

    month, landing = Month.from_key(key), Deployment(settings).landing
    table = generate_month(*month.pair, ROWS, seed=seed, dataset=landing.tlc_dataset)
    return write_month(table, landing.uri, *month.pair, dataset=landing.tlc_dataset)


def materialize(project, settings: Settings, assets: list[str], key: str, raise_on_error: bool = True):
    deployment = Deployment(settings)
    selection = dg.AssetSelection.assets(*(deployment.key(a) for a in assets)).required_multi_asset_neighbors()
    return dg.materialize(
        build_definitions(settings).assets, selection=selection, partition_key=key, instance=project.instance,
        resources=project.resources, raise_on_error=raise_on_error,
    )


def published(project, settings: Settings) -> dict:
    """What users read of a deployment: its champion, its predictions object's bytes, its table's rows."""
    deployment = Deployment(settings)
    path = deployment.predictions.month_path(2024, 2)
    return {
        "champion": deployment.model(project.resources["registry"]).champion_version(),
        "object": path.read_bytes() if path.exists() else None,
        "rows": deployment.table(project.resources["warehouse"]).count_rows(Month(2024, 2)),
    }


def test_two_deployments_from_one_landing_zone_publish_each_its_own_month(project):
    yellow, green = two_deployments(project)
    for settings in (yellow, green):
        land(project, settings, TRAIN, seed=1)
        land(project, settings, SCORE, seed=2)
    registry, results = project.resources["registry"], {}
    for settings in (yellow, green):
        assert materialize(project, settings, ["raw_trips"], TRAIN).success
        results[settings.name] = materialize(project, settings, EVERY_STEP, SCORE)
        assert results[settings.name].success

    for settings in (yellow, green):
        deployment, result = Deployment(settings), results[settings.name]
        model = deployment.model(registry)
        # One version for the month, under the deployment's own registered model, promoted on its own alias.
        assert model.version_for_partition(SCORE) == model.champion_version() == "1"
        source = pq.read_table(deployment.predictions.month_path(2024, 2))
        assert set(source.column("model_version").to_pylist()) == {"1"}
        assert deployment.table(project.resources["warehouse"]).count_rows(Month(2024, 2)) == source.num_rows
        stored = result.get_asset_materialization_events()
        [ingested] = [e for e in stored if e.asset_key == deployment.key("raw_trips")]
        assert ingested.materialization.metadata["source"].value.endswith(deployment.landing.file_name(2024, 2))
    assert Deployment(green).predictions.month_path(2024, 2) != Deployment(yellow).predictions.month_path(2024, 2)


def test_a_corrupt_green_month_fails_naming_green_and_leaves_yellow_published(project):
    yellow, green = two_deployments(project)
    for settings in (yellow, green):
        land(project, settings, TRAIN, seed=1)
        land(project, settings, SCORE, seed=2)
    Deployment(green).landing.month_path(2024, 2).write_bytes(b"PAR1 not a parquet file")

    assert materialize(project, yellow, ["raw_trips"], TRAIN).success
    assert materialize(project, yellow, EVERY_STEP, SCORE).success
    before = published(project, yellow)
    assert materialize(project, green, ["raw_trips"], TRAIN).success
    with pytest.raises(dg.Failure, match=r"^green/raw_trips\[2024-02-01\] failed: .*green_tripdata_2024-02\.parquet"):
        materialize(project, green, EVERY_STEP, SCORE)
    assert published(project, yellow) == before and before["rows"] > 0
    assert published(project, green) == {"champion": None, "object": None, "rows": 0}


def test_promoting_one_deployments_model_moves_nothing_of_another(project):
    yellow, green = two_deployments(project)
    for settings in (yellow, green):
        land(project, settings, TRAIN, seed=1)
        land(project, settings, SCORE, seed=2)
        assert materialize(project, settings, ["raw_trips"], TRAIN).success
        assert materialize(project, settings, EVERY_STEP, SCORE).success
    land(project, green, "2024-03-01", seed=3)
    assert materialize(project, green, EVERY_STEP, "2024-03-01").success
    yellow_before = published(project, yellow)

    green_model = Deployment(green).model(project.resources["registry"])
    green_model.promote("1", allow_backwards=True, reason="roll back green")
    assert green_model.champion_version() == "1"
    assert published(project, yellow) == yellow_before


def declare(project, tmp_path, monkeypatch, package: str, name: str, yaml: str) -> dg.ComponentTree:
    """A defs folder of its own (`package`, importable from tmp_path) holding the deployment `name` as written in
    `yaml`, no Python; its data under the project's folder."""
    (tmp_path / package / name).mkdir(parents=True)
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / name / "defs.yaml").write_text(textwrap.dedent(yaml))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("DEPLOY_ASSETS_DATA_URI", str(project.root))
    return component_tree(package, project_root=tmp_path)


def test_a_deployment_written_only_as_yaml_loads_materializes_a_month_and_is_served(project, tmp_path, monkeypatch):
    """A third deployment: a `defs.yaml` in a defs folder of its own (here a temporary one), no Python; the web
    service started for its model (one process per deployment) answers what the batch published."""
    monkeypatch.setenv("QUARTERLY_MODEL", f"{project.settings.registered_model}-quarterly")
    tree = declare(project, tmp_path, monkeypatch, "more_defs", "yellow_quarterly", f"""\
        type: deploy_assets.components.ModelDeployment
        attributes:
          name: yellow_quarterly
          dataset: yellow
          first_month: "2024-01-01"
          training_months: 3
          training:
            estimator: sklearn.pipeline.Pipeline
            params:
              steps:
                - estimator: sklearn.feature_extraction.DictVectorizer
                - estimator: sklearn.linear_model.LinearRegression
          thresholds:
            max_dropped_share: 0.3
          model_name: "{{{{ env('QUARTERLY_MODEL', 'unset') }}}}"
          predictions_uri: {tmp_path / "quarterly"}
        """)
    [settings] = declared_settings(tree).values()
    assert (settings.name, settings.training_months, settings.table) == ("yellow_quarterly", 3, "yellow_quarterly_trip_predictions")
    assert settings.registered_model == f"{project.settings.registered_model}-quarterly"  # {{ env(...) }} resolved
    assert settings.training == ZOOMCAMP_PIPELINE and settings.thresholds == {"max_dropped_share": 0.3}
    loaded = dg.Definitions.merge(tree.build_defs(), dg.Definitions(resources=project.resources))
    assert {key.path[0] for key in loaded.resolve_all_asset_keys()} == {"yellow_quarterly"}

    settings = dataclasses.replace(settings, mlflow_tracking_uri=project.settings.mlflow_tracking_uri)
    for key, seed in (("2024-01-01", 1), ("2024-02-01", 2), ("2024-03-01", 3), ("2024-04-01", 4)):
        land(project, settings, key, seed=seed)
    for key in ("2024-01-01", "2024-02-01", "2024-03-01"):
        assert materialize(project, settings, ["raw_trips"], key).success
    result = materialize(project, settings, EVERY_STEP, "2024-04-01")
    assert result.success
    [model] = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "duration_model"]
    metadata = model.materialization.metadata
    assert metadata["training_partitions"].value == "2024-01-01,2024-02-01,2024-03-01"
    trained = MlflowClient(settings.mlflow_tracking_uri).get_run(metadata["mlflow_run_id"].value)
    assert trained.data.params["estimator"] == "sklearn.pipeline.Pipeline"  # its declared trainer, not the built-in
    published = pq.read_table(tmp_path / "quarterly" / "year=2024" / "month=04" / "predictions.parquet")

    # The web service, given the deployment's model, serves the same predictions for the same rides.
    from fastapi.testclient import TestClient

    from deploy_assets.serving.model_source import ChampionModel
    from deploy_assets.serving.web import create_app

    stored = pq.read_table(project.root / "warehouse" / "yellow_quarterly" / "raw_trips" / "2024-04-01.parquet")
    rides = [
        {"ride_id": r["ride_id"], "PULocationID": r["PULocationID"], "DOLocationID": r["DOLocationID"],
         "trip_distance": r["trip_distance"]}
        for r in stored.slice(0, 200).to_pylist()
    ]
    source = ChampionModel(
        tracking_uri=settings.mlflow_tracking_uri, model_name=settings.registered_model, refresh_seconds=60
    )
    with TestClient(create_app(source)) as client:
        source.refresh()
        answer = client.post("/predict/batch", json={"rides": rides}).json()
    expected = dict(zip(published["ride_id"].to_pylist(), published["predicted_duration"].to_pylist()))
    assert answer["model_version"] == metadata["model_version"].value
    assert {p["ride_id"]: p["ride_duration"] for p in answer["predictions"]} == {r["ride_id"]: expected[r["ride_id"]] for r in rides}


def test_a_high_volume_fhv_month_in_its_real_schema_goes_through_a_deployment_declared_in_yaml(project, tmp_path, monkeypatch):
    """fhvhv_tripdata_YYYY-MM.parquet (hvfhs_license_num, request_datetime, int64 zones, trip_miles, fares and
    flags): its distance is `trip_miles`, so the built-in model trains and scores it like a taxi month."""
    tree = declare(project, tmp_path, monkeypatch, "hv_defs", "rideshare", """\
        type: deploy_assets.components.ModelDeployment
        attributes:
          name: rideshare
          dataset: fhvhv
          first_month: "2024-01-01"
        """)
    [settings] = declared_settings(tree).values()
    settings = dataclasses.replace(settings, mlflow_tracking_uri=project.settings.mlflow_tracking_uri)
    landed = land(project, settings, TRAIN, seed=1)
    land(project, settings, SCORE, seed=2)
    schema = pq.read_schema(landed)
    assert landed.endswith("fhvhv_tripdata_2024-01.parquet")
    assert {"hvfhs_license_num", "request_datetime", "trip_miles", "trip_time", "base_passenger_fare"} <= set(schema.names)
    assert "trip_distance" not in schema.names and "tpep_pickup_datetime" not in schema.names

    assert materialize(project, settings, ["raw_trips"], TRAIN).success
    result = materialize(project, settings, EVERY_STEP, SCORE)
    assert result.success
    deployment = Deployment(settings)
    scored = pq.read_table(deployment.predictions.month_path(2024, 2))
    assert scored.num_rows > 0.9 * ROWS and set(scored["model_version"].to_pylist()) == {"1"}
    assert deployment.table(project.resources["warehouse"]).count_rows(Month(2024, 2)) == scored.num_rows


def test_a_dataset_declared_by_its_file_names_and_columns_goes_through_a_deployment(project, tmp_path, monkeypatch):
    """Files that are not the TLC's: the YAML names their prefix and where the ride columns are; they are read,
    checked and renamed like a TLC service's, and a file missing one of them is refused naming it."""
    tree = declare(project, tmp_path, monkeypatch, "own_defs", "cabs", """\
        type: deploy_assets.components.ModelDeployment
        attributes:
          name: cabs
          dataset:
            file_prefix: cabs_
            pickup_time: started_at
            dropoff_time: ended_at
            pickup_zone: start_zone
            dropoff_zone: end_zone
            distance: miles
          first_month: "2024-01-01"
        """)
    [settings] = declared_settings(tree).values()
    settings = dataclasses.replace(settings, mlflow_tracking_uri=project.settings.mlflow_tracking_uri)
    own_names = {"tpep_pickup_datetime": "started_at", "tpep_dropoff_datetime": "ended_at",
                 "PULocationID": "start_zone", "DOLocationID": "end_zone", "trip_distance": "miles"}
    landing = Deployment(settings).landing
    Path(landing.uri).mkdir(parents=True, exist_ok=True)
    for key, seed in ((TRAIN, 1), (SCORE, 2)):
        month = Month.from_key(key)
        table = generate_month(*month.pair, ROWS, seed=seed)
        table = table.rename_columns([own_names.get(name, name) for name in table.column_names])
        pq.write_table(table, Path(landing.uri) / f"cabs_{month.key[:7]}.parquet")

    assert materialize(project, settings, ["raw_trips"], TRAIN).success
    assert materialize(project, settings, EVERY_STEP, SCORE).success
    scored = pq.read_table(Deployment(settings).predictions.month_path(2024, 2))
    assert scored.num_rows > 0.9 * ROWS

    bad = pq.read_table(Path(landing.uri) / "cabs_2024-02.parquet").drop_columns(["miles"])
    pq.write_table(bad, Path(landing.uri) / "cabs_2024-02.parquet")
    with pytest.raises(dg.Failure, match=r"cabs/raw_trips\[2024-02-01\] failed: .*cabs_2024-02\.parquet.*missing column 'miles'"):
        materialize(project, settings, ["raw_trips"], SCORE)
    with pytest.raises(ValueError, match=r"deployment 'x': DEPLOY_ASSETS_DATASET: .*missing: dropoff_zone"):
        Settings(name="x", dataset={"file_prefix": "x_", "pickup_time": "a", "dropoff_time": "b", "pickup_zone": "c"})


def test_the_web_service_of_a_deployment_also_answers_under_its_prefix():
    """One process per deployment: `/deployments/<name>/predict` is how the load balancer reaches green's service."""
    from fastapi.testclient import TestClient

    from deploy_assets.core.features import clean_trips
    from deploy_assets.core.model import train_duration_model
    from deploy_assets.serving.model_source import StaticModel
    from deploy_assets.serving.web import create_app

    clean = clean_trips(generate_month(2024, 1, ROWS, seed=3), 2024, 1).table
    model = StaticModel(train_duration_model([clean], holdout_fraction=0.0).model, "4")
    ride = {"PULocationID": 132, "DOLocationID": 236, "trip_distance": 12.5, "ride_id": "r1"}
    with TestClient(create_app(model, deployment="green")) as client:
        default, prefixed = client.post("/predict", json=ride), client.post("/deployments/green/predict", json=ride)
        assert client.get("/deployments/green/ready").status_code == 200
        assert client.post("/deployments/yellow/predict", json=ride).status_code == 404
    assert default.status_code == prefixed.status_code == 200 and default.json() == prefixed.json()
    assert prefixed.json()["model_version"] == "4"
