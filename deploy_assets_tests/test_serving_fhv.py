"""Serving a deployment whose rides have no distance (FHV, `missing_zones: keep`): its web service and stream
consumer take its dataset's rides, zone -1 (unknown) included, and answer what batch scoring answers; a yellow
deployment's request is unchanged. Fast, in process."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline

from deploy_assets.core.contract import as_deployable
from deploy_assets.core.datasets import dataset_of
from deploy_assets.core.model import ZonePairDurationRegressor
from deploy_assets.serving import stream
from deploy_assets.serving.model_source import ChampionModel, StaticModel
from deploy_assets.serving.schemas import Ride, ride_model
from deploy_assets.serving.web import app_for, create_app
from deploy_assets.settings import ServingSettings
from deploy_assets_tests.stream_records import CapturingOutput, records

FHV = dataset_of("fhv")
FHV_ENV = {"DEPLOY_ASSETS_DEPLOYMENT_NAME": "fhv", "DEPLOY_ASSETS_DATASET": "fhv", "DEPLOY_ASSETS_MISSING_ZONES": "keep"}
FHV_RIDES = [{"PULocationID": 132, "DOLocationID": -1}, {"PULocationID": 132, "DOLocationID": 236}]
DURATIONS = np.array([30.0, 40.0, 5.0])


def zone_models() -> dict:
    """Models of the zones alone: the built-in one, and the zoomcamp's DictVectorizer + LinearRegression."""
    zones = np.array([[132, -1], [132, 236], [1, 1]])
    records = [{"PUlocationID": str(pu), "DOlocationID": str(do)} for pu, do in zones]
    return {
        "builtin": ZonePairDurationRegressor(uses_distance=False).fit(zones, DURATIONS),
        "zoomcamp": make_pipeline(DictVectorizer(), LinearRegression()).fit(records, DURATIONS),
    }


def batch_minutes(model, rides: list[dict]) -> list[float]:
    """What batch scoring answers for these rides: `DeployableModel.predict_rides` on their columns."""
    columns = {name: np.array([ride[name] for ride in rides], dtype=np.int64) for name in FHV.features}
    return as_deployable(model).predict_rides(columns).tolist()


@pytest.mark.parametrize("kind", ["builtin", "zoomcamp"])
def test_an_fhv_web_service_answers_rides_without_a_distance_as_batch_does(kind):
    model = zone_models()[kind]
    assert set(as_deployable(model).contract.ride_columns) == set(FHV.features)  # the zones alone
    expected = batch_minutes(model, FHV_RIDES)
    with TestClient(app_for(StaticModel(model, "7"), ServingSettings.from_env(FHV_ENV))) as client:
        for prefix in ("", "/deployments/fhv"):
            answer = client.post(f"{prefix}/predict", json={**FHV_RIDES[0], "ride_id": "r1"})
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"ride_id": "r1", "ride_duration": expected[0], "model_version": "7"}
        batch = client.post("/predict/batch", json={"rides": FHV_RIDES})
        assert batch.status_code == 200, batch.text
        assert [item["ride_duration"] for item in batch.json()["predictions"]] == expected

        for zone, message in ((0, "TLC zone id or -1"), (-2, "greater than or equal to -1"), (266, "less than")):
            refused = client.post("/predict", json={"PULocationID": zone, "DOLocationID": 1})
            assert refused.status_code == 422 and message in refused.text, refused.text


def test_an_fhv_openapi_has_no_distance_and_admits_the_unknown_zone():
    app = app_for(StaticModel(zone_models()["builtin"], "7"), ServingSettings.from_env(FHV_ENV))
    schema = app.openapi()
    assert "trip_distance" not in json.dumps(schema)
    ride = schema["components"]["schemas"]["RideWithoutDistanceWithUnknownZones"]
    assert ride["required"] == ["PULocationID", "DOLocationID"]
    assert (ride["properties"]["PULocationID"]["minimum"], ride["properties"]["PULocationID"]["not"]) == (-1, {"const": 0})
    body = schema["paths"]["/predict/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/RideWithoutDistanceWithUnknownZonesBatch"}


