"""Left alone, it converges: the real dagster-daemon running the repo's sensors and Dagster's automation.

Operator scenarios, each ending in a checked end state reached within a bounded wait (never a fixed sleep as
proof): many months at once beside stray files, months landing newest first, a restart over a converged instance,
a re-upload, a champion moved and rolled back. "Nothing more happens" is proven by waiting for the automation
sensor to complete more evaluations after the end state and seeing no new run.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from mlflow import MlflowClient

from dagster._core.execution.backfill import BulkActionStatus

from deploy_assets.core.generate import generate_month, write_month
from deploy_assets.partitions import year_month
from deploy_assets.resources.storage import PredictionStore
from deploy_assets_tests import servers

pytestmark = [pytest.mark.servers, pytest.mark.timeout(900)]

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
            **(extra_env or {}),
        }
        (root / "mlflow").mkdir(parents=True, exist_ok=True)
        self.home = servers.prepare_dagster_home(root / "dagster_home")
        self.daemon: servers.ManagedProcess | None = None
        self._instance: dg.DagsterInstance | None = None

    # --- processes ---
    def start(self) -> None:
        self.daemon = servers.start_dagster_daemon(self.home, env=self.env, timeout=180)

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None

    @property
    def instance(self) -> dg.DagsterInstance:
        if self._instance is None:
            self._instance = dg.DagsterInstance.from_config(str(self.home))
        return self._instance

    # --- inputs ---
    @property
    def landing(self) -> Path:
        return self.data / "landing"

    def land(self, partition_key: str, seed: int = 0) -> None:
        year, month = year_month(partition_key)
        write_month(generate_month(year, month, ROWS, seed=seed), str(self.landing), year, month)

    def land_stray(self, name: str) -> None:
        path = self.landing / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not a TLC month")

    # --- outputs ---
    def predictions(self) -> PredictionStore:
        return PredictionStore(uri=str(self.data / "predictions"))

    def published(self, partition_key: str) -> bytes | None:
        path = self.predictions().month_path(*year_month(partition_key))
        return path.read_bytes() if path.exists() else None

    def table_months(self) -> dict[str, int]:
        """Rows per month in the SQL table. Read only when nothing runs: an open DuckDB reader locks the writer out."""
        assert not self.busy(), "the DuckDB table is read only when no run is writing it"
        with duckdb.connect(str(self.root / "predictions.duckdb"), read_only=True) as connection:
            rows = connection.execute("SELECT month, count(*) FROM trip_predictions GROUP BY month").fetchall()
        return {month.isoformat(): count for month, count in rows}

    def loaded_months(self) -> set[str]:
        """Months prediction_table has loaded, from its materializations (no lock on the database)."""
        return set(self.materialization_counts("prediction_table"))

    def registry(self) -> MlflowClient:
        uri = self.env["MLFLOW_TRACKING_URI"]
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def versions_by_month(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for version in self.registry().search_model_versions(f"name = '{self.model_name}'"):
            found.setdefault(version.tags["partition"], []).append(str(version.version))
        return found

    def materialization_counts(self, asset: str) -> dict[str, int]:
        records = self.instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records
        counts: dict[str, int] = {}
        for record in records:
            counts[record.partition_key] = counts.get(record.partition_key, 0) + 1
        return counts

    def scored_by(self, partition_key: str) -> set[str]:
        import io

        import pyarrow.parquet as pq

        data = self.published(partition_key)
        return set(pq.read_table(io.BytesIO(data), columns=["model_version"])[0].to_pylist()) if data else set()

    # --- waiting ---
    def failed_runs(self) -> list[str]:
        messages = []
        for run in self.instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])):
            errors = [
                e.dagster_event.event_specific_data.error.message
                for e in self.instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
            ]
            messages.append(f"{run.run_id} {run.tags.get('dagster/partition', '')}: {errors}")
        return messages

    def busy(self) -> bool:
        active = self.instance.get_runs(
            filters=dg.RunsFilter(
                statuses=[
                    dg.DagsterRunStatus.QUEUED,
                    dg.DagsterRunStatus.NOT_STARTED,
                    dg.DagsterRunStatus.STARTING,
                    dg.DagsterRunStatus.STARTED,
                ]
            )
        )
        backfills = [
            b for b in self.instance.get_backfills() if b.status == BulkActionStatus.REQUESTED
        ]
        return bool(active or backfills)

    def automation_ticks(self) -> int:
        """Completed evaluations of Dagster's automation sensor so far."""
        count = 0
        for state in self.instance.all_instigator_state():
            if state.name == "automation_sensor":
                count += len(self.instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=10_000))
        return count

    def wait_until(self, done: Callable[[], bool], what: str, timeout: float = CONVERGE_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            failed = self.failed_runs()
            if failed:
                pytest.fail(f"a run failed while waiting for {what}: {failed}")
            if done():
                return
            time.sleep(0.5)
        log = self.daemon.log_tail(80) if self.daemon else ""
        pytest.fail(f"not reached within {timeout:.0f}s: {what}\n--- daemon log ---\n{log}")

    def wait_quiet(self, ticks: int = 3) -> int:
        """Wait until nothing runs, then until the automation sensor has evaluated `ticks` more times with
        nothing new to run; returns the number of runs."""
        self.wait_until(lambda: not self.busy(), "no run in progress")
        runs_before = len(self.instance.get_runs())
        start = self.automation_ticks()
        self.wait_until(lambda: self.automation_ticks() >= start + ticks, f"{ticks} more automation ticks", 120)
        self.wait_until(lambda: not self.busy(), "no run in progress")
        return runs_before

    def converged(self, months: list[str]) -> bool:
        loaded = self.loaded_months()
        return all(self.published(m) is not None and m in loaded for m in months) and not self.busy()


@pytest.fixture
def platform(tmp_path) -> Platform:
    platform = Platform(tmp_path / "p")
    yield platform
    platform.stop()


def assert_one_version_per_month(platform: Platform, months: list[str]) -> None:
    versions = platform.versions_by_month()
    assert {m: len(versions.get(m, [])) for m in months} == {m: 1 for m in months}, versions
    for month in months:
        assert platform.scored_by(month) == set(versions[month]), month


def test_six_months_at_once_with_stray_files_converge_and_a_restart_launches_nothing(platform):
    platform.start()
    for name in STRAY_NAMES:
        platform.land_stray(name)
    for month in MONTHS:
        platform.land(month)

    scored = MONTHS[1:]  # the first month has nothing before it to train on
    platform.wait_until(lambda: platform.converged(scored), "every month after the first published")
    runs = platform.wait_quiet()
    assert len(platform.instance.get_runs()) == runs, "automation kept launching after convergence"
    assert platform.failed_runs() == []
    assert_one_version_per_month(platform, scored)
    assert platform.published(MONTHS[0]) is None
    rows = platform.table_months()
    assert set(rows) == set(scored)
    # Stray objects were skipped (with a reason, in the sensor's log) and wedged nothing.
    assert set(platform.materialization_counts("raw_trips")) == set(MONTHS)

    # Restarting the daemon over the converged instance launches nothing.
    platform.stop()
    platform.start()
    runs = len(platform.instance.get_runs())
    assert platform.wait_quiet() == runs
    assert len(platform.instance.get_runs()) == runs

    # One month re-uploaded with other bytes: that month and what depends on it refresh, nothing else.
    before = {asset: platform.materialization_counts(asset) for asset in ("raw_trips", "duration_model", "trip_predictions")}
    versions_before = platform.versions_by_month()
    changed, following = MONTHS[2], MONTHS[3]
    old_bytes = {m: platform.published(m) for m in scored}
    platform.land(changed, seed=7)
    platform.wait_until(
        lambda: platform.materialization_counts("trip_predictions").get(following, 0) > before["trip_predictions"][following]
        and platform.published(following) != old_bytes[following],
        f"{changed} and {following} refreshed",
    )
    platform.wait_quiet()
    after = {asset: platform.materialization_counts(asset) for asset in before}
    grew = {asset: sorted(m for m in after[asset] if after[asset][m] != before[asset].get(m)) for asset in before}
    assert grew == {
        "raw_trips": [changed],
        "duration_model": [changed, following],  # its test month changed; the next one's training data changed
        "trip_predictions": [changed, following],
    }
    versions = platform.versions_by_month()
    assert versions[changed] == versions_before[changed]  # same training data: not registered again
    assert len(versions[following]) == 2  # trained on the new bytes: a new version
    assert platform.scored_by(following) == {max(versions[following], key=int)}
    untouched = [m for m in scored if m not in (changed, following)]
    assert all(platform.published(m) == old_bytes[m] for m in untouched)


def test_months_landing_newest_first_reach_the_same_end_state(platform):
    platform.start()
    instance = platform.instance
    for month in reversed(MONTHS):
        platform.land(month)
        # The next (older) month lands only once this one was seen: they truly arrive out of order.
        platform.wait_until(
            lambda m=month: instance.get_latest_data_version_record(
                dg.AssetKey("landing_file"), is_source=True, partition_key=m
            )
            is not None,
            f"landing_file[{month}] observed",
            timeout=60,
        )
    scored = MONTHS[1:]
    platform.wait_until(lambda: platform.converged(scored), "every month after the first published")
    platform.wait_quiet()
    assert platform.failed_runs() == []
    assert_one_version_per_month(platform, scored)
    assert set(platform.table_months()) == set(scored)


# --- the champion as a node of the graph ---------------------------------------------------------------------

STALE_STATUS = """
query Stale($partitions: [String!]!) {
  assetNodes(assetKeys: [{path: ["trip_predictions"]}]) { staleStatusByPartition(partitions: $partitions) }
}
"""


def graphql(port: int, query: str, variables: dict) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.load(response)
    assert "errors" not in answer, answer
    return answer["data"]


def dagster_cli(platform: Platform, *args: str) -> None:
    env = servers.child_env({**platform.env, "DAGSTER_HOME": str(platform.home)})
    result = subprocess.run(
        [servers.binary("dagster"), *args, "-w", "workspace.yaml"],
        env=env, cwd=servers.REPO_ROOT, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_champion_moved_and_rolled_back_rescores_the_months_each_time(tmp_path):
    platform = Platform(tmp_path / "c", {"DEPLOY_ASSETS_SCORING_POLICY": "champion"})
    months = MONTHS[:3]
    scored = months[1:]
    env = servers.child_env({**platform.env, "DAGSTER_HOME": str(platform.home)})
    port = servers.free_port()
    webserver = servers.ManagedProcess(
        f"dagster-webserver-{port}",
        [servers.binary("dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        log_dir=tmp_path, env=env, cwd=servers.REPO_ROOT,
    )
    try:
        platform.start()
        webserver.start()
        for month in months:
            platform.land(month)
        champion = lambda: platform.registry().get_model_version_by_alias(platform.model_name, "champion").version  # noqa: E731
        platform.wait_until(
            lambda: platform.converged(scored) and all(platform.scored_by(m) == {str(champion())} for m in scored),
            "every month scored by the champion",
        )
        platform.wait_quiet()
        versions = platform.versions_by_month()
        first, second = versions[scored[0]][0], versions[scored[1]][0]
        assert str(champion()) == second
        webserver.wait_until(lambda: servers._http_status(f"http://127.0.0.1:{port}/server_info") == 200, 120, "webserver")

        for target in (first, second):  # a move, then the roll-back
            # Automation paused: the move is observed, and the months scored by another version show as stale.
            dagster_cli(platform, "sensor", "stop", "automation_sensor")
            platform.registry().set_registered_model_alias(platform.model_name, "champion", target)
            platform.wait_until(
                lambda t=target: all(
                    (r := platform.instance.get_latest_data_version_record(
                        dg.AssetKey("champion_model"), is_source=True, partition_key=m)) is not None
                    and r.asset_observation.data_version == t
                    for m in scored
                ),
                f"@champion {target} observed",
                timeout=60,
            )
            stale = graphql(port, STALE_STATUS, {"partitions": scored})["assetNodes"][0]["staleStatusByPartition"]
            assert stale == ["STALE"] * len(scored)
            # Automation resumed: every month is re-scored by the new champion, and nothing else runs.
            ingested = platform.materialization_counts("raw_trips")
            dagster_cli(platform, "sensor", "start", "automation_sensor")
            platform.wait_until(
                lambda t=target: all(platform.scored_by(m) == {t} for m in scored) and not platform.busy(),
                f"months re-scored by {target}",
            )
            platform.wait_quiet()
            fresh = graphql(port, STALE_STATUS, {"partitions": scored})["assetNodes"][0]["staleStatusByPartition"]
            assert fresh == ["FRESH"] * len(scored)
            assert platform.materialization_counts("raw_trips") == ingested
            with duckdb.connect(str(platform.root / "predictions.duckdb"), read_only=True) as connection:
                served = connection.execute("SELECT DISTINCT model_version FROM trip_predictions").fetchall()
            assert served == [(target,)]
        assert platform.failed_runs() == []
    finally:
        webserver.stop()
        platform.stop()
