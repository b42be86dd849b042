"""Fixtures: an isolated project (data folder, MLflow store, Dagster instance) per test, on generated months."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from deploy_assets.core.generate import generate_month, write_month
from deploy_assets.definitions import defs
from deploy_assets.partitions import year_month
from deploy_assets.resources import (
    LandingZone,
    ModelRegistry,
    ParquetIOManager,
    PredictionStore,
    PredictionWarehouse,
    QualityThresholds,
)

SMALL_MONTH_ROWS = 20_000


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory) -> str:
    """One local MLflow store per session: creating its schema costs seconds, models are cheap."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@dataclass
class Project:
    root: Path
    resources: dict
    instance: dg.DagsterInstance

    @property
    def landing(self) -> LandingZone:
        return self.resources["landing"]

    @property
    def predictions(self) -> PredictionStore:
        return self.resources["predictions"]

    @property
    def registry(self) -> ModelRegistry:
        return self.resources["registry"]

    @property
    def warehouse(self) -> PredictionWarehouse:
        return self.resources["warehouse"]

    def land(self, partition_key: str, rows: int = SMALL_MONTH_ROWS, table: pa.Table | None = None, seed: int = 0) -> str:
        """Write a generated (or the given) month into the landing zone under its TLC name."""
        year, month = year_month(partition_key)
        table = table if table is not None else generate_month(year, month, rows, seed=seed)
        return write_month(table, self.landing.uri, year, month)

    def materialize(
        self, assets: list[str], partition_key: str, run_config: dict | None = None, raise_on_error: bool = True
    ) -> dg.ExecuteInProcessResult:
        # raw_trips and trip_statistics are written by one step: selecting either selects both, as in the UI.
        selection = dg.AssetSelection.assets(*assets).required_multi_asset_neighbors()
        return dg.materialize(
            defs.assets,
            selection=selection,
            partition_key=partition_key,
            instance=self.instance,
            resources=self.resources,
            run_config=run_config,
            raise_on_error=raise_on_error,
        )

    def metadata(self, result: dg.ExecuteInProcessResult, asset: str) -> dict:
        [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
        return {k: v.value for k, v in event.materialization.metadata.items()}


def project_resources(root: Path, tracking_uri: str, name: str) -> dict:
    """The resources of a project whose files live under `root` (MLflow's runs and models in `tracking_uri`)."""
    return {
        "landing": LandingZone(uri=str(root / "landing")),
        "parquet_io_manager": ParquetIOManager(uri=str(root / "warehouse")),
        "predictions": PredictionStore(uri=str(root / "predictions")),
        "shadow_predictions": PredictionStore(uri=str(root / "shadow-predictions")),
        "registry": ModelRegistry(
            tracking_uri=tracking_uri,
            artifact_location=str(root / "mlflow-artifacts"),
            experiment_name=name,
            model_name=name,
        ),
        "warehouse": PredictionWarehouse(url=f"duckdb:///{root / 'predictions.duckdb'}"),
        "thresholds": QualityThresholds(),
    }


@contextmanager
def new_project(root: Path, mlflow_store: str):
    """An empty project: files under `root`, a new experiment and model in `mlflow_store`, a new instance."""
    name = f"trip-duration-{uuid.uuid4().hex[:8]}"
    with dg.instance_for_test() as instance:
        yield Project(root=root, resources=project_resources(root, mlflow_store, name), instance=instance)


@pytest.fixture
def project(tmp_path: Path, mlflow_store: str) -> Project:
    with new_project(tmp_path, mlflow_store) as project:
        yield project


@contextmanager
def project_or_copy(request: pytest.FixtureRequest, starts_from: str, state: str):
    """For a module's `project` fixture: a copy of the `ProjectState` fixture `state` when the test requests
    `starts_from` (the fixture that returns that state's value), else a new, empty project."""
    tmp_path = request.getfixturevalue("tmp_path")
    if starts_from in request.fixturenames:
        context = request.getfixturevalue(state).copy(tmp_path)
    else:
        context = new_project(tmp_path, request.getfixturevalue("mlflow_store"))
    with context as project:
        yield project


# --- a project state built once, copied into every test that starts from it -------------------------------------
#
# Materializing months in process costs seconds; many tests start from the same materialized months and then change
# them. A `ProjectState` is such a project built once (per module, or per session), with everything it consists of
# under one folder: the project's files, its own MLflow store (`_state/mlflow.db`) and its Dagster instance
# (`_state/dagster_home`). `ProjectState.copy(tmp_path)` gives a test its own independent copy: the files are
# copied, the SQLite databases copied with SQLite's backup API (consistent whatever their journal mode), and every
# absolute path stored inside them (MLflow's artifact locations, paths in Dagster's event metadata) rewritten from
# the state's folder to the copy's. Nothing in the copy refers to the state's folder any more (`_assert_no_path`).

_STATE = "_state"


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory) -> Path:
    """An MLflow store with its schema and nothing else, created once per session, for states to start from."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-empty") / "mlflow.db"
    uri = f"sqlite:///{path}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.search_experiments()  # creates the tracking schema
    client.search_registered_models()  # and the registry's
    return path


def _copy_sqlite(source: Path, target: Path, old: str, new: str) -> None:
    """Copy the database `source` to `target` (consistently, WAL included), replacing `old` by `new` in every text."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
        tables = [row[0] for row in dst.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in dst.execute(f'PRAGMA table_info("{table}")').fetchall():
                name, kind = column[1], (column[2] or "").upper()
                if kind and not any(text in kind for text in ("CHAR", "TEXT", "CLOB", "JSON")):
                    continue
                dst.execute(
                    f'UPDATE "{table}" SET "{name}" = replace("{name}", ?, ?) WHERE instr("{name}", ?) > 0',
                    (old, new, old),
                )
        dst.commit()


def _copy_file(source: str, target: str, old: str, new: str) -> None:
    """Copy a file, replacing `old` by `new` in it if it is text (Dagster's captured logs, MLflow's YAML files).
    A binary file that mentions `old` cannot be rewritten safely: that is an error, not a silent shared path."""
    data = Path(source).read_bytes()
    if old.encode() in data:
        try:
            data = data.decode().replace(old, new).encode()
        except UnicodeDecodeError:
            raise AssertionError(f"{source} is binary and refers to {old}: a copy of it would not be independent")
    Path(target).write_bytes(data)
    shutil.copystat(source, target)


def _assert_no_path(root: Path, path: str) -> None:
    """No file under `root` (its databases included) mentions `path`."""
    for file in root.rglob("*"):
        if file.is_file():
            assert path.encode() not in file.read_bytes(), f"{file} still refers to {path}"


@dataclass
class ProjectState:
    root: Path  # the project's files, and _state/ (MLflow store, Dagster instance)
    name: str  # the experiment's and the registered model's name
    value: object  # what the builder returned (read only: shared by every copy)

    @staticmethod
    def tracking_uri(root: Path) -> str:
        return f"sqlite:///{root / _STATE / 'mlflow.db'}"

    @classmethod
    def build(cls, root: Path, empty_mlflow_db: Path, builder) -> ProjectState:
        """Run `builder(project)` on a new project in `root`; the project then stays as it left it."""
        name = f"trip-duration-{uuid.uuid4().hex[:8]}"
        (root / _STATE / "dagster_home").mkdir(parents=True)
        shutil.copyfile(empty_mlflow_db, root / _STATE / "mlflow.db")
        with dg.instance_for_test(temp_dir=str(root / _STATE / "dagster_home")) as instance:
            project = Project(root=root, resources=project_resources(root, cls.tracking_uri(root), name), instance=instance)
            value = builder(project)
        return cls(root=root, name=name, value=value)

    @contextmanager
    def copy(self, root: Path):
        """An independent copy of the project in `root` (an empty or missing folder), with its own instance."""
        databases = sorted((self.root / _STATE).rglob("*.db"))
        ignored = {str(p) + suffix for p in databases for suffix in ("", "-wal", "-shm", "-journal")}
        old, new = str(self.root), str(root)
        shutil.copytree(
            self.root, root, dirs_exist_ok=True, ignore=lambda folder, names: [n for n in names if f"{folder}/{n}" in ignored],
            copy_function=lambda source, target: _copy_file(source, target, old, new),
        )
        for database in databases:
            _copy_sqlite(database, root / database.relative_to(self.root), old, new)
        _assert_no_path(root, old)
        with dg.instance_for_test(temp_dir=str(root / _STATE / "dagster_home")) as instance:
            yield Project(root=root, resources=project_resources(root, self.tracking_uri(root), self.name), instance=instance)
