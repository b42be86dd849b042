"""Stream scoring: ride events from a Kinesis stream in, prediction events out, in micro-batches.

    python -m deploy_assets.serving.stream --input-stream ride_events --output-stream ride_predictions \
        --dead-letter s3://bucket/dead-letter --checkpoint s3://bucket/checkpoints/ride_events.json

Events are the MLOps Zoomcamp streaming module's::

    in:  {"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}, "ride_id": 156}
    out: {"model": "ride_duration_prediction_model", "version": "<registered model version>",
          "prediction": {"ride_duration": 21.3, "ride_id": 156}}

(`version` is the registry version of `models:/NAME@champion` that scored the event; the zoomcamp put an MLflow
run id there.) Output partition key: the ride id (the input record's partition key when there is none).

Two ways to run it, sharing `handle_records` (parse → validate with `serving.schemas.Ride` → score with
`serving.features.score_rides`, the batch scorer's `predict_arrays` → put → dead-letter):

**Long-running consumer** (`StreamConsumer`, the CLI). Polls every shard with GetRecords (at most `batch_size`
records per call), scores each micro-batch with one model version, writes the predictions with PutRecords
(chunks of ≤ 500 records / 5 MiB; records that come back with an ErrorCode are retried alone, with exponential
backoff, so a partial failure never re-sends the records that succeeded), routes invalid events to the
dead-letter destination, and only *then* checkpoints the batch's last sequence number for that shard.

Delivery guarantee — at-least-once, no loss:
- A record's sequence number is checkpointed only after its prediction (or its dead letter) was accepted by
  Kinesis (or S3). After any stop, the consumer resumes `AFTER_SEQUENCE_NUMBER` of the checkpoint: nothing
  that was not written is skipped.
- A normal stop (`stop()`, SIGINT or SIGTERM) lets the micro-batch in flight finish — put, dead letter,
  checkpoint — before returning, so a stop/restart re-emits nothing: every input record yields exactly one
  output record (the restart tests assert this).
- Duplicates are possible only if the process dies (SIGKILL, crash, lost host) or the checkpoint write fails
  *after* a put succeeded and *before* the checkpoint was saved: then at most that one micro-batch per shard is
  re-emitted on restart. Consumers of the output stream de-duplicate on `prediction.ride_id` if they need
  exactly-once. (S3 dead letters are idempotent: one object per micro-batch with a deterministic key.)
- If writing still fails after the retries, the consumer raises without checkpointing (the CLI exits non-zero);
  a restart resumes from the last checkpoint.
- Ordering: records of one shard are processed in order; a partially failed put retries only the failed
  records, so the output stream's order can differ from the input's. A child shard (after resharding) is read
  from TRIM_HORIZON once its parent is exhausted; shards without a checkpoint start at `--initial-position`.
- One consumer process per (input stream, checkpoint location): there is no lease coordination as in the KCL.

Checkpoints: a JSON file (`{"stream": NAME, "shards": {shard_id: sequence_number}}`, replaced atomically) by
default, or an S3 object (`s3://bucket/key`). Dead letters: `kinesis://STREAM` (one JSON record per bad event)
or `s3://bucket/prefix` (one JSON-lines object per micro-batch, key `prefix/STREAM/SHARD/FIRST-LAST.jsonl`);
each names the `reason` (`invalid_json`, `not_an_object`, `missing_ride`, `invalid_ride_id`, `invalid_ride`,
`not_base64`), a human `detail` (for `invalid_ride`, the same messages as the web service's 422), the source
stream, shard, sequence number and partition key, and the original bytes (`data_base64`). Without a
destination, bad events are logged at ERROR level and skipped.

**Lambda** (`handler`, for a Kinesis event source mapping with `FunctionResponseTypes=["ReportBatchItemFailures"]`):
returns `{"batchItemFailures": [{"itemIdentifier": <sequence number>}, ...]}` — the records whose prediction
(or dead letter) could not be written after the retries; Lambda then checkpoints before the lowest of them and
retries from there (at-least-once; records after it may be re-emitted). Invalid events are dead-lettered, not
reported as failures (a retry cannot fix them). If no model can be loaded the handler raises, so the whole
batch is retried. The model is loaded on the first invocation and the alias re-checked at most every
`DEPLOY_ASSETS_MODEL_REFRESH_SECONDS` on later ones (no background thread: Lambda freezes between calls).

Configuration (flags override): `DEPLOY_ASSETS_RIDE_EVENTS_STREAM`, `DEPLOY_ASSETS_RIDE_PREDICTIONS_STREAM`
(or the zoomcamp's `PREDICTIONS_STREAM_NAME`), `DEPLOY_ASSETS_STREAM_DEAD_LETTER`,
`DEPLOY_ASSETS_STREAM_CHECKPOINT`, plus the model source's `MLFLOW_TRACKING_URI`, `DEPLOY_ASSETS_MODEL_NAME`,
`DEPLOY_ASSETS_MODEL_REFRESH_SECONDS`. boto3 clients honour `AWS_ENDPOINT_URL` (and the per-service
`AWS_ENDPOINT_URL_KINESIS` / `AWS_ENDPOINT_URL_S3`).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from deploy_assets.serving.features import score_rides
from deploy_assets.serving.model_source import ChampionModel, LoadedModel, ModelSource
from deploy_assets.serving.schemas import MAX_RIDE_ID_LENGTH, Ride, error_messages, summarize

log = logging.getLogger(__name__)

MODEL_LABEL = "ride_duration_prediction_model"
PUT_RECORDS_MAX_RECORDS = 500
PUT_RECORDS_MAX_BYTES = 5 * 1024 * 1024
MAX_PARTITION_KEY_LENGTH = 256
GET_RECORDS_MAX_LIMIT = 10_000
DEFAULT_BATCH_SIZE = 500
DEFAULT_CHECKPOINT_DIR = Path(__file__).resolve().parents[2] / ".data" / "stream"

# Error codes worth retrying (per record in a PutRecords answer, or for a whole call).
RETRYABLE_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "InternalFailure",
        "ServiceUnavailable",
        "KMSThrottlingException",
        "ThrottlingException",
        "LimitExceededException",
        "RequestTimeout",
        "SlowDown",
        "InternalError",
    }
)


# --- events ---------------------------------------------------------------------------------------------------------


class InvalidEvent(ValueError):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class StreamRecord:
    """One input record, wherever it came from (GetRecords or a Lambda event)."""

    data: bytes
    sequence_number: str
    partition_key: str
    shard_id: str
    stream: str


@dataclass(frozen=True)
class ParsedEvent:
    record: StreamRecord
    ride: Ride
    ride_id: Any  # as sent: str, int or None


@dataclass(frozen=True)
class DeadLetter:
    record: StreamRecord
    reason: str
    detail: str

    def to_json(self) -> dict:
        return {
            "reason": self.reason,
            "detail": self.detail,
            "stream": self.record.stream,
            "shard_id": self.record.shard_id,
            "sequence_number": self.record.sequence_number,
            "partition_key": self.record.partition_key,
            "data_base64": base64.b64encode(self.record.data).decode("ascii"),
            "consumer": __name__,
            "dead_lettered_at": datetime.now(timezone.utc).isoformat(),
        }


def parse_event(data: bytes) -> tuple[Ride, Any]:
    """(validated ride, ride_id as sent) from one event's bytes; raises InvalidEvent with a reason."""
    try:
        event = json.loads(data)
    except Exception as error:  # noqa: BLE001 - UnicodeDecodeError, JSONDecodeError, RecursionError, ...
        raise InvalidEvent("invalid_json", f"not a UTF-8 JSON document: {error}") from None
    if not isinstance(event, dict):
        raise InvalidEvent("not_an_object", f"expected a JSON object, got {type(event).__name__}")
    ride = event.get("ride")
    if not isinstance(ride, dict):
        raise InvalidEvent("missing_ride", 'expected a "ride" object with PULocationID, DOLocationID, trip_distance')
    ride_id = event.get("ride_id")
    if ride_id is not None and (isinstance(ride_id, bool) or not isinstance(ride_id, (str, int))):
        raise InvalidEvent("invalid_ride_id", f"ride_id must be a string or an integer, got {type(ride_id).__name__}")
    if isinstance(ride_id, str) and len(ride_id) > MAX_RIDE_ID_LENGTH:
        raise InvalidEvent("invalid_ride_id", f"ride_id longer than {MAX_RIDE_ID_LENGTH} characters")
    features = {key: value for key, value in ride.items() if key != "ride_id"}
    try:
        parsed = Ride.model_validate(features)
    except ValidationError as error:
        raise InvalidEvent("invalid_ride", summarize(error_messages(error, prefix=("ride",)))) from None
    return parsed, ride_id


