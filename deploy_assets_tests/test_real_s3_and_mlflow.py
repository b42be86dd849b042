"""The project's storage and registry resources against real servers: moto's S3 server and an MLflow tracking
server whose artifacts live in that S3 (processes started by deploy_assets_tests.servers, one per session).

Credentials are dummy values in environment variables only; nothing here talks to AWS.
"""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deploy_assets.core.features import FEATURE_COLUMNS, clean_trips
from deploy_assets.core.generate import generate_month, write_month
from deploy_assets.core.model import ZonePairDurationRegressor, train_duration_model
from deploy_assets.core.schema import REQUIRED_COLUMNS, MissingTripData, tlc_file_name
from deploy_assets.resources.mlflow_registry import ModelRegistry
from deploy_assets.resources.landing import LandingZone
from deploy_assets.resources.predictions_store import PredictionStore

pytestmark = [pytest.mark.servers, pytest.mark.timeout(300)]

ROWS = 5_000


@pytest.fixture(scope="module")
def january() -> pa.Table:
    return generate_month(2024, 1, rows=ROWS, seed=7)


def _keys(client, bucket: str, prefix: str = "") -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


# --- (a) landing zone ----------------------------------------------------------------------------------------------


def test_write_month_and_landing_zone_with_endpoint_from_environment(
    moto_s3, s3_buckets, monkeypatch, january
):
    """AWS_ENDPOINT_URL alone is enough for s3fs (botocore reads it), for both write_month and LandingZone."""
    client = s3_buckets("landing-env")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3)

    uri = write_month(january, "s3://landing-env/tlc", 2024, 1)

    assert uri == f"s3://landing-env/tlc/{tlc_file_name(2024, 1)}"
    assert _keys(client, "landing-env") == [f"tlc/{tlc_file_name(2024, 1)}"]
    for landing in (
        LandingZone(uri="s3://landing-env/tlc"),  # endpoint from the environment only
        LandingZone(uri="s3://landing-env/tlc", s3_endpoint_url=moto_s3),  # explicit (and environment)
    ):
        table = landing.read_month(2024, 1)
        assert table.column_names == list(REQUIRED_COLUMNS)
        assert table.equals(january.select(list(REQUIRED_COLUMNS)))


def test_landing_zone_with_explicit_endpoint_only(moto_s3, s3_buckets, january):
    """No AWS_ENDPOINT_URL in the environment: LandingZone's `s3_endpoint_url` reaches moto on its own."""
    client = s3_buckets("landing")
    client.put_object(Bucket="landing", Key=tlc_file_name(2024, 1), Body=_parquet_bytes(january))
    landing = LandingZone(uri="s3://landing", s3_endpoint_url=moto_s3)

    table = landing.read_month(2024, 1)

    assert table.equals(january.select(list(REQUIRED_COLUMNS)))
    assert str(landing.month_path(2024, 1)) == f"s3://landing/{tlc_file_name(2024, 1)}"
    with pytest.raises(MissingTripData, match="2024-02"):
        landing.read_month(2024, 2)


