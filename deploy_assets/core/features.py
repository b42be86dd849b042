"""Features of the zoomcamp deployment module, computed column-wise on Arrow/NumPy (no per-row Python).

duration = dropoff − pickup in minutes, kept when 1 ≤ duration ≤ 60 and the ride is plausible (`RideRules`); the
model's inputs are the pickup/dropoff zone pair (PU_DO, encoded as one integer) and trip_distance.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deploy_assets.core.datasets import FEATURE_COLUMNS, RIDE_COLUMNS
from deploy_assets.core.months import Month

# TLC taxi zones are numbered 1..265 (264 and 265 are "unknown" / "outside NYC").
MAX_ZONE_ID = 265


@dataclass(frozen=True)
class RideRules:
    """The bounds of a valid ride, defined once; the defaults are the yellow dataset's (another dataset or
    deployment passes another instance).

    Durations: the zoomcamp's 1–60 minutes. Distance and implied speed: the TLC publishes taximeter readings it
    does not vouch for, and odometer errors (thousands of miles on a ride of minutes) are a known defect of the
    files. No yellow-cab ride is 100 miles or more, and none averages more than 80 mph door to door (NYC's
    highest limit is 65): beyond either, the reading is wrong, not the ride unusual.
    """

    min_duration_minutes: float = 1.0
    max_duration_minutes: float = 60.0
    max_distance_miles: float = 100.0
    max_speed_mph: float = 80.0

    def reasons(
        self,
        pickup_zone: np.ndarray,
        dropoff_zone: np.ndarray,
        distance: np.ndarray,
        duration: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Per drop reason (named after its bound), the rides it refuses, in the order they are counted.

        Without `duration` (an online ride, not yet driven) only the rules a ride has the columns for apply.
        """
        reasons = {}
        if duration is not None:
            reasons[f"duration_below_{self.min_duration_minutes:g}_min"] = duration < self.min_duration_minutes
            reasons[f"duration_above_{self.max_duration_minutes:g}_min"] = duration > self.max_duration_minutes
        reasons["zone_id_out_of_range"] = (
            (pickup_zone < 1) | (pickup_zone > MAX_ZONE_ID) | (dropoff_zone < 1) | (dropoff_zone > MAX_ZONE_ID)
        )
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

# Columns of a cleaned month, in order: what raw_trips stores and trip_predictions reads.
CLEAN_SCHEMA = pa.schema(
    [
        ("ride_id", pa.string()),
        ("tpep_pickup_datetime", pa.timestamp("us")),
        ("PULocationID", pa.int32()),
        ("DOLocationID", pa.int32()),
        ("trip_distance", pa.float64()),
        ("duration", pa.float64()),
    ]
)


def zone_pair_codes(pickup_zone: np.ndarray, dropoff_zone: np.ndarray) -> np.ndarray:
    """The categorical PU_DO feature as one integer per ride (a dense index, not a string)."""
    return pickup_zone.astype(np.int64) * (MAX_ZONE_ID + 1) + dropoff_zone.astype(np.int64)


def _epoch_microseconds(column: pa.ChunkedArray) -> np.ndarray:
    """Timestamps of any unit as int64 microseconds (nulls become 0 and are masked by the caller)."""
    as_us = pc.cast(column, pa.timestamp("us"), safe=False)
    return pc.fill_null(as_us.cast(pa.int64()), 0).to_numpy()


def durations_minutes(table: pa.Table) -> np.ndarray:
    """dropoff − pickup in minutes, for every row of a TLC table (clean_trips inlines it to reuse pickup)."""
    pickup = _epoch_microseconds(table["tpep_pickup_datetime"])
    return (_epoch_microseconds(table["tpep_dropoff_datetime"]) - pickup) / 60e6


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
    the caller's decision.
    """
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    n = table.num_rows
    pickup_zone = pc.fill_null(table["PULocationID"], -1).to_numpy()  # int32 (or int64 in older years)
    dropoff_zone = pc.fill_null(table["DOLocationID"], -1).to_numpy()
    distance = pc.fill_null(pc.cast(table["trip_distance"], pa.float64()), np.nan).to_numpy()
    pickup = _epoch_microseconds(table["tpep_pickup_datetime"])
    duration = (_epoch_microseconds(table["tpep_dropoff_datetime"]) - pickup) / 60e6

    within = Month(year, month)
    month_start = np.datetime64(within.start, "us").astype(np.int64)
    month_end = np.datetime64(within.end, "us").astype(np.int64)

    has_null = np.zeros(n, dtype=bool)
    for name in RIDE_COLUMNS:
        if table[name].null_count:
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
            pa.array(distance[keep]),
            pa.array(duration[keep]),
        ],
        schema=CLEAN_SCHEMA,
    )
    return clean, counts


def clean_trips(table: pa.Table, year: int, month: int, rules: RideRules = RIDE_RULES) -> CleanMonth:
    """A whole month cleaned in memory (see clean_batch; core.ingest streams the same rules)."""
    clean, counts = clean_batch(table, year, month, rules=rules)
    return CleanMonth(table=clean, rows_read=counts.rows_read, dropped=counts.dropped, other_month=counts.other_month)


def feature_arrays(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pickup zone, dropoff zone, distance) as NumPy arrays, zero-copy where Arrow allows."""
    return tuple(table[name].to_numpy() for name in FEATURE_COLUMNS)  # type: ignore[return-value]
