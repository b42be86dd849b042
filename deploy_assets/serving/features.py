"""The one scoring path of the online services: validated rides → ride columns → the model contract.

The batch job scores a month with `core.scoring.score_trips`, which calls `DeployableModel.predict_rides` on the
cleaned table. The web service and the stream consumer build the same base columns (pickup zone, dropoff zone as
int64; distance as float64 where the deployment's rides have one, not on FHV; the pickup time if the model asks for
a pickup feature) from the rides of a request or a micro-batch and call the same method: the ride features
(`PU_DO`, pickup hour, ...) are computed by `core.contract` only, so the three paths give identical predictions for
the same model version. The built-in regressor is called through `predict_arrays` directly (the web's hot path).
In shadow mode the model is a `MirroredModel`: the answer is the primary model's, and the rides are handed to the
shadow mirror afterwards.

The batch rules hold online too, through the same functions: a ride the valid-ride rule (`core.features.RideRules`)
would drop in batch is refused, naming the rule, and not scored (the rules a ride without a duration can be held
to: zones, and the distance where there is one); every answer goes through the output policy
(`core.contract.OutputPolicy`): clipped into the declared range, or, under `drop`/`fail`, refused. The web answers
a refusal with 422, the stream dead-letters it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np

from deploy_assets.core.contract import (
    CLIP,
    OUTPUT_POLICY,
    PICKUP_COLUMN,
    DeployableModel,
    OutputPolicy,
    PredictionsOutOfRange,
    as_deployable,
)
from deploy_assets.core.datasets import DISTANCE
from deploy_assets.core.features import FEATURE_COLUMNS, RIDE_RULES, RideRules
from deploy_assets.serving.schemas import Ride

# TLC timestamps are New York local time without a zone; an online ride without a pickup time starts now.
NYC = ZoneInfo("America/New_York")


class RideArrays(NamedTuple):
    """The base ride columns as arrays, in `FEATURE_COLUMNS` order (`RideRules.reasons`' and the built-in model's
    call)."""

    pickup_zone: np.ndarray  # int64
    dropoff_zone: np.ndarray  # int64
    trip_distance: np.ndarray | None  # float64; None for rides without a distance (FHV)

    def take(self, rows: list[int]) -> RideArrays:
        return RideArrays(*(None if column is None else column[rows] for column in self))


assert RideArrays._fields == ("pickup_zone", "dropoff_zone", "trip_distance") and len(FEATURE_COLUMNS) == 3


def ride_arrays(rides: Sequence[Ride]) -> RideArrays:
    """Column arrays from validated rides (no pandas: one small allocation per column); a distance array only when
    the rides' model has the field."""
    n = len(rides)
    has_distance = n > 0 and hasattr(rides[0], DISTANCE)
    if n == 1:  # the web service's hot path: one ride per request
        ride = rides[0]
        return RideArrays(
            np.array([ride.PULocationID], dtype=np.int64),
            np.array([ride.DOLocationID], dtype=np.int64),
            np.array([ride.trip_distance], dtype=np.float64) if has_distance else None,
        )
    return RideArrays(
        np.fromiter((ride.PULocationID for ride in rides), dtype=np.int64, count=n),
        np.fromiter((ride.DOLocationID for ride in rides), dtype=np.int64, count=n),
        np.fromiter((ride.trip_distance for ride in rides), dtype=np.float64, count=n) if has_distance else None,
    )


def pickup_times(rides: Sequence[Ride]) -> np.ndarray:
    """Pickup times as NYC-local datetime64[us]; a ride without one is taken to start now."""
    now = None
    values = []
    for ride in rides:
        when = ride.tpep_pickup_datetime
        if when is None:
            now = now or datetime.now(NYC).replace(tzinfo=None)
            when = now
        elif when.tzinfo is not None:
            try:
                when = when.astimezone(NYC).replace(tzinfo=None)
            except OverflowError:  # year 1 or 9999 with an offset: keep the wall-clock time
                when = when.replace(tzinfo=None)
        values.append(when)
    return np.array(values, dtype="datetime64[us]")


