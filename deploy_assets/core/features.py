"""Features of the zoomcamp deployment module, computed column-wise on Arrow/NumPy (no per-row Python).

duration = dropoff − pickup in minutes, kept when 1 ≤ duration ≤ 60 and the ride is plausible (`RideRules`); the
model's inputs are the pickup/dropoff zone pair (PU_DO, encoded as one integer) and, where the dataset has one
(not FHV), trip_distance. A cleaned month has the ride features of its dataset and no others (`clean_schema`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deploy_assets.core.datasets import DISTANCE, DROPOFF_TIME, FEATURE_COLUMNS, PICKUP_TIME, RIDE_COLUMNS
from deploy_assets.core.months import Month

# TLC taxi zones are numbered 1..265 (264 and 265 are "unknown" / "outside NYC").
MAX_ZONE_ID = 265
# A ride whose zone the file leaves null, kept as a value of its own (the zoomcamp's `fillna(-1)` on FHV).
MISSING_ZONE = -1


@dataclass(frozen=True)
class RideRules:
    """The bounds of a valid ride, defined once; the defaults are the yellow dataset's (another dataset or
    deployment passes another instance).

    Durations: the zoomcamp's 1–60 minutes. Distance and implied speed: the TLC publishes taximeter readings it
    does not vouch for, and odometer errors (thousands of miles on a ride of minutes) are a known defect of the
    files. No yellow-cab ride is 100 miles or more, and none averages more than 80 mph door to door (NYC's
    highest limit is 65): beyond either, the reading is wrong, not the ride unusual. A dataset without a distance
    (FHV) has no distance rules. `keep_missing_zones`: a ride whose zone the file leaves null is kept with zone
    MISSING_ZONE (the zoomcamp's -1) instead of being dropped.
    """

    min_duration_minutes: float = 1.0
    max_duration_minutes: float = 60.0
    max_distance_miles: float = 100.0
    max_speed_mph: float = 80.0
    keep_missing_zones: bool = False

    def zone_out_of_range(self, zone: np.ndarray) -> np.ndarray:
        outside = (zone < 1) | (zone > MAX_ZONE_ID)
        return outside & (zone != MISSING_ZONE) if self.keep_missing_zones else outside

    def reasons(
        self,
        pickup_zone: np.ndarray,
        dropoff_zone: np.ndarray,
        distance: np.ndarray | None,
        duration: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Per drop reason (named after its bound), the rides it refuses, in the order they are counted.

        Without `duration` (an online ride, not yet driven) or `distance` (a dataset without one) only the rules
        a ride has the columns for apply.
        """
        reasons = {}
        if duration is not None:
            reasons[f"duration_below_{self.min_duration_minutes:g}_min"] = duration < self.min_duration_minutes
            reasons[f"duration_above_{self.max_duration_minutes:g}_min"] = duration > self.max_duration_minutes
        reasons["zone_id_out_of_range"] = self.zone_out_of_range(pickup_zone) | self.zone_out_of_range(dropoff_zone)
        if distance is None:
            return reasons
        reasons["negative_or_nan_distance"] = ~(distance >= 0)
        reasons[f"distance_above_{self.max_distance_miles:g}_mi"] = distance > self.max_distance_miles
        if duration is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                reasons[f"speed_above_{self.max_speed_mph:g}_mph"] = distance * 60.0 > self.max_speed_mph * duration
        return reasons

    def first_reasons(self, pickup_zone, dropoff_zone, distance, duration=None) -> dict[int, str]:
        """Row index → the first reason that refuses it, for the refused rows only (online validation)."""
        reasons = self.reasons(pickup_zone, dropoff_zone, distance, duration)
        if not functools.reduce(np.logical_or, reasons.values()).any():  # the usual case (the web's hot path)
            return {}
        refused: dict[int, str] = {}
        for reason, mask in reasons.items():
            for row in np.flatnonzero(mask).tolist():
                refused.setdefault(row, reason)
        return refused


RIDE_RULES = RideRules()
MIN_DURATION_MINUTES = RIDE_RULES.min_duration_minutes
MAX_DURATION_MINUTES = RIDE_RULES.max_duration_minutes
ZONE_PAIR_COUNT = (MAX_ZONE_ID + 1) ** 2


def clean_schema(features: Sequence[str] = FEATURE_COLUMNS) -> pa.Schema:
    """Columns of a cleaned month of a dataset with these ride features, in order: what raw_trips stores and
    trip_predictions reads."""
    return pa.schema(
        [
            ("ride_id", pa.string()),
            (PICKUP_TIME, pa.timestamp("us")),
            ("PULocationID", pa.int32()),
            ("DOLocationID", pa.int32()),
            *([(DISTANCE, pa.float64())] if DISTANCE in features else []),
            ("duration", pa.float64()),
        ]
    )


# A cleaned month of a dataset with a distance (yellow, green, high-volume FHV).
CLEAN_SCHEMA = clean_schema()


def zone_index(zone: np.ndarray) -> np.ndarray:
    """Zone ids as int64 indexes 0..MAX_ZONE_ID: MISSING_ZONE takes index 0, which no TLC zone uses."""
    index = zone.astype(np.int64)
    return np.maximum(index, 0, out=index)


def zone_pair_codes(pickup_zone: np.ndarray, dropoff_zone: np.ndarray) -> np.ndarray:
    """The categorical PU_DO feature as one integer per ride (a dense index, not a string)."""
    return zone_index(pickup_zone) * (MAX_ZONE_ID + 1) + zone_index(dropoff_zone)


def _epoch_microseconds(column: pa.ChunkedArray) -> np.ndarray:
    """Timestamps of any unit as int64 microseconds (nulls become 0 and are masked by the caller)."""
    as_us = pc.cast(column, pa.timestamp("us"), safe=False)
    return pc.fill_null(as_us.cast(pa.int64()), 0).to_numpy()


def durations_minutes(table: pa.Table) -> np.ndarray:
    """dropoff − pickup in minutes, for every row of a TLC table (clean_trips inlines it to reuse pickup)."""
    pickup = _epoch_microseconds(table[PICKUP_TIME])
    return (_epoch_microseconds(table[DROPOFF_TIME]) - pickup) / 60e6


@dataclass
class DropCounts:
    """Rows read and dropped per reason (each row under the first reason that applies), summable over batches."""

    rows_read: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    # Rows whose pickup lies outside the month, per month (months since 1970): the hint below comes from it.
    outside_months: dict[int, int] = field(default_factory=dict)

    def add(self, other: DropCounts) -> None:
        self.rows_read += other.rows_read
        for reason, count in other.dropped.items():
            self.dropped[reason] = self.dropped.get(reason, 0) + count
        for month, count in other.outside_months.items():
            self.outside_months[month] = self.outside_months.get(month, 0) + count

    @property
    def rows_dropped(self) -> int:
        return sum(self.dropped.values())

    @property
    def other_month(self) -> str | None:
        """The month most out-of-month pickups fall in ("YYYY-MM"; the earliest on a tie), or None."""
        if not self.outside_months:
            return None
        month = max(sorted(self.outside_months.items()), key=lambda item: item[1])[0]
        return str(np.datetime64(month, "M"))


@dataclass
class CleanMonth:
    """A cleaned month and why rows were dropped (each row counted under the first reason that applies)."""

    table: pa.Table
    rows_read: int
    dropped: dict[str, int] = field(default_factory=dict)
    # The month most rows outside this one belong to ("YYYY-MM"), a hint for misnamed or duplicated uploads.
    other_month: str | None = None

    @property
    def rows_kept(self) -> int:
        return self.table.num_rows


def ride_ids(year: int, month: int, row_index: np.ndarray) -> pa.Array:
    """`YYYY/MM_<row index in the source file>`, built by Arrow kernels (a prefix spliced into each number)."""
    numbers = pc.cast(pa.array(row_index), pa.string())
    return pc.binary_replace_slice(numbers, start=0, stop=0, replacement=f"{year:04d}/{month:02d}_")


def clean_batch(
    batch: pa.Table | pa.RecordBatch, year: int, month: int, first_row: int = 0, rules: RideRules = RIDE_RULES
) -> tuple[pa.Table, DropCounts]:
    """The one definition of a valid ride: keep the rides a model can learn from, counting each dropped row.

    `batch` holds rows `first_row`, `first_row + 1`, ... of the TLC file, so ride ids are the same whether a
    month is cleaned whole (clean_trips) or batch by batch (ingest). Dirty rows (nulls, pickups outside the
    month, and whatever `rules` refuses: out-of-range durations or zones, negative, absurd or implausibly fast
    distances) are normal in TLC data: dropped and counted, never fatal here. Whether too many were dropped is
    the caller's decision. A batch without trip_distance (FHV) is cleaned without the distance rules and keeps
    no distance column.
    """
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    n = table.num_rows
    has_distance = DISTANCE in table.column_names
    pickup_zone = pc.fill_null(table["PULocationID"], -1).to_numpy()  # int32 (or int64 in older years)
    dropoff_zone = pc.fill_null(table["DOLocationID"], -1).to_numpy()
    distance = pc.fill_null(pc.cast(table[DISTANCE], pa.float64()), np.nan).to_numpy() if has_distance else None
    pickup = _epoch_microseconds(table[PICKUP_TIME])
    duration = (_epoch_microseconds(table[DROPOFF_TIME]) - pickup) / 60e6

    within = Month(year, month)
    month_start = np.datetime64(within.start, "us").astype(np.int64)
    month_end = np.datetime64(within.end, "us").astype(np.int64)

    has_null = np.zeros(n, dtype=bool)
    for name in RIDE_COLUMNS:
        if name in table.column_names and table[name].null_count:
            has_null |= pc.is_null(table[name]).to_numpy(zero_copy_only=False)

    reasons = {
        "null_required_value": has_null,
        "pickup_outside_month": (pickup < month_start) | (pickup >= month_end),
        **rules.reasons(pickup_zone, dropoff_zone, distance, duration),
    }
    dropped_so_far = np.zeros(n, dtype=bool)
    counts = DropCounts(rows_read=n)
    for reason, mask in reasons.items():
        counts.dropped[reason] = int(np.count_nonzero(mask & ~dropped_so_far))
        dropped_so_far |= mask

    outside = reasons["pickup_outside_month"]
    if outside.any():
        months = pickup[outside].astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
        values, frequencies = np.unique(months, return_counts=True)
        counts.outside_months = dict(zip(values.tolist(), frequencies.tolist()))

    keep = np.flatnonzero(~dropped_so_far)
    clean = pa.table(
        [
            ride_ids(year, month, keep + first_row),
            pa.array(pickup[keep].view("datetime64[us]")),
            pa.array(pickup_zone[keep].astype(np.int32, copy=False)),
            pa.array(dropoff_zone[keep].astype(np.int32, copy=False)),
            *([pa.array(distance[keep])] if has_distance else []),
            pa.array(duration[keep]),
        ],
        schema=CLEAN_SCHEMA if has_distance else clean_schema(()),
    )
    return clean, counts


def clean_trips(table: pa.Table, year: int, month: int, rules: RideRules = RIDE_RULES) -> CleanMonth:
    """A whole month cleaned in memory (see clean_batch; core.ingest streams the same rules)."""
    clean, counts = clean_batch(table, year, month, rules=rules)
    return CleanMonth(table=clean, rows_read=counts.rows_read, dropped=counts.dropped, other_month=counts.other_month)


def feature_arrays(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(pickup zone, dropoff zone, distance) as NumPy arrays, zero-copy where Arrow allows; distance None for
    rides without one."""
    distance = table[DISTANCE].to_numpy() if DISTANCE in table.column_names else None
    return table["PULocationID"].to_numpy(), table["DOLocationID"].to_numpy(), distance
