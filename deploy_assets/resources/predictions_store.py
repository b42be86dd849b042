"""Where each month's predictions are published: one Parquet object per month, staged, then moved onto its key."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import dagster as dg
import pyarrow as pa
from pydantic import Field
from upath import UPath

from deploy_assets.core.batches import (
    BATCH_ROWS,
    ParquetBatchWriter,
)
from deploy_assets.core.months import Month
from deploy_assets.core.objects import (
    STAGING_PREFIX,
    iter_parquet,
    open_location,
    parquet_writer_atomic,
    publish_object,
    read_parquet,
    write_parquet_atomic,
)


class PredictionStore(dg.ConfigurableResource):
    """One Parquet object per month: `<uri>/year=YYYY/month=MM/predictions.parquet`, replaced atomically.

    For write-audit-publish, a month can first be written to `<uri>/_staging/year=YYYY/month=MM/...` (a prefix
    that Hive-style readers of `<uri>` skip), audited there, then published onto the final key.
    """

    uri: str = Field(description="folder or s3:// prefix")
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint for non-AWS S3 (e.g. moto)")

    def _path(self, year: int, month: int, staging: bool) -> UPath:
        within = Month(year, month)  # refuses month 13 before any object is named after it
        base = open_location(self.uri, self.s3_endpoint_url)
        if staging:
            base = base / STAGING_PREFIX
        return base / f"year={within.year:04d}" / f"month={within.month:02d}" / "predictions.parquet"

    def month_path(self, year: int, month: int) -> UPath:
        return self._path(year, month, staging=False)

    def staging_path(self, year: int, month: int) -> UPath:
        return self._path(year, month, staging=True)

    def write_month(self, year: int, month: int, predictions: pa.Table) -> str:
        path = self.month_path(year, month)
        write_parquet_atomic(path, predictions)
        return str(path)

    def write_staging(self, year: int, month: int, predictions: pa.Table) -> str:
        path = self.staging_path(year, month)
        write_parquet_atomic(path, predictions)
        return str(path)

    @contextmanager
    def month_writer(
        self, year: int, month: int, schema: pa.Schema, staging: bool = False, **writer_options
    ) -> Iterator[ParquetBatchWriter]:
        """Write the month by batches (to the staging object if `staging`), published when the block succeeds."""
        with parquet_writer_atomic(self._path(year, month, staging), schema, **writer_options) as writer:
            yield writer

    def publish(self, year: int, month: int) -> str:
        """The staged month becomes the published one (see publish_object); returns the published URI."""
        final = self.month_path(year, month)
        publish_object(self.staging_path(year, month), final)
        return str(final)

    def discard_staging(self, year: int, month: int) -> None:
        """Remove the staged month (after a failed audit), if there is one."""
        path = self.staging_path(year, month)
        if path.exists():
            path.unlink()

    def read_month(self, year: int, month: int, columns: list[str] | None = None) -> pa.Table:
        return read_parquet(self.month_path(year, month), columns)

    def iter_month(
        self,
        year: int,
        month: int,
        columns: Sequence[str] | None = None,
        batch_rows: int = BATCH_ROWS,
        staging: bool = False,
    ) -> Iterator[pa.RecordBatch]:
        """The month's predictions (or its staged ones) by record batches."""
        return iter_parquet(self._path(year, month, staging), columns, batch_rows)
