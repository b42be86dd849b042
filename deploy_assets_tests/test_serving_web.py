"""The HTTP prediction service (deploy_assets.serving.web) and its model source (serving.model_source).

- Fast, in-process: `ChampionModel` against a fake registry (hot swap, failures, background refresh), the app's
  readiness and validation through an ASGI client, and a schemathesis fuzz run over the app's own OpenAPI.
- `servers`: uvicorn in a subprocess (`python -m deploy_assets.serving.web`) serving `models:/NAME@champion`
  from the session's MLflow tracking server (artifacts in moto S3), exercised over real HTTP: readiness before
  and after a champion exists, predictions equal to the registered model's, 422s, and an alias move picked up
  while requests keep flowing.

The helpers at the top are reused by test_serving_stream.py and test_serving_consistency.py.
"""

from __future__ import annotations

import math
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy_assets.core.features import FEATURE_COLUMNS, clean_trips, feature_arrays
from deploy_assets.core.generate import generate_month
from deploy_assets.core.model import ZonePairDurationRegressor, train_duration_model
from deploy_assets.serving.model_source import ChampionModel, ModelNotReady, StaticModel
from deploy_assets.serving.web import create_app
from deploy_assets_tests import servers

T = TypeVar("T")
MODEL_ROWS = 5_000


# --- helpers shared by the serving tests -----------------------------------------------------------------------------


def trained_model(year: int, month: int, seed: int) -> ZonePairDurationRegressor:
    clean = clean_trips(generate_month(year, month, rows=MODEL_ROWS, seed=seed), year, month).table
    return train_duration_model([clean]).model


def rides_table(year: int, month: int, rows: int, seed: int) -> pa.Table:
    """A cleaned month to score: ride_id + the three features (+ duration, pickup time)."""
    return clean_trips(generate_month(year, month, rows=rows, seed=seed), year, month).table


def ride_dicts(table: pa.Table) -> list[dict]:
    return [
        {"PULocationID": pu, "DOLocationID": do, "trip_distance": dist, "ride_id": ride_id}
        for ride_id, pu, do, dist in zip(
            table["ride_id"].to_pylist(),
            table["PULocationID"].to_pylist(),
            table["DOLocationID"].to_pylist(),
            table["trip_distance"].to_pylist(),
        )
    ]


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - "not yet"
            last_error = error
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout} s (last error: {last_error!r})")
        time.sleep(interval)


