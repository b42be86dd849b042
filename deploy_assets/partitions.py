"""Monthly partitions: the Dagster partitions definition, and the month helpers the asset modules import.

The month arithmetic itself is `core.months.Month`; each helper here is one delegation to it, kept for the asset
modules' imports.
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from deploy_assets.core.months import Month
from deploy_assets.core.schema import parse_tlc_file_name
from deploy_assets.settings import FIRST_MONTH, TRAINING_WINDOW_MONTHS

monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=FIRST_MONTH)


def year_month(partition_key: str) -> tuple[int, int]:
    return Month.from_key(partition_key).pair


def month_start(partition_key: str) -> date:
    return Month.from_key(partition_key).first_day


def partition_key_for_file(name: str) -> str | None:
    """`yellow_tripdata_2024-03.parquet` → `2024-03-01`; None for any other name."""
    parsed = parse_tlc_file_name(name)
    return Month(*parsed).key if parsed else None


def previous_month(partition_key: str) -> str:
    return Month.from_key(partition_key).previous.key


def training_partition_keys(partition_key: str) -> list[str]:
    """The partitions duration_model[partition_key] trains on: the k months before it that are partitions."""
    first = Month.from_key(monthly_partitions.get_first_partition_key())
    return [m.key for m in Month.from_key(partition_key).training_window(TRAINING_WINDOW_MONTHS, first)]