def test_a_yellow_web_service_still_requires_a_distance_and_a_known_zone():
    model = ZonePairDurationRegressor().fit(np.array([[132, 236, 17.5], [236, 132, 1.2], [1, 1, 0.0]]), DURATIONS)
    yellow = app_for(StaticModel(model, "1"), ServingSettings.from_env({}))
    assert yellow.openapi() == create_app(StaticModel(model, "1")).openapi()
    assert ride_model(dataset_of("yellow").features) is Ride and ride_model(dataset_of("fhvhv").features) is Ride
    with TestClient(yellow) as client:
        missing = client.post("/predict", json=FHV_RIDES[1])
        assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "trip_distance"]
        unknown = client.post("/predict", json={**FHV_RIDES[0], "trip_distance": 2.0})
        assert unknown.status_code == 422 and "greater than or equal to 1" in unknown.text
        assert client.post("/predict", json={**FHV_RIDES[1], "trip_distance": 2.0}).status_code == 200


def test_the_stream_scores_an_fhv_event_without_a_distance_as_batch_does():
    model = zone_models()["zoomcamp"]
    loaded = StaticModel(model, "3").current
    settings = ServingSettings.from_env(FHV_ENV)
    events = [{"ride": ride, "ride_id": i} for i, ride in enumerate(FHV_RIDES)] + [{"ride_id": 9}]
    output = CapturingOutput()
    outcome = stream.handle_records(
        records(events), loaded, output, stream.LogDeadLetter(),
        features=settings.ride_dataset.features, rules=settings.ride_rules,
    )
    assert [event["prediction"]["ride_duration"] for event in output.events] == batch_minutes(model, FHV_RIDES)
    assert [(letter.reason, letter.detail) for letter in outcome.dead_letters] == [
        ("missing_ride", 'expected a "ride" object with PULocationID, DOLocationID')
    ]

    # A yellow deployment's consumer dead-letters the same event: its rides have a distance.
    yellow = stream.handle_records(records(events[:1]), loaded, CapturingOutput(), stream.LogDeadLetter())
    (letter,) = yellow.dead_letters
    assert letter.reason == "invalid_ride" and "ride.trip_distance: Field required" in letter.detail


class OneVersionRegistry:
    model_name = "fhv-trip-duration"

    def __init__(self, model):
        self.model = model

    def champion_version(self) -> str:
        return "1"

    def load(self, version: str):
        return self.model


def test_the_lambda_takes_its_rides_from_the_settings_and_loads_no_model_reading_a_distance():
    handler = stream.StreamHandler.from_env(
        {**FHV_ENV, "DEPLOY_ASSETS_RIDE_PREDICTIONS_STREAM": "ride_predictions"}, kinesis=object()
    )
    assert (handler.features, handler.rules.keep_missing_zones) == (FHV.features, True)
    assert handler.model_source.ride_columns == FHV.model_columns

    reads_distance = ZonePairDurationRegressor().fit(np.array([[132, 236, 17.5], [1, 1, 0.5]]), DURATIONS[:2])
    source = ChampionModel(OneVersionRegistry(reads_distance), ride_columns=FHV.model_columns)
    assert not source.refresh_quietly() and source.current is None
    assert "'trip_distance'" in source.last_error
    assert ChampionModel(OneVersionRegistry(zone_models()["builtin"]), ride_columns=FHV.model_columns).refresh()


def test_serving_settings_refuse_an_unknown_dataset_or_missing_zone_rule():
    with pytest.raises(ValueError, match=r"DEPLOY_ASSETS_DATASET='blue': expected one of yellow, green, fhv, fhvhv"):
        ServingSettings.from_env({"DEPLOY_ASSETS_DATASET": "blue"})
    with pytest.raises(ValueError, match=r"DEPLOY_ASSETS_MISSING_ZONES='fill': expected 'drop' or 'keep'"):
        ServingSettings.from_env({"DEPLOY_ASSETS_MISSING_ZONES": "fill"})
