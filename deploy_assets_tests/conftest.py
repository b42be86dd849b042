"""Fixtures: an isolated project (data folder, MLflow store, Dagster instance) per test, on generated months."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
import tempfile
import uuid
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

import pytest

# Dagster and the project are imported where they are used: the xdist controller loads this file too (2-3 s of
# imports it never uses, before any worker starts).
if TYPE_CHECKING:
    import dagster as dg
    import pyarrow as pa

    from deploy_assets.assets.monthly import Deployment
    from deploy_assets.core.registry import RegistryClient
    from deploy_assets.resources import LandingZone, PredictionStore, PredictionWarehouse
    from deploy_assets.settings import Settings

SMALL_MONTH_ROWS = 20_000


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory, empty_mlflow_db) -> str:
    """One local MLflow store per session: creating its schema costs seconds, models are cheap. It starts as a
    copy of `empty_mlflow_db` (whose schema is created once per session for every store)."""
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    copy_tree(empty_mlflow_db.parent, path.parent)
    return f"sqlite:///{path}"


@dataclass
class Project:
    """One deployment (`settings`, the yellow one unless changed) with its own files, MLflow store and instance;
    `resources` are the code location's shared connections. `use(...)` changes the deployment's settings."""

    root: Path
    settings: Settings
    resources: dict
    instance: dg.DagsterInstance

    @property
    def deployment(self) -> Deployment:
        from deploy_assets.assets.monthly import Deployment

        return Deployment(self.settings)

    def use(self, **changes) -> None:
        """The deployment with these settings changed (e.g. `dataset="green"`, another `predictions_uri`)."""
        self.settings = dataclasses.replace(self.settings, **changes)

    def key(self, asset: str) -> dg.AssetKey:
        return self.deployment.key(asset)

    @property
    def landing(self) -> LandingZone:
        return self.deployment.landing

    @property
    def predictions(self) -> PredictionStore:
        return self.deployment.predictions

    @property
    def shadow_predictions(self) -> PredictionStore:
        return self.deployment.shadow_predictions

    @property
    def registry(self) -> RegistryClient:
        return self.deployment.model(self.resources["registry"])

    @property
    def warehouse(self) -> PredictionWarehouse:
        return self.deployment.table(self.resources["warehouse"])

    @property
    def defs(self) -> dg.Definitions:
        """The deployment's definitions (its assets, checks, sensors, job), built from its current settings, with
        the project's resources."""
        import dagster as dg

        return dg.Definitions.merge(definitions_of(self.settings), dg.Definitions(resources=self.resources))

    def sensor(self, name: str) -> dg.SensorDefinition:
        """The deployment's sensor `<name>_<what>` by what it is (`landing_sensor`)."""
        [sensor] = [sensor for sensor in self.defs.sensors if sensor.name == self.deployment.named(name)]
        return sensor

    def asset_def(self, name: str) -> dg.AssetsDefinition | dg.SourceAsset:
        """The definition of the deployment's asset `name` (e.g. an observable source asset to `observe`)."""
        [asset] = [asset for asset in definitions_of(self.settings).assets if self.key(name) in _keys(asset)]
        return asset

    def land(self, partition_key: str, rows: int = SMALL_MONTH_ROWS, table: pa.Table | None = None, seed: int = 0) -> str:
        """Write a generated (or the given) month of the deployment's TLC service into the landing zone."""
        from deploy_assets.core.generate import generate_month, write_month
        from deploy_assets.partitions import year_month

        year, month = year_month(partition_key)
        dataset = self.landing.tlc_dataset
        table = table if table is not None else generate_month(year, month, rows, seed=seed, dataset=dataset)
        return write_month(table, self.landing.uri, year, month, dataset=dataset)

    def materialize(
        self, assets: list[str], partition_key: str, run_config: dict | None = None, raise_on_error: bool = True
    ) -> dg.ExecuteInProcessResult:
        """Materialize the deployment's `assets` (by name: `raw_trips`, or keys) for one month, in process."""
        import dagster as dg

        # raw_trips and trip_statistics are written by one step: selecting either selects both, as in the UI.
        keys = [self.key(asset) if isinstance(asset, str) else asset for asset in assets]
        selection = dg.AssetSelection.assets(*keys).required_multi_asset_neighbors()
        return dg.materialize(
            definitions_of(self.settings).assets,
            selection=selection,
            partition_key=partition_key,
            instance=self.instance,
            resources=self.resources,
            run_config=run_config,
            raise_on_error=raise_on_error,
        )

    def metadata(self, result: dg.ExecuteInProcessResult, asset: str) -> dict:
        [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == self.key(asset)]
        return {k: v.value for k, v in event.materialization.metadata.items()}


