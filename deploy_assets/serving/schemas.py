"""What one ride looks like on the wire: the single validation spec for the web service and the stream consumer.

Both the HTTP body (`POST /predict`, `POST /predict/batch`) and the `"ride"` object of a Kinesis event are
validated by the same pydantic model, so a ride the web service rejects with 422 is exactly a ride the stream
consumer sends to the dead-letter destination (reason `invalid_ride`), with the same messages. That model is the
deployment's ride (`ride_model`): the ride features of its dataset (no trip_distance on FHV) and, where it keeps
rides without a zone, zone -1.

Pydantic v2 (a FastAPI dependency) only: no FastAPI, MLflow or Dagster import here.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model
from pydantic_core import PydanticCustomError

from deploy_assets.core.contract import OUTPUT_POLICY
from deploy_assets.core.datasets import DISTANCE, FEATURE_COLUMNS
from deploy_assets.core.features import MAX_ZONE_ID, MISSING_ZONE, RIDE_RULES

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


def _not_zero(zone: int) -> int:
    """No TLC zone is 0; only MISSING_ZONE stands for an unknown one."""
    if zone == 0:
        raise PydanticCustomError("zone_id", f"Input should be a TLC zone id or {MISSING_ZONE} (unknown)")
    return zone


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


# Where a deployment keeps a ride whose zone the file leaves null (`missing_zones: keep`), its online rides may give
# that zone as MISSING_ZONE too: the value its model learned for "unknown". 0 stays refused, as in batch.
ZoneIdOrMissing = Annotated[
    int,
    Field(
        ge=MISSING_ZONE,
        le=MAX_ZONE_ID,
        description=f"TLC taxi zone id, {MIN_ZONE_ID}..{MAX_ZONE_ID}, or {MISSING_ZONE}: unknown",
        examples=[132],
        json_schema_extra={"not": {"const": 0}},
    ),
    _json_number("int_type"),
    AfterValidator(_not_zero),
]
RideId = Annotated[
    str | None,
    Field(
        max_length=MAX_RIDE_ID_LENGTH,
        description="caller's id for the ride, echoed in the answer",
        examples=["2024/02_17"],
    ),
]
PickupTime = Annotated[
    Annotated[datetime, BeforeValidator(_iso_date_time)] | None,
    Field(
        description="pickup time (New York local time when no offset is given; default: now). Only models that"
        " read a pickup feature (hour, weekday) use it",
        examples=["2024-02-01T08:15:00"],
    ),
]
# The types the OpenAPI schema promises: a zone id "132", true or 132.5 is refused, not coerced; 132.0 and an
# integer distance are valid JSON Schema integers / numbers and are accepted.
RIDE_CONFIG = ConfigDict(extra="ignore", frozen=True)


def ride_model(features: tuple[str, ...] = FEATURE_COLUMNS, keep_missing_zones: bool = False) -> type[BaseModel]:
    """One ride to score, for a deployment whose dataset has these ride `features` (`core.datasets.Dataset.features`:
    FHV has no trip_distance) and which keeps or drops rides with a missing zone: what its web service and stream
    consumer accept. `Ride` is the model of the datasets with a distance."""
    return _ride_model(DISTANCE in features, keep_missing_zones)


@functools.cache
def _ride_model(has_distance: bool, keep_missing_zones: bool) -> type[BaseModel]:
    """One class per request shape, so the OpenAPI schema and the validators are built once."""
    zone = ZoneIdOrMissing if keep_missing_zones else ZoneId
    name = "Ride" + ("" if has_distance else "WithoutDistance") + ("WithUnknownZones" if keep_missing_zones else "")
    return create_model(
        name,
        __config__=RIDE_CONFIG,
        __doc__="One ride to score: pickup zone, dropoff zone, " + ("distance, " if has_distance else "")
        + "an optional pickup time, and an optional id.",
        __module__=__name__,
        PULocationID=(zone, ...),
        DOLocationID=(zone, ...),
        **({DISTANCE: (TripDistance, ...)} if has_distance else {}),
        ride_id=(RideId, None),
        tpep_pickup_datetime=(PickupTime, None),
    )


@functools.cache
def ride_batch_model(ride: type[BaseModel]) -> type[BaseModel]:
    """`{"rides": [...]}` of that ride model (`POST /predict/batch`)."""
    rides = Annotated[list[ride], Field(max_length=MAX_BATCH_RIDES, description=f"at most {MAX_BATCH_RIDES} rides")]
    return create_model(f"{ride.__name__}Batch", __module__=__name__, rides=(rides, ...))


Ride = ride_model()
RideBatch = ride_batch_model(Ride)


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


ZONE_RULE = (
    f"a TLC zone id, {MIN_ZONE_ID}..{MAX_ZONE_ID} (or {MISSING_ZONE}, unknown, where the deployment keeps rides without"
    " a zone)"
)
FIELD_RULES = {
    "PULocationID": ZONE_RULE,
    "DOLocationID": ZONE_RULE,
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
