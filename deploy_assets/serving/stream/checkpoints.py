"""Checkpoints of the local development runner (on AWS, the event source mapping keeps them).

A JSON document `{"stream": NAME, "shards": {shard_id: sequence_number}}` in a local file (replaced atomically:
temp file + fsync + rename) or an S3 object (`s3://bucket/key`; a PUT replaces it whole). One document per
(consumer, input stream): two consumers of one stream (champion and shadow) each keep their own.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from deploy_assets.serving.stream.dead_letters import split_s3_uri
from deploy_assets.serving.stream.kinesis_writer import error_code, make_client

DEFAULT_CHECKPOINT_DIR = Path(__file__).resolve().parents[3] / ".data" / "stream"


class CheckpointStore(Protocol):
    location: str

    def load(self) -> dict[str, str]: ...

    def save(self, shard_id: str, sequence_number: str) -> None: ...


class _JsonCheckpoints:
    def __init__(self, stream_name: str):
        self.stream_name = stream_name
        self._shards: dict[str, str] | None = None

    def _decode(self, raw: bytes | None) -> dict[str, str]:
        if not raw:
            return {}
        document = json.loads(raw)
        if document.get("stream") != self.stream_name:
            raise ValueError(
                f"checkpoint {self.location} belongs to stream {document.get('stream')!r}, not {self.stream_name!r}"
            )
        return {str(k): str(v) for k, v in document.get("shards", {}).items()}

    def _encode(self) -> bytes:
        return json.dumps(
            {"stream": self.stream_name, "shards": self._shards, "updated_at": datetime.now(timezone.utc).isoformat()},
            indent=1,
            sort_keys=True,
        ).encode()

    def load(self) -> dict[str, str]:
        if self._shards is None:
            self._shards = self._decode(self._read())
        return dict(self._shards)

    def save(self, shard_id: str, sequence_number: str) -> None:
        if self._shards is None:
            self.load()
        self._shards[shard_id] = str(sequence_number)
        self._write(self._encode())


class FileCheckpointStore(_JsonCheckpoints):
    """A local JSON file, replaced atomically (temp file + fsync + rename) on every save."""

    def __init__(self, path: str | os.PathLike, stream_name: str):
        super().__init__(stream_name)
        self.path = Path(path)
        self.location = str(self.path)

    def _read(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def _write(self, body: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


class S3CheckpointStore(_JsonCheckpoints):
    """One S3 object (a PUT replaces it whole, so a reader never sees half a checkpoint)."""

    def __init__(self, client, bucket: str, key: str, stream_name: str):
        super().__init__(stream_name)
        self.client = client
        self.bucket = bucket
        self.key = key
        self.location = f"s3://{bucket}/{key}"

    def _read(self) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except Exception as error:  # noqa: BLE001
            if error_code(error) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def _write(self, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json")


def checkpoint_store_from_uri(uri: str | None, stream_name: str, *, s3_client=None) -> CheckpointStore:
    """`s3://bucket/key.json`, a file path, or None (`.data/stream/checkpoints-<stream>.json` in the repo)."""
    if not uri:
        return FileCheckpointStore(DEFAULT_CHECKPOINT_DIR / f"checkpoints-{stream_name}.json", stream_name)
    if uri.startswith("s3://"):
        bucket, key = split_s3_uri(uri)
        if not key:
            key = f"checkpoints-{stream_name}.json"
        return S3CheckpointStore(s3_client or make_client("s3"), bucket, key, stream_name)
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    return FileCheckpointStore(uri, stream_name)


