"""Object storage for every location the project reads or writes: a local folder, s3://, or https://.

One code path: locations are URIs opened with universal-pathlib (fsspec underneath; s3fs for S3), so moving
from the local default to S3 is a configuration change. Credentials never appear here: s3fs/botocore take
them from the environment or the instance role; only the endpoint (for a non-AWS S3 such as moto) is config.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field
from upath import UPath

from deploy_assets.core.batches import (
    BATCH_ROWS,
    BatchSource,
    ParquetBatchWriter,
    iter_parquet_batches,
    parquet_batch_source,
)
from deploy_assets.core.ingest import BatchWriter, IngestedMonth, ingest_file
from deploy_assets.core.months import Month
from deploy_assets.core.schema import MissingTripData, read_trips, tlc_file_name

# Staged objects live under this prefix of a store: Hive-style readers skip names starting with "_".
STAGING_PREFIX = "_staging"


def open_location(uri: str, s3_endpoint_url: str | None = None) -> UPath:
    """A UPath for a folder or object; a custom S3 endpoint is passed to s3fs only for s3:// URIs."""
    if uri.startswith("s3://") and s3_endpoint_url:
        return UPath(uri, endpoint_url=s3_endpoint_url)
    return UPath(uri)


def _is_s3(path: UPath) -> bool:
    return path.protocol in ("s3", "s3a")


@contextmanager
def atomic_sink(path: UPath) -> Iterator[BinaryIO]:
    """A binary file that becomes `path` only when the block ends without an error, never partially.

    On S3 the bytes go straight to the final key: one PUT, or a multipart upload that its last request
    completes, and either makes the whole object appear at once; on an error the upload is aborted and the key
    keeps its previous object. No temporary key, no copy, no delete. Elsewhere (a local folder) the file is
    written as a temporary sibling and renamed onto the final name (an atomic rename).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if _is_s3(path):
        sink = path.fs.open(path.path, "wb")
        try:
            yield sink
        except BaseException:
            sink.discard()  # aborts the multipart upload, if one started, and drops the buffer
            sink.closed = True  # closing would upload what is buffered and complete the object
            raise
        sink.close()
        return
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("wb") as sink:
            yield sink
        _rename(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def write_parquet_atomic(path: UPath, table: pa.Table) -> None:
    """Write `table` to `path`; readers see the old object or the new one (see atomic_sink)."""
    with atomic_sink(path) as sink:
        pq.write_table(table, sink)


@contextmanager
def parquet_writer_atomic(path: UPath, schema: pa.Schema, **writer_options) -> Iterator[ParquetBatchWriter]:
    """A ParquetBatchWriter whose file becomes `path` when the block ends without an error (see atomic_sink).

    Raise inside the block to store nothing, e.g. when the month turns out too dirty after its last batch.
    """
    with atomic_sink(path) as sink, ParquetBatchWriter(sink, schema, **writer_options) as writer:
        yield writer


def _rename(source: UPath, target: UPath) -> None:
    """One atomic rename on a local disk (os.replace: it fails rather than fall back to copy-and-delete, which
    would rewrite the target in place); the filesystem's own move elsewhere (e.g. memory:// in tests)."""
    if source.protocol in ("", "file", "local"):
        os.replace(source.path, target.path)
    else:
        source.fs.mv(source.path, target.path)


def publish_object(staging: UPath, final: UPath) -> None:
    """Make a staged object the final one, whole: readers see the previous object or the staged one.

    Local: a rename. S3 (which has no rename): one server-side copy (CopyObject, or a multipart copy above
    5 GB; the bytes do not pass through this process), then the staging object is deleted.
    """
    if _is_s3(final):
        final.fs.copy(staging.path, final.path)
        staging.fs.rm(staging.path)
    else:
        final.parent.mkdir(parents=True, exist_ok=True)
        _rename(staging, final)


