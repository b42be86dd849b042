"""Development runner: the Lambda handler fed by a small GetRecords loop, on a laptop or against an emulator.

    deploy-assets-stream --input-stream ride_events --output-stream ride_predictions --checkpoint cp.json

On AWS the event source mapping reads the shards and calls `lambda_handler.handler`; this loop stands in for it
and nothing more. Per shard: GetRecords (≤ `batch_size`) → a Lambda Kinesis event of those records (base64 data,
`eventID` = `shard:sequence`, `eventSourceARN`) → the same `StreamHandler` the function runs → then what the
mapping does with the answer: no `batchItemFailures` → checkpoint the batch's last sequence number; failures →
checkpoint before the lowest failed record and retry from it (`max_batch_retries` times, with backoff), then stop
with `WriteFailed` (the mapping would send the batch to its on-failure queue; a dev runner should be loud).

Guarantees (tested): a checkpoint only ever follows accepted output, so nothing is lost; a clean stop (`stop()`,
SIGINT, SIGTERM) finishes the batch in flight, so a restart re-emits nothing; a crash between write and
checkpoint re-emits at most that batch. Shards are read in order; a child shard (after resharding) only after
its parent is exhausted. It is one process per (consumer, input stream, checkpoint): there are no leases, so it
is not how to scale out; that is the mapping's job. Several consumers (champion, shadow) of one stream each run
their own runner with their own checkpoint, as each has its own mapping on AWS.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from deploy_assets.serving.model_source import ModelSource
from deploy_assets.serving.stream.checkpoints import CheckpointStore
from deploy_assets.serving.stream.dead_letters import DeadLetterSink, LogDeadLetter
from deploy_assets.serving.stream.kinesis_writer import Backoff, KinesisWriter, WriteFailed, error_code, is_retryable
from deploy_assets.serving.stream.lambda_handler import StreamHandler

log = logging.getLogger(__name__)

GET_RECORDS_MAX_LIMIT = 10_000
DEFAULT_BATCH_SIZE = 500


@dataclass
class ConsumerStats:
    records_read: int = 0
    predictions_written: int = 0
    dead_lettered: int = 0
    batches: int = 0
    retried_batches: int = 0
    checkpoints: dict[str, str] = field(default_factory=dict)
    model_versions: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "records_read": self.records_read,
            "predictions_written": self.predictions_written,
            "dead_lettered": self.dead_lettered,
            "batches": self.batches,
            "retried_batches": self.retried_batches,
            "checkpoints": dict(self.checkpoints),
            "model_versions": dict(self.model_versions),
        }


@dataclass
class _Shard:
    shard_id: str
    parent: str | None
    iterator: str | None = None
    closed: bool = False
    failures: int = 0


def lambda_event(records: Sequence[dict], shard_id: str, stream_arn: str, region: str) -> dict:
    """What a Kinesis event source mapping passes to the function for these GetRecords records."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": item.get("PartitionKey", ""),
                    "sequenceNumber": item["SequenceNumber"],
                    "data": base64.b64encode(item["Data"]).decode("ascii"),
                    "approximateArrivalTimestamp": _timestamp(item.get("ApproximateArrivalTimestamp")),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{item['SequenceNumber']}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "local-runner",
                "awsRegion": region,
                "eventSourceARN": stream_arn,
            }
            for item in records
        ]
    }


def _timestamp(value) -> float:
    return value.timestamp() if hasattr(value, "timestamp") else float(value or time.time())


