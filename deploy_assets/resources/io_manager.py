"""The Parquet IO manager of the stored assets (raw_trips, trip_statistics), and the months it hands to a step."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import dagster as dg
import pyarrow as pa
from pydantic import Field
from upath import UPath

from deploy_assets.core.batches import (
    BATCH_ROWS,
    BatchSource,
)
from deploy_assets.core.objects import (
    batch_source,
    open_location,
    read_parquet,
    write_parquet_atomic,
)


class StoredPartitions(Mapping[str, pa.Table]):
    """Partitions of a stored asset, each read only when asked for.

    A backfill step over a year of months then holds one month in memory at a time, not twelve.
    """

    def __init__(self, asset: str, paths: dict[str, UPath]):
        self._asset = asset
        self._paths = paths

    def path(self, partition_key: str) -> UPath:
        """Where the partition is stored; a named, non-retried failure when it is not."""
        path = self._paths[partition_key]
        if not path.exists():
            raise dg.Failure(
                description=f"{self._asset}[{partition_key}] is not materialized (no object at {path}):"
                " materialize it first",
                metadata={"partition": partition_key, "path": str(path)},
                allow_retries=False,
            )
        return path

    def __getitem__(self, partition_key: str) -> pa.Table:
        return read_parquet(self.path(partition_key))

    def batches(self, partition_key: str, batch_rows: int = BATCH_ROWS) -> BatchSource:
        """The partition as a re-readable BatchSource: read by batches, never whole."""
        return batch_source(self.path(partition_key), batch_rows)

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


class PartitionedParquetIOManager(dg.UPathIOManager):
    """Arrow tables as `<base>/<asset>/<partition>.parquet`, written atomically, for one or many partitions.

    Partitioned assets exchange `{partition_key: table}` mappings whatever the number of partitions in the
    run, so a single-run backfill over a range of months writes one object per month (the stock
    UPathIOManager refuses multi-partition outputs), and inputs arrive as StoredPartitions, read lazily.
    """

    extension = ".parquet"

    def partition_path(self, asset: str, partition_key: str) -> UPath:
        """Where `asset[partition_key]` is stored, for a step that streams its output there itself."""
        return self._base_path / asset / f"{partition_key}{self.extension}"

    def dump_to_path(self, context: dg.OutputContext, obj: pa.Table, path: UPath) -> None:
        write_parquet_atomic(path, obj)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pa.Table:
        return read_parquet(path)

    def load_partitions(self, context: dg.InputContext) -> StoredPartitions:
        return StoredPartitions(context.asset_key.to_user_string(), self._get_paths_for_partitions(context))

    def load_input(self, context: dg.InputContext):
        if context.has_asset_partitions and not context.asset_partition_keys:  # e.g. no month before the first
            return StoredPartitions(context.asset_key.to_user_string(), {})
        return super().load_input(context)

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if not context.has_asset_partitions:
            return super().handle_output(context, obj)
        paths = self._get_paths_for_partitions(context)
        missing = set(paths) - set(obj)
        if missing:
            raise dg.DagsterInvariantViolationError(
                f"{context.asset_key.to_user_string()}: no table returned for partitions {sorted(missing)}"
            )
        for partition_key, path in paths.items():
            self.dump_to_path(context, obj[partition_key], path)


class ParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Configures PartitionedParquetIOManager from a base URI (local folder by default, or s3://...)."""

    uri: str = Field(description="folder or s3:// prefix")
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint for non-AWS S3 (e.g. moto)")

    def create_io_manager(self, context) -> PartitionedParquetIOManager:
        return PartitionedParquetIOManager(base_path=open_location(self.uri, self.s3_endpoint_url))

    def partition_path(self, asset: str, partition_key: str) -> UPath:
        """Where the IO manager stores `asset[partition_key]` (e.g. for a step that streams its output there)."""
        return self.create_io_manager(None).partition_path(asset, partition_key)
