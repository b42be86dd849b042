"""One model version, four scoring paths, identical predictions.

The same cleaned month is scored by
- the batch path: `core.scoring.score_trips` with the model loaded by version, as the `trip_predictions` asset does;
- the web service: the FastAPI app (`/predict/batch` and `/predict`) over its own `ChampionModel`;
- the stream consumer: ride events through moto's Kinesis, scored by `StreamConsumer` over another `ChampionModel`;
- the Lambda handler (`StreamHandler`, called as Lambda calls it) writing to moto's Kinesis;
each loading `models:/NAME@champion` from the session's MLflow server independently. Predictions must be equal
bit for bit (JSON floats round-trip exactly), every path must report the same model version, and every answer is
within the output policy's declared range: for the built-in model, and for the zoomcamp notebook's pipeline, which
extrapolates long rides past it (clipped the same way on every path).
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from deploy_assets.core.scoring import score_trips
from deploy_assets.serving import stream
from deploy_assets.serving.model_source import ChampionModel
from deploy_assets.serving.web import create_app
from deploy_assets_tests.test_serving_stream import kinesis, put_events, read_stream, streams  # noqa: F401 - fixtures
from deploy_assets_tests.test_serving_web import (  # noqa: F401 - registry_env is a fixture
    make_registry,
    register,
    registry_env,
    ride_dicts,
    rides_table,
    trained_model,
    wait_for,
)

pytestmark = [pytest.mark.servers, pytest.mark.timeout(300)]


def zoomcamp_notebook_model():
    """DictVectorizer + LinearRegression on PU_DO + trip_distance, fitted on 100,000 generated rides as the
    zoomcamp notebook fits it."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    from deploy_assets_tests.test_deploy_any_model import zoomcamp_dicts

    january = rides_table(2024, 1, rows=100_000, seed=41)
    return make_pipeline(DictVectorizer(), LinearRegression()).fit(zoomcamp_dicts(january), january["duration"].to_numpy())


def with_long_rides(month: pa.Table, count: int = 20) -> pa.Table:
    """`count` rides made 60–78 miles long (valid rides: ≤ 100 miles), beyond what a linear model saw."""
    distance = month["trip_distance"].to_numpy().copy()
    distance[np.arange(count) * (month.num_rows // count)] = np.linspace(60.0, 78.0, count)
    return month.set_column(month.schema.get_field_index("trip_distance"), "trip_distance", pa.array(distance))


@pytest.mark.parametrize("kind", ["builtin", "zoomcamp_notebook"])
def test_batch_web_stream_and_lambda_predictions_are_identical_and_in_range(kind, registry_env, kinesis, streams, tmp_path):  # noqa: F811
    from fastapi.testclient import TestClient

    from deploy_assets.core.contract import OUTPUT_POLICY
    from deploy_assets.core.model import TrainedModel
    from deploy_assets_tests.test_deploy_any_model import lambda_event

    registry = make_registry(registry_env, "serving-consistency")
    if kind == "builtin":
        version = register(registry, trained_model(2024, 1, seed=41), "2024-02-01", promote=True)
    else:
        trained = TrainedModel(zoomcamp_notebook_model(), None, 100_000, 0, float("nan"), float("nan"))
        version = registry.log_and_register(trained, "2024-02-01", ["2024-01-01"], {"estimator": "zoomcamp"}).version
        registry.promote(version)
    month = with_long_rides(rides_table(2024, 2, rows=2_000, seed=42))
    ride_ids = month["ride_id"].to_pylist()
    rides = ride_dicts(month)

    # Batch: the model of that version, scored the way the batch asset scores a month.
    batch = score_trips(month, registry.load(version), version)
    assert set(batch["model_version"].to_pylist()) == {version}
    batch_predictions = dict(zip(batch["ride_id"].to_pylist(), batch["predicted_duration"].to_pylist()))
    adjusted = sum(batch["prediction_adjusted"].to_pylist())
    assert adjusted == 0 if kind == "builtin" else adjusted >= 10  # the linear model overshoots 180 min on long rides

    # Web: the app's own champion source.
    web_source = ChampionModel(tracking_uri=registry_env, model_name=registry.model_name, refresh_seconds=60)
    with TestClient(create_app(web_source)) as client:
        wait_for(lambda: client.get("/ready").status_code == 200, 60, "web app ready")
        answer = client.post("/predict/batch", json={"rides": rides}).json()
        singles = [client.post("/predict", json=ride).json() for ride in rides[:100]]
    assert answer["model_version"] == version and {item["model_version"] for item in singles} == {version}
    web_predictions = {item["ride_id"]: item["ride_duration"] for item in answer["predictions"]}
    single_predictions = {item["ride_id"]: item["ride_duration"] for item in singles}

    # Stream: zoomcamp-shaped events through Kinesis, scored by the consumer with its own champion source.
    source, sink = streams(2), streams(2)
    put_events(
        kinesis,
        source,
        [
            json.dumps({"ride": {k: ride[k] for k in ("PULocationID", "DOLocationID", "trip_distance")}, "ride_id": ride["ride_id"]}).encode()
            for ride in rides
        ],
    )
    stream_source = ChampionModel(tracking_uri=registry_env, model_name=registry.model_name, refresh_seconds=60)
    stream_source.refresh()
    consumer = stream.StreamConsumer(
        kinesis=kinesis,
        input_stream=source,
        output=stream.KinesisWriter(kinesis, sink),
        model_source=stream_source,
        checkpoints=stream.FileCheckpointStore(tmp_path / "cp.json", source),
        batch_size=500,
        poll_interval=0.05,
    )
    consumer.run(until=lambda s: s.records_read >= len(rides), idle_timeout=30)
    outputs = read_stream(kinesis, sink)
    assert {item["version"] for item in outputs} == {version}
    stream_predictions = {item["prediction"]["ride_id"]: item["prediction"]["ride_duration"] for item in outputs}
    assert len(outputs) == len(stream_predictions) == len(rides)

    # Lambda: the handler as Lambda calls it, over its own champion source, writing to Kinesis.
    lambda_sink = streams(1)
    lambda_source = ChampionModel(tracking_uri=registry_env, model_name=registry.model_name, refresh_seconds=60)
    handler = stream.StreamHandler(lambda_source, stream.KinesisWriter(kinesis, lambda_sink), stream.LogDeadLetter())
    assert handler(lambda_event(rides), None) == {"batchItemFailures": []}
    lambda_outputs = read_stream(kinesis, lambda_sink)
    assert {item["version"] for item in lambda_outputs} == {version}
    lambda_predictions = {item["prediction"]["ride_id"]: item["prediction"]["ride_duration"] for item in lambda_outputs}

    expected = np.array([batch_predictions[ride_id] for ride_id in ride_ids])
    assert np.array_equal(expected, [web_predictions[ride_id] for ride_id in ride_ids])
    assert np.array_equal(expected, [stream_predictions[ride_id] for ride_id in ride_ids])
    assert np.array_equal(expected, [lambda_predictions[ride_id] for ride_id in ride_ids])
    assert np.array_equal(expected[:100], [single_predictions[ride_id] for ride_id in ride_ids[:100]])
    assert OUTPUT_POLICY.min_minutes <= expected.min() and expected.max() <= OUTPUT_POLICY.max_minutes
