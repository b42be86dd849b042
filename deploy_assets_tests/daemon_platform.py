"""The one harness of the daemon tests: a real dagster-daemon (with its code server) over its own data location,
MLflow store and DuckDB file, a webserver over the same instance when a test needs the UI's GraphQL, and bounded
waits on real events (never fixed sleeps as proof). Every test that runs the daemon builds on it (local folders
here; `s3_daemon.S3Platform` points the same platform at S3 and an MLflow server); they run in parallel workers.

The daemon loads the real code location with the `yellow` deployment only (`DEPLOY_ASSETS_DEPLOYMENTS`, unless
`extra_env` says otherwise): the months landed are yellow's (its model `DEPLOY_ASSETS_MODEL_NAME`, its table
`trip_predictions`, its predictions under `<data>/predictions/yellow`, its assets `yellow/...`, its automation
sensor `yellow_automation_sensor`). With `green` loaded too, `deployment="green"` reads green's instead (its model
`green-trip-duration`, its table `green_trip_predictions`)."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from deploy_assets.core.datasets import DATASETS
from deploy_assets.core.generate import generate_month, write_month
from deploy_assets.declared import deployment_settings
from deploy_assets.partitions import year_month
from deploy_assets.resources.predictions_store import PredictionStore
from deploy_assets_tests import servers
from deploy_assets_tests.instance_records import DEPLOYMENT, asset_key, automation_ticks, busy

ROWS = 3_000
INTERVAL = 2
MONTHS = [f"2024-{m:02d}-01" for m in range(1, 7)]
STRAY_NAMES = [
    "notes 2024-01-01T00:00:00.txt",
    "yellow_tripdata_2024-07.parquet.tmp",
    ".yellow_tripdata_2024-08.parquet.uploading",
    "archive/yellow_tripdata_2024-03.parquet",
    "données_2024–05.parquet",
    "yellow_tripdata_1999-01.parquet",
]
CONVERGE_TIMEOUT = 420.0
TABLE = "trip_predictions"  # yellow's table (its defs.yaml)


def model_and_table(deployment: str, yellow_model: str) -> tuple[str, str]:
    """The deployment's registered model and SQL table: yellow's model is the test's own (`DEPLOY_ASSETS_MODEL_NAME`,
    a registry shared by tests); any other deployment's names come from its YAML or its name, never from the
    environment, so they are the same in this process as in the daemon's."""
    if deployment == DEPLOYMENT:
        return yellow_model, TABLE
    settings = deployment_settings(deployment)
    return settings.registered_model, settings.table


