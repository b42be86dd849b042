"""The streamed paths (tiny batches) give what the in-memory paths give: ingest, statistics, training, writes,
table loads. Fast tier: no servers beyond an in-process moto S3 endpoint."""

from __future__ import annotations

import io
import socket
from datetime import date

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from upath import UPath

from deploy_assets.core import model as model_module
from deploy_assets.core.batches import ParquetBatchWriter, iter_parquet_batches, parquet_batch_source
from deploy_assets.core.features import CLEAN_SCHEMA, clean_trips
from deploy_assets.core.generate import generate_month, generate_month_batches
from deploy_assets.core.ingest import ingest_batches, ingest_file
from deploy_assets.core.model import (
    DEVIATION_BOUND,
    ZonePairDurationRegressor,
    ZonePairStatistics,
    evaluate,
    evaluate_batches,
    holdout_batches,
    holdout_start,
    rmse,
    train_duration_model,
    train_from_batches,
)
from deploy_assets.core.schema import TLC_YELLOW_SCHEMA, InvalidTripData, read_trips
from deploy_assets.core.scoring import score_trips
from deploy_assets.resources import PredictionStore, PredictionWarehouse
from deploy_assets.core.objects import batch_source, parquet_writer_atomic, write_parquet_atomic

BATCH = 1_000


def parquet_bytes(table: pa.Table, **options) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    return sink.getvalue()


def dirty_month(year: int = 2024, month: int = 1, rows: int = 6_000) -> pa.Table:
    """A generated month plus nulls in required columns (the generator makes every other kind of dirt)."""
    table = generate_month(year, month, rows)
    mask = np.zeros(rows, dtype=bool)
    mask[::97] = True
    zones = pa.array(table["DOLocationID"].to_numpy(), mask=mask)
    return table.set_column(table.schema.get_field_index("DOLocationID"), "DOLocationID", zones)


def stream_clean(table: pa.Table, year: int, month: int, row_group_rows: int = 1_500):
    sink = io.BytesIO()
    with ParquetBatchWriter(sink, CLEAN_SCHEMA, row_group_rows=row_group_rows) as writer:
        ingested = ingest_file(io.BytesIO(parquet_bytes(table)), "test", year, month, writer, batch_rows=BATCH)
    return ingested, sink.getvalue()


# --- ingest ------------------------------------------------------------------------------------------------------


def test_streamed_ingest_writes_the_in_memory_cleaned_month_byte_for_byte():
    table = dirty_month()
    expected = clean_trips(read_trips(io.BytesIO(parquet_bytes(table)), "test"), 2024, 1)
    ingested, written = stream_clean(table, 2024, 1)

    assert written == parquet_bytes(expected.table, row_group_size=1_500)
    assert ingested.rows_read == expected.rows_read == table.num_rows
    assert ingested.rows_kept == expected.rows_kept
    assert ingested.dropped == expected.dropped
    assert ingested.dropped["null_required_value"] > 0 and ingested.dropped["pickup_outside_month"] > 0
    assert ingested.other_month == expected.other_month == "2023-01"
    assert ingested.dropped_share == pytest.approx(1 - expected.rows_kept / expected.rows_read)
    assert ingested.schema.equals(CLEAN_SCHEMA)


def test_streamed_ingest_accepts_real_tlc_variants():
    """int64 zone ids, `airport_fee` in lower case, extra 2025 columns, nanosecond timestamps."""
    table = generate_month(2025, 2, 4_000)
    table = table.rename_columns([("airport_fee" if n == "Airport_fee" else n) for n in table.column_names])
    for name in ("PULocationID", "DOLocationID"):
        table = table.set_column(table.schema.get_field_index(name), name, pc.cast(table[name], pa.int64()))
    for name in ("tpep_pickup_datetime", "tpep_dropoff_datetime"):
        table = table.set_column(table.schema.get_field_index(name), name, pc.cast(table[name], pa.timestamp("ns")))
    table = table.append_column("cbd_congestion_fee", pa.array(np.full(table.num_rows, 0.75)))
    expected = clean_trips(read_trips(io.BytesIO(parquet_bytes(table)), "test"), 2025, 2)

    ingested, written = stream_clean(table, 2025, 2)
    assert pq.read_table(io.BytesIO(written)).equals(expected.table)
    assert ingested.dropped == expected.dropped


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "not a readable Parquet file"),
        (parquet_bytes(generate_month(2024, 1, 10)).replace(b"PULocationID", b"PULocationXX"), "PULocationID"),
        (parquet_bytes(generate_month(2024, 1, 10).slice(0, 0)), "0 rows"),
    ],
    ids=["zero-bytes", "missing-column", "empty"],
)
def test_streamed_ingest_raises_the_same_named_errors(content, expected):
    with pytest.raises(InvalidTripData, match=expected):
        ingest_file(io.BytesIO(content), "landing/yellow_tripdata_2024-01.parquet", 2024, 1, _Discard())


