"""The four TLC trip datasets as data: file names, published layouts, and where each ride column is.

A `Dataset` says how one TLC service spells a month of trips: the file-name prefix, the exact Arrow schema of
each layout the TLC published over the years, and which file column holds each of the platform's ride columns
(pickup and dropoff time, pickup and dropoff zone, distance). Reading locates those columns by name (matched
ignoring case: the TLC changed capitalisation over the years), checks their type families and renames them to
the platform's names, so a layout is never chosen from the month a file claims to be; the layouts' `since`
months only say which layout the generator writes for a month.

The platform's names are yellow's spelling, which the cleaned month, the model contract and online rides use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from deploy_assets.core.errors import InvalidTripData
from deploy_assets.core.months import Month

PICKUP_TIME = "tpep_pickup_datetime"
DROPOFF_TIME = "tpep_dropoff_datetime"
PICKUP_ZONE = "PULocationID"
DROPOFF_ZONE = "DOLocationID"
DISTANCE = "trip_distance"
RIDE_COLUMNS = (PICKUP_TIME, DROPOFF_TIME, PICKUP_ZONE, DROPOFF_ZONE, DISTANCE)
ZONE_COLUMNS = (PICKUP_ZONE, DROPOFF_ZONE)
# The ride features a dataset may carry (the built-in model's inputs): both zones, and the distance.
FEATURE_COLUMNS = (PICKUP_ZONE, DROPOFF_ZONE, DISTANCE)

TIMESTAMP, INTEGER, FLOATING = "timestamp", "integer", "floating"

# What files from before zone ids (mid-2016 for yellow and green) have instead of them.
COORDINATE_COLUMNS = ("pickup_longitude", "pickup_latitude")

Batch = TypeVar("Batch", pa.Table, pa.RecordBatch)


def type_family(arrow_type: pa.DataType) -> str:
    """The family a column's type belongs to: what a ride column accepts whatever the year's exact type."""
    if pa.types.is_timestamp(arrow_type):
        return TIMESTAMP
    if pa.types.is_integer(arrow_type):
        return INTEGER
    if pa.types.is_floating(arrow_type):
        return FLOATING
    return str(arrow_type)


@dataclass(frozen=True)
class RideColumn:
    """Where one of the platform's ride columns is in a dataset's files."""

    names: tuple[str, ...]  # its spellings over the years (matched ignoring case), the newest first
    families: tuple[str, ...]  # the type families accepted, e.g. zone ids as integers or as floats with nulls


@dataclass(frozen=True)
class Layout:
    """One schema the TLC published for a dataset, from the month `since` on (until the next layout)."""

    label: str
    since: Month
    schema: pa.Schema


@dataclass(frozen=True)
class Dataset:
    """One TLC service's monthly files: how they are named, how they were laid out, where the ride columns are."""

    name: str
    file_prefix: str
    columns: Mapping[str, RideColumn]  # platform name → where it is; a ride column the dataset lacks is absent
    layouts: tuple[Layout, ...]  # oldest first

    @property
    def features(self) -> tuple[str, ...]:
        """The ride features this dataset's rides have (FHV: the zones, no distance)."""
        return tuple(name for name in FEATURE_COLUMNS if name in self.columns)

    @property
    def model_columns(self) -> tuple[str, ...]:
        """The ride columns a model of this dataset may read: its features and the pickup time."""
        return (*self.features, PICKUP_TIME)

    @property
    def newest(self) -> Layout:
        return self.layouts[-1]

    def layout(self, label: str) -> Layout:
        for layout in self.layouts:
            if layout.label == label:
                return layout
        raise ValueError(f"{self.name}: no layout {label!r} (known: {', '.join(x.label for x in self.layouts)})")

    def layout_for(self, month: Month) -> Layout:
        """The layout the TLC published `month` in."""
        published = [layout for layout in self.layouts if layout.since <= month]
        if not published:
            raise ValueError(f"{self.name}: no layout known before {self.layouts[0].since}")
        return published[-1]

    def file_name(self, month: Month) -> str:
        return month.file_name(self.file_prefix)

    def month_of(self, name: str) -> Month | None:
        """The month of one of this dataset's file names, None for any other name."""
        return Month.from_file_name(name, self.file_prefix)

    def locate(self, schema: pa.Schema, source: str) -> dict[str, str]:
        """The file's column for each ride column (platform name → file name), checked before any row is read.

        Raises InvalidTripData naming every missing or mistyped column, or, for a file with coordinates where
        the zone ids should be, saying so.
        """
        by_folded = {name.casefold(): name for name in schema.names}
        found: dict[str, str] = {}
        problems = []
        for platform, column in self.columns.items():
            index = next((i for i in (schema.get_field_index(n) for n in column.names) if i >= 0), -1)
            if index < 0:
                spelled = next((by_folded[n.casefold()] for n in column.names if n.casefold() in by_folded), None)
                index = schema.get_field_index(spelled) if spelled else -1
            if index < 0:
                problems.append(f"missing column {column.names[0]!r}")
                continue
            field = schema.field(index)
            if type_family(field.type) not in column.families:
                problems.append(f"column {field.name!r} has type {field.type}, expected {' or '.join(column.families)}")
            found[platform] = field.name
        zones = [self.columns[name].names[0] for name in ZONE_COLUMNS if name in self.columns and name not in found]
        coordinates = [by_folded[name] for name in COORDINATE_COLUMNS if name in by_folded]
        if zones and coordinates:
            raise InvalidTripData(
                source,
                f"has {'/'.join(coordinates)}, not {'/'.join(zones)}: "
                "files before mid-2016 carry coordinates, not zones",
            )
        if problems:
            raise InvalidTripData(source, "; ".join(problems))
        return found

    def normalise(self, data: Batch, found: Mapping[str, str], null_zone: int | None = None) -> Batch:
        """The located columns under the platform's names, zone ids as integers.

        A missing zone id stays null (the ride is then dropped, and counted, by the ride rules) unless
        `null_zone` gives it a value of its own (the zoomcamp's -1 for FHV).
        """
        if all(platform == name for platform, name in found.items()) and null_zone is None and all(
            pa.types.is_integer(data.schema.field(found[zone]).type) for zone in ZONE_COLUMNS if zone in found
        ):
            return data.select(list(found))  # yellow: already in the platform's names and types
        arrays = []
        for platform, name in found.items():
            column = data.column(name)
            if platform in ZONE_COLUMNS:
                if null_zone is not None:
                    column = pc.fill_null(column, null_zone)
                if not pa.types.is_integer(column.type):
                    column = pc.cast(column, pa.int64())
            arrays.append(column)
        return type(data).from_arrays(arrays, names=list(found))


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema(list(fields))