def prediction_event(version: str, ride_id: Any, ride_duration: float) -> dict:
    return {"model": MODEL_LABEL, "version": version, "prediction": {"ride_duration": ride_duration, "ride_id": ride_id}}


def _partition_key(parsed: ParsedEvent) -> str:
    key = str(parsed.ride_id) if parsed.ride_id is not None else parsed.record.partition_key
    if not key or len(key) > MAX_PARTITION_KEY_LENGTH:
        key = parsed.record.partition_key or parsed.record.sequence_number
    return key[:MAX_PARTITION_KEY_LENGTH]


# --- writers ----------------------------------------------------------------------------------------------------------


class WriteFailed(RuntimeError):
    """Records could not be written after the retries; nothing was checkpointed."""


def _error_code(error: Exception) -> str | None:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def _is_retryable(error: Exception) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    if isinstance(error, (BotoConnectionError, HTTPClientError)):
        return True
    return _error_code(error) in RETRYABLE_ERROR_CODES


class Backoff:
    """Exponential backoff with a cap: base · 2^attempt, at most `cap` seconds."""

    def __init__(self, attempts: int = 8, base: float = 0.05, cap: float = 2.0, sleep: Callable[[float], None] = time.sleep):
        self.attempts = attempts
        self.base = base
        self.cap = cap
        self.sleep = sleep

    def pause(self, attempt: int) -> None:
        self.sleep(min(self.cap, self.base * (2**attempt)))