@pytest.fixture(scope="module")
def registry_env(mlflow_server: str, moto_s3: str) -> Iterator[str]:
    """Module-wide client environment for the session's MLflow server (what `mlflow_client_env` sets per test)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SECURITY_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        for name, value in {**servers.DUMMY_AWS_ENV, **servers.QUIET_ENV, "MLFLOW_S3_ENDPOINT_URL": moto_s3}.items():
            monkeypatch.setenv(name, value)
        yield mlflow_server


def make_registry(tracking_uri: str, prefix: str):
    from deploy_assets.resources.mlflow_registry import ModelRegistry

    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    return ModelRegistry(tracking_uri=tracking_uri, artifact_location=None).client(name)


def register(registry, model: ZonePairDurationRegressor, partition: str, promote: bool = False) -> str:
    from deploy_assets.core.model import TrainedModel

    trained = TrainedModel(model=model, holdout=pa.table({}), train_rows=MODEL_ROWS, holdout_rows=0, holdout_rmse=0.0, train_rmse=0.0)
    version = registry.log_and_register(trained, partition, [partition], {"smoothing": model.smoothing}).version
    if promote:
        registry.promote(version)
    return version


def serving_env(tracking_uri: str, moto_s3: str, model_name: str, refresh_seconds: float = 0.5, **extra: str) -> dict:
    return servers.child_env(
        {
            "MLFLOW_TRACKING_URI": tracking_uri,
            "DEPLOY_ASSETS_MODEL_NAME": model_name,
            "DEPLOY_ASSETS_MODEL_REFRESH_SECONDS": str(refresh_seconds),
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            **extra,
        },
        s3_endpoint=moto_s3,
    )


def start_web(log_dir: Path, env: dict, timeout: float = 60.0) -> tuple[servers.ManagedProcess, str]:
    """`python -m deploy_assets.serving.web` on a free loopback port; returns once GET /health answers 200."""

    def make(port: int) -> servers.ManagedProcess:
        return servers.ManagedProcess(
            f"serving-web-{port}",
            [sys.executable, "-m", "deploy_assets.serving.web", "--host", "127.0.0.1", "--port", str(port)],
            log_dir=log_dir,
            env=env,
            cwd=servers.REPO_ROOT,
        )

    def ready(process: servers.ManagedProcess, port: int) -> None:
        process.wait_until(
            lambda: servers._http_status(f"http://127.0.0.1:{port}/health", timeout=1.0) == 200,
            timeout,
            "200 from GET /health",
            interval=0.1,
        )

    process, port = servers._start_with_port_retry(make, ready)
    return process, f"http://127.0.0.1:{port}"


# --- ChampionModel against a fake registry ---------------------------------------------------------------------------


class FakeRegistry:
    model_name = "fake-model"
    champion_alias = "champion"

    def __init__(self, models: dict[str, object]):
        self.models = models
        self.alias: str | None = None
        self.fail: Exception | None = None
        self.load_delay = 0.0
        self.loads: list[str] = []

    def champion_version(self) -> str | None:
        if self.fail is not None:
            raise self.fail
        return self.alias

    def load(self, version: str):
        time.sleep(self.load_delay)
        self.loads.append(version)
        return self.models[version]


@pytest.fixture(scope="module")
def two_models() -> dict[str, ZonePairDurationRegressor]:
    return {"1": trained_model(2024, 1, seed=1), "2": trained_model(2024, 2, seed=2)}


def test_champion_model_loads_swaps_and_keeps_serving_on_failures(two_models):
    registry = FakeRegistry({**two_models, "3": object()})
    source = ChampionModel(registry, refresh_seconds=1.0)

    assert source.current is None
    with pytest.raises(ModelNotReady, match="fake-model@champion"):
        source.get()
    assert source.refresh() is False  # no alias yet

    registry.alias = "1"
    assert source.refresh() is True
    first = source.get()
    assert (first.version, first.model.native, first.model_uri) == ("1", two_models["1"], "models:/fake-model/1")
    assert source.refresh() is False and registry.loads == ["1"]  # unchanged alias: no reload

    registry.alias = "2"
    assert source.refresh() is True
    assert source.get().version == "2"
    # A request that picked up the old model before the swap still has a complete, working one.
    assert first.model.predict_arrays(np.array([1]), np.array([2]), np.array([3.0])).shape == (1,)

    registry.fail = RuntimeError("registry down")
    assert source.refresh_quietly() is False
    assert source.get().version == "2" and "registry down" in source.status()["last_error"]

    registry.fail, registry.alias = None, "3"  # an artifact that is no model never goes live
    assert source.refresh_quietly() is False
    last_error = source.status()["last_error"]
    assert source.get().version == "2" and "ModelContractError: model version 3 cannot be deployed" in last_error

    registry.alias = None  # alias deleted: keep serving what we have
    assert source.refresh_quietly() is False and source.get().version == "2"


def test_background_refresh_hot_swaps_while_readers_run(two_models):
    registry = FakeRegistry(two_models)
    registry.alias = "1"
    registry.load_delay = 0.05  # a slow load must not block readers
    source = ChampionModel(registry, refresh_seconds=0.05).start()
    try:
        assert source.wait_ready(10)
        seen: list[str] = []
        problems: list[str] = []
        stop = threading.Event()

        def read() -> None:
            while not stop.is_set():
                loaded = source.current
                if loaded is None:
                    problems.append("model disappeared")
                    continue
                loaded.model.predict_arrays(np.array([132]), np.array([236]), np.array([2.5]))
                seen.append(loaded.version)

        readers = [threading.Thread(target=read) for _ in range(3)]
        for reader in readers:
            reader.start()
        time.sleep(0.1)
        registry.alias = "2"
        wait_for(lambda: source.current.version == "2", 10, "swap to version 2")
        time.sleep(0.05)
        stop.set()
        for reader in readers:
            reader.join()
        assert not problems
        assert seen[0] == "1" and seen[-1] == "2" and set(seen) == {"1", "2"}
        assert source.status()["reloads"] == 2
    finally:
        source.stop()
    assert source._thread is None


def test_champion_model_from_env():
    registry = FakeRegistry({})
    environ = {
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:1",
        "DEPLOY_ASSETS_MODEL_NAME": "my-model",
        "DEPLOY_ASSETS_MODEL_REFRESH_SECONDS": "7.5",
    }
    source = ChampionModel.from_env(environ)
    assert (source.model_name, source.alias, source.refresh_seconds) == ("my-model", "champion", 7.5)
    assert source.registry.tracking_uri == "http://127.0.0.1:1"
    assert ChampionModel.from_env({}, registry=registry).refresh_seconds == 30.0
    with pytest.raises(ValueError):
        ChampionModel(registry, refresh_seconds=0)


# --- the app in-process --------------------------------------------------------------------------------------------


def test_ready_is_503_until_a_model_is_loaded_then_200(two_models):
    from fastapi.testclient import TestClient

    registry = FakeRegistry(two_models)
    source = ChampionModel(registry, refresh_seconds=0.05)
    ride = {"PULocationID": 132, "DOLocationID": 236, "trip_distance": 17.5, "ride_id": "r1"}
    with TestClient(create_app(source)) as client:  # lifespan starts the refresher
        assert client.get("/health").json() == {"status": "ok"}
        not_ready = client.get("/ready")
        assert not_ready.status_code == 503 and "fake-model@champion" in not_ready.json()["detail"]
        assert client.post("/predict", json=ride).status_code == 503
        assert client.post("/predict/batch", json={"rides": [ride]}).status_code == 503

        registry.alias = "1"
        wait_for(lambda: client.get("/ready").status_code == 200, 10, "ready")
        assert client.get("/ready").json()["model_version"] == "1"
        answer = client.post("/predict", json=ride).json()
        expected = two_models["1"].predict_arrays(np.array([132]), np.array([236]), np.array([17.5]))[0]
        assert answer == {"ride_id": "r1", "ride_duration": expected, "model_version": "1"}
    assert source._thread is None  # lifespan shutdown stopped it


INVALID_BODIES = [
    ("/predict", {"PULocationID": 0, "DOLocationID": 1, "trip_distance": 1.0}, ["PULocationID"], "greater than or equal to 1"),
    ("/predict", {"PULocationID": 1, "DOLocationID": 266, "trip_distance": 1.0}, ["DOLocationID"], "less than or equal to 265"),
    ("/predict", {"PULocationID": "132", "DOLocationID": 1, "trip_distance": 1.0}, ["PULocationID"], "valid integer"),
    ("/predict", {"PULocationID": 13.5, "DOLocationID": 1, "trip_distance": 1.0}, ["PULocationID"], "fractional part"),
    ("/predict", {"PULocationID": 1, "DOLocationID": 1, "trip_distance": -0.1}, ["trip_distance"], "greater than or equal to 0"),
    # What the batch's valid-ride rule drops is refused, naming the rule (the same function decides).
    ("/predict", {"PULocationID": 1, "DOLocationID": 1, "trip_distance": 100.5}, ["trip_distance"], "rule distance_above_100_mi"),
    (
        "/predict/batch",
        {"rides": [{"PULocationID": 1, "DOLocationID": 1, "trip_distance": 1.0}, {"PULocationID": 1, "DOLocationID": 1, "trip_distance": 3e5}]},
        ["rides", 1, "trip_distance"],
        "rule distance_above_100_mi",
    ),
    ("/predict", {"PULocationID": 1, "DOLocationID": 1, "trip_distance": "far"}, ["trip_distance"], "valid number"),
    ("/predict", {"PULocationID": 1, "DOLocationID": 1}, ["trip_distance"], "Field required"),
    ("/predict", {"PULocationID": 1, "trip_distance": 2.0}, ["DOLocationID"], "Field required"),
    ("/predict", {"PULocationID": 1, "DOLocationID": 1, "trip_distance": 1.0, "ride_id": "x" * 300}, ["ride_id"], "at most 256"),
    ("/predict", [1, 2, 3], [], "valid dictionary"),
    ("/predict/batch", {"rides": [{"PULocationID": 1, "DOLocationID": 1, "trip_distance": 1.0}] * 10_001}, ["rides"], "at most 10000"),
    (
        "/predict/batch",
        {"rides": [{"PULocationID": 1, "DOLocationID": 1, "trip_distance": 1.0}, {"PULocationID": 999, "DOLocationID": 1, "trip_distance": 1.0}]},
        ["rides", 1, "PULocationID"],
        "less than or equal to 265",
    ),
    ("/predict/batch", {"ride": []}, ["rides"], "Field required"),
]
RAW_INVALID_BODIES = [
    (b'{"PULocationID": 1, "DOLocationID": 1, "trip_distance": NaN}', ["trip_distance"], "finite number"),
    (b'{"PULocationID": 1, "DOLocationID": 1, "trip_distance": Infinity}', ["trip_distance"], "finite number"),
    (b'{"PULocationID": 1, "DOLocationID": 1, "trip_distance": 1e999}', ["trip_distance"], "finite number"),
    (b'{"PULocationID": 1, "DOLocationID": 1, "trip_distance": 1', [], "not valid JSON"),
]


def check_422(response: httpx.Response, loc: list, text: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert isinstance(body["message"], str) and text in body["message"] + str(body["detail"]), body
    assert any(item["loc"][1 : 1 + len(loc)] == loc for item in body["detail"]), body
    for item in body["detail"]:
        assert set(item) == {"loc", "msg", "type"}  # the input itself is never echoed


def test_validation_errors_in_process(two_models):
    from fastapi.testclient import TestClient

    with TestClient(create_app(StaticModel(two_models["1"], "1"))) as client:
        for path, body, loc, text in INVALID_BODIES:
            check_422(client.post(path, json=body), loc, text)
        for raw, loc, text in RAW_INVALID_BODIES:
            check_422(client.post("/predict", content=raw, headers={"content-type": "application/json"}), loc, text)
        too_big = client.post("/predict", content=b" " * (9 * 1024 * 1024), headers={"content-type": "application/json"})
        assert too_big.status_code == 413


def test_predict_needs_the_api_key_when_one_is_configured_and_health_stays_open(two_models):
    from fastapi.testclient import TestClient

    from deploy_assets.serving.web import API_KEY_HEADER
    from deploy_assets.settings import ServingSettings

    ride = {"PULocationID": 132, "DOLocationID": 236, "trip_distance": 17.5, "ride_id": "r1"}
    batch = {"rides": [ride]}
    assert ServingSettings.from_env({"DEPLOY_ASSETS_API_KEY": "k-123"}).api_key == "k-123"
    assert ServingSettings.from_env({}).api_key is None
    with TestClient(create_app(StaticModel(two_models["1"], "1"), api_key="k-123")) as client:
        for path, body in (("/predict", ride), ("/predict/batch", batch)):
            assert client.post(path, json=body).status_code == 401
            wrong = client.post(path, json=body, headers={API_KEY_HEADER: "k-124"})
            assert wrong.status_code == 401 and wrong.json() == {"detail": f"missing or wrong {API_KEY_HEADER}"}
            assert client.post(path, json=body, headers={API_KEY_HEADER: "k-123"}).status_code == 200
        assert client.get("/health").status_code == 200 and client.get("/ready").status_code == 200
        assert "401" in client.get("/openapi.json").json()["paths"]["/predict"]["post"]["responses"]
    with TestClient(create_app(StaticModel(two_models["1"], "1"))) as client:  # no key configured: open
        assert client.post("/predict", json=ride).status_code == 200
        assert client.post("/predict/batch", json=batch).status_code == 200


# --- schemathesis: fuzz the app through its own OpenAPI -----------------------------------------------------------


def _fuzz_app():
    model = ZonePairDurationRegressor().fit(
        np.array([[132, 236, 17.5], [236, 132, 1.2], [1, 1, 0.0]]), np.array([40.0, 8.0, 2.0])
    )
    return create_app(StaticModel(model, "fuzz"))


def _schema():
    import schemathesis

    return schemathesis.openapi.from_asgi("/openapi.json", _fuzz_app())


schema = _schema()
# One test per operation, by its label: `schema.parametrize()` gives every operation the same test id, and
# pytest-xdist then runs only one of them.
OPERATIONS = sorted(result.ok().label for result in schema.get_all_operations())


@pytest.mark.parametrize("label", OPERATIONS)
def test_fuzz_openapi_no_server_errors(label):
    """Every operation, positive and negative inputs: never a 5xx, every answer matches the documented schema,
    valid rides are accepted and schema-violating ones rejected."""
    operation = schema.find_operation_by_label(label)
    cases = st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in schema.config.generation.modes))

    @given(cases)
    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    def no_server_errors(case):
        response = case.call_and_validate()
        assert response.status_code < 500

    no_server_errors()


# --- a real uvicorn process serving the session's MLflow registry ------------------------------------------------


@dataclass
class WebService:
    base_url: str
    process: servers.ManagedProcess
    registry: object
    models: dict[str, ZonePairDurationRegressor] = field(default_factory=dict)
    before_champion: dict[str, int] = field(default_factory=dict)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30.0)


@pytest.fixture(scope="module")
def web_service(registry_env: str, moto_s3: str, tmp_path_factory) -> Iterator[WebService]:
    """uvicorn started *before* any model is registered under its (unique) name, then version 1 promoted."""
    registry = make_registry(registry_env, "serving-web")
    process, base_url = start_web(
        tmp_path_factory.mktemp("serving-web"), serving_env(registry_env, moto_s3, registry.model_name, refresh_seconds=0.3)
    )
    try:
        service = WebService(base_url=base_url, process=process, registry=registry)
        ride = {"PULocationID": 132, "DOLocationID": 236, "trip_distance": 17.5}
        with service.client() as client:
            service.before_champion = {
                "health": client.get("/health").status_code,
                "ready": client.get("/ready").status_code,
                "predict": client.post("/predict", json=ride).status_code,
            }
            model = trained_model(2024, 1, seed=11)
            version = register(registry, model, "2024-02-01", promote=True)
            service.models[version] = model
            wait_for(lambda: client.get("/ready").status_code == 200, 60, "GET /ready 200 after promotion", 0.2)
        yield service
    finally:
        process.stop()


@pytest.mark.servers
def test_health_and_ready_over_http(web_service: WebService):
    assert web_service.before_champion == {"health": 200, "ready": 503, "predict": 503}
    with web_service.client() as client:
        ready = client.get("/ready").json()
        assert ready["status"] == "ready" and ready["model_version"] in web_service.models
        assert client.get("/health").json() == {"status": "ok"}
        paths = client.get("/openapi.json").json()["paths"]
        assert {"/predict", "/predict/batch", "/health", "/ready"} <= set(paths)


@pytest.mark.servers
def test_predictions_over_http_equal_the_registered_model(web_service: WebService):
    table = rides_table(2024, 3, rows=3_000, seed=21)
    rides = ride_dicts(table)
    with web_service.client() as client:
        batch = client.post("/predict/batch", json={"rides": rides})
        assert batch.status_code == 200, batch.text
        version = batch.json()["model_version"]
        singles = [client.post("/predict", json=ride).json() for ride in rides[:200]]

    # The registered artifact, loaded back from MLflow, and the in-memory model that was logged agree exactly
    # with what the service answered (JSON floats round-trip exactly).
    loaded = web_service.registry.load(version)
    expected = loaded.predict(table.select(list(FEATURE_COLUMNS)).to_pandas())
    np.testing.assert_array_equal(expected, web_service.models[version].predict_arrays(*feature_arrays(table)))
    predictions = batch.json()["predictions"]
    assert [item["ride_id"] for item in predictions] == table["ride_id"].to_pylist()
    assert np.array_equal([item["ride_duration"] for item in predictions], expected)
    assert [item["ride_id"] for item in singles] == [ride["ride_id"] for ride in rides[:200]]
    assert {item["model_version"] for item in singles} == {version}
    assert np.array_equal([item["ride_duration"] for item in singles], expected[:200])


@pytest.mark.servers
def test_validation_errors_over_http(web_service: WebService):
    with web_service.client() as client:
        for path, body, loc, text in INVALID_BODIES:
            check_422(client.post(path, json=body), loc, text)
        for raw, loc, text in RAW_INVALID_BODIES:
            check_422(client.post("/predict", content=raw, headers={"content-type": "application/json"}), loc, text)


@pytest.mark.servers
def test_alias_move_is_picked_up_without_failed_requests(web_service: WebService):
    with web_service.client() as client:
        old_version = client.get("/ready").json()["model_version"]
    new_model = trained_model(2024, 2, seed=12)
    ride = {"PULocationID": 132, "DOLocationID": 236, "trip_distance": 2.5, "ride_id": "alias-move"}
    arrays = (np.array([132]), np.array([236]), np.array([2.5]))
    assert new_model.predict_arrays(*arrays)[0] != web_service.models[old_version].predict_arrays(*arrays)[0]
    new_version = register(web_service.registry, new_model, "2024-03-01")
    web_service.models[new_version] = new_model

    answers: list[tuple[str, float]] = []
    failures: list[str] = []
    stop = threading.Event()

    def send_requests() -> None:
        with web_service.client() as client:
            while not stop.is_set():
                try:
                    response = client.post("/predict", json=ride)
                except httpx.HTTPError as error:
                    failures.append(repr(error))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
                else:
                    body = response.json()
                    answers.append((body["model_version"], body["ride_duration"]))

    loop = threading.Thread(target=send_requests)
    loop.start()
    try:
        wait_for(lambda: len(answers) >= 20, 30, "answers before the move")
        web_service.registry.promote(new_version)
        wait_for(lambda: answers and answers[-1][0] == new_version, 30, f"answers from version {new_version}")
        settled = len(answers)
        wait_for(lambda: len(answers) >= settled + 20, 30, "answers after the move")
    finally:
        stop.set()
        loop.join(30)

    assert not failures, failures[:5]
    versions = [version for version, _ in answers]
    switch = versions.index(new_version)
    assert set(versions[:switch]) == {old_version} and set(versions[switch:]) == {new_version}  # one clean switch
    for version, duration in answers:
        assert duration == web_service.models[version].predict_arrays(*arrays)[0]
    assert not math.isnan(answers[-1][1])
    with web_service.client() as client:
        assert client.get("/ready").json()["model_version"] == new_version
