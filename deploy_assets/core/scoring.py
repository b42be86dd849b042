"""Score a cleaned month with any deployable model, and the predictions table the batch job publishes.

The model is whatever `registry.load` returns (the built-in regressor, a `DeployableModel`, a scikit-learn
estimator, an MLflow pyfunc): `core.contract` computes the columns it asks for and calls it in bounded chunks;
the built-in regressor keeps its one-call `predict_arrays` fast path. A model that cannot be deployed raises
`ModelContractError` (non-retryable) naming the version and the column. Predictions are held to the output policy
(`core.contract.OutputPolicy`): `prediction_adjusted` flags the clipped ones, a dropped ride has no row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa

import numpy as np

from deploy_assets.core.contract import DROP, OUTPUT_POLICY, OutputPolicy, as_deployable

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
        ("prediction_adjusted", pa.bool_()),  # moved into the declared range by the output policy
    ]
)


def score_trips(
    clean: pa.Table | pa.RecordBatch, model, model_version: str, policy: OutputPolicy = OUTPUT_POLICY
) -> pa.Table:
    """Predictions for every ride of a cleaned month (but those the `drop` policy leaves out), stamped with the
    model version that made them."""
    predicted, adjusted = policy.apply(as_deployable(model, model_version).predict_rides(clean))
    if policy.action == DROP and adjusted.any():
        kept = np.flatnonzero(~adjusted)
        clean, predicted, adjusted = clean.take(kept), predicted[kept], adjusted[kept]
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
            pa.array(adjusted),
        ],
        schema=PREDICTION_SCHEMA,
    )


def score_batches(
    record_batches: Iterable[pa.RecordBatch | pa.Table], model, model_version: str, policy: OutputPolicy = OUTPUT_POLICY
) -> Iterator[pa.RecordBatch]:
    """`score_trips` over a stream of cleaned record batches: one prediction batch per input batch, so a month
    is scored in the memory of one batch (the contract is resolved once)."""
    deployable = as_deployable(model, model_version)
    for batch in record_batches:
        yield from score_trips(batch, deployable, model_version, policy).to_batches()
