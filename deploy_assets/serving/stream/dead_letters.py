"""Where invalid events go, with their reason: a Kinesis stream, an S3 prefix, or the log.

`kinesis://STREAM` (one JSON record per bad event) or `s3://bucket/prefix` (one JSON-lines object per
micro-batch and shard, key `prefix/STREAM/SHARD/FIRST-LAST.jsonl`: deterministic, so a replay overwrites instead
of duplicating). Without a destination, bad events are logged at ERROR level and skipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Protocol

from deploy_assets.serving.stream.events import DeadLetter
from deploy_assets.serving.stream.kinesis_writer import Backoff, KinesisWriter, make_client

log = logging.getLogger(__name__)


class DeadLetterSink(Protocol):
    destination: str

    def send(self, letters: Sequence[DeadLetter]) -> list[int]:
        """Write the letters; return the indexes that could not be written."""


class KinesisDeadLetter:
    def __init__(self, client, stream_name: str, backoff: Backoff | None = None):
        self.writer = KinesisWriter(client, stream_name, backoff)
        self.destination = self.writer.destination

    def send(self, letters: Sequence[DeadLetter]) -> list[int]:
        entries = [
            (json.dumps(letter.to_json()).encode(), letter.record.partition_key or letter.record.sequence_number)
            for letter in letters
        ]
        return self.writer.put(entries)


class S3DeadLetter:
    """One JSON-lines object per (stream, shard) of a micro-batch; the key is deterministic, so a replay after a
    crash overwrites the same object instead of adding a duplicate."""

    def __init__(self, client, bucket: str, prefix: str = ""):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.destination = f"s3://{bucket}/{self.prefix}".rstrip("/")

    def key_for(self, letters: Sequence[DeadLetter]) -> str:
        first, last = letters[0].record, letters[-1].record
        parts = [self.prefix, first.stream or "stream", first.shard_id or "shard", f"{first.sequence_number}-{last.sequence_number}.jsonl"]
        return "/".join(part for part in parts if part)

    def send(self, letters: Sequence[DeadLetter]) -> list[int]:
        groups: dict[tuple[str, str], list[int]] = {}
        for index, letter in enumerate(letters):
            groups.setdefault((letter.record.stream, letter.record.shard_id), []).append(index)
        failed: list[int] = []
        for indexes in groups.values():
            group = [letters[i] for i in indexes]
            body = "".join(json.dumps(letter.to_json()) + "\n" for letter in group).encode()
            try:
                self.client.put_object(Bucket=self.bucket, Key=self.key_for(group), Body=body, ContentType="application/x-ndjson")
            except Exception as error:  # noqa: BLE001 - reported as failed records
                log.error("dead letter to %s failed: %s", self.destination, error)
                failed.extend(indexes)
        return failed


class LogDeadLetter:
    """No destination configured: log each bad event (reason, position) at ERROR level and move on."""

    destination = "log"

    def send(self, letters: Sequence[DeadLetter]) -> list[int]:
        for letter in letters:
            log.error(
                "invalid event %s/%s seq %s (%s): %s",
                letter.record.stream, letter.record.shard_id, letter.record.sequence_number, letter.reason, letter.detail,
            )
        return []


def split_s3_uri(uri: str) -> tuple[str, str]:
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, key


def dead_letter_from_uri(uri: str | None, *, kinesis_client=None, s3_client=None) -> DeadLetterSink:
    """`kinesis://STREAM`, `s3://bucket/prefix`, or None/"" / `log` (log only)."""
    if not uri or uri == "log":
        return LogDeadLetter()
    if uri.startswith("kinesis://"):
        return KinesisDeadLetter(kinesis_client or make_client("kinesis"), uri[len("kinesis://") :])
    if uri.startswith("s3://"):
        bucket, prefix = split_s3_uri(uri)
        return S3DeadLetter(s3_client or make_client("s3"), bucket, prefix)
    raise ValueError(f"dead-letter destination must be kinesis://STREAM or s3://BUCKET/PREFIX, got {uri!r}")


