"""Ingest one TLC month by record batches: validate, clean and write batch by batch, in flat memory.

The month is never whole in memory: each batch is cleaned by `clean_batch` (the same rules as `clean_trips`,
ride ids from the running row offset) and handed to a writer at once. What the month's checks and its
training need is gathered on the way (drop counts, kept rows, the written schema, per-zone-pair statistics),
so neither has to read the stored month again.

The writer decides where rows go and when they become visible: with `storage.parquet_writer_atomic` nothing
is published unless the block around the ingest ends without an error, so a caller that refuses the month
(too many dirty rows) raises inside the block and stores nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import pyarrow as pa

from deploy_assets.core.batches import BATCH_ROWS
from deploy_assets.core.datasets import YELLOW, Dataset
from deploy_assets.core.features import MISSING_ZONE, RIDE_RULES, DropCounts, RideRules, clean_batch, clean_schema
from deploy_assets.core.model import ZonePairStatistics
from deploy_assets.core.schema import iter_trips


class BatchWriter(Protocol):
    def write(self, data: pa.Table) -> None: ...


@dataclass
class IngestedMonth:
    """What ingesting a month found: counts per drop reason, and the statistics of the rides kept."""

    counts: DropCounts
    rows_kept: int
    schema: pa.Schema  # of the rows written: the schema check reads it here, not from the stored object
    statistics: ZonePairStatistics  # of the kept rides: a training window adds these up instead of re-reading

    @property
    def rows_read(self) -> int:
        return self.counts.rows_read

    @property
    def dropped(self) -> dict[str, int]:
        return self.counts.dropped

    @property
    def rows_dropped(self) -> int:
        return self.counts.rows_dropped

    @property
    def dropped_share(self) -> float:
        return self.rows_dropped / self.rows_read if self.rows_read else 0.0

    @property
    def other_month(self) -> str | None:
        return self.counts.other_month


def ingest_batches(
    batches: Iterable[pa.RecordBatch], year: int, month: int, writer: BatchWriter, rules: RideRules = RIDE_RULES
) -> IngestedMonth:
    """Clean TLC batches (in file order) of month year-month by `rules` and write the kept rides to `writer`."""
    counts = DropCounts()
    statistics = ZonePairStatistics.empty()
    kept, schema = 0, clean_schema()
    for batch in batches:
        clean, batch_counts = clean_batch(batch, year, month, first_row=counts.rows_read, rules=rules)
        counts.add(batch_counts)
        writer.write(clean)
        statistics += ZonePairStatistics.from_table(clean)
        kept, schema = kept + clean.num_rows, clean.schema
    return IngestedMonth(counts=counts, rows_kept=kept, schema=schema, statistics=statistics)


def ingest_file(
    file: str | BinaryIO, source: str, year: int, month: int, writer: BatchWriter, batch_rows: int = BATCH_ROWS,
    dataset: Dataset = YELLOW, rules: RideRules = RIDE_RULES,
) -> IngestedMonth:
    """Ingest a TLC month file of `dataset` (local path or open binary file); errors are read_trips' (named by
    `source`). Its columns are renamed to the platform's first, so one set of ride rules cleans every service
    (the distance rules where it has one); a null zone is MISSING_ZONE when `rules` keep such rides."""
    null_zone = MISSING_ZONE if rules.keep_missing_zones else None
    batches = iter_trips(file, source, batch_rows, dataset, null_zone)
    return ingest_batches(batches, year, month, writer, rules)
