"""The queryable predictions tables other applications read (the seed's "write predictions to a DB"), one per
deployment (`Settings.table`) in one database.

Two backends, chosen by the URL's scheme, with one table definition (`COLUMNS`):
- `duckdb:///path/to/file.duckdb`: an embedded file (the default, for local development and tests);
- `postgresql://user:password@host:port/db?sslmode=require`: the production table. Credentials come only from
  the URL (in production from the DEPLOY_ASSETS_PREDICTIONS_DB variable); query parameters go to libpq as they are.

Each month is replaced in one transaction (delete + insert), so a re-run never duplicates rows and a reader
never sees a half-loaded month. A month loads from a table in memory (`replace_month`) or straight from its
stored Parquet object (`replace_month_from_parquet`, flat memory). Postgres loads rows with COPY FROM STDIN of
CSV written by Arrow, batch by batch, and serializes concurrent replacements of the same month with a
transaction-scoped advisory lock.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field
from upath import UPath

from deploy_assets.core.months import Month
from deploy_assets.core.objects import iter_parquet
from deploy_assets.settings import DUCKDB_PREFIX

TABLE = "trip_predictions"  # the shipped yellow deployment's (its defs.yaml), and a bare warehouse's
# DuckDB's buffer pool otherwise grows to 80% of RAM while it loads a month (1.4 GiB for 30M rows); under this
# limit it spills to disk and the load step stays flat (0.6 GiB peak at 30M rows, about as fast).
DUCKDB_MEMORY_LIMIT = "512MB"
POSTGRES_SCHEMES = ("postgresql", "postgres")

# (name, SQL type) of every column, in table order; the same DDL is valid in DuckDB and PostgreSQL. Names are
# unquoted, so PostgreSQL folds them to lower case and readers write them in any case in both databases.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("month", "DATE NOT NULL"),
    ("ride_id", "VARCHAR NOT NULL"),
    ("tpep_pickup_datetime", "TIMESTAMP"),
    ("PULocationID", "INTEGER"),
    ("DOLocationID", "INTEGER"),
    ("actual_duration", "DOUBLE PRECISION"),
    ("predicted_duration", "DOUBLE PRECISION"),
    ("diff", "DOUBLE PRECISION"),
    ("model_version", "VARCHAR"),
    ("prediction_adjusted", "BOOLEAN"),
)
COLUMN_NAMES = tuple(name for name, _ in COLUMNS)
PREDICTION_COLUMNS = COLUMN_NAMES[1:]  # what a predictions table brings; `month` is the partition's
_COLUMN_LIST = ", ".join(COLUMN_NAMES)



def create_table(table: str) -> str:
    return f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(f'{name} {kind}' for name, kind in COLUMNS)})"


def add_adjusted(table: str) -> str:
    """A table created before the output policy flagged adjusted predictions gets the column (NULL in its older rows)."""
    return f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS prediction_adjusted BOOLEAN"


def count_month(table: str, placeholder: str) -> str:
    return f"SELECT count(*) FROM {table} WHERE month = {placeholder}"


def redact_url(url: str) -> str:
    """`url` with its password replaced by `***` (for logs and metadata)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


class _DuckDBTable:
    def __init__(self, path: str, table: str):
        self.path, self.table = path, table

    def _connect(self):
        import duckdb

        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        connection = duckdb.connect(self.path)
        connection.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        connection.execute(create_table(self.table))
        connection.execute(add_adjusted(self.table))
        return connection

    def replace_month(self, month: Month, predictions: pa.Table) -> int:
        return self._replace(month, predictions)

    def replace_month_from_parquet(self, month: Month, source: UPath) -> int:
        # DuckDB reads a local file itself (in parallel); any other store is streamed to it by Arrow batches.
        if source.protocol in ("", "file", "local"):
            return self._replace(month, "read_parquet(?)", [str(source.path)])
        return self._replace(month, _batch_reader(source))

    def _replace(self, month: Month, rows, rows_parameters: list | None = None) -> int:
        """Delete + insert in one transaction; `rows` is an Arrow table/reader or a table function (SQL)."""
        with self._connect() as connection:
            if not isinstance(rows, str):
                connection.register("incoming", rows)
                rows = "incoming"
            connection.execute("BEGIN TRANSACTION")
            try:
                connection.execute(f"DELETE FROM {self.table} WHERE month = ?", [month.first_day])
                connection.execute(
                    f"INSERT INTO {self.table} ({_COLUMN_LIST})"
                    f" SELECT CAST(? AS DATE), {', '.join(PREDICTION_COLUMNS)} FROM {rows}",
                    [month.first_day, *(rows_parameters or [])],
                )
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            return connection.execute(count_month(self.table, "?"), [month.first_day]).fetchone()[0]

    def count_rows(self, month: Month) -> int:
        with self._connect() as connection:
            return connection.execute(count_month(self.table, "?"), [month.first_day]).fetchone()[0]


