"""Score a cleaned month: one vectorised predict, and the predictions table the batch job publishes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deploy_assets.core.features import feature_arrays
from deploy_assets.core.model import ZonePairDurationRegressor, rmse

PREDICTION_SCHEMA = pa.schema(
    [
        ("ride_id", pa.string()),
        ("tpep_pickup_datetime", pa.timestamp("us")),
        ("PULocationID", pa.int32()),
        ("DOLocationID", pa.int32()),
        ("actual_duration", pa.float64()),
        ("predicted_duration", pa.float64()),
        ("diff", pa.float64()),
        ("model_version", pa.string()),
    ]
)


def score_trips(clean: pa.Table, model: ZonePairDurationRegressor, model_version: str) -> pa.Table:
    """Predictions for every ride of a cleaned month, stamped with the model version that made them."""
    predicted = model.predict_arrays(*feature_arrays(clean))
    actual = clean["duration"].to_numpy()
    return pa.table(
        [
            clean["ride_id"],
            clean["tpep_pickup_datetime"],
            clean["PULocationID"],
            clean["DOLocationID"],
            pa.array(actual),
            pa.array(predicted),
            pa.array(actual - predicted),
            pa.repeat(pa.scalar(str(model_version), pa.string()), clean.num_rows),
        ],
        schema=PREDICTION_SCHEMA,
    )


def prediction_summary(predictions: pa.Table) -> dict[str, float]:
    """Numbers the UI plots across partitions."""
    predicted = predictions["predicted_duration"].to_numpy()
    if len(predicted) == 0:
        return {"rows": 0}
    return {
        "rows": int(len(predicted)),
        "mean_predicted_duration": float(np.mean(predicted)),
        "std_predicted_duration": float(np.std(predicted)),
        "rmse": rmse(predictions["actual_duration"].to_numpy(), predicted),
        "mean_abs_diff": float(pc.mean(pc.abs(predictions["diff"])).as_py()),
    }