class KinesisWriter:
    """PutRecords in chunks of ≤ 500 records / 5 MiB; retries only the records that failed."""

    def __init__(self, client, stream_name: str, backoff: Backoff | None = None):
        self.client = client
        self.stream_name = stream_name
        self.backoff = backoff or Backoff()
        self.records_retried = 0
        self.calls = 0

    @property
    def destination(self) -> str:
        return f"kinesis://{self.stream_name}"

    def _chunks(self, entries: Sequence[tuple[bytes, str]]) -> Iterable[list[int]]:
        chunk: list[int] = []
        size = 0
        for index, (data, key) in enumerate(entries):
            entry_size = len(data) + len(key.encode())
            if chunk and (len(chunk) == PUT_RECORDS_MAX_RECORDS or size + entry_size > PUT_RECORDS_MAX_BYTES):
                yield chunk
                chunk, size = [], 0
            chunk.append(index)
            size += entry_size
        if chunk:
            yield chunk

    def put(self, entries: Sequence[tuple[bytes, str]]) -> list[int]:
        """Write (data, partition key) entries; return the indexes still failing after every attempt."""
        still_failing: list[int] = []
        for chunk in self._chunks(entries):
            pending = chunk
            for attempt in range(self.backoff.attempts):
                try:
                    self.calls += 1
                    response = self.client.put_records(
                        StreamName=self.stream_name,
                        Records=[{"Data": entries[i][0], "PartitionKey": entries[i][1]} for i in pending],
                    )
                except Exception as error:  # noqa: BLE001 - classified below
                    if not _is_retryable(error):
                        raise
                    if attempt == self.backoff.attempts - 1:
                        log.error("PutRecords to %s kept failing: %s", self.stream_name, error)
                        break  # `pending` are reported as failed
                    log.warning("PutRecords to %s failed (%s), retrying", self.stream_name, error)
                    self.backoff.pause(attempt)
                    continue
                results = response.get("Records", [])
                failed = [i for i, result in zip(pending, results) if result.get("ErrorCode")]
                failed.extend(pending[len(results) :])  # a short answer: treat the missing ones as failed
                if not failed:
                    pending = []
                    break
                codes = sorted({result.get("ErrorCode") for result in results if result.get("ErrorCode")})
                log.warning(
                    "PutRecords to %s: %d of %d records failed (%s), retrying them",
                    self.stream_name, len(failed), len(pending), ", ".join(map(str, codes)),
                )
                self.records_retried += len(failed)
                pending = failed
                if attempt < self.backoff.attempts - 1:
                    self.backoff.pause(attempt)
            still_failing.extend(pending)
        return still_failing


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


