"""Synthetic TLC yellow-taxi months in the exact published schema, for the demo, tests and benchmarks.

Real TLC files cannot be downloaded at run time here, so this writes months that look and behave like them:
the 2024 column names and Arrow types (nullable columns included), a fixed "city" of 265 zones shared by every
month (so a model trained on one month transfers to the next), durations that depend on distance, zones and
time of day, and a few percent of the dirty rows real files carry (dropoff before pickup, zero or negative
distances, multi-hour trips, pickups from another month, null passenger counts).

    python -m deploy_assets.core.generate --year 2024 --month 1 --rows 100000 --out .data/landing
    python -m deploy_assets.core.generate --year 2024 --month 1 --out s3://bucket/landing   # AWS_ENDPOINT_URL honoured
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from deploy_assets.core.months import Month
from deploy_assets.core.schema import TLC_YELLOW_SCHEMA, tlc_file_name

ZONES = 265
CITY_SEED = 265  # the geography is the same in every month


class _City:
    """Zone positions (miles), popularity and congestion, identical for every generated month."""

    def __init__(self) -> None:
        rng = np.random.default_rng(CITY_SEED)
        self.xy = rng.normal(6.0, 1.8, size=(ZONES + 1, 2))
        popularity = rng.pareto(1.2, ZONES + 1) + 0.05
        popularity[0] = 0.0
        self.popularity = popularity / popularity.sum()
        self.congestion = rng.gamma(2.0, 0.6, ZONES + 1)  # extra minutes per mile


def _month_span(year: int, month: int) -> tuple[np.datetime64, int]:
    within = Month(year, month)
    start = np.datetime64(within.start, "us")
    return start, int((np.datetime64(within.end, "us") - start).astype(np.int64))


def generate_month(year: int, month: int, rows: int, seed: int = 0, dirty_fraction: float = 0.03) -> pa.Table:
    """A month of yellow-taxi trips as an Arrow table with TLC_YELLOW_SCHEMA."""
    rng = np.random.default_rng([seed, year, month])
    start, span_us = _month_span(year, month)
    pickup_offset = np.sort(rng.integers(0, span_us, rows))
    return _trips(_City(), rng, start, span_us, pickup_offset, dirty_fraction)


def generate_month_batches(
    year: int, month: int, rows: int, seed: int = 0, dirty_fraction: float = 0.03, chunk_rows: int = 1_000_000
) -> Iterator[pa.Table]:
    """The same kind of month as generate_month, in pickup order, `chunk_rows` rows at a time (flat memory).

    A month of at most `chunk_rows` rows is exactly generate_month's. Otherwise each chunk's last pickup is
    drawn as the order statistic it is (the largest of the next k of the n remaining sorted uniform times
    is Beta(k, n − k + 1)-distributed), and the chunk's other pickups uniformly below it.
    """
    if rows <= chunk_rows:
        yield generate_month(year, month, rows, seed, dirty_fraction)
        return
    city = _City()
    rng = np.random.default_rng([seed, year, month, rows])
    start, span_us = _month_span(year, month)
    low, remaining = 0.0, rows
    while remaining:
        size = min(chunk_rows, remaining)
        high = low + (1.0 - low) * rng.beta(size, remaining - size + 1)
        fractions = np.append(np.sort(rng.uniform(low, high, size - 1)), high)
        pickup_offset = np.minimum((fractions * span_us).astype(np.int64), span_us - 1)
        yield _trips(city, rng, start, span_us, pickup_offset, dirty_fraction)
        low, remaining = high, remaining - size


def _trips(
    city: _City,
    rng: np.random.Generator,
    start: np.datetime64,
    span_us: int,
    pickup_offset: np.ndarray,
    dirty_fraction: float,
) -> pa.Table:
    """Rides with these (sorted) pickup offsets into the month, every other column drawn from `rng`."""
    rows = len(pickup_offset)
    hour = (pickup_offset // 3_600_000_000) % 24
    rush = ((hour >= 7) & (hour <= 9)) | ((hour >= 16) & (hour <= 19))

    pickup_zone = rng.choice(ZONES + 1, size=rows, p=city.popularity)
    dropoff_zone = rng.choice(ZONES + 1, size=rows, p=city.popularity)
    straight = np.linalg.norm(city.xy[pickup_zone] - city.xy[dropoff_zone], axis=1)
    distance = np.round(0.2 + 1.2 * straight + rng.gamma(1.5, 0.3, rows), 2)

    minutes_per_mile = 2.0 + 0.5 * (city.congestion[pickup_zone] + city.congestion[dropoff_zone]) + 1.0 * rush
    duration_min = 1.5 + distance * minutes_per_mile + rng.normal(0, 2.5, rows)
    duration_min = np.clip(duration_min, 1.1, None)

    # Dirty rows, as real months have them.
    dirty = rng.random(rows) < dirty_fraction
    kind = rng.integers(0, 5, rows)
    duration_min = np.where(dirty & (kind == 0), -rng.uniform(1, 30, rows), duration_min)  # dropoff before pickup
    duration_min = np.where(dirty & (kind == 1), rng.uniform(0, 0.9, rows), duration_min)  # under a minute
    duration_min = np.where(dirty & (kind == 2), rng.uniform(61, 600, rows), duration_min)  # hours-long
    distance = np.where(dirty & (kind == 3), -distance, distance)  # negative distance
    pickup_offset = np.where(dirty & (kind == 4), pickup_offset - span_us * 12, pickup_offset)  # a year early

    pickup = start + pickup_offset.astype("timedelta64[us]")
    dropoff = pickup + (duration_min * 60e6).astype(np.int64).astype("timedelta64[us]")

    fare = np.round(3.0 + 2.5 * np.abs(distance) + 0.5 * np.clip(duration_min, 0, 120), 2)
    tip = np.round(fare * rng.choice([0.0, 0.15, 0.2, 0.25], rows), 2)
    tolls = np.where(rng.random(rows) < 0.05, 6.94, 0.0)
    congestion = np.full(rows, 2.5)
    airport_fee = np.where(np.isin(pickup_zone, [132, 138]), 1.75, 0.0)

    # Rides paid by "flex fare" (payment_type 0) carry nulls in these columns in real files.
    unknown_payment = rng.random(rows) < 0.04
    payment_type = np.where(unknown_payment, 0, rng.choice([1, 2, 3, 4], rows, p=[0.75, 0.2, 0.03, 0.02]))

    def nullable(values: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
        return pa.array(values, type=arrow_type, mask=unknown_payment)

    flags = pa.DictionaryArray.from_arrays(
        pa.array((rng.random(rows) < 0.005).astype(np.int8)), pa.array(["N", "Y"])
    ).cast(pa.large_string())
    flags = pa.array(flags.to_numpy(zero_copy_only=False), type=pa.large_string(), mask=unknown_payment)

    columns = {
        "VendorID": pa.array(rng.choice([1, 2], rows, p=[0.3, 0.7]).astype(np.int32)),
        "tpep_pickup_datetime": pa.array(pickup),
        "tpep_dropoff_datetime": pa.array(dropoff),
        "passenger_count": nullable(rng.choice([1, 2, 3, 4, 5, 6], rows, p=[0.72, 0.15, 0.05, 0.03, 0.03, 0.02]), pa.int64()),
        "trip_distance": pa.array(distance),
        "RatecodeID": nullable(np.where(np.isin(pickup_zone, [132]), 2, 1), pa.int64()),
        "store_and_fwd_flag": flags,
        "PULocationID": pa.array(pickup_zone.astype(np.int32)),
        "DOLocationID": pa.array(dropoff_zone.astype(np.int32)),
        "payment_type": pa.array(payment_type.astype(np.int64)),
        "fare_amount": pa.array(fare),
        "extra": pa.array(np.where(rush, 2.5, 1.0)),
        "mta_tax": pa.array(np.full(rows, 0.5)),
        "tip_amount": pa.array(tip),
        "tolls_amount": pa.array(tolls),
        "improvement_surcharge": pa.array(np.full(rows, 1.0)),
        "total_amount": pa.array(np.round(fare + tip + tolls + 0.5 + 1.0 + 2.5 + airport_fee, 2)),
        "congestion_surcharge": nullable(congestion, pa.float64()),
        "Airport_fee": nullable(airport_fee, pa.float64()),
    }
    return pa.table(columns, schema=TLC_YELLOW_SCHEMA)


def write_month(table: pa.Table, folder_uri: str, year: int, month: int, s3_endpoint_url: str | None = None) -> str:
    """Write under the TLC file name into a local folder or an fsspec URI (s3://bucket/prefix); returns the URI."""
    return write_month_batches([table], folder_uri, year, month, s3_endpoint_url)


def write_month_batches(
    tables: Iterable[pa.Table], folder_uri: str, year: int, month: int, s3_endpoint_url: str | None = None
) -> str:
    """write_month for a month given in chunks (generate_month_batches): one chunk in memory at a time."""
    from upath import UPath

    options = {"endpoint_url": s3_endpoint_url} if s3_endpoint_url and folder_uri.startswith("s3://") else {}
    target = UPath(folder_uri, **options) / tlc_file_name(year, month)
    target.parent.mkdir(parents=True, exist_ok=True)
    tables = iter(tables)
    first = next(tables)
    with target.open("wb") as sink, pq.ParquetWriter(sink, first.schema) as writer:
        for table in itertools.chain([first], tables):
            writer.write_table(table)
    return str(target)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--year", type=int, required=True)
    parser.add_argument("--month", type=int, required=True, help="1-12; with --months, the first month")
    parser.add_argument("--months", type=int, default=1, help="how many consecutive months to write")
    parser.add_argument("--rows", type=int, default=100_000, help="rows per month")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-rows", type=int, default=1_000_000, help="rows generated at a time (memory)")
    parser.add_argument("--out", required=True, help="folder or s3://bucket/prefix")
    args = parser.parse_args(argv)
    first = Month(args.year, args.month)
    for year, month in (m.pair for m in first.span(args.months)):
        chunks = generate_month_batches(year, month, args.rows, seed=args.seed, chunk_rows=args.chunk_rows)
        print(write_month_batches(chunks, args.out, year, month))


if __name__ == "__main__":
    main()
