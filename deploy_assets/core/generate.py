"""Synthetic TLC months in the exact published schemas, for the demo, tests and benchmarks.

Real TLC files cannot be downloaded at run time here, so this writes months that look and behave like them:
yellow's 2024 column names and Arrow types (nullable columns included) by default, or any layout of any TLC
dataset (`core.datasets`), a fixed "city" of 265 zones shared by every month (so a model trained on one month
transfers to the next), durations that depend on distance, zones and time of day, and a few percent of the dirty
rows real files carry (dropoff before pickup, zero or negative distances, multi-hour trips, pickups from another
month, null passenger counts; FHV's unknown zones).

    python -m deploy_assets.core.generate --year 2024 --month 1 --rows 100000 --out .data/landing
    python -m deploy_assets.core.generate --year 2024 --month 1 --out s3://bucket/landing   # AWS_ENDPOINT_URL honoured
    python -m deploy_assets.core.generate --dataset fhv --layout published --year 2021 --month 1 --out .data/fhv
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from deploy_assets.core.datasets import (
    DATASETS,
    DROPOFF_TIME,
    DROPOFF_ZONE,
    PICKUP_TIME,
    PICKUP_ZONE,
    YELLOW,
    ZONE_COLUMNS,
    Dataset,
    Layout,
)
from deploy_assets.core.months import Month
from deploy_assets.core.schema import TLC_YELLOW_SCHEMA

ZONES = 265
CITY_SEED = 265  # the geography is the same in every month
UNKNOWN_ZONE_SHARE = 0.15  # of rides whose zone is left null where a layout stores zone ids as floats (FHV)


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


def generate_month(
    year: int, month: int, rows: int, seed: int = 0, dirty_fraction: float = 0.03, dataset: Dataset = YELLOW,
    layout: Layout | None = None,
) -> pa.Table:
    """A month of trips as an Arrow table in `layout` of `dataset` (default: its newest; yellow's is
    TLC_YELLOW_SCHEMA). Every dataset's month holds the same rides."""
    rng = np.random.default_rng([seed, year, month])
    start, span_us = _month_span(year, month)
    pickup_offset = np.sort(rng.integers(0, span_us, rows))
    return _trips(_City(), rng, start, span_us, pickup_offset, dirty_fraction, dataset, layout or dataset.newest)


def generate_month_batches(
    year: int, month: int, rows: int, seed: int = 0, dirty_fraction: float = 0.03, chunk_rows: int = 1_000_000,
    dataset: Dataset = YELLOW, layout: Layout | None = None,
) -> Iterator[pa.Table]:
    """The same kind of month as generate_month, in pickup order, `chunk_rows` rows at a time (flat memory).

    A month of at most `chunk_rows` rows is exactly generate_month's. Otherwise each chunk's last pickup is
    drawn as the order statistic it is (the largest of the next k of the n remaining sorted uniform times
    is Beta(k, n − k + 1)-distributed), and the chunk's other pickups uniformly below it.
    """
    layout = layout or dataset.newest
    if rows <= chunk_rows:
        yield generate_month(year, month, rows, seed, dirty_fraction, dataset, layout)
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
        yield _trips(city, rng, start, span_us, pickup_offset, dirty_fraction, dataset, layout)
        low, remaining = high, remaining - size


def _trips(
    city: _City,
    rng: np.random.Generator,
    start: np.datetime64,
    span_us: int,
    pickup_offset: np.ndarray,
    dirty_fraction: float,
    dataset: Dataset,
    layout: Layout,
) -> pa.Table:
    """Rides with these (sorted) pickup offsets into the month, every other column drawn from `rng`: drawn as
    yellow's 2024 columns, then put in `layout` of `dataset` (drawing after yellow's, so yellow stays the same)."""
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
    yellow = pa.table(columns, schema=TLC_YELLOW_SCHEMA)
    return yellow if layout is YELLOW.newest else _in_layout(yellow, city, rng, dataset, layout)


def _in_layout(yellow: pa.Table, city: _City, rng: np.random.Generator, dataset: Dataset, layout: Layout) -> pa.Table:
    """The rides of a yellow 2024 table in another layout: each field is the ride column it holds for `dataset`,
    else a column of the service's own (`_own_columns`), else yellow's column of that name (ignoring case);
    cast to the field's type. Zone ids stored as floats are left null for UNKNOWN_ZONE_SHARE of the rides."""
    rows = yellow.num_rows
    own = _own_columns(yellow, city, rng)
    by_name = {column.casefold(): yellow[column] for column in yellow.column_names}
    roles = {name.casefold(): platform for platform, column in dataset.columns.items() for name in column.names}
    arrays = []
    for field in layout.schema:
        platform = roles.get(field.name.casefold())
        if pa.types.is_null(field.type):
            arrays.append(pa.nulls(rows))
            continue
        if platform is not None:
            values = yellow[platform]
        elif field.name in own:
            values = own[field.name]()
        else:
            values = by_name[field.name.casefold()]
        values = pc.cast(values, field.type)
        if platform in ZONE_COLUMNS and pa.types.is_floating(field.type):
            values = pc.if_else(pa.array(rng.random(rows) < UNKNOWN_ZONE_SHARE), pa.scalar(None, field.type), values)
        arrays.append(values)
    return pa.Table.from_arrays(arrays, schema=layout.schema)