class Platform:
    """One daemon over one isolated project (local landing folder, sqlite MLflow store, DuckDB)."""

    def __init__(self, root: Path, extra_env: dict[str, str] | None = None):
        self.root = root
        self.data = root / "data"
        self.model_name = f"trip-duration-{root.name}"
        self.env = {
            "DEPLOY_ASSETS_DATA_URI": str(self.data),
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
            "DEPLOY_ASSETS_PREDICTIONS_DB": f"duckdb:///{root / 'predictions.duckdb'}",
            "DEPLOY_ASSETS_MODEL_NAME": self.model_name,
            "DEPLOY_ASSETS_FIRST_MONTH": "2024-01-01",
            "DEPLOY_ASSETS_SENSOR_INTERVAL_SECONDS": str(INTERVAL),
            "DEPLOY_ASSETS_DEPLOYMENTS": DEPLOYMENT,
            **(extra_env or {}),
        }
        (root / "mlflow").mkdir(parents=True, exist_ok=True)
        self.home = servers.prepare_dagster_home(root / "dagster_home")
        self.daemon: servers.ManagedProcess | None = None
        self.webserver: servers.ManagedProcess | None = None
        self.port: int | None = None
        self._instance: dg.DagsterInstance | None = None

    # --- processes ---
    @property
    def process_env(self) -> dict[str, str]:
        """What the daemon, the webserver and the `dagster` CLI of this platform share: its settings and instance."""
        return servers.child_env({**self.env, "DAGSTER_HOME": str(self.home)})

    def start(self) -> Platform:
        self.daemon = servers.start_dagster_daemon(self.home, env=self.env, timeout=180)
        return self

    def start_webserver(self) -> int:
        """A webserver over the platform's instance (start the daemon first: it creates the storage); not waited
        for (`wait_webserver`), so it can start while other things do. Returns its port."""
        self.webserver, self.port = servers.start_dagster_webserver(self.process_env, self.root / "webserver")
        return self.port

    def wait_webserver(self) -> None:
        servers.wait_dagster_webserver(self.webserver, self.port)

    def graphql(self, query: str, variables: dict, timeout: float = 60.0) -> dict:
        """A GraphQL request to the webserver, as the UI sends it; fails the test with the servers' logs on errors."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql",
            data=json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback only
                answer = json.load(response)
        except urllib.error.HTTPError as error:
            pytest.fail(f"GraphQL HTTP {error.code}: {error.read().decode(errors='replace')[-3000:]}\n{self.log_tail()}")
        if answer.get("errors"):
            pytest.fail(f"GraphQL errors: {answer['errors']}\n{self.log_tail()}")
        return answer["data"]

    def log_text(self) -> str:
        return self.daemon.log_text() if self.daemon else ""

    def log_tail(self, lines: int = 80) -> str:
        """The daemon's (and its code server's) and the webserver's last log lines."""
        return "\n".join(p.log_tail(lines) for p in (self.daemon, self.webserver) if p is not None)

    def stop(self) -> None:
        """Stop the webserver and the daemon; fail if any of their processes survives."""
        for attribute in ("webserver", "daemon"):
            process = getattr(self, attribute)
            if process is not None:
                process.stop()
                setattr(self, attribute, None)

    @property
    def instance(self) -> dg.DagsterInstance:
        if self._instance is None:
            self._instance = dg.DagsterInstance.from_config(str(self.home))
        return self._instance

    # --- inputs ---
    @property
    def landing(self) -> Path:
        return self.data / "landing"

    def land(self, partition_key: str, seed: int = 0, deployment: str = DEPLOYMENT) -> Path:
        """A generated month of the deployment's TLC service (yellow's or green's file) in the landing folder."""
        year, month = year_month(partition_key)
        dataset = DATASETS[deployment]
        table = generate_month(year, month, ROWS, seed=seed, dataset=dataset)
        return Path(write_month(table, str(self.landing), year, month, dataset=dataset))

    def land_stray(self, name: str) -> None:
        path = self.landing / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not a TLC month")

    # --- outputs ---
    def predictions(self, deployment: str = DEPLOYMENT) -> PredictionStore:
        """Where the deployment publishes: `<data>/predictions/<name>` (a YAML deployment's own location, whatever
        the environment says)."""
        return PredictionStore(uri=str(self.data / "predictions" / deployment))

    def published(self, partition_key: str, deployment: str = DEPLOYMENT) -> bytes | None:
        path = self.predictions(deployment).month_path(*year_month(partition_key))
        return path.read_bytes() if path.exists() else None

    def table_months(self, deployment: str = DEPLOYMENT) -> dict[str, int]:
        """Rows per month in the deployment's SQL table. Read only when nothing runs: an open DuckDB reader locks the
        writer out."""
        assert not self.busy(), "the DuckDB table is read only when no run is writing it"
        table = model_and_table(deployment, self.model_name)[1]
        with duckdb.connect(str(self.root / "predictions.duckdb"), read_only=True) as connection:
            rows = connection.execute(f"SELECT month, count(*) FROM {table} GROUP BY month").fetchall()
        return {month.isoformat(): count for month, count in rows}

    def loaded_months(self, deployment: str = DEPLOYMENT) -> set[str]:
        """Months prediction_table has loaded, from its materializations (no lock on the database)."""
        return set(self.materialization_counts("prediction_table", deployment))

    def registry(self) -> MlflowClient:
        uri = self.env["MLFLOW_TRACKING_URI"]
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def versions_by_month(self, deployment: str = DEPLOYMENT) -> dict[str, list[str]]:
        """The registered versions of the deployment's model, by the month each was trained for."""
        found: dict[str, list[str]] = {}
        model_name = model_and_table(deployment, self.model_name)[0]
        for version in self.registry().search_model_versions(f"name = '{model_name}'"):
            found.setdefault(version.tags["partition"], []).append(str(version.version))
        return found

    def materialization_counts(self, asset: str, deployment: str = DEPLOYMENT) -> dict[str, int]:
        records = self.instance.fetch_materializations(asset_key(asset, deployment), limit=1000).records
        counts: dict[str, int] = {}
        for record in records:
            counts[record.partition_key] = counts.get(record.partition_key, 0) + 1
        return counts

    def scored_by(self, partition_key: str, deployment: str = DEPLOYMENT) -> set[str]:
        data = self.published(partition_key, deployment)
        return set(pq.read_table(io.BytesIO(data), columns=["model_version"])[0].to_pylist()) if data else set()

    # --- waiting ---
    def failed_runs(self) -> list[str]:
        messages = []
        for run in self.instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])):
            events = self.instance.all_logs(
                run.run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
            )
            # A step's error, or the run's own (a run worker that died, a start timeout) when no step failed.
            errors = [e.dagster_event.event_specific_data.error.message
                      if getattr(e.dagster_event.event_specific_data, "error", None) else e.message for e in events]
            messages.append(f"{run.run_id} {run.tags.get('dagster/partition', '')}: {errors}")
        return messages

    def busy(self) -> bool:
        return busy(self.instance)

    def automation_ticks(self) -> int:
        """Completed evaluations of yellow's automation sensor so far."""
        return automation_ticks(self.instance)

    def wait_until(
        self, done: Callable[[], bool], what: str, timeout: float = CONVERGE_TIMEOUT, failures_allowed: bool = False
    ) -> None:
        """Poll `done` until it holds; a failed run ends the wait at once unless `failures_allowed`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            failed = [] if failures_allowed else self.failed_runs()
            if failed:
                pytest.fail(f"a run failed while waiting for {what}: {failed}")
            if done():
                return
            time.sleep(0.5)
        pytest.fail(f"not reached within {timeout:.0f}s: {what}\n{self.log_tail()}")

    def wait_quiet(self, ticks: int = 3, failures_allowed: bool = False) -> int:
        """Wait until nothing runs and the automation sensor has then evaluated `ticks` more times without
        launching anything (a run it launched meanwhile starts the wait again); returns the number of runs."""
        deadline = time.monotonic() + CONVERGE_TIMEOUT
        while True:
            self.wait_until(lambda: not self.busy(), "no run in progress", failures_allowed=failures_allowed)
            runs_before, start = len(self.instance.get_runs()), self.automation_ticks()
            self.wait_until(
                lambda: self.automation_ticks() >= start + ticks, f"{ticks} more automation ticks", 120, failures_allowed
            )
            if len(self.instance.get_runs()) == runs_before and not self.busy():
                return runs_before
            if time.monotonic() > deadline:
                pytest.fail(f"automation still launching runs after {CONVERGE_TIMEOUT:.0f}s\n{self.log_tail()}")

    def converged(self, months: list[str], deployment: str = DEPLOYMENT) -> bool:
        loaded = self.loaded_months(deployment)
        return all(self.published(m, deployment) is not None and m in loaded for m in months) and not self.busy()


@pytest.fixture
def platform(tmp_path) -> Platform:
    """A platform whose daemon is stopped after the test, whatever happens."""
    platform = Platform(tmp_path / "p")
    yield platform
    platform.stop()


def assert_one_version_per_month(platform: Platform, months: list[str], deployment: str = DEPLOYMENT) -> None:
    """Each month has exactly one version of the deployment's model, and its published predictions are that
    version's."""
    versions = platform.versions_by_month(deployment)
    assert {m: len(versions.get(m, [])) for m in months} == {m: 1 for m in months}, versions
    for month in months:
        assert platform.scored_by(month, deployment) == set(versions[month]), month



