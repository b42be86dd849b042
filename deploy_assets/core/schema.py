"""The TLC yellow-taxi trip schema, and the typed errors a user's input can cause.

Validation is done on the Parquet *schema* before any row is read, so a mistyped or missing column fails
fast with the column's name instead of surfacing later as a NumPy/pandas traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from deploy_assets.core.batches import BATCH_ROWS, iter_file_batches
from deploy_assets.core.months import Month

# The yellow-taxi schema exactly as the TLC publishes it for 2024 (column names, order and Arrow types).
TLC_YELLOW_SCHEMA = pa.schema(
    [
        ("VendorID", pa.int32()),
        ("tpep_pickup_datetime", pa.timestamp("us")),
        ("tpep_dropoff_datetime", pa.timestamp("us")),
        ("passenger_count", pa.int64()),
        ("trip_distance", pa.float64()),
        ("RatecodeID", pa.int64()),
        ("store_and_fwd_flag", pa.large_string()),
        ("PULocationID", pa.int32()),
        ("DOLocationID", pa.int32()),
        ("payment_type", pa.int64()),
        ("fare_amount", pa.float64()),
        ("extra", pa.float64()),
        ("mta_tax", pa.float64()),
        ("tip_amount", pa.float64()),
        ("tolls_amount", pa.float64()),
        ("improvement_surcharge", pa.float64()),
        ("total_amount", pa.float64()),
        ("congestion_surcharge", pa.float64()),
        ("Airport_fee", pa.float64()),
    ]
)

# Where the TLC publishes its monthly files, and what it names them.
TLC_BASE_URL = "https://d37ci6vzurychx.cloudfront.net/trip-data"
TLC_FILE_PREFIX = "yellow_tripdata_"


def tlc_file_name(year: int, month: int) -> str:
    return Month(year, month).file_name(TLC_FILE_PREFIX)


def parse_tlc_file_name(name: str) -> tuple[int, int] | None:
    """(year, month) for a TLC yellow file name, None for any other name."""
    month = Month.from_file_name(name, TLC_FILE_PREFIX)
    return month.pair if month else None


# What the model needs, with the type families older TLC years also used (ns timestamps, int64 ids).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "tpep_pickup_datetime": ("timestamp",),
    "tpep_dropoff_datetime": ("timestamp",),
    "PULocationID": ("integer",),
    "DOLocationID": ("integer",),
    "trip_distance": ("floating", "integer"),
}


class TripDataError(ValueError):
    """A month of trips that cannot be used; the message names the source and the cause."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class MissingTripData(TripDataError):
    """The month's file does not exist where the landing zone says it should be."""


class InvalidTripData(TripDataError):
    """The file exists but is not a usable TLC month (corrupt, empty, wrong schema, no valid rows)."""


def _type_family(arrow_type: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type):
        return "floating"
    return str(arrow_type)


def validate_schema(schema: pa.Schema, source: str) -> None:
    """Raise InvalidTripData naming every missing or mistyped required column."""
    problems = []
    for name, families in REQUIRED_COLUMNS.items():
        index = schema.get_field_index(name)
        if index < 0:
            problems.append(f"missing column {name!r}")
            continue
        actual = schema.field(index).type
        if _type_family(actual) not in families:
            problems.append(f"column {name!r} has type {actual}, expected {' or '.join(families)}")
    if problems:
        raise InvalidTripData(source, "; ".join(problems))


NO_TRIPS = "the file holds no trips (0 rows)"


@contextmanager
def _named_read_errors(source: str) -> Iterator[None]:
    """Arrow/OS errors of a file that is not a readable Parquet month become InvalidTripData naming `source`."""
    try:
        yield
    except TripDataError:
        raise
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as error:
        raise InvalidTripData(source, f"not a readable Parquet file ({error})") from error


def _open_validated(file: str | BinaryIO, source: str) -> pq.ParquetFile:
    parquet = pq.ParquetFile(file)
    validate_schema(parquet.schema_arrow, source)
    return parquet


def read_trips(file: str | BinaryIO, source: str) -> pa.Table:
    """Read the required columns of one TLC month, validating the schema first.

    `file` is a local path or an open binary file (S3, HTTP); `source` is the URI used in error messages.
    """
    with _named_read_errors(source):
        table = _open_validated(file, source).read(columns=list(REQUIRED_COLUMNS))
    if table.num_rows == 0:
        raise InvalidTripData(source, NO_TRIPS)
    return table


def iter_trips(file: str | BinaryIO, source: str, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The required columns of one TLC month by record batches, with read_trips' validation and errors.

    The schema and the row count are checked from the footer before the first batch; a file that breaks
    mid-way (a corrupt column chunk) raises InvalidTripData when that batch is read.
    """
    with _named_read_errors(source):
        parquet = _open_validated(file, source)
        if parquet.metadata.num_rows == 0:
            raise InvalidTripData(source, NO_TRIPS)
        yield from iter_file_batches(parquet, REQUIRED_COLUMNS, batch_rows)