def _split_s3_uri(uri: str) -> tuple[str, str]:
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
        bucket, prefix = _split_s3_uri(uri)
        return S3DeadLetter(s3_client or make_client("s3"), bucket, prefix)
    raise ValueError(f"dead-letter destination must be kinesis://STREAM or s3://BUCKET/PREFIX, got {uri!r}")


# --- checkpoints ------------------------------------------------------------------------------------------------------


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
            if _error_code(error) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def _write(self, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json")


def checkpoint_store_from_uri(uri: str | None, stream_name: str, *, s3_client=None) -> CheckpointStore:
    """`s3://bucket/key.json`, a file path, or None (`.data/stream/checkpoints-<stream>.json` in the repo)."""
    if not uri:
        return FileCheckpointStore(DEFAULT_CHECKPOINT_DIR / f"checkpoints-{stream_name}.json", stream_name)
    if uri.startswith("s3://"):
        bucket, key = _split_s3_uri(uri)
        if not key:
            key = f"checkpoints-{stream_name}.json"
        return S3CheckpointStore(s3_client or make_client("s3"), bucket, key, stream_name)
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    return FileCheckpointStore(uri, stream_name)


# --- the shared micro-batch path ------------------------------------------------------------------------------------


@dataclass
class BatchOutcome:
    predictions: list[dict] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    failed: list[StreamRecord] = field(default_factory=list)  # not written after retries (output or dead letter)


def handle_records(
    records: Sequence[StreamRecord],
    loaded: LoadedModel,
    output: KinesisWriter,
    dead_letter: DeadLetterSink,
    dead_letters: Sequence[DeadLetter] = (),
) -> BatchOutcome:
    """Validate, score (one model version for the whole batch), write predictions, dead-letter the rest."""
    parsed: list[ParsedEvent] = []
    letters = list(dead_letters)
    for record in records:
        try:
            ride, ride_id = parse_event(record.data)
        except InvalidEvent as invalid:
            letters.append(DeadLetter(record, invalid.reason, invalid.detail))
            continue
        parsed.append(ParsedEvent(record, ride, ride_id))

    durations = score_rides(loaded.model, [event.ride for event in parsed])
    predictions = [prediction_event(loaded.version, event.ride_id, duration) for event, duration in zip(parsed, durations)]
    outcome = BatchOutcome(predictions=predictions, dead_letters=letters)
    if predictions:
        entries = [(json.dumps(event).encode(), _partition_key(p)) for event, p in zip(predictions, parsed)]
        outcome.failed.extend(parsed[i].record for i in output.put(entries))
    if letters:
        outcome.failed.extend(letters[i].record for i in dead_letter.send(letters))
    return outcome


# --- long-running consumer --------------------------------------------------------------------------------------------


@dataclass
class ConsumerStats:
    records_read: int = 0
    predictions_written: int = 0
    dead_lettered: int = 0
    batches: int = 0
    checkpoints: dict[str, str] = field(default_factory=dict)
    model_versions: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "records_read": self.records_read,
            "predictions_written": self.predictions_written,
            "dead_lettered": self.dead_lettered,
            "batches": self.batches,
            "checkpoints": dict(self.checkpoints),
            "model_versions": dict(self.model_versions),
        }


@dataclass
class _Shard:
    shard_id: str
    parent: str | None
    iterator: str | None = None
    closed: bool = False