class StreamConsumer:
    """Polls every shard of `input_stream` and hands each micro-batch to a `StreamHandler` (module docstring)."""

    def __init__(
        self,
        *,
        kinesis,
        input_stream: str,
        checkpoints: CheckpointStore,
        handler: StreamHandler | None = None,
        output: KinesisWriter | None = None,
        model_source: ModelSource | None = None,
        dead_letter: DeadLetterSink | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        poll_interval: float = 1.0,
        initial_position: str = "TRIM_HORIZON",
        shard_refresh_seconds: float = 60.0,
        max_batch_retries: int = 2,
        retry_backoff: Backoff | None = None,
    ):
        if not 1 <= batch_size <= GET_RECORDS_MAX_LIMIT:
            raise ValueError(f"batch_size must be 1..{GET_RECORDS_MAX_LIMIT}")
        if initial_position not in ("TRIM_HORIZON", "LATEST"):
            raise ValueError("initial_position must be TRIM_HORIZON or LATEST")
        if handler is None:
            if output is None or model_source is None:
                raise ValueError("give a handler, or an output writer and a model source")
            handler = StreamHandler(model_source, output, dead_letter or LogDeadLetter(), refresh_on_invoke=False)
        self.handler = handler
        self.kinesis = kinesis
        self.input_stream = input_stream
        self.checkpoints = checkpoints
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.initial_position = initial_position
        self.shard_refresh_seconds = shard_refresh_seconds
        self.max_batch_retries = max_batch_retries
        self.retry_backoff = retry_backoff or Backoff(base=0.2, cap=5.0)
        self.stats = ConsumerStats()
        self._shards: dict[str, _Shard] = {}
        self._stop = threading.Event()
        self._last_discovery = 0.0
        self._stream_arn: str | None = None

    # the handler's parts, for callers and logs
    @property
    def output(self) -> KinesisWriter:
        return self.handler.output

    @property
    def dead_letter(self) -> DeadLetterSink:
        return self.handler.dead_letter

    @property
    def model_source(self):
        return self.handler.model_source

    def stop(self) -> None:
        """Ask the loop to return after the micro-batch in flight (handler + checkpoint) completes."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- shards ----------------------------------------------------------------------------------------------

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

    def _iterator(self, shard: _Shard, at_sequence: str | None = None) -> str:
        sequence = self.checkpoints.load().get(shard.shard_id)
        if at_sequence is not None:
            kind = {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": at_sequence}
        elif sequence is not None:
            kind = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": sequence}
        elif shard.parent is not None or self.initial_position == "TRIM_HORIZON":
            # A child shard's first record follows its parent's last one: never start it at LATEST.
            kind = {"ShardIteratorType": "TRIM_HORIZON"}
        else:
            kind = {"ShardIteratorType": "LATEST"}
        response = self.kinesis.get_shard_iterator(StreamName=self.input_stream, ShardId=shard.shard_id, **kind)
        return response["ShardIterator"]

    def _discover(self) -> None:
        if self._stream_arn is None:
            summary = self.kinesis.describe_stream_summary(StreamName=self.input_stream)["StreamDescriptionSummary"]
            self._stream_arn = summary["StreamARN"]
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

    # --- batches -----------------------------------------------------------------------------------------------

    def _poll(self, shard: _Shard) -> int:
        """One GetRecords on `shard`, handed to the handler. Returns the number of records read."""
        try:
            response = self.kinesis.get_records(ShardIterator=shard.iterator, Limit=self.batch_size)
        except Exception as error:  # noqa: BLE001
            if error_code(error) == "ExpiredIteratorException":
                shard.iterator = self._iterator(shard)
                return 0
            if is_retryable(error):
                log.warning("GetRecords on %s failed (%s); will retry", shard.shard_id, error)
                return 0
            raise
        records = response.get("Records", [])
        if records and not self._deliver(shard, records):
            return 0  # re-positioned at the lowest failed record
        shard.iterator = response.get("NextShardIterator")
        if shard.iterator is None:
            shard.closed = True
            log.info("shard %s is closed and fully read", shard.shard_id)
        return len(records)

    def _deliver(self, shard: _Shard, records: list[dict]) -> bool:
        """The event source mapping's part: invoke, then checkpoint (or retry from the lowest failure)."""
        event = lambda_event(records, shard.shard_id, self._stream_arn or self.input_stream, _region(self.kinesis))
        result = self.handler.process(event)
        outcome = result.outcome
        failed = {item["itemIdentifier"] for item in result.batch_item_failures}
        if not failed:
            self._checkpoint(shard, records, outcome, len(records))
            shard.failures = 0
            return True
        lowest = min(failed, key=int)
        done = next(i for i, item in enumerate(records) if item["SequenceNumber"] == lowest)
        if done:
            self._checkpoint(shard, records, outcome, done)
        shard.failures += 1
        self.stats.retried_batches += 1
        if shard.failures > self.max_batch_retries:
            raise WriteFailed(
                f"{len(failed)} of {len(records)} records of {self.input_stream}/{shard.shard_id} could not be "
                f"written to {self.output.destination} / {self.dead_letter.destination} after "
                f"{self.max_batch_retries} retries; checkpoint stays at {self.checkpoints.load().get(shard.shard_id)}"
            )
        log.warning("%s: %d records not written; retrying from %s", shard.shard_id, len(failed), lowest)
        self.retry_backoff.pause(shard.failures - 1)
        shard.iterator = self._iterator(shard, at_sequence=lowest)
        return False

    def _checkpoint(self, shard: _Shard, records: list[dict], outcome, count: int) -> None:
        last = records[count - 1]["SequenceNumber"]
        self.checkpoints.save(shard.shard_id, last)  # only after every write up to `last` succeeded
        done = {item["SequenceNumber"] for item in records[:count]}
        written = sum(1 for letter in outcome.dead_letters if letter.record.sequence_number in done)
        self.stats.records_read += count
        self.stats.dead_lettered += written
        self.stats.predictions_written += count - written
        self.stats.batches += 1
        self.stats.checkpoints[shard.shard_id] = last
        if outcome.version is not None:
            self.stats.model_versions[outcome.version] = self.stats.model_versions.get(outcome.version, 0) + count - written
        log.debug("%s: %d records, checkpoint %s", shard.shard_id, count, last)

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


def _region(client) -> str:
    return getattr(getattr(client, "meta", None), "region_name", None) or "us-east-1"
