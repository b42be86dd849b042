"""The ingest step: a month's TLC file from the landing zone, validated, cleaned and stored by record batches as the
cleaned month (`raw_trips`) and its training statistics (`trip_statistics`), with the checks on the month."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from deploy_assets.core.batches import table_digest
from deploy_assets.core.features import RideRules
from deploy_assets.core.ingest import IngestedMonth
from deploy_assets.core.months import Month
from deploy_assets.core.objects import parquet_writer_atomic, write_parquet_atomic
from deploy_assets.steps.findings import Findings, StepFailure

RAW_CHECKS = {
    "raw_trips_schema": (True, "the stored month has exactly the cleaned columns and types scoring expects"),
    "raw_trips_dirty_share": (True, "the share of null, negative or absurd rows is under the limit"),
    "raw_trips_volume": (False, "kept rows within ±tolerance of the previous month (a warning)"),
}

if TYPE_CHECKING:  # the resources are Dagster's; a step only calls their plain methods
    from deploy_assets.resources.landing import LandingZone
    from deploy_assets.resources.quality import QualityThresholds


class MonthRefused(Exception):
    """Raised inside the month's writer: the month is not stored (the writer discards what it wrote)."""


@dataclass
class StoredMonth:
    """What the step stored, per asset (`raw_trips`, `trip_statistics`): its metadata and content version."""

    metadata: dict[str, dict]
    versions: dict[str, str]


@dataclass
class Ingested:
    findings: Findings
    stored: StoredMonth | None  # None: a blocking check refused the month and nothing was stored


def month_findings(
    key: str, ingested: IngestedMonth, expected: pa.Schema, previous_rows: int | None, limits: QualityThresholds
) -> Findings:
    """Schema, dirty share and volume of one ingested month, from the numbers counted while reading it;
    `expected` is the deployment's cleaned-month schema, `previous_rows` the month before's kept rows."""
    findings = Findings()
    findings.measured("raw_trips_schema", key, columns=len(ingested.schema))
    if not ingested.schema.equals(expected):
        findings.failed("raw_trips_schema", key, f"schema {ingested.schema} differs from {expected}")

    share = ingested.dropped_share
    findings.measured("raw_trips_dirty_share", key, dropped_share=share)
    if share > limits.max_dropped_share:
        dropped = {reason: count for reason, count in ingested.dropped.items() if count}
        findings.failed(
            "raw_trips_dirty_share", key,
            f"{share:.0%} of rows dropped (limit {limits.max_dropped_share:.0%}): {dropped}",
        )

    rows = ingested.rows_kept
    findings.measured("raw_trips_volume", key, rows_kept=rows)
    if previous_rows:
        change = rows / previous_rows - 1
        findings.measured("raw_trips_volume", key, change_vs_previous=change)
        if abs(change) > limits.volume_tolerance:
            findings.failed(
                "raw_trips_volume", key, f"{rows} rows kept vs {previous_rows} the month before ({change:+.0%})"
            )
    return findings


def store_month(
    landing: LandingZone,
    rules: RideRules,
    schema: pa.Schema,
    raw_path,
    statistics_path,
    key: str,
    previous_rows: int | None,
    limits: QualityThresholds,
) -> Ingested:
    """Stream the month's file by record batches into `raw_path` (memory: one batch, whatever the month's size) and
    store its training statistics at `statistics_path`. The checks are computed from what was counted on the way;
    a month that fails a blocking check is not stored at all, one that keeps no row fails the step."""
    year, month = Month.from_key(key).pair
    try:
        with parquet_writer_atomic(raw_path, schema) as writer:
            ingested = landing.ingest_month(year, month, writer, rules)
            dropped = {f"dropped_{reason}": count for reason, count in ingested.dropped.items()}
            if ingested.rows_kept == 0:
                cause = f"all {ingested.rows_read} rows were filtered out ({dropped})"
                if ingested.dropped.get("pickup_outside_month") == ingested.rows_read:
                    cause += f"; its pickups are in {ingested.other_month}: a misnamed or duplicated upload?"
                raise StepFailure(cause, **dropped)
            findings = month_findings(key, ingested, schema, previous_rows, limits)
            if findings.blocking_failure(RAW_CHECKS):
                raise MonthRefused
    except MonthRefused:
        return Ingested(findings, None)
    statistics = ingested.statistics.to_table()
    write_parquet_atomic(statistics_path, statistics)
    stored = StoredMonth(
        metadata={
            "raw_trips": {
                "dagster/row_count": ingested.rows_kept,
                "dagster/uri": str(raw_path),
                "rows_read": ingested.rows_read,
                "rows_dropped": ingested.rows_dropped,
                **dropped,
                "source": str(landing.month_path(year, month)),
            },
            "trip_statistics": {
                "dagster/uri": str(statistics_path),
                "rides": ingested.statistics.rides,
                "zone_pairs": statistics.num_rows,
            },
        },
        versions={"raw_trips": writer.digest(), "trip_statistics": table_digest(statistics)},
    )
    return Ingested(findings, stored)
