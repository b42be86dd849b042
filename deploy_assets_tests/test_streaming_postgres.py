"""PostgreSQL loads a month straight from its Parquet object (COPY by batches) exactly as from a table."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest
from upath import UPath

from deploy_assets.core.features import clean_trips
from deploy_assets.core.generate import generate_month
from deploy_assets.core.model import train_duration_model
from deploy_assets.core.scoring import score_trips
from deploy_assets.resources import PredictionWarehouse
from deploy_assets.core.objects import write_parquet_atomic
from deploy_assets.resources.warehouse import _PostgresTable
from deploy_assets_tests.postgres_server import connect, fresh_database, postgres_url  # noqa: F401

pytestmark = [pytest.mark.servers, pytest.mark.timeout(300)]
MONTH = date(2024, 2, 1)


@pytest.fixture(scope="module")
def predictions() -> pa.Table:
    cleaned = clean_trips(generate_month(2024, 2, 5_000), 2024, 2).table
    return score_trips(cleaned, train_duration_model([cleaned]).model, "3")


def rows(url: str) -> list[tuple]:
    connection = connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM trip_predictions ORDER BY month, ride_id")
            return cursor.fetchall()
    finally:
        connection.close()


def test_loading_from_the_parquet_object_equals_loading_the_table(
    postgres_url, predictions, tmp_path, monkeypatch  # noqa: F811
):
    monkeypatch.setattr(_PostgresTable, "BATCH_ROWS", 1_000)  # several COPY statements in the one transaction
    object_path = UPath(tmp_path / "predictions.parquet")
    write_parquet_atomic(object_path, predictions)
    from_table = PredictionWarehouse(url=fresh_database(postgres_url, "from_table"))
    from_object = PredictionWarehouse(url=fresh_database(postgres_url, "from_object"))

    assert from_table.replace_month(MONTH, predictions) == predictions.num_rows
    from_object.replace_month(MONTH, predictions.slice(0, 10))
    assert from_object.replace_month_from_parquet(MONTH, object_path) == predictions.num_rows
    assert rows(from_object.url) == rows(from_table.url)

    broken = UPath(tmp_path / "broken.parquet")
    write_parquet_atomic(broken, predictions.drop_columns(["diff"]))
    with pytest.raises(ValueError, match="no column diff"):
        from_object.replace_month_from_parquet(MONTH, broken)
    assert from_object.count_rows(MONTH) == predictions.num_rows
