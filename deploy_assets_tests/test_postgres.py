"""PostgreSQL for real: the production Dagster instance storage, and the predictions table on Postgres.

One server per session (deploy_assets_tests.postgres_server: TLS + password on loopback, like RDS); every test
works in a database of its own on it.
"""

from __future__ import annotations

import re
import threading
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import duckdb
import pyarrow as pa
import pytest
import yaml

from deploy_assets.core.features import clean_trips
from deploy_assets.core.generate import generate_month
from deploy_assets.core.model import train_duration_model
from deploy_assets.core.scoring import PREDICTION_SCHEMA, score_trips
from deploy_assets.resources import PredictionWarehouse
from deploy_assets.resources.warehouse import COLUMN_NAMES, COLUMNS, TABLE, _PostgresTable
from deploy_assets_tests.postgres_server import connect, fresh_database

pytestmark = [pytest.mark.servers, pytest.mark.timeout(300)]

PROD_INSTANCE = Path(__file__).resolve().parents[1] / "deploy" / "dagster.prod.yaml"
# Production-only parts of the instance config: ECS launcher and S3 compute logs need AWS; the artifact dir is
# the image's /tmp/dagster, shared by every test on this machine, so it moves into the test's DAGSTER_HOME.
REPLACED_FOR_TESTS = {"run_launcher", "compute_logs", "local_artifact_storage"}
TRAIN_KEY, SCORE_KEY = "2024-01-01", "2024-02-01"
ALL_ASSETS = ["raw_trips", "duration_model", "trip_predictions", "prediction_table"]
FEBRUARY, MARCH = date(2024, 2, 1), date(2024, 3, 1)


@pytest.fixture(scope="module")
def predictions() -> pa.Table:
    cleaned = clean_trips(generate_month(2024, 2, 5_000), 2024, 2).table
    return score_trips(cleaned, train_duration_model([cleaned]).model, "3")


@pytest.fixture
def warehouse_url(postgres_url) -> str:  # noqa: F811
    return fresh_database(postgres_url, "warehouse")


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    connection = connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        connection.close()


def stored_month(url: str, month: date) -> pa.Table:
    """The month's rows read back from Postgres, as a table with the published prediction schema."""
    columns = ", ".join(PREDICTION_SCHEMA.names)
    rows = query(url, f"SELECT {columns} FROM {TABLE} WHERE month = %s ORDER BY ride_id", (month,))
    values = list(zip(*rows)) if rows else [[] for _ in PREDICTION_SCHEMA.names]
    arrays = [pa.array(column, field.type) for column, field in zip(values, PREDICTION_SCHEMA)]
    return pa.table(arrays, schema=PREDICTION_SCHEMA)


def by_ride_id(table: pa.Table) -> pa.Table:
    return table.sort_by("ride_id")


# ---- PredictionWarehouse on Postgres ---------------------------------------------------------------------------


def test_the_table_has_the_declared_columns_and_types(warehouse_url):
    PredictionWarehouse(url=warehouse_url).count_rows(FEBRUARY)
    columns = query(
        warehouse_url,
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = %s"
        " ORDER BY ordinal_position",
        (TABLE,),
    )
    assert [name for name, _, _ in columns] == [name.lower() for name in COLUMN_NAMES]
    assert columns[0] == ("month", "date", "NO") and columns[1] == ("ride_id", "character varying", "NO")
    assert {name: kind for name, kind, _ in columns}["tpep_pickup_datetime"] == "timestamp without time zone"
    assert {name: kind for name, kind, _ in columns}["diff"] == "double precision"
    assert query(warehouse_url, "SELECT indexdef FROM pg_indexes WHERE tablename = %s", (TABLE,)) == [
        (f"CREATE INDEX {TABLE}_month ON public.{TABLE} USING btree (month)",)
    ]


def test_replacing_a_month_twice_never_duplicates_rows(warehouse_url, predictions):
    warehouse = PredictionWarehouse(url=warehouse_url)
    assert warehouse.replace_month(FEBRUARY, predictions) == predictions.num_rows
    assert warehouse.replace_month(FEBRUARY, predictions) == predictions.num_rows
    assert warehouse.replace_month(MARCH, predictions.slice(0, 100)) == 100
    assert warehouse.replace_month(FEBRUARY, predictions.slice(0, 1_000)) == 1_000

    assert warehouse.count_rows(FEBRUARY) == 1_000 and warehouse.count_rows(MARCH) == 100
    assert warehouse.count_rows(date(2024, 4, 1)) == 0
    per_month = f"SELECT month, count(*), count(DISTINCT ride_id) FROM {TABLE} GROUP BY 1 ORDER BY 1"
    assert query(warehouse_url, per_month) == [
        (FEBRUARY, 1_000, 1_000),
        (MARCH, 100, 100),
    ]
    assert stored_month(warehouse_url, FEBRUARY).equals(by_ride_id(predictions.slice(0, 1_000)))


