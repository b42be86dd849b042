"""Parquet by record batches: every month is read and written in bounded memory, whatever its size.

`iter_parquet_batches` reads a file (local path, open file, or a path on a pyarrow/fsspec filesystem) one
record batch at a time; `ParquetBatchWriter` takes batches of any size and writes full row groups, so memory
holds at most one row group and the file is byte-identical to `pq.write_table` of the whole table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

# Rows per record batch read: large enough that per-batch overhead vanishes, small enough for flat memory.
BATCH_ROWS = 524_288
# pq.write_table's default row-group size: keeping it makes streamed files identical to in-memory ones.
ROW_GROUP_ROWS = 1024 * 1024

# A re-readable source of batches: called with the columns wanted, it starts a new pass over the data.
BatchSource = Callable[[Sequence[str]], Iterable[pa.RecordBatch]]


def iter_parquet_batches(
    source: Any, columns: Sequence[str] | None = None, batch_rows: int = BATCH_ROWS, filesystem: Any = None
) -> Iterator[pa.RecordBatch]:
    """The record batches of one Parquet file (only `columns` if given), at most `batch_rows` rows each."""
    with pq.ParquetFile(source, filesystem=filesystem) as parquet:
        yield from iter_file_batches(parquet, columns, batch_rows)


def iter_file_batches(
    parquet: pq.ParquetFile, columns: Sequence[str] | None = None, batch_rows: int = BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """An open Parquet file's batches, one reader per row group.

    One reader over the whole file keeps buffers until its end (pyarrow 25: a 30M-row month peaked at 0.9 GiB
    just being read); a reader per row group frees them as it goes, so memory stays that of a row group.
    """
    for row_group in range(parquet.num_row_groups):
        yield from parquet.iter_batches(
            batch_size=batch_rows, row_groups=[row_group], columns=list(columns) if columns else None
        )


def parquet_batch_source(source: Any, filesystem: Any = None, batch_rows: int = BATCH_ROWS) -> BatchSource:
    """A BatchSource over a stored Parquet file: each call reads it again, only the columns asked for."""

    def batches(columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        return iter_parquet_batches(source, columns, batch_rows, filesystem)

    return batches


def table_batch_source(table: pa.Table, batch_rows: int = BATCH_ROWS) -> BatchSource:
    """A BatchSource over a table already in memory (the in-memory path shares the streamed code)."""

    def batches(columns: Sequence[str]) -> list[pa.RecordBatch]:
        return table.select(list(columns)).to_batches(max_chunksize=batch_rows)

    return batches


class DigestingSink:
    """A binary sink that fingerprints the bytes passing through it: the content version of a file as written,
    without reading it back."""

    def __init__(self, sink: Any) -> None:
        self._sink, self._sha = sink, hashlib.sha256()

    def write(self, data) -> int:
        self._sha.update(data)
        return self._sink.write(data)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()[:16]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sink, name)


class ParquetBatchWriter:
    """Writes tables or record batches of any size to one Parquet file in row groups of `row_group_rows`.

    Use as a context manager (or call `close`). `writer_options` go to `pq.ParquetWriter` (e.g. compression).
    Written to a file object, `digest()` is then the fingerprint of the file's bytes.
    """

    def __init__(self, sink: Any, schema: pa.Schema, row_group_rows: int = ROW_GROUP_ROWS, **writer_options):
        self.schema = schema
        self.row_group_rows = row_group_rows
        self.rows_written = 0
        self._digest = DigestingSink(sink) if hasattr(sink, "write") else None
        self._writer = pq.ParquetWriter(self._digest or sink, schema, **writer_options)
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0

    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        batches = data.to_batches() if isinstance(data, pa.Table) else [data]
        for batch in batches:
            if not batch.schema.equals(self.schema):
                raise ValueError(f"batch schema {batch.schema} differs from the file's {self.schema}")
            self._pending.append(batch)
            self._pending_rows += batch.num_rows
        while self._pending_rows >= self.row_group_rows:
            self._write_row_group(self.row_group_rows)

    def _write_row_group(self, rows: int) -> None:
        # Contiguous columns per row group: the same pages pq.write_table writes for one contiguous table.
        pending = pa.Table.from_batches(self._pending, self.schema).combine_chunks()
        self._writer.write_table(pending.slice(0, rows), row_group_size=max(rows, 1))
        rest = pending.slice(rows)
        self._pending, self._pending_rows = rest.to_batches(), rest.num_rows
        self.rows_written += rows

    def close(self) -> None:
        if self._pending_rows or not self.rows_written:  # like pq.write_table, an empty file has one empty group
            self._write_row_group(self._pending_rows)
        self._writer.close()

    def digest(self) -> str:
        """sha256 (16 hex digits) of the bytes written so far: the whole file's once closed."""
        if self._digest is None:
            raise TypeError("the file's fingerprint is known only when writing to a file object")
        return self._digest.hexdigest()

    def __enter__(self) -> ParquetBatchWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self._writer.close()  # release the sink; whoever owns it discards the partial file


def table_digest(table: pa.Table, rows_per_slice: int = 1 << 18) -> str:
    """A fingerprint of a table's content (column names, types, values, nulls), the same however it is chunked."""
    digest = hashlib.sha256(repr([(f.name, str(f.type)) for f in table.schema]).encode())
    for start in range(0, table.num_rows, rows_per_slice):
        for column in table.slice(start, rows_per_slice).columns:
            values = column.to_numpy(zero_copy_only=False)
            digest.update(str(column.null_count).encode())
            digest.update(values.tobytes() if values.dtype != object else repr(values.tolist()).encode())
    return digest.hexdigest()[:16]