class _Discard:
    def write(self, data) -> None:
        pass


def test_a_month_refused_after_ingest_stores_nothing(tmp_path):
    target = UPath(tmp_path / "raw_trips" / "2024-01-01.parquet")
    with pytest.raises(RuntimeError, match="too dirty"):
        with parquet_writer_atomic(target, CLEAN_SCHEMA) as writer:
            ingested = ingest_file(io.BytesIO(parquet_bytes(dirty_month())), "test", 2024, 1, writer, BATCH)
            if ingested.dropped_share > 0.01:
                raise RuntimeError("too dirty")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_ingest_statistics_are_those_of_the_kept_rides():
    table = dirty_month()
    cleaned = clean_trips(table, 2024, 1).table
    ingested = ingest_batches(table.to_batches(max_chunksize=BATCH), 2024, 1, _Discard())
    whole = ZonePairStatistics.from_table(cleaned)
    np.testing.assert_array_equal(ingested.statistics.count, whole.count)
    for name in ("mean_distance", "mean_duration", "distance_m2", "co_moment"):
        np.testing.assert_allclose(getattr(ingested.statistics, name), getattr(whole, name), rtol=1e-9, atol=1e-9)
    pickup_counts, dropoff_counts = ingested.statistics.zone_counts()
    np.testing.assert_array_equal(pickup_counts, np.bincount(cleaned["PULocationID"].to_numpy(), minlength=266))
    np.testing.assert_array_equal(dropoff_counts, np.bincount(cleaned["DOLocationID"].to_numpy(), minlength=266))


# --- statistics and training ---------------------------------------------------------------------------------------


def reference_fit(pickup, dropoff, distance, y, smoothing=5.0):
    """ZonePairDurationRegressor.fit as it was before statistics (row-wise closed form)."""
    codes = pickup.astype(np.int64) * 266 + dropoff.astype(np.int64)
    counts = np.bincount(codes, minlength=266**2).astype(np.float64)
    seen = counts > 0
    safe = np.where(seen, counts, 1.0)
    mean_distance = np.bincount(codes, weights=distance, minlength=266**2) / safe
    mean_duration = np.bincount(codes, weights=y, minlength=266**2) / safe
    centred = distance - mean_distance[codes]
    slope = float(centred @ (y - mean_duration[codes])) / float(centred @ centred)
    pair_intercept = mean_duration - slope * mean_distance
    overall = float(np.average(pair_intercept[seen], weights=counts[seen]))
    shrunk = (counts * pair_intercept + smoothing * overall) / (counts + smoothing)
    return np.where(seen, np.nan_to_num(shrunk, nan=overall), overall), slope, overall


def reference_training(months: list[pa.Table], holdout_fraction=0.2, smoothing=5.0):
    """train_duration_model as it was: np.quantile split, concatenated rows, fit, RMSEs on tables."""
    *older, last = months
    pickup = last["tpep_pickup_datetime"].cast(pa.int64()).to_numpy()
    holdout = pickup >= np.quantile(pickup, 1.0 - holdout_fraction, method="higher")
    train = pa.concat_tables([*older, last.filter(pa.array(~holdout))])
    arrays = [train[name].to_numpy() for name in ("PULocationID", "DOLocationID", "trip_distance", "duration")]
    intercepts, slope, overall = reference_fit(*arrays, smoothing=smoothing)
    return intercepts, slope, overall, train, last.filter(pa.array(holdout))


def cleaned_month(month: int, rows: int = 6_000, seed: int = 0) -> pa.Table:
    return clean_trips(generate_month(2024, month, rows, seed=seed), 2024, month).table


def assert_same_coefficients(model: ZonePairDurationRegressor, intercepts, slope, overall):
    np.testing.assert_allclose(model.intercept_by_pair_, intercepts, rtol=1e-10, atol=1e-10)
    assert model.slope_ == pytest.approx(slope, rel=1e-12)
    assert model.intercept_ == pytest.approx(overall, rel=1e-12)


def test_fit_gives_the_row_wise_closed_form_coefficients():
    clean = cleaned_month(1)
    arrays = [clean[name].to_numpy() for name in ("PULocationID", "DOLocationID", "trip_distance", "duration")]
    model = ZonePairDurationRegressor(robust=False).fit(np.column_stack(arrays[:3]), arrays[3])
    assert_same_coefficients(model, *reference_fit(*arrays))