def test_a_table_created_before_the_adjusted_flag_gains_it_and_loads(warehouse_url, predictions):
    older = ", ".join(f"{name} {kind}" for name, kind in COLUMNS if name != "prediction_adjusted")
    query(warehouse_url, f"CREATE TABLE {TABLE} ({older}); SELECT 1")
    warehouse = PredictionWarehouse(url=warehouse_url)
    assert warehouse.replace_month(FEBRUARY, predictions) == predictions.num_rows
    assert warehouse.replace_month(FEBRUARY, predictions) == predictions.num_rows  # the column is there: no ALTER
    assert stored_month(warehouse_url, FEBRUARY).equals(by_ride_id(predictions))


def test_every_value_survives_the_copy_exactly(warehouse_url, predictions):
    """CSV through COPY: full double precision, microseconds, NULL versus '', quotes and commas in strings."""
    awkward = pa.table(
        [
            ["2024/02_a", "2024/02_b,\"quoted\"", "2024/02_c\nnewline", "2024/02_d"],
            pa.array(
                [datetime(2024, 2, 1, 0, 0, 0, 1), None, datetime(2024, 2, 29, 23, 59, 59, 999999),
                 datetime(2024, 2, 3)],
                pa.timestamp("us"),
            ),
            pa.array([1, None, 265, -1], pa.int32()),
            pa.array([2**31 - 1, 7, None, 0], pa.int32()),
            [1 / 3, None, 1e-300, -0.0],
            [2.0**0.5, 1e300, float("nan"), 5e-324],
            [None, 0.1 + 0.2, -1 / 7, 123456789.123456789],
            ["", None, "v'1", "ünïcode"],
            [True, None, False, True],
        ],
        schema=PREDICTION_SCHEMA,
    )
    warehouse = PredictionWarehouse(url=warehouse_url)
    assert warehouse.replace_month(FEBRUARY, awkward) == 4
    stored = stored_month(warehouse_url, FEBRUARY)
    expected = by_ride_id(awkward)
    for name in PREDICTION_SCHEMA.names:
        if name != "predicted_duration":
            assert stored[name].equals(expected[name]), name
    # NaN never equals itself: compare the NaN position and the rest.
    assert str(stored["predicted_duration"].to_pylist()) == str(expected["predicted_duration"].to_pylist())
    assert query(warehouse_url, f"SELECT count(*) FROM {TABLE} WHERE model_version = ''") == [(1,)]
    assert query(warehouse_url, f"SELECT count(*) FROM {TABLE} WHERE model_version IS NULL") == [(1,)]

    assert warehouse.replace_month(FEBRUARY, predictions) == predictions.num_rows
    assert stored_month(warehouse_url, FEBRUARY).equals(by_ride_id(predictions))


def test_a_failure_mid_load_rolls_back_to_the_previous_rows(warehouse_url, predictions, monkeypatch):
    import psycopg2

    warehouse = PredictionWarehouse(url=warehouse_url)
    warehouse.replace_month(FEBRUARY, predictions)
    warehouse.replace_month(MARCH, predictions.slice(0, 10))

    # Several COPY statements, the last of which fails on a NULL ride_id: after the DELETE and earlier batches.
    monkeypatch.setattr(_PostgresTable, "BATCH_ROWS", 1_000)
    ride_ids = predictions["ride_id"].to_pylist()
    broken = predictions.set_column(0, "ride_id", pa.array(ride_ids[:-1] + [None], pa.string()))
    with pytest.raises(psycopg2.errors.NotNullViolation):
        warehouse.replace_month(FEBRUARY, broken)
    assert warehouse.count_rows(FEBRUARY) == predictions.num_rows
    assert stored_month(warehouse_url, FEBRUARY).equals(by_ride_id(predictions))

    # A table without a needed column fails before anything is sent.
    with pytest.raises(KeyError, match="diff"):
        warehouse.replace_month(FEBRUARY, predictions.drop_columns(["diff"]))
    assert warehouse.count_rows(FEBRUARY) == predictions.num_rows
    assert warehouse.count_rows(MARCH) == 10
    assert query(warehouse_url, "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'") == [(0,)]


