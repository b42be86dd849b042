"""Atomic object writes and the transactional predictions table."""

from __future__ import annotations

from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deploy_assets.core.features import clean_trips
from deploy_assets.core.generate import generate_month
from deploy_assets.core.model import train_duration_model
from deploy_assets.core.scoring import score_trips
from deploy_assets.resources import PredictionStore, PredictionWarehouse


@pytest.fixture(scope="module")
def predictions() -> pa.Table:
    cleaned = clean_trips(generate_month(2024, 2, 5_000), 2024, 2).table
    return score_trips(cleaned, train_duration_model([cleaned]).model, "3")


def test_a_failed_write_leaves_the_previous_object_intact_and_no_temporary(tmp_path, predictions, monkeypatch):
    store = PredictionStore(uri=str(tmp_path))
    store.write_month(2024, 2, predictions)

    def crash_mid_write(table, sink, **kwargs):
        sink.write(b"PAR1 partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", crash_mid_write)
    with pytest.raises(OSError, match="disk full"):
        store.write_month(2024, 2, predictions.slice(0, 10))
    monkeypatch.undo()

    assert [p.name for p in store.month_path(2024, 2).parent.iterdir()] == ["predictions.parquet"]
    assert store.read_month(2024, 2).equals(predictions)


def test_replacing_a_month_in_the_table_never_duplicates_rows(tmp_path, predictions):
    warehouse = PredictionWarehouse(url=f"duckdb:///{tmp_path / 'p.duckdb'}")
    assert warehouse.replace_month(date(2024, 2, 1), predictions) == predictions.num_rows
    assert warehouse.replace_month(date(2024, 2, 1), predictions.slice(0, 100)) == 100
    assert warehouse.replace_month(date(2024, 3, 1), predictions) == predictions.num_rows
    assert warehouse.count_rows(date(2024, 2, 1)) == 100


def test_a_failing_insert_rolls_back_to_the_previous_rows(tmp_path, predictions):
    warehouse = PredictionWarehouse(url=f"duckdb:///{tmp_path / 'p.duckdb'}")
    warehouse.replace_month(date(2024, 2, 1), predictions)
    broken = predictions.drop_columns(["diff"])
    with pytest.raises(duckdb.Error):
        warehouse.replace_month(date(2024, 2, 1), broken)
    assert warehouse.count_rows(date(2024, 2, 1)) == predictions.num_rows


def test_unsupported_database_url_is_a_clear_error(tmp_path, predictions):
    with pytest.raises(ValueError, match="unsupported predictions database URL"):
        PredictionWarehouse(url="mysql://host/db").replace_month(date(2024, 2, 1), predictions)