class StreamConsumer:
    """Reads every shard of `input_stream`, one micro-batch at a time; see the module docstring for guarantees."""

    def __init__(
        self,
        *,
        kinesis,
        input_stream: str,
        output: KinesisWriter,
        model_source: ModelSource,
        checkpoints: CheckpointStore,
        dead_letter: DeadLetterSink | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        poll_interval: float = 1.0,
        initial_position: str = "TRIM_HORIZON",
        shard_refresh_seconds: float = 60.0,
    ):
        if not 1 <= batch_size <= GET_RECORDS_MAX_LIMIT:
            raise ValueError(f"batch_size must be 1..{GET_RECORDS_MAX_LIMIT}")
        if initial_position not in ("TRIM_HORIZON", "LATEST"):
            raise ValueError("initial_position must be TRIM_HORIZON or LATEST")
        self.kinesis = kinesis
        self.input_stream = input_stream
        self.output = output
        self.model_source = model_source
        self.checkpoints = checkpoints
        self.dead_letter = dead_letter or LogDeadLetter()
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.initial_position = initial_position
        self.shard_refresh_seconds = shard_refresh_seconds
        self.stats = ConsumerStats()
        self._shards: dict[str, _Shard] = {}
        self._stop = threading.Event()
        self._last_discovery = 0.0

    def stop(self) -> None:
        """Ask the loop to return after the micro-batch in flight (put + checkpoint) completes."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # shards

    def _list_shards(self) -> list[dict]:
        shards, token = [], None
        while True:
            response = (
                self.kinesis.list_shards(NextToken=token) if token else self.kinesis.list_shards(StreamName=self.input_stream)
            )
            shards.extend(response.get("Shards", []))
            token = response.get("NextToken")
            if not token:
                return shards

    def _iterator(self, shard: _Shard) -> str:
        sequence = self.checkpoints.load().get(shard.shard_id)
        if sequence is not None:
            kind = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": sequence}
        elif shard.parent is not None or self.initial_position == "TRIM_HORIZON":
            # A child shard's first record follows its parent's last one: never start it at LATEST.
            kind = {"ShardIteratorType": "TRIM_HORIZON"}
        else:
            kind = {"ShardIteratorType": "LATEST"}
        response = self.kinesis.get_shard_iterator(StreamName=self.input_stream, ShardId=shard.shard_id, **kind)
        return response["ShardIterator"]

    def _discover(self) -> None:
        for description in self._list_shards():
            shard_id = description["ShardId"]
            if shard_id not in self._shards:
                shard = _Shard(shard_id=shard_id, parent=description.get("ParentShardId"))
                shard.iterator = self._iterator(shard)
                self._shards[shard_id] = shard
                log.info("reading %s/%s (checkpoint %s)", self.input_stream, shard_id, self.checkpoints.load().get(shard_id))
        self._last_discovery = time.monotonic()

    def _ready_to_read(self, shard: _Shard) -> bool:
        if shard.closed or shard.iterator is None:
            return False
        parent = self._shards.get(shard.parent) if shard.parent else None
        return parent is None or parent.closed

    # batches

    def _poll(self, shard: _Shard) -> int:
        """One GetRecords on `shard`; processes what it returned. Returns the number of records."""
        try:
            response = self.kinesis.get_records(ShardIterator=shard.iterator, Limit=self.batch_size)
        except Exception as error:  # noqa: BLE001
            if _error_code(error) == "ExpiredIteratorException":
                shard.iterator = self._iterator(shard)
                return 0
            if _is_retryable(error):
                log.warning("GetRecords on %s failed (%s); will retry", shard.shard_id, error)
                return 0
            raise
        raw = response.get("Records", [])
        if raw:
            records = [
                StreamRecord(
                    data=item["Data"],
                    sequence_number=item["SequenceNumber"],
                    partition_key=item.get("PartitionKey", ""),
                    shard_id=shard.shard_id,
                    stream=self.input_stream,
                )
                for item in raw
            ]
            self.process_batch(shard.shard_id, records)
        shard.iterator = response.get("NextShardIterator")
        if shard.iterator is None:
            shard.closed = True
            log.info("shard %s is closed and fully read", shard.shard_id)
        return len(raw)

    def process_batch(self, shard_id: str, records: Sequence[StreamRecord]) -> BatchOutcome:
        loaded = self.model_source.current
        if loaded is None:
            raise RuntimeError("process_batch called before a model was loaded")
        outcome = handle_records(records, loaded, self.output, self.dead_letter)
        if outcome.failed:
            raise WriteFailed(
                f"{len(outcome.failed)} of {len(records)} records of {self.input_stream}/{shard_id} could not be "
                f"written to {self.output.destination} / {self.dead_letter.destination}; not checkpointed after "
                f"{self.checkpoints.load().get(shard_id)}"
            )
        last = records[-1].sequence_number
        self.checkpoints.save(shard_id, last)  # only after every write of the batch succeeded
        self.stats.records_read += len(records)
        self.stats.predictions_written += len(outcome.predictions)
        self.stats.dead_lettered += len(outcome.dead_letters)
        self.stats.batches += 1
        self.stats.checkpoints[shard_id] = last
        self.stats.model_versions[loaded.version] = self.stats.model_versions.get(loaded.version, 0) + len(
            outcome.predictions
        )
        log.debug("%s: %d records, checkpoint %s", shard_id, len(records), last)
        return outcome

    def run(
        self,
        *,
        until: Callable[[ConsumerStats], bool] | None = None,
        idle_timeout: float | None = None,
        model_timeout: float | None = None,
    ) -> ConsumerStats:
        """Consume until `stop()`, `until(stats)` is true, or no record arrived for `idle_timeout` seconds."""
        started = time.monotonic()
        while self.model_source.current is None:
            if self._stop.is_set():
                return self.stats
            if model_timeout is not None and time.monotonic() - started > model_timeout:
                raise TimeoutError(f"no model loaded after {model_timeout} s")
            self._stop.wait(0.2)
        self._discover()
        last_record = time.monotonic()
        while not self._stop.is_set():
            full_batch = False
            for shard in list(self._shards.values()):
                if self._stop.is_set():
                    break
                if not self._ready_to_read(shard):
                    continue
                count = self._poll(shard)
                if count:
                    last_record = time.monotonic()
                full_batch |= count >= self.batch_size
                if shard.closed:
                    self._last_discovery = 0.0  # look for its children
            if until is not None and until(self.stats):
                break
            if idle_timeout is not None and time.monotonic() - last_record > idle_timeout:
                break
            if time.monotonic() - self._last_discovery > self.shard_refresh_seconds:
                self._discover()
            if not full_batch:
                self._stop.wait(self.poll_interval)
        return self.stats


# --- clients ----------------------------------------------------------------------------------------------------------


def make_client(service: str, endpoint_url: str | None = None):
    """A boto3 client; without `endpoint_url`, botocore reads AWS_ENDPOINT_URL(_<SERVICE>) from the environment."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
    return boto3.session.Session().client(service, endpoint_url=endpoint_url or None, config=config)