_US, _NS = pa.timestamp("us"), pa.timestamp("ns")
_F, _I32, _I64, _S, _LS = pa.float64(), pa.int32(), pa.int64(), pa.string(), pa.large_string()
_TIMES = (TIMESTAMP,)
_IDS = (INTEGER,)
_NUMBER = (FLOATING, INTEGER)
_MONEY = ("fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount")


def _ride_columns(
    pickup: str, dropoff: str, zones: tuple[str, str] = ("PULocationID", "DOLocationID"),
    zone_families: tuple[str, ...] = _IDS, distance: str | None = "trip_distance",
) -> dict[str, RideColumn]:
    """Where a dataset keeps the ride columns (no distance: `distance=None`)."""
    columns = {
        PICKUP_TIME: RideColumn((pickup,), _TIMES),
        DROPOFF_TIME: RideColumn((dropoff,), _TIMES),
        PICKUP_ZONE: RideColumn((zones[0],), zone_families),
        DROPOFF_ZONE: RideColumn((zones[1],), zone_families),
    }
    return {**columns, DISTANCE: RideColumn((distance,), _NUMBER)} if distance else columns


def _money(*names: str) -> list[tuple[str, pa.DataType]]:
    return [(name, _F) for name in names]


YELLOW = Dataset("yellow", "yellow_tripdata_", _ride_columns("tpep_pickup_datetime", "tpep_dropoff_datetime"), (
    # Before mid-2016: coordinates where the zone ids are now.
    Layout("2015", Month(2009, 1), _schema(
        ("VendorID", _I64), ("tpep_pickup_datetime", _NS), ("tpep_dropoff_datetime", _NS),
        ("passenger_count", _I64), ("trip_distance", _F), ("pickup_longitude", _F), ("pickup_latitude", _F),
        ("RatecodeID", _I64), ("store_and_fwd_flag", _S), ("dropoff_longitude", _F), ("dropoff_latitude", _F),
        ("payment_type", _I64), *_money(*_MONEY, "improvement_surcharge", "total_amount"),
    )),
    # int64 ids, float passenger_count and RatecodeID, lower-case airport_fee
    Layout("2021", Month(2016, 7), _schema(
        ("VendorID", _I64), ("tpep_pickup_datetime", _NS), ("tpep_dropoff_datetime", _NS),
        ("passenger_count", _F), ("trip_distance", _F), ("RatecodeID", _F), ("store_and_fwd_flag", _S),
        ("PULocationID", _I64), ("DOLocationID", _I64), ("payment_type", _I64),
        *_money(*_MONEY, "improvement_surcharge", "total_amount", "congestion_surcharge", "airport_fee"),
    )),
    # int32 ids and VendorID, int64 counts, microsecond times, Airport_fee
    Layout("2024", Month(2024, 1), _schema(
        ("VendorID", _I32), ("tpep_pickup_datetime", _US), ("tpep_dropoff_datetime", _US),
        ("passenger_count", _I64), ("trip_distance", _F), ("RatecodeID", _I64), ("store_and_fwd_flag", _LS),
        ("PULocationID", _I32), ("DOLocationID", _I32), ("payment_type", _I64),
        *_money(*_MONEY, "improvement_surcharge", "total_amount", "congestion_surcharge", "Airport_fee"),
    )),
))

