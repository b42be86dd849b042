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


def test_a_table_created_before_the_adjusted_flag_gains_it_and_loads(tmp_path, predictions):
    path = tmp_path / "p.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute(
            "CREATE TABLE trip_predictions (month DATE NOT NULL, ride_id VARCHAR NOT NULL, tpep_pickup_datetime TIMESTAMP,"
            " PULocationID INTEGER, DOLocationID INTEGER, actual_duration DOUBLE, predicted_duration DOUBLE,"
            " diff DOUBLE, model_version VARCHAR)"
        )
        connection.execute("INSERT INTO trip_predictions (month, ride_id) VALUES (DATE '2024-01-01', 'old')")
    adjusted = predictions.set_column(
        predictions.schema.get_field_index("prediction_adjusted"), "prediction_adjusted",
        pa.array([i % 2 == 0 for i in range(predictions.num_rows)]),
    )
    warehouse = PredictionWarehouse(url=f"duckdb:///{path}")
    assert warehouse.replace_month(date(2024, 2, 1), adjusted) == predictions.num_rows
    with duckdb.connect(str(path), read_only=True) as connection:
        flags = connection.execute(
            "SELECT month, count(*), count_if(prediction_adjusted) FROM trip_predictions GROUP BY month ORDER BY month"
        ).fetchall()
    assert flags == [(date(2024, 1, 1), 1, None), (date(2024, 2, 1), predictions.num_rows, (predictions.num_rows + 1) // 2)]


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


# --- the landing zone's listing (what the landing sensor reports from) ----------------------------------------------


def test_landing_listing_names_every_object_relative_to_the_prefix_with_its_md5_oldest_first(tmp_path):
    import hashlib
    import os

    from deploy_assets.resources import LandingZone

    folder = tmp_path / "landing"
    objects = {
        "yellow_tripdata_2024-02.parquet": (b"february", 1_700_000_300),
        "yellow_tripdata_2024-01.parquet": (b"january", 1_700_000_100),
        "archive/2023/yellow_tripdata_2023-12.parquet": (b"december", 1_700_000_200),
        "notes 2024-01-01T00:00:00.txt": (b"", 1_700_000_400),
        ".hidden.tmp": (b"partial upload", 1_700_000_000),
    }
    for name, (data, mtime) in objects.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))

    listed = LandingZone(uri=str(folder)).list_files()

    assert [f.name for f in listed] == sorted(objects, key=lambda name: objects[name][1])
    for landed in listed:
        data, mtime = objects[landed.name]
        assert landed.etag == hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert landed.size == len(data)
        assert landed.last_modified.timestamp() == mtime and landed.last_modified.tzinfo is not None
        assert landed.uri == str(folder / landed.name)
    assert LandingZone(uri=str(tmp_path / "nothing-here")).list_files() == []


def test_landing_listing_reuses_a_known_etag_only_for_an_unchanged_object(tmp_path):
    """`known` (the previous listing) spares hashing every object on every tick: an object whose size and
    modification time are unchanged keeps its known ETag; any other is hashed again."""
    import dataclasses
    import hashlib
    import os

    from deploy_assets.resources import LandingZone

    folder = tmp_path / "landing"
    folder.mkdir()
    path = folder / "yellow_tripdata_2024-01.parquet"
    path.write_bytes(b"january")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    landing = LandingZone(uri=str(folder))
    [first] = landing.list_files()

    # A known ETag for the same size and time is taken as is (the sentinel proves no re-hash happened).
    sentinel = dataclasses.replace(first, etag="known-etag")
    assert [f.etag for f in landing.list_files(known={first.name: sentinel})] == ["known-etag"]

    # Same size, other bytes, other time: hashed again.
    path.write_bytes(b"JANUARY")
    os.utime(path, (1_700_000_100, 1_700_000_100))
    [changed] = landing.list_files(known={first.name: sentinel})
    assert changed.etag == hashlib.md5(b"JANUARY", usedforsecurity=False).hexdigest()

    # Same time, other size: hashed again.
    path.write_bytes(b"january, longer")
    os.utime(path, (1_700_000_100, 1_700_000_100))
    [longer] = landing.list_files(known={first.name: dataclasses.replace(changed, etag="stale")})
    assert longer.etag == hashlib.md5(b"january, longer", usedforsecurity=False).hexdigest()
