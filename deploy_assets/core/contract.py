"""The model contract: what a deployable model reads, computed once for batch, web and stream.

A deployable model is any MLflow model (pyfunc of any flavour, or the scikit-learn object behind it) whose inputs
are columns of the **ride feature set** below. Its inputs come from, in this order:
1. the built-in `ZonePairDurationRegressor` (fixed inputs, called through its `predict_arrays` fast path);
2. a scikit-learn pipeline starting with a `DictVectorizer` (the zoomcamp logs these without a signature): its
   `feature_names_` (`PU_DO=132_236` → column `PU_DO` as a string, `trip_distance` → a number). Such a model wants
   records; the platform builds the very sparse matrix `DictVectorizer.transform(records)` would build, column-wise
   (no dicts), and hands it to the rest of the pipeline;
3. the MLflow signature's named columns (and their types);
4. a fitted scikit-learn model's `feature_names_in_`.
Anything else (a custom pyfunc without signature, a model fitted on bare arrays and logged without signature) has
inputs that cannot be determined, and is refused with `ModelContractError`, as is a column the platform does not
compute, or one the deployment's dataset does not have (`trip_distance` on FHV: `validate_model(ride_columns=…)`).
The platform computes exactly the columns asked for and calls the model in bounded chunks.

What a model answers is then held to the deployment's **output policy** (`OutputPolicy.apply`, the one function
batch, web, stream and the Lambda call): a declared valid range (0–180 minutes by default) and what happens to a
prediction outside it: `clip` (the default: moved to the range's nearest end, and flagged), `drop` (the ride gets
no prediction: left out of the month, refused online) or `fail` (the month fails, the request is refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from deploy_assets.core.datasets import DISTANCE, DROPOFF_ZONE, PICKUP_ZONE
from deploy_assets.core.errors import ModelContractError
from deploy_assets.core.features import MAX_ZONE_ID
from deploy_assets.core.model import PICKUP, ZonePairDurationRegressor

# Rows per model call for generic models: bounds the memory of the frames/matrices built for one call.
CHUNK_ROWS = 200_000

PICKUP_COLUMN = PICKUP  # the cleaned month's pickup time, also an online ride's optional field
_US_PER_HOUR = 3_600_000_000
_US_PER_DAY = 24 * _US_PER_HOUR


@dataclass(frozen=True)
class RideFeature:
    name: str
    kind: str  # "integer" | "number" | "string": the natural type; integers may also be asked for as strings
    description: str
    ride_columns: tuple[str, ...]  # the ride columns it is computed from

    @property
    def needs_pickup_time(self) -> bool:
        return PICKUP in self.ride_columns


_ZONES = (PICKUP_ZONE, DROPOFF_ZONE)

# The ride feature set, defined once: what a model may ask for. Computed from a cleaned month (core.features
# clean_schema) or from online rides (the zones, trip_distance where the dataset has one, optional pickup time).
RIDE_FEATURES: dict[str, RideFeature] = {
    f.name: f
    for f in (
        RideFeature(PICKUP_ZONE, "integer", "pickup TLC zone id, 1..265", (PICKUP_ZONE,)),
        RideFeature(DROPOFF_ZONE, "integer", "dropoff TLC zone id, 1..265", (DROPOFF_ZONE,)),
        # The zoomcamp's FHV homework: the zones as FHV files spell them, as strings, '-1' where the file has none.
        RideFeature("PUlocationID", "string", "the zoomcamp's FHV pickup zone, '132' ('-1': unknown)", (PICKUP_ZONE,)),
        RideFeature("DOlocationID", "string", "the zoomcamp's FHV dropoff zone, '236' ('-1': unknown)", (DROPOFF_ZONE,)),
        RideFeature(DISTANCE, "number", "miles", (DISTANCE,)),
        RideFeature("PU_DO", "string", "the zoomcamp's zone pair, '<PULocationID>_<DOLocationID>'", _ZONES),
        RideFeature("pickup_hour", "integer", "hour of the pickup, 0..23 (local NYC time, as the TLC records it)", (PICKUP,)),
        RideFeature("pickup_weekday", "integer", "day of week of the pickup, Monday=0..Sunday=6", (PICKUP,)),
    )
}

# Types an input may be asked for in, as NumPy dtype names ("str" = Python strings).
_SIGNATURE_DTYPES = {"integer": "int32", "long": "int64", "float": "float32", "double": "float64", "string": "str"}
_NATURAL_DTYPES = {"integer": "int64", "number": "float64", "string": "str"}


def natural_dtype(name: str) -> str:
    feature = RIDE_FEATURES.get(name)
    return _NATURAL_DTYPES[feature.kind] if feature else "float64"


@dataclass(frozen=True)
class ModelInput:
    name: str
    dtype: str  # "int32" | "int64" | "float32" | "float64" | "str"


@dataclass(frozen=True)
class ModelContract:
    """How a model is called and on which ride features.

    call: "builtin" (predict_arrays), "dictvectorizer" (sparse matrix into the rest of the pipeline), "records"
    (a DictVectorizer subclass: list of dicts), "frame" (a DataFrame of the inputs to the native model), "pyfunc"
    (a DataFrame to MLflow's pyfunc predict, which enforces the signature).
    """

    inputs: tuple[ModelInput, ...]
    call: str
    source: str  # where the inputs were read from, for messages

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    @property
    def needs_pickup_time(self) -> bool:
        return PICKUP in self.ride_columns

    @property
    def ride_columns(self) -> tuple[str, ...]:
        """The ride columns its inputs are computed from (a subset of the zones, distance and pickup time)."""
        return tuple(dict.fromkeys(c for name in self.columns for c in RIDE_FEATURES[name].ride_columns))


def _check_input(version: str | None, name: str | None, dtype: str, source: str) -> ModelInput:
    """The rule for "the platform can satisfy this input": a known feature, in its type or (integers) as a string."""
    if not name:
        raise ModelContractError(version, f"its {source} has an unnamed input: inputs cannot be determined")
    feature = RIDE_FEATURES.get(name)
    if feature is None:
        raise ModelContractError(
            version,
            f"it asks for column {name!r} ({source}), which the platform does not compute"
            f" (ride features: {', '.join(RIDE_FEATURES)})",
            column=name,
        )
    natural = _NATURAL_DTYPES[feature.kind]
    compatible = (
        dtype == natural
        or (dtype.startswith(("int", "float")) and feature.kind in ("integer", "number"))
        or (dtype == "str" and feature.kind in ("string", "integer"))
    )
    if not compatible:
        raise ModelContractError(
            version, f"it asks for column {name!r} as {dtype} ({source}); the platform has it as {natural}", column=name
        )
    return ModelInput(name, dtype)


# --- determining a model's contract ---------------------------------------------------------------------------


def _dict_vectorizer_inputs(dv, version: str | None) -> tuple[ModelInput, ...]:
    """Columns of the records a fitted DictVectorizer reads: `name=value` features are strings, others numbers."""
    kinds: dict[str, str] = {}
    for feature_name in dv.feature_names_:
        name, is_string = (feature_name.split(dv.separator, 1)[0], True) if dv.separator in feature_name else (
            feature_name,
            False,
        )
        dtype = "str" if is_string else "float64"
        if kinds.setdefault(name, dtype) != dtype:
            raise ModelContractError(
                version, f"its DictVectorizer uses {name!r} both as a string and as a number", column=name
            )
    source = "DictVectorizer.feature_names_"
    return tuple(_check_input(version, name, dtype, source) for name, dtype in kinds.items())


def _first_dict_vectorizer(model):
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.pipeline import Pipeline

    first = model.steps[0][1] if isinstance(model, Pipeline) and model.steps else model
    return first if isinstance(first, DictVectorizer) and hasattr(first, "vocabulary_") else None


def _signature_inputs(schema, version: str | None) -> tuple[ModelInput, ...] | None:
    if schema is None:
        return None
    if schema.is_tensor_spec():
        raise ModelContractError(version, "its signature is a tensor spec, not named columns: inputs cannot be determined")
    inputs = []
    for spec in schema.inputs:
        type_name = getattr(spec.type, "name", str(spec.type))
        dtype = _SIGNATURE_DTYPES.get(type_name)
        if dtype is None:
            raise ModelContractError(
                version, f"its signature asks for column {spec.name!r} as {type_name}, which the platform does not"
                " provide", column=spec.name,
            )
        inputs.append(_check_input(version, spec.name, dtype, "signature"))
    return tuple(inputs)


def builtin_contract(model: ZonePairDurationRegressor) -> ModelContract:
    """The built-in regressor's inputs: the zones, and the distance if it was fitted with one."""
    inputs = tuple(ModelInput(name, natural_dtype(name)) for name in model.feature_columns)
    return ModelContract(inputs, "builtin", "built-in ZonePairDurationRegressor")


def _sklearn_contract(model, version: str | None, schema=None) -> ModelContract:
    if isinstance(model, ZonePairDurationRegressor):
        return builtin_contract(model)
    dv = _first_dict_vectorizer(model)
    if dv is not None:
        from sklearn.feature_extraction import DictVectorizer

        inputs = _dict_vectorizer_inputs(dv, version)
        call = "dictvectorizer" if type(dv) is DictVectorizer and len(getattr(model, "steps", ())) > 1 else "records"
        return ModelContract(inputs, call, "DictVectorizer.feature_names_")
    inputs = _signature_inputs(schema, version)
    if inputs is not None:
        return ModelContract(inputs, "frame", "signature")
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        # No signature: fitted on a frame, the model names its columns; their types are the features' own.
        fitted = tuple(_check_input(version, str(name), natural_dtype(str(name)), "feature_names_in_") for name in names)
        return ModelContract(fitted, "frame", "feature_names_in_")
    raise ModelContractError(
        version,
        f"its inputs cannot be determined: a {type(model).__name__} logged without a signature, fitted without"
        " feature names (no feature_names_in_) and not starting with a DictVectorizer",
    )


def _is_pyfunc(model) -> bool:
    return hasattr(model, "metadata") and hasattr(model, "loader_module") and hasattr(model, "predict")


def _is_sklearn(model) -> bool:
    return hasattr(model, "get_params") and hasattr(model, "predict")


def as_deployable(model, version: str | None = None) -> DeployableModel:
    """The model with its contract: from a `DeployableModel`, the built-in regressor, a scikit-learn estimator
    or an MLflow `PyFuncModel` (any flavour). Raises ModelContractError naming `version` and the column."""
    if isinstance(model, DeployableModel):
        return model
    if _is_pyfunc(model):
        schema = model.metadata.get_input_schema()
        if model.loader_module == "mlflow.sklearn":
            native = model.get_raw_model()
            return DeployableModel(native, _sklearn_contract(native, version, schema), version, pyfunc=model)
        inputs = _signature_inputs(schema, version)
        if inputs is None:
            raise ModelContractError(
                version, f"its inputs cannot be determined: a {model.loader_module} model logged without a signature"
            )
        return DeployableModel(model, ModelContract(inputs, "pyfunc", "signature"), version, pyfunc=model)
    if _is_sklearn(model):
        return DeployableModel(model, _sklearn_contract(model, version), version)
    raise ModelContractError(version, f"a {type(model).__name__} is not a model the platform can call")


# --- computing the features ------------------------------------------------------------------------------------


def _base(rides, name: str):
    """A base column of `rides` (a pa.Table/RecordBatch or a mapping of equal-length arrays), or a clear error."""
    try:
        return rides[name]
    except KeyError:
        raise ValueError(f"the rides have no {name!r} column") from None


def _numpy(values) -> np.ndarray:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.to_numpy()
    return np.asarray(values)


def _pickup_micros(rides) -> np.ndarray:
    values = _base(rides, PICKUP_COLUMN)
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return pc.cast(values, pa.timestamp("us"), safe=False).cast(pa.int64()).to_numpy()
    return np.asarray(values, dtype="datetime64[us]").view(np.int64)


def _as_arrow_strings(values) -> pa.Array | pa.ChunkedArray:
    array = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(np.asarray(values))
    return pc.cast(array, pa.string())


def feature_column(rides, name: str, dtype: str):
    """One ride feature, vectorised: a NumPy array, or an Arrow string array for dtype "str"."""
    if name == "PU_DO":
        return pc.binary_join_element_wise(
            _as_arrow_strings(_base(rides, PICKUP_ZONE)), _as_arrow_strings(_base(rides, DROPOFF_ZONE)), "_"
        )
    if name == "pickup_hour":
        values = (_pickup_micros(rides) // _US_PER_HOUR) % 24
    elif name == "pickup_weekday":
        values = (_pickup_micros(rides) // _US_PER_DAY + 3) % 7  # 1970-01-01 was a Thursday (3)
    else:
        values = _base(rides, RIDE_FEATURES[name].ride_columns[0] if name in RIDE_FEATURES else name)
    if dtype == "str":
        return _as_arrow_strings(values)
    return _numpy(values).astype(dtype, copy=False)


def _pandas_column(values) -> Any:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return pd.Series(values.to_numpy(zero_copy_only=False), dtype=object)
    return values


def feature_frame(rides, inputs: tuple[ModelInput, ...]) -> pd.DataFrame:
    """The inputs a model asks for, as a DataFrame in its order (strings as Python objects)."""
    return pd.DataFrame({i.name: _pandas_column(feature_column(rides, i.name, i.dtype)) for i in inputs}, copy=False)


def _dict_vectorize(dv, rides, inputs: tuple[ModelInput, ...], n: int):
    """Exactly `dv.transform(records)` for records of `inputs`, built column-wise: per column the vocabulary index of
    each ride (strings: looked up once per distinct value) and its value, then one CSR array with sorted indices
    (as DictVectorizer sorts them)."""
    import scipy.sparse as sp

    vocabulary = dv.vocabulary_
    k = len(inputs)
    index = np.empty((n, k), dtype=np.int32)
    value = np.empty((n, k), dtype=np.float64)
    for j, item in enumerate(inputs):
        column = feature_column(rides, item.name, item.dtype)
        if item.dtype == "str":
            encoded = pc.dictionary_encode(column)
            if isinstance(encoded, pa.ChunkedArray):
                encoded = encoded.combine_chunks()
            prefix = f"{item.name}{dv.separator}"
            lookup = np.array(
                [vocabulary.get(prefix + text, -1) for text in encoded.dictionary.to_pylist()] or [-1], dtype=np.int32
            )
            index[:, j] = lookup[encoded.indices.to_numpy(zero_copy_only=False)]
            value[:, j] = 1.0
        else:
            index[:, j] = vocabulary.get(item.name, -1)
            value[:, j] = column
    present = index >= 0  # a value the vocabulary does not know is left out, as DictVectorizer does
    if present.all():
        indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
        indices, data = index.ravel(), value.ravel()
    else:
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(present.sum(axis=1), out=indptr[1:])
        indices, data = index[present], value[present]
    matrix = sp.csr_array((data.astype(dv.dtype, copy=False), indices, indptr), shape=(n, len(dv.feature_names_)))
    matrix.sort_indices()
    return matrix if dv.sparse else matrix.toarray()


def _as_vector(output, n: int, version: str | None) -> np.ndarray:
    if isinstance(output, pd.DataFrame):
        if output.shape[1] != 1:
            raise ModelContractError(version, f"it answered {output.shape[1]} columns, expected one duration per ride")
        output = output.iloc[:, 0]
    vector = np.asarray(output, dtype=np.float64).reshape(-1)
    if len(vector) != n:
        raise ModelContractError(version, f"it answered {len(vector)} values for {n} rides")
    return vector


def _slice(rides, start: int, stop: int):
    if isinstance(rides, (pa.Table, pa.RecordBatch)):
        return rides.slice(start, stop - start)
    return {name: values[start:stop] for name, values in rides.items()}


def _num_rows(rides) -> int:
    if isinstance(rides, (pa.Table, pa.RecordBatch)):
        return rides.num_rows
    return len(next(iter(rides.values()))) if rides else 0


@dataclass(frozen=True)
class DeployableModel:
    """A model and its contract: what scoring, the web service and the stream consumer call.

    native: the object called (the built-in regressor, a scikit-learn estimator, or an MLflow PyFuncModel).
    pyfunc: the MLflow PyFuncModel it came from, if any (its metadata: signature, flavours).
    """

    native: Any
    contract: ModelContract
    version: str | None = None
    pyfunc: Any = None

    @property
    def is_builtin(self) -> bool:
        return self.contract.call == "builtin"

    def predict_rides(self, rides, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
        """Predicted minutes for `rides`: a pa.Table/RecordBatch (cleaned rides) or a mapping of equal-length arrays
        (`PULocationID`, `DOLocationID`, and `trip_distance`, `tpep_pickup_datetime` if the model reads them)."""
        n = _num_rows(rides)
        if self.is_builtin:
            return self.native.predict_arrays(*(_numpy(_base(rides, name)) for name in self.contract.columns))
        if n <= chunk_rows:
            return self._predict_chunk(rides, n)
        out = np.empty(n, dtype=np.float64)
        for start in range(0, n, chunk_rows):
            stop = min(start + chunk_rows, n)
            out[start:stop] = self._predict_chunk(_slice(rides, start, stop), stop - start)
        return out

    def _predict_chunk(self, rides, n: int) -> np.ndarray:
        call, inputs = self.contract.call, self.contract.inputs
        if call == "dictvectorizer":
            steps = self.native.steps
            matrix = _dict_vectorize(steps[0][1], rides, inputs, n)
            # DictVectorizer + one estimator (the zoomcamp's): that estimator's predict is all Pipeline.predict would
            # call, without its ~0.2 ms of routing per call (what a one-ride web request feels).
            output = steps[1][1].predict(matrix) if len(steps) == 2 else self.native[1:].predict(matrix)
        elif call == "records":
            output = self.native.predict(feature_frame(rides, inputs).to_dict(orient="records"))
        else:  # "frame" (native model) or "pyfunc" (MLflow enforces the signature)
            output = self.native.predict(feature_frame(rides, inputs))
        return _as_vector(output, n, self.version)

    def predict_arrays(self, pickup_zone, dropoff_zone, trip_distance=None) -> np.ndarray:
        """The built-in regressor's call, for any model whose inputs derive from these columns."""
        rides = {PICKUP_ZONE: pickup_zone, DROPOFF_ZONE: dropoff_zone}
        return self.predict_rides(rides if trip_distance is None else {**rides, DISTANCE: trip_distance})

    def predict(self, X) -> np.ndarray:
        """Rides given as a DataFrame / pa.Table of ride columns (not of model inputs)."""
        if isinstance(X, pd.DataFrame):
            X = {name: X[name].to_numpy() for name in X.columns}
        return self.predict_rides(X)


# --- the output policy ----------------------------------------------------------------------------------------

CLIP, DROP, FAIL = "clip", "drop", "fail"


class PredictionsOutOfRange(ValueError):
    """Predictions outside the declared range under the `fail` policy; `adjusted` flags them."""

    def __init__(self, message: str, adjusted: np.ndarray):
        super().__init__(message)
        self.adjusted = adjusted


@dataclass(frozen=True)
class OutputPolicy:
    """The valid range of a deployment's predictions (minutes) and what happens outside it (clip, drop, fail)."""

    min_minutes: float = 0.0
    max_minutes: float = 180.0
    action: str = CLIP

    def __post_init__(self) -> None:
        if self.action not in (CLIP, DROP, FAIL):
            raise ValueError(f"output policy action {self.action!r}: expected {CLIP!r}, {DROP!r} or {FAIL!r}")

    @property
    def range(self) -> str:
        return f"{self.min_minutes:g}–{self.max_minutes:g} min"

    def apply(self, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(predictions within policy, adjusted): `adjusted` flags the rides whose prediction was outside the range.
        clip: those values moved to the range; drop: left as they were, for the caller to leave the flagged rides
        out; fail: raises PredictionsOutOfRange if any. A NaN is no value to adjust: it stays, for the audit."""
        predicted = np.asarray(predicted, dtype=np.float64)
        adjusted = (predicted < self.min_minutes) | (predicted > self.max_minutes)
        if not adjusted.any():
            return predicted, adjusted
        if self.action == FAIL:
            raise PredictionsOutOfRange(
                f"{int(adjusted.sum())} of {len(predicted)} predictions outside {self.range} (output policy {FAIL!r})",
                adjusted,
            )
        if self.action == DROP:
            return predicted, adjusted
        return np.clip(predicted, self.min_minutes, self.max_minutes), adjusted


OUTPUT_POLICY = OutputPolicy()


# --- validation at the door ------------------------------------------------------------------------------------

# A smoke batch: a few rides across zones, distances, hours and weekdays.
SMOKE_RIDES = {
    "PULocationID": np.array([132, 236, 1, MAX_ZONE_ID, 161], dtype=np.int64),
    "DOLocationID": np.array([236, 132, 1, 264, 161], dtype=np.int64),
    "trip_distance": np.array([17.5, 1.2, 0.0, 3.3, 0.8]),
    PICKUP_COLUMN: np.array(
        ["2024-02-01T08:15", "2024-02-03T23:59", "2024-02-05T00:00", "2024-02-07T12:30", "2024-02-10T18:00"],
        dtype="datetime64[us]",
    ),
}


def validate_model(
    model, version: str | None = None, ride_columns: tuple[str, ...] | None = None, deployment: str | None = None
) -> DeployableModel:
    """The door every model passes before it may be @champion/@challenger or serve: inputs known and satisfiable
    (from the deployment's `ride_columns`, when given: a dataset without a distance cannot feed a model that
    reads one), and a smoke batch answered with one finite number per ride. Returns the DeployableModel."""
    deployable = as_deployable(model, version)
    if ride_columns is not None:
        for name in deployable.contract.columns:
            absent = [column for column in RIDE_FEATURES[name].ride_columns if column not in ride_columns]
            if absent:
                where = f"deployment {deployment!r}" if deployment else "the deployment"
                raise ModelContractError(
                    version,
                    f"it asks for {name!r}, computed from {absent[0]!r}, which {where}'s rides do not have"
                    f" (they have {', '.join(ride_columns)})",
                    column=name,
                )
    n = len(SMOKE_RIDES["trip_distance"])
    try:
        answer = deployable.predict_rides(SMOKE_RIDES)
    except ModelContractError:
        raise
    except Exception as error:  # noqa: BLE001 - whatever the model raised, it is not deployable
        raise ModelContractError(
            version, f"it failed on a smoke batch of {n} rides: {type(error).__name__}: {error}"
        ) from error
    if answer.shape != (n,) or not np.isfinite(answer).all():
        raise ModelContractError(version, f"it answered {answer!r} for a smoke batch of {n} rides, expected finite numbers")
    return deployable