# --- Lambda -----------------------------------------------------------------------------------------------------------


@dataclass
class LambdaResult:
    outcome: BatchOutcome
    records: list[StreamRecord]

    @property
    def batch_item_failures(self) -> list[dict]:
        return [{"itemIdentifier": record.sequence_number} for record in self.outcome.failed]


def _lambda_record(item: dict) -> tuple[StreamRecord, DeadLetter | None]:
    kinesis = item.get("kinesis", {})
    event_id = str(item.get("eventID", ""))
    arn = str(item.get("eventSourceARN", ""))
    record = StreamRecord(
        data=b"",
        sequence_number=str(kinesis.get("sequenceNumber", "")),
        partition_key=str(kinesis.get("partitionKey", "")),
        shard_id=event_id.split(":", 1)[0] if ":" in event_id else "",
        stream=arn.rsplit("/", 1)[-1] if "/" in arn else "",
    )
    encoded = kinesis.get("data")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, TypeError, ValueError) as error:
        raw = encoded.encode() if isinstance(encoded, str) else b""
        bad = StreamRecord(raw, record.sequence_number, record.partition_key, record.shard_id, record.stream)
        return bad, DeadLetter(bad, "not_base64", f"kinesis.data is not base64: {error}")
    return StreamRecord(data, record.sequence_number, record.partition_key, record.shard_id, record.stream), None


def process_lambda_event(
    event: dict, loaded: LoadedModel, output: KinesisWriter, dead_letter: DeadLetterSink
) -> LambdaResult:
    """The Lambda path without the runtime: decode base64 records, then `handle_records`."""
    records, undecodable = [], []
    for item in event.get("Records", []):
        record, letter = _lambda_record(item)
        if letter is None:
            records.append(record)
        else:
            undecodable.append(letter)
    outcome = handle_records(records, loaded, output, dead_letter, dead_letters=undecodable)
    return LambdaResult(outcome=outcome, records=records)


class _LambdaRuntime:
    def __init__(self) -> None:
        output_stream = os.getenv("DEPLOY_ASSETS_RIDE_PREDICTIONS_STREAM") or os.getenv("PREDICTIONS_STREAM_NAME")
        if not output_stream:
            raise RuntimeError("set DEPLOY_ASSETS_RIDE_PREDICTIONS_STREAM (or PREDICTIONS_STREAM_NAME)")
        kinesis = make_client("kinesis")
        self.model = ChampionModel.from_env()
        self.output = KinesisWriter(kinesis, output_stream)
        self.dead_letter = dead_letter_from_uri(os.getenv("DEPLOY_ASSETS_STREAM_DEAD_LETTER"), kinesis_client=kinesis)