STALE_STATUS = """
query Stale($partitions: [String!]!) {
  assetNodes(assetKeys: [{path: ["yellow", "trip_predictions"]}]) { staleStatusByPartition(partitions: $partitions) }
}
"""


AUTOMATION_SENSOR = {
    "repositoryLocationName": "deploy_assets",
    "repositoryName": "__repository__",
    "sensorName": f"{DEPLOYMENT}_automation_sensor",
}
SENSOR_STATE = """
query State($sensor: SensorSelector!) { sensorOrError(sensorSelector: $sensor) { ... on Sensor { sensorState { id } } } }
"""
STOP_SENSOR = "mutation Stop($id: String!) { stopSensor(id: $id) { __typename } }"
START_SENSOR = "mutation Start($sensor: SensorSelector!) { startSensor(sensorSelector: $sensor) { __typename } }"


def pause_automation(platform: Platform) -> None:
    """What the UI's toggle does: stop yellow's automation sensor (GraphQL stopSensor)."""
    state = platform.graphql(SENSOR_STATE, {"sensor": AUTOMATION_SENSOR})["sensorOrError"]["sensorState"]["id"]
    assert platform.graphql(STOP_SENSOR, {"id": state})["stopSensor"]["__typename"] == "StopSensorMutationResult"


def resume_automation(platform: Platform) -> None:
    assert platform.graphql(START_SENSOR, {"sensor": AUTOMATION_SENSOR})["startSensor"]["__typename"] == "Sensor"
