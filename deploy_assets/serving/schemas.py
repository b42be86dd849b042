"""What one ride looks like on the wire: the single validation spec for the web service and the stream consumer.

Both the HTTP body (`POST /predict`, `POST /predict/batch`) and the `"ride"` object of a Kinesis event are
validated by the same pydantic model, so a ride the web service rejects with 422 is exactly a ride the stream
consumer sends to the dead-letter destination (reason `invalid_ride`), with the same messages.

Pydantic v2 (a FastAPI dependency) only: no FastAPI, MLflow or Dagster import here.
"""

from __future__ import annotations

from datetime import datetime
import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from deploy_assets.core.contract import OUTPUT_POLICY
from deploy_assets.core.features import MAX_ZONE_ID, RIDE_RULES

MIN_ZONE_ID = 1
MAX_BATCH_RIDES = 10_000
MAX_RIDE_ID_LENGTH = 256



def _json_number(kind: str):
    """Accept what JSON Schema calls an integer / a number — including 132.0 for an integer — but refuse the
    strings and booleans pydantic's lax mode would coerce ("132", true), which the OpenAPI schema does not allow."""
    message = "Input should be a valid integer" if kind == "int_type" else "Input should be a valid number"

    def check(value):
        if isinstance(value, (str, bytes, bool)):
            raise PydanticCustomError(kind, message)
        return value

    return BeforeValidator(check)


_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:\d{2})?$")


def _iso_date_time(value):
    """Only an ISO 8601 date-time string: not the Unix numbers or bare dates pydantic's lax mode would take."""
    if not isinstance(value, str) or not _DATE_TIME.match(value):
        raise PydanticCustomError("datetime_type", "Input should be an ISO 8601 date-time string")
    return value


ZoneId = Annotated[
    int,
    Field(
        ge=MIN_ZONE_ID,
        le=MAX_ZONE_ID,
        description=f"TLC taxi zone id, {MIN_ZONE_ID}..{MAX_ZONE_ID}",
        examples=[132],
    ),
    _json_number("int_type"),  # after Field: constraints stay in the JSON schema as minimum/maximum
]
# The distance bound is the valid-ride rule's (`RIDE_RULES`), stated here so the OpenAPI schema promises only what
# is accepted; `serving.features.score_rides` then holds every ride to the rule itself, as batch does.
DISTANCE_RULE = f"distance_above_{RIDE_RULES.max_distance_miles:g}_mi"
TripDistance = Annotated[
    float,
    Field(
        ge=0.0,
        le=RIDE_RULES.max_distance_miles,
        allow_inf_nan=False,
        description=f"trip distance in miles, finite, 0..{RIDE_RULES.max_distance_miles:g} (beyond, the valid-ride"
        f" rule {DISTANCE_RULE} refuses the ride)",
        examples=[17.5],
    ),
    _json_number("float_type"),
]


class Ride(BaseModel):
    """One ride to score: pickup zone, dropoff zone, distance, an optional pickup time, and an optional id."""

    # The types the OpenAPI schema promises: a zone id "132", true or 132.5 is refused, not coerced; 132.0 and an
    # integer distance are valid JSON Schema integers / numbers and are accepted.
    model_config = ConfigDict(extra="ignore", frozen=True)

    PULocationID: ZoneId
    DOLocationID: ZoneId
    trip_distance: TripDistance
    ride_id: str | None = Field(
        default=None,
        max_length=MAX_RIDE_ID_LENGTH,
        description="caller's id for the ride, echoed in the answer",
        examples=["2024/02_17"],
    )
    tpep_pickup_datetime: Annotated[datetime, BeforeValidator(_iso_date_time)] | None = Field(
        default=None,
        description="pickup time (New York local time when no offset is given; default: now). Only models that"
        " read a pickup feature (hour, weekday) use it",
        examples=["2024-02-01T08:15:00"],
    )


class RideBatch(BaseModel):
    rides: list[Ride] = Field(max_length=MAX_BATCH_RIDES, description=f"at most {MAX_BATCH_RIDES} rides")


class Prediction(BaseModel):
    ride_id: str | None = Field(description="the request's ride_id (null when none was given)")
    ride_duration: float = Field(
        description=f"predicted trip duration in minutes, within the declared {OUTPUT_POLICY.range} (output policy)"
    )
    model_version: str = Field(description="registered model version that made the prediction")


class BatchItem(BaseModel):
    ride_id: str | None
    ride_duration: float


class BatchPrediction(BaseModel):
    model_version: str = Field(description="registered model version that made every prediction of the batch")
    predictions: list[BatchItem] = Field(description="one per ride, in request order")


class ErrorDetail(BaseModel):
    detail: str


class NotReady(BaseModel):
    status: str = "not_ready"
    detail: str


def error_messages(error: ValidationError, prefix: tuple = ()) -> list[dict]:
    """Pydantic errors as JSON-safe dicts (`loc`, `msg`, `type`); never the offending input itself, which may be
    a NaN or a huge string that would not serialise or would bloat the answer."""
    return [
        {"loc": [*prefix, *item.get("loc", ())], "msg": str(item.get("msg", "")), "type": str(item.get("type", ""))}
        for item in error.errors(include_url=False, include_input=False, include_context=False)
    ]


FIELD_RULES = {
    "PULocationID": f"a TLC zone id, {MIN_ZONE_ID}..{MAX_ZONE_ID}",
    "DOLocationID": f"a TLC zone id, {MIN_ZONE_ID}..{MAX_ZONE_ID}",
    "trip_distance": f"miles, a finite number 0..{RIDE_RULES.max_distance_miles:g}; valid-ride rule {DISTANCE_RULE}",
    "ride_id": f"an optional string of at most {MAX_RIDE_ID_LENGTH} characters",
    "tpep_pickup_datetime": "an optional ISO 8601 date-time",
    "rides": f"a list of at most {MAX_BATCH_RIDES} rides",
}


def summarize(errors: list[dict], limit: int = 5) -> str:
    """`PULocationID: Input should be less than or equal to 265 (expected a TLC zone id, 1..265); ...` — one line
    for the 422 answer, logs and dead letters."""
    parts = []
    for item in errors[:limit]:
        loc = [part for part in item["loc"] if part != "body"]
        if item.get("type") == "json_invalid":
            parts.append(f"body is not valid JSON ({item['msg']} at character {loc[-1] if loc else 0})")
            continue
        location = ".".join(str(part) for part in loc) or "body"
        rule = FIELD_RULES.get(str(loc[-1])) if loc else None
        parts.append(f"{location}: {item['msg']}" + (f" (expected {rule})" if rule else ""))
    if len(errors) > limit:
        parts.append(f"... and {len(errors) - limit} more")
    return "; ".join(parts)
