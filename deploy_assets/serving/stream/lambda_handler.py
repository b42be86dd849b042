"""The production stream consumer: an AWS Lambda function behind a Kinesis event source mapping.

    image command: deploy_assets.serving.stream.lambda_handler.handler   (terraform/lambda.tf)

The mapping (not this code) reads the shards, keeps the checkpoints, runs one batch per shard at a time and
scales with the shards. With `FunctionResponseTypes=["ReportBatchItemFailures"]` the handler returns
`{"batchItemFailures": [{"itemIdentifier": <sequence number>}, ...]}`: the records whose prediction (or dead
letter) could not be written after the writer's retries. Lambda then checkpoints before the lowest of them and
retries from there (at-least-once: records after it may be emitted again; consumers de-duplicate on
`prediction.ride_id`), bisecting the batch, and sends what still fails to the on-failure destination. Invalid
events are dead-lettered with their reason, not reported (a retry cannot fix them). No model loaded → the handler
raises, so the whole batch is retried.

Configuration, from the environment (one function per consumer; the shadow consumer differs only in the alias
and the output stream): `DEPLOY_ASSETS_RIDE_PREDICTIONS_STREAM` (or the zoomcamp's `PREDICTIONS_STREAM_NAME`),
`DEPLOY_ASSETS_STREAM_DEAD_LETTER` (`kinesis://STREAM`, `s3://BUCKET/PREFIX`, or unset: log only), the
deployment's rides (`DEPLOY_ASSETS_DATASET`, `DEPLOY_ASSETS_MISSING_ZONES`: an FHV ride event has no
trip_distance), and the model source's `MLFLOW_TRACKING_URI`, `DEPLOY_ASSETS_MODEL_NAME`,
`DEPLOY_ASSETS_MODEL_ALIAS` (`champion`, or `challenger` for the shadow), `DEPLOY_ASSETS_MODEL_REFRESH_SECONDS`.
The model is loaded on the first invocation and the alias re-checked at most every refresh interval on later ones
(no background thread: Lambda freezes between calls). boto3 honours `AWS_ENDPOINT_URL` (and `AWS_ENDPOINT_URL_KINESIS` / `_S3`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deploy_assets.core.features import FEATURE_COLUMNS, RIDE_RULES, RideRules
from deploy_assets.serving.model_source import ChampionModel, LoadedModel, ModelNotReady
from deploy_assets.serving.stream.batch import BatchOutcome, handle_records
from deploy_assets.serving.stream.dead_letters import DeadLetterSink, dead_letter_from_uri
from deploy_assets.serving.stream.events import DeadLetter, StreamRecord
from deploy_assets.serving.stream.kinesis_writer import KinesisWriter, make_client
from deploy_assets.settings import ServingSettings

log = logging.getLogger(__name__)


@dataclass
class LambdaResult:
    outcome: BatchOutcome
    records: list[StreamRecord]

    @property
    def batch_item_failures(self) -> list[dict]:
        return [{"itemIdentifier": record.sequence_number} for record in self.outcome.failed]


def decode_record(item: dict) -> tuple[StreamRecord, DeadLetter | None]:
    """One record of a Lambda Kinesis event; a dead letter if its data is not base64."""
    kinesis = item.get("kinesis", {})
    event_id = str(item.get("eventID", ""))
    arn = str(item.get("eventSourceARN", ""))
    sequence = str(kinesis.get("sequenceNumber", ""))
    key = str(kinesis.get("partitionKey", ""))
    shard = event_id.split(":", 1)[0] if ":" in event_id else ""
    stream = arn.rsplit("/", 1)[-1] if "/" in arn else ""
    encoded = kinesis.get("data")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, TypeError, ValueError) as error:
        raw = encoded.encode() if isinstance(encoded, str) else b""
        bad = StreamRecord(raw, sequence, key, shard, stream)
        return bad, DeadLetter(bad, "not_base64", f"kinesis.data is not base64: {error}")
    return StreamRecord(data, sequence, key, shard, stream), None


def process_lambda_event(
    event: Mapping,
    loaded: LoadedModel,
    output: KinesisWriter,
    dead_letter: DeadLetterSink,
    features: tuple[str, ...] = FEATURE_COLUMNS,
    rules: RideRules = RIDE_RULES,
) -> LambdaResult:
    """Decode the event's base64 records, then `handle_records` (the whole batch scored by one model version;
    rides of the deployment's `features`, held to its `rules`)."""
    records, undecodable = [], []
    for item in event.get("Records", []):
        record, letter = decode_record(item)
        if letter is None:
            records.append(record)
        else:
            undecodable.append(letter)
    outcome = handle_records(
        records, loaded, output, dead_letter, dead_letters=undecodable, rules=rules, features=features
    )
    return LambdaResult(outcome=outcome, records=records)


class StreamHandler:
    """A configured consumer: model source + output stream + dead-letter sink. Call it like a Lambda handler.

    `refresh_on_invoke`: re-check the alias on invocations (Lambda, no background thread); False when the model
    source refreshes itself (the local runner starts `ChampionModel`'s thread). `features` and `rules`: the
    deployment's rides (`ServingSettings.ride_dataset`, `.ride_rules`).
    """

    def __init__(
        self,
        model_source,
        output: KinesisWriter,
        dead_letter: DeadLetterSink,
        *,
        refresh_on_invoke: bool = True,
        features: tuple[str, ...] = FEATURE_COLUMNS,
        rules: RideRules = RIDE_RULES,
    ):
        self.model_source = model_source
        self.output = output
        self.dead_letter = dead_letter
        self.refresh_on_invoke = refresh_on_invoke
        self.features = features
        self.rules = rules

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, kinesis=None, s3=None, **model_options) -> StreamHandler:
        settings = ServingSettings.from_env(environ)
        output_stream = settings.ride_predictions_stream
        if not output_stream:
            raise RuntimeError("set DEPLOY_ASSETS_RIDE_PREDICTIONS_STREAM (or PREDICTIONS_STREAM_NAME)")
        kinesis = kinesis or make_client("kinesis")
        dead_letter = dead_letter_from_uri(settings.stream_dead_letter, kinesis_client=kinesis, s3_client=s3)
        model = ChampionModel.from_settings(settings, **model_options)
        return cls(
            model,
            KinesisWriter(kinesis, output_stream),
            dead_letter,
            features=settings.ride_dataset.features,
            rules=settings.ride_rules,
        )

    def current_model(self) -> LoadedModel:
        if self.refresh_on_invoke and hasattr(self.model_source, "refresh_if_due"):
            self.model_source.refresh_if_due()
        loaded = self.model_source.current
        if loaded is None:
            reason = getattr(self.model_source, "status", lambda: {})().get("last_error")
            raise ModelNotReady(f"no model loaded yet{f' ({reason})' if reason else ''}")
        return loaded

    def process(self, event: Mapping) -> LambdaResult:
        result = process_lambda_event(
            event, self.current_model(), self.output, self.dead_letter, self.features, self.rules
        )
        if result.outcome.failed:
            log.error("%d records not written; reporting them as batch item failures", len(result.outcome.failed))
        return result

    def __call__(self, event: Mapping, context: Any = None) -> dict:
        return {"batchItemFailures": self.process(event).batch_item_failures}


_handler: StreamHandler | None = None
_handler_lock = threading.Lock()


def handler(event: dict, context: Any = None) -> dict:
    """AWS Lambda entry point (see the module docstring). Built from the environment on the first (cold) call."""
    global _handler
    with _handler_lock:
        if _handler is None:
            _handler = StreamHandler.from_env()
        current = _handler
    return current(event, context)