def test_landing_listing_and_sensor_on_s3(moto_s3, s3_buckets, january, tmp_path):
    """The whole prefix is listed (nested keys named relative to it, objects beside it not at all), the ETag is
    S3's, and the yellow deployment's landing sensor reports months and skips odd keys over it, as over a local
    folder."""
    import hashlib

    import dagster as dg

    from deploy_assets.assets.monthly import Deployment
    from deploy_assets.deployment import standalone
    from deploy_assets.settings import Settings

    # The deployment's landing zone on the S3 prefix: its sensor closes over it (no landing resource any more).
    settings = Settings(landing_uri="s3://landing-list/tlc", aws_endpoint_url=moto_s3)
    deployment = Deployment(settings)
    landing_sensor = standalone(settings).resolve_sensor_def(deployment.named("landing_sensor"))

    client = s3_buckets("landing-list")
    data = _parquet_bytes(january)
    keys = {
        f"tlc/{tlc_file_name(2024, 1)}": data,
        "tlc/notes 2024-01-01T00:00:00.txt": b"notes",
        "tlc/données_2024–05.parquet": b"x",
        f"tlc/archive/{tlc_file_name(2024, 2)}": b"old",
        f"tlc-other/{tlc_file_name(2024, 3)}": b"beside the prefix",
        tlc_file_name(2024, 4): b"at the bucket root",
    }
    for key, body in keys.items():
        client.put_object(Bucket="landing-list", Key=key, Body=body)
    landing = deployment.landing
    assert (landing.uri, landing.s3_endpoint_url) == ("s3://landing-list/tlc", moto_s3)

    listed = {f.name: f for f in landing.list_files()}
    assert set(listed) == {
        tlc_file_name(2024, 1), "notes 2024-01-01T00:00:00.txt", "données_2024–05.parquet",
        f"archive/{tlc_file_name(2024, 2)}",
    }
    month = listed[tlc_file_name(2024, 1)]
    assert month.etag == hashlib.md5(data, usedforsecurity=False).hexdigest()  # a single PUT's ETag is its MD5
    assert month.uri == f"s3://landing-list/tlc/{tlc_file_name(2024, 1)}" and month.size == len(data)

    with dg.instance_for_test() as instance:
        def tick(cursor):
            return landing_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))

        first = tick(None)
        assert [(e.partition, e.tags["dagster/data_version"]) for e in first.asset_events] == [("2024-01-01", month.etag)]
        assert {e.asset_key for e in first.asset_events} == {dg.AssetKey(["yellow", "landing_file"])}
        for event in first.asset_events:
            instance.report_runless_asset_event(event)
        # The same bytes uploaded again: same ETag, nothing; other bytes: one observation.
        client.put_object(Bucket="landing-list", Key=f"tlc/{tlc_file_name(2024, 1)}", Body=data)
        same = tick(first.cursor)
        assert same.asset_events == []
        other = _parquet_bytes(generate_month(2024, 1, rows=ROWS, seed=8))
        client.put_object(Bucket="landing-list", Key=f"tlc/{tlc_file_name(2024, 1)}", Body=other)
        changed = tick(same.cursor)
        assert [(e.partition, e.tags["dagster/data_version"]) for e in changed.asset_events] == [
            ("2024-01-01", hashlib.md5(other, usedforsecurity=False).hexdigest())
        ]


# --- (b) prediction store ------------------------------------------------------------------------------------------


def _predictions(n: int, offset: float) -> pa.Table:
    return pa.table(
        {
            "ride_id": pa.array([f"2024/02_{i}" for i in range(n)]),
            "predicted_duration": pa.array(np.arange(n, dtype=np.float64) + offset),
        }
    )


@pytest.mark.parametrize("prefix", ["", "runs/v1"])
def test_prediction_store_writes_one_object_per_month_and_replaces_it(moto_s3, s3_buckets, prefix):
    client = s3_buckets("predictions")
    uri = f"s3://predictions/{prefix}".rstrip("/")
    expected_key = f"{prefix}/year=2024/month=02/predictions.parquet".lstrip("/")
    store = PredictionStore(uri=uri, s3_endpoint_url=moto_s3)
    first, second = _predictions(100, 0.0), _predictions(40, 1000.0)

    written = store.write_month(2024, 2, first)

    assert written == f"s3://predictions/{expected_key}"
    assert _keys(client, "predictions") == [expected_key]
    assert store.read_month(2024, 2).equals(first)

    store.write_month(2024, 2, second)

    assert _keys(client, "predictions") == [expected_key]  # replaced, no temporary object left behind
    assert store.read_month(2024, 2).equals(second)
    assert store.read_month(2024, 2, columns=["predicted_duration"]).column_names == ["predicted_duration"]
    body = client.get_object(Bucket="predictions", Key=expected_key)["Body"].read()
    assert pq.read_table(pa.BufferReader(body)).equals(second)


