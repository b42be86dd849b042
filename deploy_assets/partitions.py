"""Monthly partitions: partition key `YYYY-MM-01` ⇄ (year, month) ⇄ the TLC file of that month."""

from __future__ import annotations

from datetime import date

import dagster as dg

from deploy_assets.core.schema import parse_tlc_file_name
from deploy_assets.settings import FIRST_MONTH, TRAINING_WINDOW_MONTHS

monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=FIRST_MONTH)


def year_month(partition_key: str) -> tuple[int, int]:
    month = date.fromisoformat(partition_key)
    return month.year, month.month


def month_start(partition_key: str) -> date:
    return date.fromisoformat(partition_key)


def partition_key_for(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}-01"


def partition_key_for_file(name: str) -> str | None:
    """`yellow_tripdata_2024-03.parquet` → `2024-03-01`; None for any other name."""
    parsed = parse_tlc_file_name(name)
    return partition_key_for(*parsed) if parsed else None


def previous_month(partition_key: str) -> str:
    year, month = year_month(partition_key)
    return partition_key_for(year - 1, 12) if month == 1 else partition_key_for(year, month - 1)


def training_partition_keys(partition_key: str) -> list[str]:
    """The partitions duration_model[partition_key] trains on: the k months before it that are partitions."""
    month = date.fromisoformat(partition_key)
    first = monthly_partitions.get_first_partition_key()
    keys = []
    for back in range(TRAINING_WINDOW_MONTHS, 0, -1):
        index = month.year * 12 + month.month - 1 - back
        keys.append(partition_key_for(index // 12, index % 12 + 1))
    return [key for key in keys if key >= first]
