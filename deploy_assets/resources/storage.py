"""Object storage for every location the project reads or writes: a local folder, s3://, or https://.

One code path: locations are URIs opened with universal-pathlib (fsspec underneath; s3fs for S3), so moving
from the local default to S3 is a configuration change. Credentials never appear here: s3fs/botocore take
them from the environment or the instance role; only the endpoint (for a non-AWS S3 such as moto) is config.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field
from upath import UPath

from deploy_assets.core.schema import MissingTripData, read_trips, tlc_file_name

REPO_DATA_DIR = Path(__file__).resolve().parents[2] / ".data"


def open_location(uri: str, s3_endpoint_url: str | None = None) -> UPath:
    """A UPath for a folder or object; a custom S3 endpoint is passed to s3fs only for s3:// URIs."""
    if uri.startswith("s3://") and s3_endpoint_url:
        return UPath(uri, endpoint_url=s3_endpoint_url)
    return UPath(uri)


def write_parquet_atomic(path: UPath, table: pa.Table) -> None:
    """Write to a temporary sibling, then move it onto the final name.

    Readers of the final name see the old object or the new one, never a partial file: a local rename is
    atomic, and on S3 the move is a server-side copy that makes the key appear complete.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("wb") as sink:
            pq.write_table(table, sink)
        path.fs.mv(temporary.path, path.path)
    finally:
        if temporary.exists():
            temporary.unlink()


def read_parquet(path: UPath, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(path.path, filesystem=path.fs, columns=columns)


@dataclass(frozen=True)
class LandedFile:
    """An object in the landing zone: its name, a content fingerprint (S3 ETag) and when it last changed."""

    uri: str
    name: str
    etag: str
    last_modified: datetime


class LandingZone(dg.ConfigurableResource):
    """Where monthly TLC files land (`yellow_tripdata_YYYY-MM.parquet`).

    A local folder (default), `s3://bucket/prefix`, or the TLC's own site (`TLC_BASE_URL`).
    """

    uri: str = Field(default=str(REPO_DATA_DIR / "landing"), description="folder, s3:// or https:// prefix")
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint for non-AWS S3 (e.g. moto)")

    def month_path(self, year: int, month: int) -> UPath:
        return open_location(self.uri, self.s3_endpoint_url) / tlc_file_name(year, month)

    def read_month(self, year: int, month: int) -> pa.Table:
        """The required columns of the month's file; MissingTripData / InvalidTripData name the URI."""
        path = self.month_path(year, month)
        source = str(path)
        if not path.exists():
            raise MissingTripData(source, "no such file in the landing zone")
        with path.open("rb") as file:
            return read_trips(file, source)

    def list_files(self, since: datetime | None = None) -> list[LandedFile]:
        """Files changed after `since` (UTC), oldest first.

        On S3 this is dagster-aws's `get_objects` over the bucket/prefix with a `since_last_modified` cursor, with
        a client from dagster-aws's S3Resource (credentials from the environment); a local folder is listed
        with modification times and an MD5 of each changed file standing in for the ETag.
        """
        if self.uri.startswith("s3://"):
            return self._list_s3(since)
        folder = open_location(self.uri)
        if not folder.exists():
            return []
        files = []
        for path in folder.iterdir():
            if not path.is_file() or path.name.startswith("."):
                continue
            modified = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
            if since is None or modified > since:
                digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
                files.append(LandedFile(str(path), path.name, digest, modified))
        return sorted(files, key=lambda f: f.last_modified)

    def _list_s3(self, since: datetime | None) -> list[LandedFile]:
        from dagster_aws.s3 import S3Resource
        from dagster_aws.s3.sensor import get_objects

        bucket, _, prefix = self.uri.removeprefix("s3://").partition("/")
        prefix = f"{prefix.rstrip('/')}/" if prefix else ""
        client = S3Resource(endpoint_url=self.s3_endpoint_url).get_client()
        objects = get_objects(bucket=bucket, prefix=prefix, since_last_modified=since, client=client)
        return [
            LandedFile(
                uri=f"s3://{bucket}/{obj['Key']}",
                name=obj["Key"][len(prefix) :],
                etag=obj["ETag"].strip('"'),
                last_modified=obj["LastModified"],
            )
            for obj in objects
            if "/" not in obj["Key"][len(prefix) :]
        ]


class PredictionStore(dg.ConfigurableResource):
    """One Parquet object per month: `<uri>/year=YYYY/month=MM/predictions.parquet`, replaced atomically."""

    uri: str = Field(default=str(REPO_DATA_DIR / "predictions"), description="folder or s3:// prefix")
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint for non-AWS S3 (e.g. moto)")

    def month_path(self, year: int, month: int) -> UPath:
        base = open_location(self.uri, self.s3_endpoint_url)
        return base / f"year={year:04d}" / f"month={month:02d}" / "predictions.parquet"

    def write_month(self, year: int, month: int, predictions: pa.Table) -> str:
        path = self.month_path(year, month)
        write_parquet_atomic(path, predictions)
        return str(path)

    def read_month(self, year: int, month: int, columns: list[str] | None = None) -> pa.Table:
        return read_parquet(self.month_path(year, month), columns)


class StoredPartitions(Mapping[str, pa.Table]):
    """Partitions of a stored asset, each read only when asked for.

    A backfill step over a year of months then holds one month in memory at a time, not twelve.
    """

    def __init__(self, asset: str, paths: dict[str, UPath]):
        self._asset = asset
        self._paths = paths

    def __getitem__(self, partition_key: str) -> pa.Table:
        path = self._paths[partition_key]
        if not path.exists():
            raise dg.Failure(
                description=f"{self._asset}[{partition_key}] is not materialized (no object at {path}):"
                " materialize it first",
                metadata={"partition": partition_key, "path": str(path)},
                allow_retries=False,
            )
        return read_parquet(path)

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

    uri: str = Field(default=str(REPO_DATA_DIR / "warehouse"), description="folder or s3:// prefix")
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint for non-AWS S3 (e.g. moto)")

    def create_io_manager(self, context) -> PartitionedParquetIOManager:
        return PartitionedParquetIOManager(base_path=open_location(self.uri, self.s3_endpoint_url))
