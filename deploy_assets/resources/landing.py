"""The landing zone: where the TLC's monthly files land (a folder, s3:// or the TLC's own https:// site), listed and read."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

import dagster as dg
import pyarrow as pa
from pydantic import Field
from upath import UPath

from deploy_assets.core.batches import (
    BATCH_ROWS,
)
from deploy_assets.core.ingest import BatchWriter, IngestedMonth, ingest_file
from deploy_assets.core.datasets import DATASETS, YELLOW, Dataset, dataset_of
from deploy_assets.core.features import RIDE_RULES, RideRules
from deploy_assets.core.months import Month
from deploy_assets.core.schema import MissingTripData, read_trips
from deploy_assets.core.objects import open_location


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
    """Where one TLC service's monthly files land (`<service>_tripdata_YYYY-MM.parquet`, core.datasets).

    A local folder (default), `s3://bucket/prefix`, or the TLC's own site (`TLC_BASE_URL`).
    """

    uri: str = Field(description="folder, s3:// or https:// prefix")
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint for non-AWS S3 (e.g. moto)")
    dataset: str = Field(default=YELLOW.name, description=f"the TLC service whose files land here: {', '.join(DATASETS)}")
    declared_dataset: dict[str, str] | None = Field(
        default=None, description="instead of a TLC service, a dataset declared by its file prefix and ride columns"
    )

    @property
    def tlc_dataset(self) -> Dataset:
        return dataset_of(self.declared_dataset or self.dataset)

    def file_name(self, year: int, month: int) -> str:
        return self.tlc_dataset.file_name(Month(year, month))

    def month_path(self, year: int, month: int) -> UPath:
        return open_location(self.uri, self.s3_endpoint_url) / self.file_name(year, month)

    def _existing_month(self, year: int, month: int) -> UPath:
        path = self.month_path(year, month)
        if not path.exists():
            raise MissingTripData(str(path), "no such file in the landing zone")
        return path

    def read_month(self, year: int, month: int) -> pa.Table:
        """The required columns of the month's file; MissingTripData / InvalidTripData name the URI."""
        path = self._existing_month(year, month)
        with path.open("rb") as file:
            return read_trips(file, str(path), self.tlc_dataset)

    def ingest_month(
        self, year: int, month: int, writer: BatchWriter, rules: RideRules = RIDE_RULES, batch_rows: int = BATCH_ROWS
    ) -> IngestedMonth:
        """The month's file streamed through core.ingest into `writer` (e.g. parquet_writer_atomic's), cleaned by
        the deployment's `rules`."""
        path = self._existing_month(year, month)
        with path.open("rb") as file:
            return ingest_file(file, str(path), year, month, writer, batch_rows, self.tlc_dataset, rules)

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
        name = self.file_name(year, month)
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