def test_postgres_and_duckdb_store_the_same_rows(warehouse_url, predictions, tmp_path):
    on_postgres = PredictionWarehouse(url=warehouse_url)
    on_duckdb = PredictionWarehouse(url=f"duckdb:///{tmp_path / 'p.duckdb'}")
    for warehouse in (on_postgres, on_duckdb):
        assert warehouse.replace_month(FEBRUARY, predictions) == predictions.num_rows
        assert warehouse.replace_month(MARCH, predictions.slice(0, 321)) == 321
    for month in (FEBRUARY, MARCH):
        assert on_postgres.count_rows(month) == on_duckdb.count_rows(month)
    with duckdb.connect(str(tmp_path / "p.duckdb")) as connection:
        from_duckdb = connection.sql(
            f"SELECT {', '.join(PREDICTION_SCHEMA.names)} FROM {TABLE} WHERE month = ? ORDER BY ride_id",
            params=[FEBRUARY],
        ).to_arrow_table()
    assert stored_month(warehouse_url, FEBRUARY).equals(from_duckdb.cast(PREDICTION_SCHEMA))


def test_concurrent_replacements_of_one_month_never_interleave(warehouse_url, predictions, monkeypatch):
    """Without the month's advisory lock both would delete, then both insert: duplicated rows."""
    monkeypatch.setattr(_PostgresTable, "BATCH_ROWS", 100)  # many COPY statements: transactions long enough to overlap
    warehouse = PredictionWarehouse(url=warehouse_url)
    warehouse.replace_month(FEBRUARY, predictions)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def replace(rows: int) -> None:
        try:
            start.wait()
            warehouse.replace_month(FEBRUARY, predictions.slice(0, rows))
        except BaseException as error:  # noqa: BLE001 - re-raised below
            errors.append(error)

    sizes = (predictions.num_rows, 4_000, 3_000, 2_000)
    threads = [threading.Thread(target=replace, args=(rows,)) for rows in sizes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    [(rows, distinct)] = query(warehouse_url, f"SELECT count(*), count(DISTINCT ride_id) FROM {TABLE}")
    assert rows == distinct and rows in sizes


def test_urls_are_checked_and_passwords_stay_out_of_messages():
    with pytest.raises(ValueError, match="unsupported predictions database URL") as error:
        PredictionWarehouse(url="mysql://user:s3cret@host/db").count_rows(FEBRUARY)
    assert "s3cret" not in str(error.value)
    warehouse = PredictionWarehouse(url="postgresql://app:s3cret@db.internal:5432/predictions?sslmode=require")
    assert warehouse.display_url == "postgresql://app:***@db.internal:5432/predictions?sslmode=require"
    assert PredictionWarehouse(url="duckdb:///tmp/p.duckdb").display_url == "duckdb:///tmp/p.duckdb"


def test_a_wrong_password_is_refused(warehouse_url, predictions):
    import psycopg2

    parts = urlsplit(warehouse_url)
    wrong = parts._replace(netloc=f"{parts.username}:not-the-password@{parts.hostname}:{parts.port}").geturl()
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        PredictionWarehouse(url=wrong).replace_month(FEBRUARY, predictions)


# ---- the prediction_table asset with a Postgres warehouse -------------------------------------------------------


def _publish_predictions(project, warehouse_url: str, predictions: pa.Table) -> dg.ExecuteInProcessResult:
    project.resources["warehouse"] = PredictionWarehouse(url=warehouse_url)  # shared: each deployment its own table
    project.predictions.write_month(2024, 2, predictions)
    return project.materialize(["prediction_table"], SCORE_KEY)


def test_prediction_table_materializes_into_postgres(project, warehouse_url, predictions):
    for _ in range(2):  # a re-run replaces the month
        result = _publish_predictions(project, warehouse_url, predictions)
        assert result.success
        assert project.metadata(result, "prediction_table")["dagster/row_count"] == predictions.num_rows
        assert project.metadata(result, "prediction_table")["dagster/table_name"] == project.settings.table
    table = project.settings.table  # the deployment's own table in the shared database
    assert query(warehouse_url, f"SELECT month, count(*), count(DISTINCT ride_id) FROM {table} GROUP BY 1") == [
        (FEBRUARY, predictions.num_rows, predictions.num_rows)
    ]


def test_prediction_table_metadata_never_holds_the_database_password(project, warehouse_url, predictions):
    result = _publish_predictions(project, warehouse_url, predictions)
    password = urlsplit(warehouse_url).password
    assert password and password not in str(project.metadata(result, "prediction_table"))


# ---- the production Dagster instance on Postgres ---------------------------------------------------------------


@pytest.fixture
def production_instance(postgres_url, tmp_path, monkeypatch):  # noqa: F811
    """DAGSTER_HOME with deploy/dagster.prod.yaml, its `storage` section unchanged (Postgres from DAGSTER_PG_*
    variables, sslmode=require), pointed at a fresh database of the test server; AWS-only parts replaced."""
    prod = yaml.safe_load(PROD_INSTANCE.read_text())
    assert REPLACED_FOR_TESTS <= set(prod), "deploy/dagster.prod.yaml changed: revisit REPLACED_FOR_TESTS"
    config = {key: value for key, value in prod.items() if key not in REPLACED_FOR_TESTS}
    config["local_artifact_storage"] = {
        **prod["local_artifact_storage"],
        "config": {"base_dir": str(tmp_path / "artifacts")},
    }
    assert config["storage"]["postgres"]["postgres_db"]["params"] == {"sslmode": "require"}
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    database = urlsplit(fresh_database(postgres_url, "dagster"))
    env = {
        "DAGSTER_PG_HOST": database.hostname,
        "DAGSTER_PG_PORT": str(database.port),
        "DAGSTER_PG_USERNAME": database.username,
        "DAGSTER_PG_PASSWORD": database.password,
        "DAGSTER_PG_DB": database.path.lstrip("/"),
    }
    assert set(re.findall(r"env:\s*(\w+)", yaml.safe_dump(prod["storage"]))) == set(env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        yield instance, f"postgresql://{database.netloc}{database.path}?sslmode=require"


def test_a_partition_run_is_recorded_in_the_production_postgres_storage(project, production_instance, warehouse_url):
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    instance, dagster_db = production_instance
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"

    project.resources["warehouse"] = PredictionWarehouse(url=warehouse_url)
    project.land(TRAIN_KEY)
    project.land(SCORE_KEY, seed=1)
    assets = project.defs.assets
    run_with = dict(instance=instance, resources=project.resources)
    # raw_trips comes with the sibling its step writes (the step cannot be subset).
    january = dg.materialize(
        assets, selection=dg.AssetSelection.assets(project.key("raw_trips")).required_multi_asset_neighbors(),
        partition_key=TRAIN_KEY, **run_with,
    )
    february = dg.materialize(
        assets,
        selection=dg.AssetSelection.assets(*map(project.key, ALL_ASSETS)).required_multi_asset_neighbors(),
        partition_key=SCORE_KEY, **run_with,
    )
    assert january.success and february.success
    rows = project.predictions.read_month(2024, 2).num_rows
    assert project.warehouse.count_rows(FEBRUARY) == rows  # the deployment's table

    # Through the instance API ...
    run = instance.get_run_by_id(february.run_id)
    assert run.status == dg.DagsterRunStatus.SUCCESS and run.tags["dagster/partition"] == SCORE_KEY
    assert {r.run_id for r in instance.get_runs()} == {january.run_id, february.run_id}
    materialization = instance.get_latest_materialization_event(project.key("prediction_table"))
    assert materialization.run_id == february.run_id
    assert materialization.asset_materialization.partition == SCORE_KEY
    assert materialization.asset_materialization.metadata["dagster/row_count"].value == rows
    assert instance.get_materialized_partitions(project.key("raw_trips")) == {TRAIN_KEY, SCORE_KEY}

    # ... and straight from the tables dagster-postgres wrote.
    assert query(dagster_db, "SELECT status, partition FROM runs WHERE run_id = %s", (february.run_id,)) == [
        ("SUCCESS", SCORE_KEY)
    ]
    materializations = query(
        dagster_db,
        "SELECT asset_key, partition FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'"
        " ORDER BY id",
        (february.run_id,),
    )
    # trip_statistics is written by raw_trips' step even when not selected, and recorded after it.
    written = ["raw_trips", "trip_statistics", *ALL_ASSETS[1:]]
    assert materializations == [(project.key(asset).to_string(), SCORE_KEY) for asset in written]
    [(event,)] = query(
        dagster_db,
        "SELECT event FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'"
        " AND asset_key = %s",
        (february.run_id, project.key("prediction_table").to_string()),
    )
    assert f'"{SCORE_KEY}"' in event and '"dagster/row_count"' in event
    run_success = dg.DagsterEventType.RUN_SUCCESS.value  # stored under its legacy name, PIPELINE_SUCCESS
    assert query(
        dagster_db,
        "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
        (february.run_id, run_success),
    ) == [(1,)]
