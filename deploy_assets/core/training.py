"""Pluggable training: the built-in regressor, or any scikit-learn estimator/pipeline named by a dotted path.

An estimator spec is `{"estimator": "<dotted path>", "params": {...}}`; a parameter value that is itself a spec
(or a list of specs) is built first, and a `Pipeline`'s `steps` may be a list of specs (named as `make_pipeline`
names them). Examples:

    ZOOMCAMP_PIPELINE   # DictVectorizer + LinearRegression on records of PU_DO and trip_distance
    {"estimator": "sklearn.ensemble.RandomForestRegressor", "params": {"n_estimators": 50, "max_depth": 12}}

A pipeline starting with a `DictVectorizer` is fitted on records (dicts) of `features` (default: the zoomcamp's
`PU_DO`, `trip_distance`) with `PU_DO` as a string; any other estimator on a DataFrame of `features` (default:
`PULocationID`, `DOLocationID`, `trip_distance`), so it records `feature_names_in_`. The defaults keep only what
the months' rides have (no `trip_distance` on FHV). Either way the model's inputs
are ride features the contract can read, and the registry logs it with a signature and an input example.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

from deploy_assets.core.batches import table_batch_source
from deploy_assets.core.contract import RIDE_FEATURES, ModelInput, as_deployable, feature_frame, natural_dtype
from deploy_assets.core.features import CLEAN_SCHEMA
from deploy_assets.core.model import PICKUP, TrainedModel, holdout_start, rmse, train_duration_model

BUILTIN = "builtin"
CLEAN_COLUMNS = tuple(CLEAN_SCHEMA.names)
ZOOMCAMP_PIPELINE = {
    "estimator": "sklearn.pipeline.Pipeline",
    "params": {
        "steps": [
            {"estimator": "sklearn.feature_extraction.DictVectorizer"},
            {"estimator": "sklearn.linear_model.LinearRegression"},
        ]
    },
}
RECORD_FEATURES = ("PU_DO", "trip_distance")
FRAME_FEATURES = ("PULocationID", "DOLocationID", "trip_distance")


def _resolve(path: str):
    module, _, name = path.rpartition(".")
    if not module:
        raise ValueError(f"estimator {path!r} is not a dotted path such as sklearn.linear_model.LinearRegression")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"estimator {path!r} cannot be imported: {error}") from error


def _is_spec(value) -> bool:
    return isinstance(value, Mapping) and "estimator" in value


def _build_value(value):
    if _is_spec(value):
        return build_estimator(value["estimator"], value.get("params") or {})
    if isinstance(value, (list, tuple)):
        return [_build_value(item) for item in value]
    return value


def build_estimator(estimator_path: str, params: Mapping | None = None):
    """A scikit-learn estimator from a dotted path and parameters (nested specs built recursively)."""
    from sklearn.pipeline import Pipeline, _name_estimators

    factory = _resolve(estimator_path)
    kwargs = {key: _build_value(value) for key, value in (params or {}).items()}
    if factory is Pipeline and kwargs.get("steps") and not isinstance(kwargs["steps"][0], tuple):
        kwargs["steps"] = _name_estimators(kwargs["steps"])
    return factory(**kwargs)


def _starts_with_dict_vectorizer(estimator) -> bool:
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.pipeline import Pipeline

    first = estimator.steps[0][1] if isinstance(estimator, Pipeline) else estimator
    return isinstance(first, DictVectorizer)


def _inputs(features: Sequence[str], as_records: bool) -> tuple[ModelInput, ...]:
    unknown = [name for name in features if name not in RIDE_FEATURES]
    if unknown:
        raise ValueError(f"unknown ride features {unknown}; the platform computes {list(RIDE_FEATURES)}")
    # Records: the zoomcamp's convention, categorical features as strings (DictVectorizer one-hot encodes them).
    return tuple(
        ModelInput(name, "str" if as_records and RIDE_FEATURES[name].kind == "string" else natural_dtype(name))
        for name in features
    )


def _fit_input(table: pa.Table, inputs: tuple[ModelInput, ...], as_records: bool):
    frame = feature_frame(table, inputs)
    return frame.to_dict(orient="records") if as_records else frame


def _as_table(month, columns: Sequence[str] = CLEAN_COLUMNS) -> pa.Table:
    """A cleaned month in memory: a pa.Table, or a BatchSource (core.batches) of these columns read whole (these
    estimators fit in memory anyway)."""
    return month if isinstance(month, pa.Table) else pa.Table.from_batches(list(month(list(columns))))


def default_features(as_records: bool, ride_columns: Sequence[str]) -> tuple[str, ...]:
    """The zoomcamp's features (records) or the frame ones, but those computed from a column the rides lack."""
    names = RECORD_FEATURES if as_records else FRAME_FEATURES
    return tuple(name for name in names if set(RIDE_FEATURES[name].ride_columns) <= set(ride_columns))


def train_sklearn(
    estimator_path: str,
    params: Mapping | None,
    earlier_months: list,
    holdout_fraction: float = 0.2,
    features: Sequence[str] | None = None,
    columns: Sequence[str] = CLEAN_COLUMNS,
) -> TrainedModel:
    """Fit any scikit-learn estimator on cleaned months (oldest first, of these columns), holding out the latest
    rides of the most recent one, as `train_duration_model` does; returns the same `TrainedModel`."""
    earlier_months = [_as_table(month, columns) for month in earlier_months]
    if not earlier_months or sum(t.num_rows for t in earlier_months) == 0:
        raise ValueError("no cleaned rides to train on")
    estimator = build_estimator(estimator_path, params)
    as_records = _starts_with_dict_vectorizer(estimator)
    inputs = _inputs(features or default_features(as_records, earlier_months[-1].column_names), as_records)

    *older, last = earlier_months
    # The built-in's hold-out rule: the latest `holdout_fraction` of the last month's rides by pickup time.
    start = holdout_start(table_batch_source(last), holdout_fraction)
    pickup = last[PICKUP].cast(pa.int64()).to_numpy()
    held_out = pickup >= start if start is not None else np.zeros(last.num_rows, dtype=bool)
    train = pa.concat_tables([*older, last.filter(pa.array(~held_out))])
    holdout = last.filter(pa.array(held_out))
    estimator.fit(_fit_input(train, inputs, as_records), train["duration"].to_numpy())

    deployable = as_deployable(estimator, f"{estimator_path} being trained")

    def evaluate(table: pa.Table) -> float:
        return rmse(table["duration"].to_numpy(), deployable.predict_rides(table)) if table.num_rows else float("nan")

    return TrainedModel(
        model=estimator,
        holdout=holdout,
        train_rows=train.num_rows,
        holdout_rows=holdout.num_rows,
        holdout_rmse=evaluate(holdout),
        train_rmse=evaluate(train),
        holdout_start=start,
    )


def train_model(
    earlier_months: list, holdout_fraction: float, config: Mapping, columns: Sequence[str] = CLEAN_COLUMNS
) -> TrainedModel:
    """What `duration_model` calls, on cleaned months (tables or BatchSources of these columns, oldest first):
    `config` has `estimator` ("builtin" or a dotted path), `params` (for the built-in: `smoothing`), and
    optionally `features` (ride feature names). Returns a `TrainedModel` for `ModelRegistry.log_and_register`."""
    estimator = config.get("estimator") or BUILTIN
    params = dict(config.get("params") or {})
    if estimator == BUILTIN:
        tables = [_as_table(month, columns) for month in earlier_months]
        return train_duration_model(tables, holdout_fraction=holdout_fraction, **params)
    return train_sklearn(estimator, params, earlier_months, holdout_fraction, config.get("features"), columns)