GREEN = Dataset("green", "green_tripdata_", _ride_columns("lpep_pickup_datetime", "lpep_dropoff_datetime"), (
    # From the first green month (2013-08) to mid-2016, coordinates too.
    Layout("2015", Month(2013, 8), _schema(
        ("VendorID", _I64), ("lpep_pickup_datetime", _NS), ("lpep_dropoff_datetime", _NS),
        ("store_and_fwd_flag", _S), ("RatecodeID", _F), ("pickup_longitude", _F), ("pickup_latitude", _F),
        ("dropoff_longitude", _F), ("dropoff_latitude", _F), ("passenger_count", _F), ("trip_distance", _F),
        *_money(*_MONEY), ("ehail_fee", pa.null()), *_money("improvement_surcharge", "total_amount"),
        ("payment_type", _F), ("trip_type", _F),
    )),
    # int64 zones; float passenger_count, RatecodeID, payment_type, trip_type; all-null ehail_fee
    Layout("2021", Month(2016, 7), _schema(
        ("VendorID", _I64), ("lpep_pickup_datetime", _NS), ("lpep_dropoff_datetime", _NS),
        ("store_and_fwd_flag", _S), ("RatecodeID", _F), ("PULocationID", _I64), ("DOLocationID", _I64),
        ("passenger_count", _F), ("trip_distance", _F), *_money(*_MONEY), ("ehail_fee", pa.null()),
        *_money("improvement_surcharge", "total_amount"), ("payment_type", _F), ("trip_type", _F),
        ("congestion_surcharge", _F),
    )),
))

