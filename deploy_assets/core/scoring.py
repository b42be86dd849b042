"""Score a cleaned month with any deployable model, and the predictions table the batch job publishes.

The model is whatever `registry.load` returns (the built-in regressor, a `DeployableModel`, a scikit-learn
estimator, an MLflow pyfunc): `core.contract` computes the columns it asks for and calls it in bounded chunks;
the built-in regressor keeps its one-call `predict_arrays` fast path. A model that cannot be deployed raises
`ModelContractError` (non-retryable) naming the version and the column.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa

from deploy_assets.core.contract import as_deployable

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


def score_trips(clean: pa.Table | pa.RecordBatch, model, model_version: str) -> pa.Table:
    """Predictions for every ride of a cleaned month, stamped with the model version that made them."""
    predicted = as_deployable(model, model_version).predict_rides(clean)
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


def score_batches(
    record_batches: Iterable[pa.RecordBatch | pa.Table], model, model_version: str
) -> Iterator[pa.RecordBatch]:
    """`score_trips` over a stream of cleaned record batches: one prediction batch per input batch, so a month
    is scored in the memory of one batch (the contract is resolved once)."""
    deployable = as_deployable(model, model_version)
    for batch in record_batches:
        yield from score_trips(batch, deployable, model_version).to_batches()
