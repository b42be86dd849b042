"""Reading a TLC month into the platform's ride columns, and yellow's file names and schema.

Validation is done on the Parquet *schema* before any row is read (by the file's `core.datasets.Dataset`,
yellow unless told), so a mistyped or missing column fails fast with the column's name instead of surfacing
later as a NumPy/pandas traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from deploy_assets.core.batches import BATCH_ROWS, iter_file_batches
from deploy_assets.core.datasets import YELLOW, Dataset
from deploy_assets.core.errors import InvalidTripData, MissingTripData, TripDataError  # noqa: F401  (imported from here)
from deploy_assets.core.months import Month

# The yellow-taxi schema exactly as the TLC publishes it for 2024 (column names, order and Arrow types).
TLC_YELLOW_SCHEMA = YELLOW.newest.schema

# Where the TLC publishes its monthly files, and what it names them.
TLC_BASE_URL = "https://d37ci6vzurychx.cloudfront.net/trip-data"


def tlc_file_name(year: int, month: int) -> str:
    return YELLOW.file_name(Month(year, month))


# What the model needs, with the type families older TLC years also used (ns timestamps, int64 ids).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {name: column.families for name, column in YELLOW.columns.items()}


def validate_schema(schema: pa.Schema, source: str, dataset: Dataset = YELLOW) -> dict[str, str]:
    """Raise InvalidTripData naming every missing or mistyped ride column; else where each is in the file."""
    return dataset.locate(schema, source)


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


def _open_validated(file: str | BinaryIO, source: str, dataset: Dataset) -> tuple[pq.ParquetFile, dict[str, str]]:
    parquet = pq.ParquetFile(file)
    return parquet, validate_schema(parquet.schema_arrow, source, dataset)


def read_trips(
    file: str | BinaryIO, source: str, dataset: Dataset = YELLOW, null_zone: int | None = None
) -> pa.Table:
    """Read the ride columns of one TLC month under the platform's names, validating the schema first.

    `file` is a local path or an open binary file (S3, HTTP); `source` is the URI used in error messages;
    `null_zone` is Dataset.normalise's.
    """
    with _named_read_errors(source):
        parquet, found = _open_validated(file, source, dataset)
        table = dataset.normalise(parquet.read(columns=list(found.values())), found, null_zone)
    if table.num_rows == 0:
        raise InvalidTripData(source, NO_TRIPS)
    return table


def iter_trips(
    file: str | BinaryIO,
    source: str,
    batch_rows: int = BATCH_ROWS,
    dataset: Dataset = YELLOW,
    null_zone: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """read_trips by record batches, with its validation and errors.

    The schema and the row count are checked from the footer before the first batch; a file that breaks
    mid-way (a corrupt column chunk) raises InvalidTripData when that batch is read.
    """
    with _named_read_errors(source):
        parquet, found = _open_validated(file, source, dataset)
        if parquet.metadata.num_rows == 0:
            raise InvalidTripData(source, NO_TRIPS)
        for batch in iter_file_batches(parquet, list(found.values()), batch_rows):
            yield dataset.normalise(batch, found, null_zone)