# --- (c) MLflow registry on a tracking server with S3 artifacts --------------------------------------------------


def _trained(year: int, month: int, seed: int):
    clean = clean_trips(generate_month(year, month, rows=ROWS, seed=seed), year, month).table
    return train_duration_model([clean]), clean


def test_model_registry_against_tracking_server_with_s3_artifacts(mlflow_client_env, s3_client):
    """log_and_register twice, version_for_partition, promote/champion_version, load: through the REST API of a
    real tracking server (which, unlike a local sqlite store, validates a version's source against its model_id)."""
    tracking_uri = mlflow_client_env
    suffix = uuid.uuid4().hex[:8]
    registry = ModelRegistry(
        tracking_uri=tracking_uri,
        artifact_location=None,  # the server's --default-artifact-root (s3://mlflow/artifacts) decides
    ).client(f"trip-duration-{suffix}")  # the model, logged in the experiment of the same name
    assert registry.experiment_name == registry.model_name == f"trip-duration-{suffix}"
    january_model, january_clean = _trained(2024, 1, seed=1)
    february_model, _ = _trained(2024, 2, seed=2)

    assert registry.champion_version() is None
    assert registry.version_for_partition("2024-02-01") is None

    first = registry.log_and_register(january_model, "2024-02-01", ["2024-01-01"], {"smoothing": 5.0})
    second = registry.log_and_register(february_model, "2024-03-01", ["2024-02-01"], {"smoothing": 5.0})

    assert (first.version, second.version) == ("1", "2")
    assert registry.version_for_partition("2024-02-01") == "1"
    assert registry.version_for_partition("2024-03-01") == "2"
    assert registry.version_for_partition("2023-01-01") is None
    assert registry.champion_version() is None

    registry.promote(first.version)
    assert registry.champion_version() == "1"
    registry.promote(second.version)
    assert registry.champion_version() == "2"

    features = january_clean.select(list(FEATURE_COLUMNS)).to_pandas()
    for registered, trained in ((first, january_model), (second, february_model)):
        loaded = registry.load(registered.version)
        assert isinstance(loaded, ZonePairDurationRegressor)
        np.testing.assert_array_equal(loaded.predict(features), trained.model.predict(features))
    example = pd.DataFrame({"PULocationID": [132], "DOLocationID": [236], "trip_distance": [17.5]})
    assert registry.load("1").predict(example) == pytest.approx(january_model.model.predict(example))

    # Registered at most once per (month, training data): the look-up a retried run does before registering.
    third = registry.log_and_register(
        january_model, "2024-04-01", ["2024-03-01"], {"smoothing": 5.0}, training_data_version="0123456789abcdef"
    )
    assert registry.find_version("2024-04-01", "0123456789abcdef") == third.version == "3"
    assert registry.find_version("2024-04-01", "fedcba9876543210") is None
    assert registry.find_version("2024-03-01", "0123456789abcdef") is None

    # Promotion never moves @champion back in time, unless asked to (a deliberate roll-back).
    from deploy_assets.resources.mlflow_registry import PromotionRefused

    with pytest.raises(PromotionRefused, match="stays on version 2"):
        registry.promote(first.version)
    assert registry.champion_version() == "2"
    registry.promote(first.version, allow_backwards=True)
    assert registry.champion_version() == "1"

    # The artifacts are in moto's bucket, under the experiment's folder of the server's artifact root.
    from mlflow import MlflowClient

    experiment = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri).get_experiment_by_name(registry.experiment_name)
    assert experiment.artifact_location == f"s3://mlflow/artifacts/{experiment.experiment_id}"
    keys = _keys(s3_client, "mlflow", prefix=f"artifacts/{experiment.experiment_id}/")
    assert sum(key.endswith("/MLmodel") for key in keys) == 3, keys
    assert sum(key.endswith(".skops") for key in keys) == 3, keys