def _own_columns(yellow: pa.Table, city: _City, rng: np.random.Generator) -> dict[str, Callable[[], pa.Array]]:
    """The columns other services have and yellow's 2024 layout has not, each drawn only when a layout has it."""
    rows = yellow.num_rows
    pickup = yellow[PICKUP_TIME].to_numpy()
    fare = yellow["fare_amount"].to_numpy()

    def before_pickup(low_minutes: float, high_minutes: float) -> Callable[[], pa.Array]:
        def times() -> pa.Array:
            minutes = rng.uniform(low_minutes, high_minutes, rows)
            return pa.array(pickup - (minutes * 60e6).astype(np.int64).astype("timedelta64[us]"))

        return times

    def share_of_fare(share: float) -> Callable[[], pa.Array]:
        return lambda: pa.array(np.round(fare * share, 2))

    def bases() -> pa.Array:
        return pa.array(np.char.add("B0", rng.integers(2000, 3999, rows).astype(str)))

    def flag(share: float) -> Callable[[], pa.Array]:
        return lambda: pa.array(np.where(rng.random(rows) < share, "Y", "N"))

    def coordinate(zone: str, axis: int, origin: float, miles_per_degree: float) -> Callable[[], pa.Array]:
        return lambda: pa.array(origin + (city.xy[yellow[zone].to_numpy(), axis] - 6.0) / miles_per_degree)

    seconds = (yellow[DROPOFF_TIME].to_numpy() - pickup).astype("timedelta64[s]").astype(np.int64)
    return {
        "trip_type": lambda: pa.array(np.where(rng.random(rows) < 0.03, 2.0, 1.0)),  # 2 = dispatched
        "dispatching_base_num": bases,
        "originating_base_num": bases,
        "Affiliated_base_number": bases,
        "SR_Flag": lambda: pa.array(np.ones(rows), mask=rng.random(rows) >= 0.05),  # 1 = a shared ride, else null
        "hvfhs_license_num": lambda: pa.array(rng.choice(["HV0003", "HV0005"], rows, p=[0.72, 0.28])),
        "request_datetime": before_pickup(1.0, 8.0),
        "on_scene_datetime": before_pickup(0.0, 1.0),
        "trip_time": lambda: pa.array(seconds),
        "base_passenger_fare": lambda: yellow["fare_amount"],
        "tolls": lambda: yellow["tolls_amount"],
        "tips": lambda: yellow["tip_amount"],
        "bcf": share_of_fare(0.0275),
        "sales_tax": share_of_fare(0.08875),
        "driver_pay": share_of_fare(0.72),
        **{name: flag(0.02) for name in ("shared_request_flag", "shared_match_flag", "access_a_ride_flag")},
        **{name: flag(0.01) for name in ("wav_request_flag", "wav_match_flag")},
        "pickup_longitude": coordinate(PICKUP_ZONE, 0, -73.97, 52.4),
        "pickup_latitude": coordinate(PICKUP_ZONE, 1, 40.75, 69.0),
        "dropoff_longitude": coordinate(DROPOFF_ZONE, 0, -73.97, 52.4),
        "dropoff_latitude": coordinate(DROPOFF_ZONE, 1, 40.75, 69.0),
    }


def write_month(
    table: pa.Table, folder_uri: str, year: int, month: int, s3_endpoint_url: str | None = None,
    dataset: Dataset = YELLOW,
) -> str:
    """Write under the TLC file name into a local folder or an fsspec URI (s3://bucket/prefix); returns the URI."""
    return write_month_batches([table], folder_uri, year, month, s3_endpoint_url, dataset)


def write_month_batches(
    tables: Iterable[pa.Table], folder_uri: str, year: int, month: int, s3_endpoint_url: str | None = None,
    dataset: Dataset = YELLOW,
) -> str:
    """write_month for a month given in chunks (generate_month_batches): one chunk in memory at a time."""
    from upath import UPath

    options = {"endpoint_url": s3_endpoint_url} if s3_endpoint_url and folder_uri.startswith("s3://") else {}
    target = UPath(folder_uri, **options) / dataset.file_name(Month(year, month))
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
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="yellow", help="which TLC service")
    parser.add_argument("--layout", help="a layout of the dataset (e.g. 2021), or `published`: each month's own")
    args = parser.parse_args(argv)
    dataset = DATASETS[args.dataset]
    for within in Month(args.year, args.month).span(args.months):
        if args.layout == "published":
            layout = dataset.layout_for(within)
        else:
            layout = dataset.layout(args.layout) if args.layout else dataset.newest
        chunks = generate_month_batches(
            *within.pair, args.rows, seed=args.seed, chunk_rows=args.chunk_rows, dataset=dataset, layout=layout
        )
        print(write_month_batches(chunks, args.out, *within.pair, dataset=dataset))


if __name__ == "__main__":
    main()
