"""The queryable `trip_predictions` table other applications read (the seed's "write predictions to a DB").

An embedded DuckDB file by default. Each month is replaced in one transaction (delete + insert), so a re-run
never duplicates rows and a reader never sees a half-loaded month.
"""

from __future__ import annotations

from datetime import date

import dagster as dg
import pyarrow as pa
from pydantic import Field

from deploy_assets.resources.storage import REPO_DATA_DIR

TABLE = "trip_predictions"
DUCKDB_PREFIX = "duckdb:///"

_CREATE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    month DATE NOT NULL,
    ride_id VARCHAR NOT NULL,
    tpep_pickup_datetime TIMESTAMP,
    PULocationID INTEGER,
    DOLocationID INTEGER,
    actual_duration DOUBLE,
    predicted_duration DOUBLE,
    diff DOUBLE,
    model_version VARCHAR
)
"""


class PredictionWarehouse(dg.ConfigurableResource):
    """Loads a month of predictions into the `trip_predictions` table at `url` (`duckdb:///path`)."""

    url: str = Field(
        default=f"{DUCKDB_PREFIX}{REPO_DATA_DIR / 'predictions.duckdb'}",
        description="duckdb:///path/to/file.duckdb",
    )

    def _connect(self):
        import duckdb

        if not self.url.startswith(DUCKDB_PREFIX):
            raise ValueError(f"unsupported predictions database URL {self.url!r}: expected {DUCKDB_PREFIX}PATH")
        path = self.url[len(DUCKDB_PREFIX) :]
        from pathlib import Path

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(path)

    def replace_month(self, month: date, predictions: pa.Table) -> int:
        """Replace every row of `month` with `predictions` in one transaction; returns the rows now stored."""
        with self._connect() as connection:
            connection.execute(_CREATE)
            connection.execute("BEGIN TRANSACTION")
            try:
                connection.execute(f"DELETE FROM {TABLE} WHERE month = ?", [month])
                connection.register("incoming", predictions)
                connection.execute(
                    f"INSERT INTO {TABLE} SELECT CAST(? AS DATE), ride_id, tpep_pickup_datetime, PULocationID,"
                    " DOLocationID, actual_duration, predicted_duration, diff, model_version FROM incoming",
                    [month],
                )
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            return connection.execute(f"SELECT count(*) FROM {TABLE} WHERE month = ?", [month]).fetchone()[0]

    def count_rows(self, month: date) -> int:
        with self._connect() as connection:
            connection.execute(_CREATE)
            return connection.execute(f"SELECT count(*) FROM {TABLE} WHERE month = ?", [month]).fetchone()[0]