def test_robust_fit_is_the_closed_form_on_distances_bounded_around_their_pair_mean():
    clean = cleaned_month(1)
    pickup, dropoff, distance, duration = (
        clean[name].to_numpy() for name in ("PULocationID", "DOLocationID", "trip_distance", "duration")
    )
    distance = distance.copy()
    distance[::500] += 40.0  # wrong readings a ride rule would not see
    model = ZonePairDurationRegressor().fit(np.column_stack([pickup, dropoff, distance]), duration)

    codes = pickup.astype(np.int64) * 266 + dropoff
    counts = np.bincount(codes, minlength=266**2)
    means = np.bincount(codes, weights=distance, minlength=266**2) / np.maximum(counts, 1)
    spread = np.sqrt(np.bincount(codes, weights=(distance - means[codes]) ** 2, minlength=266**2) / np.maximum(counts, 1))
    several = counts >= 2
    order = np.argsort(spread[several])
    weights = np.cumsum(counts[several][order])
    half_width = DEVIATION_BOUND * spread[several][order][np.searchsorted(weights, weights[-1] / 2)]
    bounded = np.clip(distance, means[codes] - half_width, means[codes] + half_width)
    assert_same_coefficients(model, *reference_fit(pickup, dropoff, bounded, duration))
    assert model.rides_bounded_ == int((bounded != distance).sum()) >= len(distance[::500])


def test_statistics_merged_over_batches_and_months_fit_the_concatenated_rows():
    months = [cleaned_month(1), cleaned_month(2, seed=1)]
    rows = pa.concat_tables(months)
    merged = ZonePairStatistics.empty()
    for month in months:
        merged += ZonePairStatistics.from_batches(month.to_batches(max_chunksize=BATCH))
    stored = ZonePairStatistics.from_stored(pa.Table.from_pylist(merged.to_table().to_pylist()))

    arrays = [rows[name].to_numpy() for name in ("PULocationID", "DOLocationID", "trip_distance", "duration")]
    for robust in (False, True):
        fitted = ZonePairDurationRegressor(smoothing=3.0, robust=robust).fit(np.column_stack(arrays[:3]), arrays[3])
        for statistics in (merged, stored):
            from_statistics = ZonePairDurationRegressor.from_statistics(
                statistics, lambda: rows.to_batches(max_chunksize=BATCH), smoothing=3.0, robust=robust
            )
            assert_same_coefficients(from_statistics, fitted.intercept_by_pair_, fitted.slope_, fitted.intercept_)
            assert from_statistics.rides_bounded_ == fitted.rides_bounded_
    assert merged.rides == rows.num_rows
    # one batch is the whole month: the same arithmetic as fit, bit for bit
    whole = ZonePairDurationRegressor.from_statistics(ZonePairStatistics.from_table(rows), lambda: [rows], smoothing=3.0)
    np.testing.assert_array_equal(whole.intercept_by_pair_, fitted.intercept_by_pair_)


def test_fitting_zero_rides_is_refused():
    with pytest.raises(ValueError, match="zero rides"):
        ZonePairDurationRegressor.from_statistics(ZonePairStatistics.empty(), robust=False)
    with pytest.raises(ValueError, match="the robust fit reads the rides again"):
        ZonePairDurationRegressor.from_statistics(ZonePairStatistics.empty())


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.01, 1.0])
def test_streamed_holdout_cutoff_is_the_quantile_of_the_in_memory_split(monkeypatch, fraction):
    rng = np.random.default_rng(3)
    pickup = rng.integers(0, 5_000, 10_007) * 1_000_003 + 1_700_000_000_000_000  # many ties
    table = pa.table({"tpep_pickup_datetime": pa.array(pickup.astype("datetime64[us]"))})
    expected = int(np.quantile(pickup, 1 - fraction, method="higher"))
    for bins in (1 << 22, 7):  # exact one-µs bins, and wide bins that need the third pass
        monkeypatch.setattr(model_module, "_CUTOFF_BINS", bins)
        source = parquet_batch_source(io.BytesIO(parquet_bytes(table)), batch_rows=BATCH)
        assert holdout_start(source, fraction) == expected
    assert holdout_start(parquet_batch_source(io.BytesIO(parquet_bytes(table))), 0.0) is None