def ride_columns(rides: Sequence[Ride], needs_pickup_time: bool) -> dict[str, np.ndarray]:
    """The base columns `DeployableModel.predict_rides` reads: the rides' features (and their pickup time)."""
    columns = {name: column for name, column in zip(FEATURE_COLUMNS, ride_arrays(rides)) if column is not None}
    if needs_pickup_time:
        columns[PICKUP_COLUMN] = pickup_times(rides)
    return columns


class MirroredModel:
    """Shadow mode: answers with `primary`; afterwards hands the same rides and answers to `mirror.submit`."""

    def __init__(self, primary: DeployableModel, mirror, version: str):
        self.primary = primary
        self.mirror = mirror
        self.version = version

    @property
    def contract(self):
        return self.primary.contract

    def predict_rides(self, rides) -> np.ndarray:
        return self.primary.predict_rides(rides)

    def predict_arrays(self, *arrays) -> np.ndarray:
        return self.primary.predict_arrays(*arrays)


# Why a ride gets no prediction online (the stream's dead-letter reasons; the web's 422 `type`).
INVALID_RIDE = "invalid_ride"
PREDICTION_OUTSIDE_RANGE = "prediction_outside_range"


class Refusal(NamedTuple):
    reason: str  # INVALID_RIDE or PREDICTION_OUTSIDE_RANGE
    detail: str


class ScoredRides(NamedTuple):
    """One entry per ride: its predicted minutes (a Python float, JSON-ready), or None when it was refused."""

    durations: list[float | None]
    refused: dict[int, Refusal]


def score_rides(
    model, rides: Sequence[Ride], rules: RideRules = RIDE_RULES, policy: OutputPolicy = OUTPUT_POLICY
) -> ScoredRides:
    """Predicted minutes for validated rides: those `rules` refuse are not scored, and the answers are held to
    `policy` (see the module docstring).

    `model` is what a model source holds (a `DeployableModel`, a `MirroredModel`) or anything `as_deployable`
    accepts. Rides without a distance (FHV) are held to the rules that need none."""
    n, arrays = len(rides), ride_arrays(rides)
    refused = {
        row: Refusal(INVALID_RIDE, f"ride refused by the valid-ride rule {reason!r} (batch drops such rides)")
        for row, reason in rules.first_reasons(*arrays).items()
    }
    scored = [row for row in range(n) if row not in refused] if refused else range(n)
    if refused:
        rides, arrays = [rides[row] for row in scored], arrays.take(scored)
    predicted = _predict(model, rides, arrays)
    try:
        values, adjusted = policy.apply(predicted)
        outside = adjusted if policy.action != CLIP else np.zeros(len(predicted), dtype=bool)
    except PredictionsOutOfRange as error:
        values, outside = predicted, error.adjusted
    if not refused and not outside.any():
        return ScoredRides(values.tolist(), refused)
    durations: list[float | None] = [None] * n
    for row, value, drop in zip(scored, values.tolist(), outside.tolist()):
        if drop:
            refused[row] = Refusal(
                PREDICTION_OUTSIDE_RANGE, f"prediction {value:.1f} min outside {policy.range} (output policy"
                f" {policy.action!r})"
            )
        else:
            durations[row] = value
    return ScoredRides(durations, refused)


def _predict(model, rides: Sequence[Ride], arrays: RideArrays) -> np.ndarray:
    """The model's minutes for `rides` (their base columns `arrays`)."""
    if not rides:
        return np.empty(0)
    mirrored = model if isinstance(model, MirroredModel) else None
    deployable = as_deployable(mirrored.primary if mirrored else model)
    if deployable.is_builtin and mirrored is None:  # the web's hot path: three arrays, one gather
        return deployable.native.predict_arrays(*arrays)
    if deployable.is_builtin:
        columns = ride_columns(rides, mirrored is not None)  # the shadow model may read the pickup time
        durations = deployable.native.predict_arrays(*arrays)
    else:
        columns = ride_columns(rides, deployable.contract.needs_pickup_time or mirrored is not None)
        durations = deployable.predict_rides(columns)
    if mirrored is not None:
        mirrored.mirror.submit(columns, durations, mirrored.version)
    return durations