class _PostgresTable:
    BATCH_ROWS = 500_000  # rows per COPY statement: bounds the CSV buffer (~50 MB), not the transaction

    def __init__(self, url: str, table: str):
        self.url, self.table = url, table
        # Advisory locks (lock_key, 0): creating the table; (lock_key, YYYYMM): replacing that month of it.
        self.lock_key = zlib.crc32(table.encode()) & 0x7FFFFFFF

    def _connect(self):
        import psycopg2

        connection = psycopg2.connect(self.url)
        try:
            # Only when missing: CREATE INDEX takes a SHARE lock on the table even when the index exists, which
            # would make every writer wait for every other; two concurrent creations would collide without the lock.
            with connection, connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, 0)", (self.lock_key,))
                cursor.execute("SELECT to_regclass(%s) IS NULL", (self.table,))
                if cursor.fetchone()[0]:
                    cursor.execute(create_table(self.table))
                    cursor.execute(f"CREATE INDEX {self.table}_month ON {self.table} (month)")
                else:  # only when missing: ALTER TABLE locks out readers even when it changes nothing
                    cursor.execute(
                        "SELECT count(*) FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
                        (self.table, "prediction_adjusted"),
                    )
                    if not cursor.fetchone()[0]:
                        cursor.execute(add_adjusted(self.table))
        except BaseException:
            connection.close()
            raise
        return connection

    def replace_month(self, month: Month, predictions: pa.Table) -> int:
        # Fails on a missing column before the transaction starts.
        rows = predictions.select(list(PREDICTION_COLUMNS))
        return self._replace(month, rows.to_batches(max_chunksize=self.BATCH_ROWS))

    def replace_month_from_parquet(self, month: Month, source: UPath) -> int:
        _check_columns(pq.ParquetFile(source.path, filesystem=source.fs).schema_arrow, source)
        return self._replace(month, iter_parquet(source, PREDICTION_COLUMNS, self.BATCH_ROWS))

    def _replace(self, month: Month, batches: Iterable[pa.RecordBatch]) -> int:
        """Delete + COPY batch by batch in one transaction; the month comes from the partition."""
        import pyarrow.csv as csv

        copy = f"COPY {self.table} ({_COLUMN_LIST}) FROM STDIN WITH (FORMAT csv)"
        month_value = pa.scalar(month.first_day, pa.date32())
        connection = self._connect()
        try:
            with connection, connection.cursor() as cursor:  # one transaction: commit on success, else rollback
                # Two replacements of one month would otherwise both delete, then both insert (duplicates).
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", (self.lock_key, month.year * 100 + month.month))
                cursor.execute(f"DELETE FROM {self.table} WHERE month = %s", (month.first_day,))
                for batch in batches:
                    rows = pa.Table.from_batches([batch]).select(list(PREDICTION_COLUMNS))
                    rows = rows.add_column(0, "month", pa.repeat(month_value, rows.num_rows))
                    buffer = io.BytesIO()
                    # Strings are always quoted and nulls never: CSV COPY reads "" as '' and an empty field as NULL.
                    csv.write_csv(rows, buffer, csv.WriteOptions(include_header=False))
                    buffer.seek(0)
                    cursor.copy_expert(copy, buffer)
                cursor.execute(count_month(self.table, "%s"), (month.first_day,))
                return cursor.fetchone()[0]
        finally:
            connection.close()

    def count_rows(self, month: Month) -> int:
        connection = self._connect()
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(count_month(self.table, "%s"), (month.first_day,))
                return cursor.fetchone()[0]
        finally:
            connection.close()


def _check_columns(schema: pa.Schema, source: UPath) -> None:
    missing = [name for name in PREDICTION_COLUMNS if schema.get_field_index(name) < 0]
    if missing:
        raise ValueError(f"{source}: no column {', '.join(missing)} to load")


def _batch_reader(source: UPath) -> pa.RecordBatchReader:
    """The object's prediction columns as a stream of batches DuckDB scans without holding the month."""
    schema = pq.ParquetFile(source.path, filesystem=source.fs).schema_arrow
    _check_columns(schema, source)
    columns = pa.schema([schema.field(name) for name in PREDICTION_COLUMNS])
    return pa.RecordBatchReader.from_batches(columns, iter_parquet(source, PREDICTION_COLUMNS))


def _table_at(url: str, table: str) -> _DuckDBTable | _PostgresTable:
    if url.startswith(DUCKDB_PREFIX):
        return _DuckDBTable(url[len(DUCKDB_PREFIX) :], table)
    if urlsplit(url).scheme in POSTGRES_SCHEMES:
        return _PostgresTable(url, table)
    raise ValueError(
        f"unsupported predictions database URL {redact_url(url)!r}: expected {DUCKDB_PREFIX}PATH"
        " or postgresql://USER:PASSWORD@HOST:PORT/DB"
    )


class PredictionWarehouse(dg.ConfigurableResource):
    """Loads a month of predictions into `table` at `url` (DuckDB file or PostgreSQL). Bound once for every
    deployment; each deployment's step loads its own table (`with_table`)."""

    url: str = Field(
        description="duckdb:///path/to/file.duckdb or postgresql://user:password@host:port/db[?sslmode=require]",
    )
    table: str = Field(default=TABLE, description="the table a month is loaded into")

    def with_table(self, table: str) -> PredictionWarehouse:
        return PredictionWarehouse(url=self.url, table=table)

    @property
    def display_url(self) -> str:
        """The URL without its password: what may go into logs and asset metadata."""
        return redact_url(self.url)

    def replace_month(self, month: Month | date, predictions: pa.Table) -> int:
        """Replace every row of `month` with `predictions` in one transaction; returns the rows now stored."""
        return _table_at(self.url, self.table).replace_month(Month.of(month), predictions)

    def replace_month_from_parquet(self, month: Month | date, source: UPath | str) -> int:
        """Replace every row of `month` with the rows of a stored predictions object (e.g.
        `PredictionStore.month_path`), in one transaction, without holding the month in memory; returns the
        rows now stored. DuckDB reads a local file directly (`read_parquet`); objects elsewhere (S3) and
        PostgreSQL's COPY are fed by Arrow record batches."""
        return _table_at(self.url, self.table).replace_month_from_parquet(Month.of(month), UPath(source))

    def count_rows(self, month: Month | date) -> int:
        return _table_at(self.url, self.table).count_rows(Month.of(month))