def _keys(asset) -> set:
    return set(asset.keys) if hasattr(asset, "keys") else {asset.key}


def definitions_of(settings: Settings) -> dg.Definitions:
    """A deployment's definitions, built once per settings (building them costs a tenth of a second)."""
    if settings not in _DEFINITIONS:
        from deploy_assets.deployment import build_definitions

        _DEFINITIONS[settings] = build_definitions(settings)
    return _DEFINITIONS[settings]


_DEFINITIONS: dict = {}


def project_settings(root: Path, tracking_uri: str, name: str) -> Settings:
    """The yellow deployment of a project whose files live under `root` (MLflow's runs and models in
    `tracking_uri`, its registered model `name`)."""
    from deploy_assets.settings import Settings

    return Settings(
        data_uri=str(root),
        mlflow_tracking_uri=tracking_uri,
        model_name=name,
        predictions_db=f"duckdb:///{root / 'predictions.duckdb'}",
    )


def new_project_at(root: Path, tracking_uri: str, name: str, instance: dg.DagsterInstance) -> Project:
    from deploy_assets.resources import build_resources

    settings = project_settings(root, tracking_uri, name)
    return Project(root=root, settings=settings, resources=build_resources(settings), instance=instance)


# --- copies of state built once ------------------------------------------------------------------------------------
#
# Creating storage (a Dagster instance's SQLite schemas, an MLflow store's) and materializing months in process cost
# from a third of a second to seconds, and many tests start from the same state. Such state is built once (per
# session, or per module) and each test gets its own copy, made by `copy_tree`: files are copied, SQLite databases
# with SQLite's backup API (consistent whatever their journal mode: Dagster's use WAL), and every absolute path stored
# inside them (MLflow's artifact locations, paths in Dagster's event metadata and captured logs) is rewritten from the
# original's folder to the copy's. The copy is checked to mention the original's folder nowhere: it is independent.


def _copy_sqlite(source: Path, target: Path, old: str, new: str) -> None:
    """Copy the database `source` to `target` (consistently, WAL included), replacing `old` by `new` in every text."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
        dst.execute("PRAGMA secure_delete = ON")  # the replaced texts leave no copy behind in freed pages
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


def copy_tree(source: Path, target: Path) -> None:
    """Copy the folder `source` into `target` (missing or empty), an independent copy (see above)."""
    databases = sorted(source.rglob("*.db"))
    skipped = {str(p) + suffix for p in databases for suffix in ("", "-wal", "-shm", "-journal")}
    old, new = str(source), str(target)
    shutil.copytree(
        source, target, dirs_exist_ok=True,
        ignore=lambda folder, names: [n for n in names if f"{folder}/{n}" in skipped],
        copy_function=lambda src, dst: _copy_file(src, dst, old, new),
    )
    for database in databases:
        _copy_sqlite(database, target / database.relative_to(source), old, new)
    for file in target.rglob("*"):
        if file.is_file():
            assert old.encode() not in file.read_bytes(), f"{file} still refers to {old}"


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


@pytest.fixture(scope="session")
def empty_dagster_home(tmp_path_factory) -> Path:
    """A Dagster test instance's folder with its storage created and nothing stored, once per session: every
    project's instance is a copy of it (what `dg.instance_for_test()` would create, without creating the schemas)."""
    import dagster as dg

    home = tmp_path_factory.mktemp("dagster-home-empty")
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        instance.get_runs(limit=1)
        instance.all_instigator_state()
        instance.fetch_materializations(dg.AssetKey("nothing"), limit=1)
    return home


