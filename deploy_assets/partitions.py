"""Monthly partitions: partition key `YYYY-MM-01` ⇄ (year, month) ⇄ the TLC file of that month."""

from __future__ import annotations

import os
from datetime import date

import dagster as dg

from deploy_assets.core.schema import parse_tlc_file_name

# The partition range and the training window shape the asset graph itself, so they are read once when the
# code location loads (not per run): set them in the code location's environment.
monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date=os.getenv("DEPLOY_ASSETS_FIRST_MONTH", "2023-01-01")
)
# duration_model[M] trains on raw_trips[M-k .. M-1].
TRAINING_WINDOW_MONTHS = int(os.getenv("DEPLOY_ASSETS_TRAINING_MONTHS", "1"))


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


def training_partition_keys(partition_key: str) -> list[str]:
    """The partitions duration_model[partition_key] trains on: the k months before it that are partitions."""
    month = date.fromisoformat(partition_key)
    first = monthly_partitions.get_first_partition_key()
    keys = []
    for back in range(TRAINING_WINDOW_MONTHS, 0, -1):
        index = month.year * 12 + month.month - 1 - back
        keys.append(partition_key_for(index // 12, index % 12 + 1))
    return [key for key in keys if key >= first]