def test_training_by_batches_equals_in_memory_training(tmp_path):
    months = [cleaned_month(1), cleaned_month(2, seed=1)]
    paths = []
    for index, month in enumerate(months):
        paths.append(UPath(tmp_path / f"{index}.parquet"))
        write_parquet_atomic(paths[-1], month)
    sources = [batch_source(path, batch_rows=BATCH) for path in paths]
    intercepts, slope, overall, train, holdout = reference_training(months, smoothing=5.0)

    recorded = [ZonePairStatistics.from_table(months[0]), None]
    for statistics in (None, recorded):
        trained = train_from_batches(sources, holdout_fraction=0.2, smoothing=5.0, statistics=statistics, robust=False)
        assert_same_coefficients(trained.model, intercepts, slope, overall)
        assert (trained.train_rows, trained.holdout_rows) == (train.num_rows, holdout.num_rows)
        assert trained.holdout_rmse == pytest.approx(evaluate(trained.model, holdout), rel=1e-12)
        assert trained.train_rmse == pytest.approx(evaluate(trained.model, train), rel=1e-12)

    in_memory = train_duration_model(months, robust=False)
    assert in_memory.holdout.equals(holdout)
    assert in_memory.holdout_rmse == pytest.approx(trained.holdout_rmse, rel=1e-12)
    # The robust fit by batches is the robust fit of the same rows in memory.
    robust = train_from_batches(sources, holdout_fraction=0.2, statistics=recorded)
    robust_in_memory = ZonePairDurationRegressor().fit(train.select(["PULocationID", "DOLocationID", "trip_distance"]).to_pandas(), train["duration"].to_numpy())
    assert_same_coefficients(robust.model, robust_in_memory.intercept_by_pair_, robust_in_memory.slope_, robust_in_memory.intercept_)
    assert robust.rides_bounded == robust_in_memory.rides_bounded_
    # the champion's RMSE on the same rides, streamed
    same_rides = pa.Table.from_batches(list(holdout_batches(sources[-1], trained.holdout_start)))
    assert same_rides.num_rows == holdout.num_rows
    assert evaluate_batches(trained.model, holdout_batches(sources[-1], trained.holdout_start)) == pytest.approx(
        rmse(holdout["duration"].to_numpy(), trained.model.predict_arrays(
            *(holdout[n].to_numpy() for n in ("PULocationID", "DOLocationID", "trip_distance"))
        )),
        rel=1e-12,
    )


def test_generated_batches_are_one_tlc_month_in_pickup_order():
    one = list(generate_month_batches(2024, 2, 5_000, chunk_rows=10_000))
    assert len(one) == 1 and one[0].equals(generate_month(2024, 2, 5_000))
    chunks = list(generate_month_batches(2024, 2, 25_000, chunk_rows=10_000))
    assert [c.num_rows for c in chunks] == [10_000, 10_000, 5_000]
    whole = pa.concat_tables(chunks)
    assert whole.schema == TLC_YELLOW_SCHEMA
    cleaned = clean_trips(whole, 2024, 2)
    assert 0.9 < cleaned.rows_kept / cleaned.rows_read < 0.99
    kept_pickup = cleaned.table["tpep_pickup_datetime"].cast(pa.int64()).to_numpy()
    assert np.all(np.diff(kept_pickup) >= 0)


# --- storage -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def predictions() -> pa.Table:
    cleaned = clean_trips(generate_month(2024, 2, 5_000), 2024, 2).table
    return score_trips(cleaned, train_duration_model([cleaned]).model, "3")


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, monkeypatch):
    import boto3

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    name = f"b{np.random.default_rng().integers(1 << 40)}"
    client.create_bucket(Bucket=name)
    return client, name


def test_s3_writes_go_straight_to_the_final_key_and_a_failure_keeps_the_old_object(
    bucket, s3_endpoint, predictions, monkeypatch
):
    client, name = bucket
    path = UPath(f"s3://{name}/p/predictions.parquet", endpoint_url=s3_endpoint)
    monkeypatch.setattr(type(path.fs), "mv", lambda *a, **k: pytest.fail("no copy + delete on S3"))
    write_parquet_atomic(path, predictions)
    assert pq.read_table(path.path, filesystem=path.fs).equals(predictions)

    # A multipart upload (5 MiB parts) that fails after its first parts: aborted, the old object stays.
    monkeypatch.setattr(path.fs, "default_block_size", 5 * 2**20)
    noise = pa.table({"x": np.random.default_rng(0).random(2_000_000)})
    with pytest.raises(RuntimeError, match="mid-upload"):
        with parquet_writer_atomic(path, noise.schema, row_group_rows=200_000, compression=None) as writer:
            for batch in noise.to_batches(max_chunksize=200_000):
                writer.write(batch)
            assert client.list_multipart_uploads(Bucket=name).get("Uploads"), "parts were uploaded"
            raise RuntimeError("mid-upload")
    assert not client.list_multipart_uploads(Bucket=name).get("Uploads")
    assert [o["Key"] for o in client.list_objects_v2(Bucket=name)["Contents"]] == ["p/predictions.parquet"]
    assert pq.read_table(path.path, filesystem=path.fs).equals(predictions)

    with parquet_writer_atomic(path, noise.schema, row_group_rows=200_000, compression=None) as writer:
        writer.write(noise)
    assert pq.read_table(path.path, filesystem=path.fs).equals(noise)


