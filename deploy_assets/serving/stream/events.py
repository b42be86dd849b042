"""Ride events in, prediction events out: the stream's data contract (the MLOps Zoomcamp streaming module's).

    in:  {"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}, "ride_id": 156}
         (the ride is one of the deployment's dataset: `serving.schemas.ride_model`; no trip_distance on FHV)
    out: {"model": "ride_duration_prediction_model", "version": "<registered model version>",
          "prediction": {"ride_duration": 21.3, "ride_id": 156}}

`version` is the registry version that scored the event (the zoomcamp put an MLflow run id there). An event that
is not a valid ride event becomes a `DeadLetter` naming the reason: `invalid_json`, `not_an_object`,
`missing_ride`, `invalid_ride_id`, `invalid_ride` (the web service's 422 messages, the valid-ride rule's included),
`prediction_outside_range` (under a `drop`/`fail` output policy) or `not_base64`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ValidationError

from deploy_assets.serving.schemas import MAX_RIDE_ID_LENGTH, Ride, error_messages, summarize

MODEL_LABEL = "ride_duration_prediction_model"
MAX_PARTITION_KEY_LENGTH = 256


class InvalidEvent(ValueError):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class StreamRecord:
    """One input record, decoded from a Lambda Kinesis event."""

    data: bytes
    sequence_number: str
    partition_key: str
    shard_id: str
    stream: str


@dataclass(frozen=True)
class ParsedEvent:
    record: StreamRecord
    ride: BaseModel  # of the deployment's ride model
    ride_id: Any  # as sent: str, int or None


@dataclass(frozen=True)
class DeadLetter:
    record: StreamRecord
    reason: str
    detail: str
    consumer: str = "deploy_assets.serving.stream"

    def to_json(self) -> dict:
        return {
            "reason": self.reason,
            "detail": self.detail,
            "stream": self.record.stream,
            "shard_id": self.record.shard_id,
            "sequence_number": self.record.sequence_number,
            "partition_key": self.record.partition_key,
            "data_base64": base64.b64encode(self.record.data).decode("ascii"),
            "consumer": self.consumer,
            "dead_lettered_at": datetime.now(timezone.utc).isoformat(),
        }


def parse_event(data: bytes, ride_model: type[BaseModel] = Ride) -> tuple[BaseModel, Any]:
    """(validated ride, ride_id as sent) from one event's bytes, its ride one of `ride_model` (the deployment's);
    raises InvalidEvent with a reason."""
    try:
        event = json.loads(data)
    except Exception as error:  # noqa: BLE001 - UnicodeDecodeError, JSONDecodeError, RecursionError, ...
        raise InvalidEvent("invalid_json", f"not a UTF-8 JSON document: {error}") from None
    if not isinstance(event, dict):
        raise InvalidEvent("not_an_object", f"expected a JSON object, got {type(event).__name__}")
    ride = event.get("ride")
    if not isinstance(ride, dict):
        required = ", ".join(name for name, spec in ride_model.model_fields.items() if spec.is_required())
        raise InvalidEvent("missing_ride", f'expected a "ride" object with {required}')
    ride_id = event.get("ride_id")
    if ride_id is not None and (isinstance(ride_id, bool) or not isinstance(ride_id, (str, int))):
        raise InvalidEvent("invalid_ride_id", f"ride_id must be a string or an integer, got {type(ride_id).__name__}")
    if isinstance(ride_id, str) and len(ride_id) > MAX_RIDE_ID_LENGTH:
        raise InvalidEvent("invalid_ride_id", f"ride_id longer than {MAX_RIDE_ID_LENGTH} characters")
    features = {key: value for key, value in ride.items() if key != "ride_id"}
    try:
        parsed = ride_model.model_validate(features)
    except ValidationError as error:
        raise InvalidEvent("invalid_ride", summarize(error_messages(error, prefix=("ride",)))) from None
    return parsed, ride_id


def prediction_event(version: str, ride_id: Any, ride_duration: float) -> dict:
    return {"model": MODEL_LABEL, "version": version, "prediction": {"ride_duration": ride_duration, "ride_id": ride_id}}


def partition_key(parsed: ParsedEvent) -> str:
    """Output partition key: the ride id, else the input record's partition key (≤ 256 characters)."""
    key = str(parsed.ride_id) if parsed.ride_id is not None else parsed.record.partition_key
    if not key or len(key) > MAX_PARTITION_KEY_LENGTH:
        key = parsed.record.partition_key or parsed.record.sequence_number
    return key[:MAX_PARTITION_KEY_LENGTH]