_runtime: _LambdaRuntime | None = None
_runtime_lock = threading.Lock()


def handler(event: dict, context: Any = None) -> dict:
    """AWS Lambda entry for a Kinesis event source mapping with ReportBatchItemFailures (see module docstring)."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = _LambdaRuntime()
        runtime = _runtime
    runtime.model.refresh_if_due()
    loaded = runtime.model.get()  # raises ModelNotReady: the whole batch is retried
    result = process_lambda_event(event, loaded, runtime.output, runtime.dead_letter)
    if result.outcome.failed:
        log.error("%d records not written; reporting them as batch item failures", len(result.outcome.failed))
    return {"batchItemFailures": result.batch_item_failures}


# --- CLI ----------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy_assets.serving.stream",
        description="Score ride events from a Kinesis stream with models:/$DEPLOY_ASSETS_MODEL_NAME@champion.",
    )
    parser.add_argument("--input-stream", default=os.getenv("DEPLOY_ASSETS_RIDE_EVENTS_STREAM"))
    parser.add_argument(
        "--output-stream",
        default=os.getenv("DEPLOY_ASSETS_RIDE_PREDICTIONS_STREAM") or os.getenv("PREDICTIONS_STREAM_NAME"),
    )
    parser.add_argument(
        "--dead-letter",
        default=os.getenv("DEPLOY_ASSETS_STREAM_DEAD_LETTER"),
        help="kinesis://STREAM or s3://BUCKET/PREFIX (default: log only)",
    )
    parser.add_argument(
        "--checkpoint",
        default=os.getenv("DEPLOY_ASSETS_STREAM_CHECKPOINT"),
        help="checkpoint file path or s3://BUCKET/KEY (default: .data/stream/checkpoints-<input stream>.json)",
    )
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="records per GetRecords call")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds to wait when caught up")
    parser.add_argument("--initial-position", choices=["TRIM_HORIZON", "LATEST"], default="TRIM_HORIZON")
    parser.add_argument("--model-name", default=None, help="registered model (default: $DEPLOY_ASSETS_MODEL_NAME)")
    parser.add_argument("--refresh-seconds", type=float, default=None, help="alias poll interval")
    parser.add_argument("--endpoint-url", default=None, help="AWS endpoint (default: $AWS_ENDPOINT_URL)")
    parser.add_argument("--idle-exit-seconds", type=float, default=None, help="exit after this long without records")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if not args.input_stream or not args.output_stream:
        parser.error("--input-stream and --output-stream (or their environment variables) are required")

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    kinesis = make_client("kinesis", args.endpoint_url)
    s3 = None
    if (args.dead_letter or "").startswith("s3://") or (args.checkpoint or "").startswith("s3://"):
        s3 = make_client("s3", args.endpoint_url)
    model = ChampionModel.from_env(model_name=args.model_name, refresh_seconds=args.refresh_seconds).start()
    consumer = StreamConsumer(
        kinesis=kinesis,
        input_stream=args.input_stream,
        output=KinesisWriter(kinesis, args.output_stream),
        model_source=model,
        checkpoints=checkpoint_store_from_uri(args.checkpoint, args.input_stream, s3_client=s3),
        dead_letter=dead_letter_from_uri(args.dead_letter, kinesis_client=kinesis, s3_client=s3),
        batch_size=args.batch_size,
        poll_interval=args.poll_interval,
        initial_position=args.initial_position,
    )

    def request_stop(signum, _frame) -> None:
        log.info("signal %s: stopping after the micro-batch in flight", signal.Signals(signum).name)
        consumer.stop()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    log.info(
        "consuming %s → %s (dead letters: %s, checkpoints: %s)",
        args.input_stream, args.output_stream, consumer.dead_letter.destination, consumer.checkpoints.location,
    )
    try:
        stats = consumer.run(idle_timeout=args.idle_exit_seconds)
    finally:
        model.stop()
    print(json.dumps({"stopped": True, **stats.as_dict()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