@pytest.mark.parametrize("where", ["local", "s3"])
def test_staged_predictions_are_invisible_until_published(where, tmp_path, predictions, request):
    if where == "s3":
        _, name = request.getfixturevalue("bucket")
        endpoint = request.getfixturevalue("s3_endpoint")
        store = PredictionStore(uri=f"s3://{name}/predictions", s3_endpoint_url=endpoint)
    else:
        store = PredictionStore(uri=str(tmp_path / "predictions"))
    store.write_month(2024, 2, predictions.slice(0, 10))

    with store.month_writer(2024, 2, predictions.schema, staging=True, row_group_rows=BATCH) as writer:
        for batch in predictions.to_batches(max_chunksize=300):
            writer.write(batch)
    assert store.read_month(2024, 2).num_rows == 10
    staged = pa.Table.from_batches(list(store.iter_month(2024, 2, batch_rows=BATCH, staging=True)))
    assert staged.equals(predictions)

    assert store.publish(2024, 2) == str(store.month_path(2024, 2))
    assert store.read_month(2024, 2).equals(predictions)
    assert not store.staging_path(2024, 2).exists()

    store.write_staging(2024, 2, predictions.slice(0, 5))
    store.discard_staging(2024, 2)
    assert not store.staging_path(2024, 2).exists()
    assert store.read_month(2024, 2).equals(predictions)


# --- warehouse -----------------------------------------------------------------------------------------------------


def table_rows(url: str, month: date) -> pa.Table:
    with duckdb.connect(url.removeprefix("duckdb:///")) as connection:
        query = f"SELECT * FROM trip_predictions WHERE month = '{month}' ORDER BY ride_id"
        return connection.sql(query).to_arrow_table()


def test_loading_the_table_from_the_parquet_object_equals_loading_the_table(tmp_path, predictions):
    store = PredictionStore(uri=str(tmp_path / "predictions"))
    store.write_month(2024, 2, predictions)
    from_table = PredictionWarehouse(url=f"duckdb:///{tmp_path / 'a.duckdb'}")
    from_object = PredictionWarehouse(url=f"duckdb:///{tmp_path / 'b.duckdb'}")
    month = date(2024, 2, 1)

    assert from_table.replace_month(month, predictions) == predictions.num_rows
    assert from_object.replace_month_from_parquet(month, store.month_path(2024, 2)) == predictions.num_rows
    assert from_object.replace_month_from_parquet(month, store.month_path(2024, 2)) == predictions.num_rows
    assert table_rows(from_object.url, month).equals(table_rows(from_table.url, month))

    # an object not on the local disk is streamed to DuckDB by batches
    remote = UPath("memory://predictions/2024-02.parquet")
    write_parquet_atomic(remote, predictions)
    assert from_object.replace_month_from_parquet(month, remote) == predictions.num_rows
    assert table_rows(from_object.url, month).equals(table_rows(from_table.url, month))


def test_a_failing_load_from_parquet_keeps_the_previous_rows(tmp_path, predictions):
    warehouse = PredictionWarehouse(url=f"duckdb:///{tmp_path / 'p.duckdb'}")
    month = date(2024, 2, 1)
    warehouse.replace_month(month, predictions)
    local, remote = UPath(tmp_path / "broken.parquet"), UPath(f"memory://{tmp_path}/broken.parquet")
    for broken in (local, remote):
        write_parquet_atomic(broken, predictions.drop_columns(["diff"]))
    with pytest.raises(duckdb.Error):
        warehouse.replace_month_from_parquet(month, local)
    with pytest.raises(ValueError, match="no column diff"):
        warehouse.replace_month_from_parquet(month, remote)
    assert warehouse.count_rows(month) == predictions.num_rows


def test_stored_objects_read_by_batches(tmp_path, predictions):
    path = UPath(tmp_path / "p.parquet")
    write_parquet_atomic(path, predictions)
    batches = list(iter_parquet_batches(path.path, ["ride_id"], BATCH, filesystem=path.fs))
    assert max(b.num_rows for b in batches) <= BATCH
    assert pa.Table.from_batches(batches).column("ride_id").equals(predictions["ride_id"])
