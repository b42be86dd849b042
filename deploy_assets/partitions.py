"""A deployment's months as Dagster sees them: the partitions definition and each model's training window.

The month arithmetic itself is `core.months.Month`; the helpers below are one delegation each, for the asset
modules' imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property

import dagster as dg

from deploy_assets.core.months import Month
from deploy_assets.settings import Settings


@dataclass(frozen=True)
class Months:
    """The months of one deployment: from `first` to `last` (None: the current month), each model trained on
    the `training_window` months before its own."""

    first: Month
    training_window: int
    last: Month | None = None

    @classmethod
    def of(cls, settings: Settings) -> Months:
        last = Month.parse(settings.last_month) if settings.last_month else None
        return cls(Month.parse(settings.first_month), settings.training_months, last)

    @cached_property
    def partitions_def(self) -> dg.MonthlyPartitionsDefinition:
        end = self.last.next.key if self.last is not None else None
        return dg.MonthlyPartitionsDefinition(start_date=self.first.key, end_date=end)

    @property
    def newest(self) -> Month:
        """The last partition: `last`, or, without one, the newest month Dagster's partitions hold now (the month
        before the current one)."""
        return Month.from_key(self.partitions_def.get_last_partition_key())

    def keys(self) -> list[str]:
        return self.partitions_def.get_partition_keys()

    def training_keys(self, partition_key: str) -> list[str]:
        """The partitions duration_model[partition_key] trains on: the k months before it that are partitions."""
        return [m.key for m in Month.from_key(partition_key).training_window(self.training_window, self.first)]

    @property
    def training_mapping(self) -> dg.TimeWindowPartitionMapping:
        """The same window as Dagster's edge trip_statistics → duration_model."""
        return dg.TimeWindowPartitionMapping(start_offset=-self.training_window, end_offset=-1)


def year_month(partition_key: str) -> tuple[int, int]:
    return Month.from_key(partition_key).pair


def month_start(partition_key: str) -> date:
    return Month.from_key(partition_key).first_day


def previous_month(partition_key: str) -> str:
    return Month.from_key(partition_key).previous.key
