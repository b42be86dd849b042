"""The one scoring path of the online services: validated rides → column arrays → `predict_arrays`.

The batch job scores a month with `core.scoring.score_trips`, which calls
`ZonePairDurationRegressor.predict_arrays(*core.features.feature_arrays(table))`. The web service and the stream
consumer build the same three arrays (pickup zone, dropoff zone as int64; distance as float64) from the rides of
a request or a micro-batch and call the same method: no copied feature logic (the PU_DO zone-pair code is
computed inside `predict_arrays` by `core.features.zone_pair_codes`), so the three paths give bit-identical
predictions for the same model version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from deploy_assets.core.features import FEATURE_COLUMNS
from deploy_assets.core.model import ZonePairDurationRegressor
from deploy_assets.serving.schemas import Ride


class RideArrays(NamedTuple):
    """The model's inputs as column arrays, in `FEATURE_COLUMNS` order."""

    pickup_zone: np.ndarray  # int64
    dropoff_zone: np.ndarray  # int64
    trip_distance: np.ndarray  # float64


assert RideArrays._fields == ("pickup_zone", "dropoff_zone", "trip_distance") and len(FEATURE_COLUMNS) == 3


def ride_arrays(rides: Sequence[Ride]) -> RideArrays:
    """Column arrays from validated rides (no pandas: one small allocation per column)."""
    n = len(rides)
    if n == 1:  # the web service's hot path: one ride per request
        ride = rides[0]
        return RideArrays(
            np.array([ride.PULocationID], dtype=np.int64),
            np.array([ride.DOLocationID], dtype=np.int64),
            np.array([ride.trip_distance], dtype=np.float64),
        )
    return RideArrays(
        np.fromiter((ride.PULocationID for ride in rides), dtype=np.int64, count=n),
        np.fromiter((ride.DOLocationID for ride in rides), dtype=np.int64, count=n),
        np.fromiter((ride.trip_distance for ride in rides), dtype=np.float64, count=n),
    )


def predict_durations(model: ZonePairDurationRegressor, arrays: RideArrays) -> np.ndarray:
    """Predicted minutes per ride: exactly the batch scorer's call."""
    return model.predict_arrays(*arrays)


def score_rides(model: ZonePairDurationRegressor, rides: Sequence[Ride]) -> list[float]:
    """Predicted minutes for validated rides, as Python floats (JSON-ready; `float` repr round-trips exactly)."""
    if not rides:
        return []
    return predict_durations(model, ride_arrays(rides)).tolist()