@contextmanager
def instance_in(home: Path, template: Path):
    """A test instance (`dg.instance_for_test`) in the folder `home`, starting as a copy of `template`."""
    import dagster as dg

    copy_tree(template, home)
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        yield instance


@contextmanager
def new_project(root: Path, mlflow_store: str, empty_dagster_home: Path):
    """An empty project: files under `root`, a new experiment and model in `mlflow_store`, a new instance (in a
    temporary folder of its own, as `dg.instance_for_test()` makes)."""
    name = f"trip-duration-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as home:
        with instance_in(Path(home), empty_dagster_home) as instance:
            yield new_project_at(root, mlflow_store, name, instance)


@pytest.fixture
def project(tmp_path: Path, mlflow_store: str, empty_dagster_home: Path) -> Project:
    with new_project(tmp_path, mlflow_store, empty_dagster_home) as project:
        yield project


# --- a project state built once, copied into every test that starts from it -------------------------------------
#
# Many tests start from the same materialized months and then change them. A `ProjectState` is such a project, built
# once per module, with everything it consists of under one folder: the project's files, its own MLflow store
# (`_state/mlflow.db`) and its Dagster instance (`_state/dagster_home`). `ProjectState.copy(tmp_path)` gives a test
# its own independent copy of all three (`copy_tree`).

_STATE = "_state"


@dataclass
class ProjectState:
    root: Path  # the project's files, and _state/ (MLflow store, Dagster instance)
    name: str  # the experiment's and the registered model's name
    value: object  # what the builder returned (read only: shared by every copy)

    @staticmethod
    def tracking_uri(root: Path) -> str:
        return f"sqlite:///{root / _STATE / 'mlflow.db'}"

    @classmethod
    def build(cls, root: Path, empty_mlflow_db: Path, empty_dagster_home: Path, builder) -> ProjectState:
        """Run `builder(project)` on a new project in `root`; the project then stays as it left it."""
        name = f"trip-duration-{uuid.uuid4().hex[:8]}"
        (root / _STATE).mkdir(parents=True)
        shutil.copyfile(empty_mlflow_db, root / _STATE / "mlflow.db")
        with instance_in(root / _STATE / "dagster_home", empty_dagster_home) as instance:
            project = new_project_at(root, cls.tracking_uri(root), name, instance)
            value = builder(project)
        return cls(root=root, name=name, value=value)

    @contextmanager
    def copy(self, root: Path):
        """An independent copy of the project in `root` (an empty or missing folder), with its own instance."""
        import dagster as dg

        copy_tree(self.root, root)
        with dg.instance_for_test(temp_dir=str(root / _STATE / "dagster_home")) as instance:
            yield new_project_at(root, self.tracking_uri(root), self.name, instance)


def starting_state(name: str, builder):
    """The fixtures of a module whose tests may start from the state `builder(project)` leaves:
    - `<name>_state`: that project, built once per module (and worker);
    - `project`: for a test that requests `<name>`, its own copy of that state; else a new, empty project;
    - `<name>`: what `builder` returned (read only: shared by every copy).
    Assign them in the module: `published_state, project, published = starting_state("published", publish)`."""
    state_name = f"{name}_state"

    @pytest.fixture(scope="module", name=state_name)
    def state(tmp_path_factory, empty_mlflow_db, empty_dagster_home) -> ProjectState:
        return ProjectState.build(tmp_path_factory.mktemp(name), empty_mlflow_db, empty_dagster_home, builder)

    @pytest.fixture(name="project")
    def project(request, tmp_path):
        if name in request.fixturenames:
            context = request.getfixturevalue(state_name).copy(tmp_path)
        else:
            context = new_project(
                tmp_path, request.getfixturevalue("mlflow_store"), request.getfixturevalue("empty_dagster_home")
            )
        with context as project:
            yield project

    @pytest.fixture(name=name)
    def value(project, request):
        return request.getfixturevalue(state_name).value

    return state, project, value