# Also spelled dropoff_datetime and PULocationID/DOLocationID; zone ids are floats, null when unknown; no distance.
_FHV_COLUMNS = _ride_columns("pickup_datetime", "dropOff_datetime", ("PUlocationID", "DOlocationID"), _NUMBER, None)

FHV = Dataset("fhv", "fhv_tripdata_", _FHV_COLUMNS, (
    # lower-case dropoff_datetime, PULocationID/DOLocationID, a float SR_Flag
    Layout("2019", Month(2019, 1), _schema(
        ("dispatching_base_num", _S), ("pickup_datetime", _NS), ("dropoff_datetime", _NS),
        ("PULocationID", _F), ("DOLocationID", _F), ("SR_Flag", _F), ("Affiliated_base_number", _S),
    )),
    # the zoomcamp homework's months: dropOff_datetime, PUlocationID/DOlocationID, all-null SR_Flag
    Layout("2021", Month(2021, 1), _schema(
        ("dispatching_base_num", _S), ("pickup_datetime", _NS), ("dropOff_datetime", _NS),
        ("PUlocationID", _F), ("DOlocationID", _F), ("SR_Flag", pa.null()), ("Affiliated_base_number", _S),
    )),
))

_FLAGS = ("shared_request_flag", "shared_match_flag", "access_a_ride_flag", "wav_request_flag", "wav_match_flag")

_FHVHV_COLUMNS = _ride_columns("pickup_datetime", "dropoff_datetime", distance="trip_miles")

FHVHV = Dataset("fhvhv", "fhvhv_tripdata_", _FHVHV_COLUMNS, (
    Layout("2019", Month(2019, 2), _schema(
        ("hvfhs_license_num", _S), ("dispatching_base_num", _S), ("originating_base_num", _S),
        ("request_datetime", _NS), ("on_scene_datetime", _NS), ("pickup_datetime", _NS),
        ("dropoff_datetime", _NS), ("PULocationID", _I64), ("DOLocationID", _I64), ("trip_miles", _F),
        ("trip_time", _I64), ("base_passenger_fare", _F), ("tolls", _F), ("bcf", _F), ("sales_tax", _F),
        ("congestion_surcharge", _F), ("airport_fee", _F), ("tips", _F), ("driver_pay", _F),
        *((flag, _S) for flag in _FLAGS),
    )),
))

DATASETS: dict[str, Dataset] = {dataset.name: dataset for dataset in (YELLOW, GREEN, FHV, FHVHV)}

# A dataset declared by its file names and where its ride columns are, for files that are not the TLC's.
DATASET_SPEC_KEYS = ("file_prefix", "pickup_time", "dropoff_time", "pickup_zone", "dropoff_zone", "distance")


def dataset_of(declared: str | Mapping[str, str]) -> Dataset:
    """A TLC service by name, or a dataset declared by its spec: `file_prefix` (files `<prefix>YYYY-MM.parquet`) and
    the file's columns for the pickup and dropoff time, zone ids and (optional) `distance`. A declared dataset
    has no published layouts: it is read, never generated."""
    if isinstance(declared, str):
        if declared not in DATASETS:
            raise ValueError(f"no TLC dataset {declared!r} (known: {', '.join(DATASETS)})")
        return DATASETS[declared]
    unknown = sorted(set(declared) - set(DATASET_SPEC_KEYS))
    missing = [key for key in DATASET_SPEC_KEYS[:-1] if not declared.get(key)]
    if unknown or missing:
        raise ValueError(
            f"a declared dataset has {', '.join(DATASET_SPEC_KEYS)}"
            + (f"; missing: {', '.join(missing)}" if missing else "") + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )
    columns = _ride_columns(
        declared["pickup_time"], declared["dropoff_time"], (declared["pickup_zone"], declared["dropoff_zone"]),
        _NUMBER, declared.get("distance"),
    )
    return Dataset(declared["file_prefix"].rstrip("_"), declared["file_prefix"], columns, ())
