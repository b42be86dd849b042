"""Where the project's objects live and how they are written: a local folder, s3:// or https://, opened as one kind of
path, every write atomic (a reader sees the old object or the new one, never a part).

One code path: locations are URIs opened with universal-pathlib (fsspec underneath; s3fs for S3), so moving
from the local default to S3 is a configuration change. Credentials never appear here: s3fs/botocore take
them from the environment or the instance role; only the endpoint (for a non-AWS S3 such as moto) is config.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from deploy_assets.core.batches import (
    BATCH_ROWS,
    BatchSource,
    ParquetBatchWriter,
    iter_parquet_batches,
    parquet_batch_source,
)

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