def read_parquet(path: UPath, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(path.path, filesystem=path.fs, columns=columns)


def iter_parquet(
    path: UPath, columns: Sequence[str] | None = None, batch_rows: int = BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """A stored Parquet object by record batches (bounded memory, any size)."""
    return iter_parquet_batches(path.path, columns, batch_rows, filesystem=path.fs)


def batch_source(path: UPath, batch_rows: int = BATCH_ROWS) -> BatchSource:
    """A re-readable BatchSource over a stored object (e.g. a cleaned month for core.model.train_from_batches)."""
    return parquet_batch_source(path.path, filesystem=path.fs, batch_rows=batch_rows)


@dataclass(frozen=True)
class LandedFile:
    """An object in the landing zone: its name under the prefix, a content fingerprint (S3 ETag), when it last
    changed and its size."""

    uri: str
    name: str
    etag: str
    last_modified: datetime
    size: int = 0


class LandingZone(dg.ConfigurableResource):
    """Where monthly TLC files land (`yellow_tripdata_YYYY-MM.parquet`).

    A local folder (default), `s3://bucket/prefix`, or the TLC's own site (`TLC_BASE_URL`).
    """

    uri: str = Field(description="folder, s3:// or https:// prefix")
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint for non-AWS S3 (e.g. moto)")

    def month_path(self, year: int, month: int) -> UPath:
        return open_location(self.uri, self.s3_endpoint_url) / tlc_file_name(year, month)

    def _existing_month(self, year: int, month: int) -> UPath:
        path = self.month_path(year, month)
        if not path.exists():
            raise MissingTripData(str(path), "no such file in the landing zone")
        return path

    def read_month(self, year: int, month: int) -> pa.Table:
        """The required columns of the month's file; MissingTripData / InvalidTripData name the URI."""
        path = self._existing_month(year, month)
        with path.open("rb") as file:
            return read_trips(file, str(path))

    def ingest_month(self, year: int, month: int, writer: BatchWriter, batch_rows: int = BATCH_ROWS) -> IngestedMonth:
        """The month's file streamed through core.ingest into `writer` (e.g. parquet_writer_atomic's)."""
        path = self._existing_month(year, month)
        with path.open("rb") as file:
            return ingest_file(file, str(path), year, month, writer, batch_rows)

    def list_files(self, known: Mapping[str, LandedFile] | None = None) -> list[LandedFile]:
        """Every object under the landing prefix (nested names included, relative to the prefix), oldest first.

        A full listing, not "since the last time": a multipart upload's LastModified is when it started, so a
        time cursor can step past a large file that completes later. On S3 this is dagster-aws's `get_objects`
        with a client from its S3Resource; in a local folder the ETag stands in as an MD5 of the bytes, computed
        again only for files whose size or modification time differ from `known` (the previous listing).
        """
        if self.uri.startswith("s3://"):
            return self._list_s3()
        folder = open_location(self.uri)
        if not folder.exists():
            return []
        known = known or {}
        files = [
            self._local_file(folder, path, known.get(path.relative_to(folder).as_posix()))
            for path in folder.rglob("*")
            if path.is_file()
        ]
        return sorted(files, key=lambda f: f.last_modified)

    def landed_file(self, year: int, month: int) -> LandedFile | None:
        """The month's object as the landing sensor reports it, so a step can record which version of the file it
        read; None if there is none (or on the TLC's site, which has no ETag)."""
        name = tlc_file_name(year, month)
        if self.uri.startswith("s3://"):
            from botocore.exceptions import ClientError

            bucket, prefix = self._bucket_and_prefix()
            try:
                # One attempt: the step's retry policy is what retries a transient failure, with its backoff.
                head = self._s3_client(max_attempts=1).head_object(Bucket=bucket, Key=f"{prefix}{name}")
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise
            return LandedFile(
                uri=f"s3://{bucket}/{prefix}{name}",
                name=name,
                etag=head["ETag"].strip('"'),
                last_modified=head["LastModified"],
                size=head.get("ContentLength", 0),
            )
        if self.uri.startswith(("http://", "https://")):
            return None
        folder = open_location(self.uri)
        return self._local_file(folder, folder / name, None) if (folder / name).is_file() else None

    @staticmethod
    def _local_file(folder: UPath, path: UPath, before: LandedFile | None) -> LandedFile:
        """A file of a local landing folder; its MD5 is computed again only if size or modification time changed."""
        stat = path.stat()
        modified = datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc)
        if before is not None and before.last_modified == modified and before.size == stat.st_size:
            etag = before.etag
        else:
            etag = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
        return LandedFile(str(path), path.relative_to(folder).as_posix(), etag, modified, stat.st_size)

    def _bucket_and_prefix(self) -> tuple[str, str]:
        bucket, _, prefix = self.uri.removeprefix("s3://").partition("/")
        return bucket, f"{prefix.rstrip('/')}/" if prefix else ""

    def _s3_client(self, **options):
        from dagster_aws.s3 import S3Resource

        return S3Resource(endpoint_url=self.s3_endpoint_url, **options).get_client()

    def _list_s3(self) -> list[LandedFile]:
        from dagster_aws.s3.sensor import get_objects

        bucket, prefix = self._bucket_and_prefix()
        objects = get_objects(bucket=bucket, prefix=prefix, client=self._s3_client())
        return [
            LandedFile(
                uri=f"s3://{bucket}/{obj['Key']}",
                name=obj["Key"][len(prefix) :],
                etag=obj["ETag"].strip('"'),
                last_modified=obj["LastModified"],
                size=obj.get("Size", 0),
            )
            for obj in objects
        ]


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
