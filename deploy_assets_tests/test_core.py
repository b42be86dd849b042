"""The Dagster-free core: schema, generator, cleaning, model, scoring."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deploy_assets.core.datasets import YELLOW
from deploy_assets.core.months import Month
from deploy_assets.core.features import RideRules, clean_trips, ride_ids
from deploy_assets.core.generate import generate_month
from deploy_assets.core.drift import DISTANCE_BIN_COUNT, distance_bin_counts
from deploy_assets.core.model import ZonePairDurationRegressor, ZonePairStatistics, evaluate, train_duration_model
from deploy_assets.core.schema import (
    TLC_YELLOW_SCHEMA,
    InvalidTripData,
    read_trips,
    tlc_file_name,
)
from deploy_assets.core.scoring import PREDICTION_SCHEMA, score_trips


def parquet_bytes(table: pa.Table) -> io.BytesIO:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    sink.seek(0)
    return sink


def trips(**overrides) -> pa.Table:
    """Four valid January rides; keyword arguments replace columns."""
    pickup = [datetime(2024, 1, 5, 8, 0), datetime(2024, 1, 5, 9, 0), datetime(2024, 1, 6, 10, 0), datetime(2024, 1, 7, 11, 0)]
    columns = {
        "tpep_pickup_datetime": pa.array(pickup, pa.timestamp("us")),
        "tpep_dropoff_datetime": pa.array([p.replace(minute=12) for p in pickup], pa.timestamp("us")),
        "PULocationID": pa.array([1, 2, 3, 4], pa.int32()),
        "DOLocationID": pa.array([5, 6, 7, 8], pa.int32()),
        "trip_distance": pa.array([1.0, 2.0, 3.0, 4.0]),
    }
    columns.update(overrides)
    return pa.table(columns)


def test_generator_writes_the_exact_tlc_schema_with_nullable_columns():
    table = generate_month(2024, 3, 5_000)
    assert table.schema == TLC_YELLOW_SCHEMA
    assert table.num_rows == 5_000
    for nullable in ("passenger_count", "RatecodeID", "store_and_fwd_flag", "congestion_surcharge", "Airport_fee"):
        assert 0 < table[nullable].null_count < table.num_rows
    assert table.equals(generate_month(2024, 3, 5_000))
    assert not table.equals(generate_month(2024, 3, 5_000, seed=1))


def test_generated_month_is_mostly_clean_and_learnable():
    cleaned = clean_trips(generate_month(2024, 3, 50_000), 2024, 3)
    assert 0.9 < cleaned.rows_kept / cleaned.rows_read < 0.99
    # Generated months carry no nulls, foreign zones or odometer errors; every other kind of dirty row they do.
    absent = ("null_required_value", "zone_id_out_of_range", "distance_above_100_mi")
    assert all(count > 0 for reason, count in cleaned.dropped.items() if reason not in absent)
    trained = train_duration_model([cleaned.table])
    spread = np.std(cleaned.table["duration"].to_numpy())
    assert trained.holdout_rmse < 0.6 * spread  # the model explains most of the variance


def test_tlc_file_names_round_trip():
    assert tlc_file_name(2024, 3) == "yellow_tripdata_2024-03.parquet"
    assert YELLOW.month_of("yellow_tripdata_2024-03.parquet") == Month(2024, 3)
    for foreign in ("green_tripdata_2024-03.parquet", "yellow_tripdata_2024-13.parquet", "yellow_tripdata_2024-03.csv"):
        assert YELLOW.month_of(foreign) is None


def test_cleaning_counts_each_dropped_row_once_under_its_first_reason():
    table = trips(
        tpep_dropoff_datetime=pa.array(
            [datetime(2024, 1, 5, 8, 0, 30), datetime(2024, 1, 5, 11, 0), datetime(2024, 1, 6, 10, 12), datetime(2024, 1, 7, 11, 12)],
            pa.timestamp("us"),
        ),
        PULocationID=pa.array([1, 2, 300, None], pa.int32()),
    )
    cleaned = clean_trips(table, 2024, 1)
    assert cleaned.rows_kept == 0
    assert cleaned.dropped["duration_below_1_min"] == 1
    assert cleaned.dropped["duration_above_60_min"] == 1
    assert cleaned.dropped["zone_id_out_of_range"] == 1
    assert cleaned.dropped["null_required_value"] == 1


def test_cleaning_drops_other_months_and_negative_distances():
    table = trips(
        tpep_pickup_datetime=pa.array([datetime(2023, 12, 31, 23, 0)] + [datetime(2024, 1, 5, 8, 0)] * 3, pa.timestamp("us")),
        tpep_dropoff_datetime=pa.array([datetime(2023, 12, 31, 23, 10)] + [datetime(2024, 1, 5, 8, 10)] * 3, pa.timestamp("us")),
        trip_distance=pa.array([1.0, -2.0, 3.0, 4.0]),
    )
    cleaned = clean_trips(table, 2024, 1)
    assert cleaned.dropped["pickup_outside_month"] == 1
    assert cleaned.dropped["negative_or_nan_distance"] == 1
    assert cleaned.table["ride_id"].to_pylist() == ["2024/01_2", "2024/01_3"]


def test_absurd_distances_and_implausible_speeds_are_dropped_under_their_own_reason():
    table = trips(
        trip_distance=pa.array([250_000.0, 30.0, 11.0, 4.0]),  # rides of 12 minutes: 1,250,000, 150, 55, 20 mph
    )
    cleaned = clean_trips(table, 2024, 1)
    assert cleaned.dropped["distance_above_100_mi"] == 1
    assert cleaned.dropped["speed_above_80_mph"] == 1
    assert cleaned.table["ride_id"].to_pylist() == ["2024/01_2", "2024/01_3"]
    # Another deployment's rules are another instance: their bounds name their reasons.
    strict = clean_trips(table, 2024, 1, RideRules(max_distance_miles=10.0, max_speed_mph=50.0))
    assert strict.dropped["distance_above_10_mi"] == 3 and strict.dropped["speed_above_50_mph"] == 0
    # Online, without a duration, the rules a ride has the columns for decide, with the same names.
    rules = RideRules()
    refused = rules.first_reasons(np.array([1, 300, 1]), np.array([2, 2, 2]), np.array([150.0, 1.0, 2.0]))
    assert refused == {0: "distance_above_100_mi", 1: "zone_id_out_of_range"}


def odometer_errors(table: pa.Table, share: float, miles: tuple[float, float], plausible_speed: bool = False) -> pa.Table:
    """`share` of the rides given a wrong distance of `miles` (log-uniform) and a duration of 1–60 minutes (with
    `plausible_speed`, long enough that the ride averages at most 80 mph: an error the ride rules cannot see)."""
    rng = np.random.default_rng(5)
    rows = rng.choice(table.num_rows, int(table.num_rows * share), replace=False)
    distance = table["trip_distance"].to_numpy().copy()
    distance[rows] = np.exp(rng.uniform(*np.log(miles), len(rows)))
    shortest = np.maximum(60.0 * distance[rows] / 80.0, 1.0) if plausible_speed else np.ones(len(rows))
    dropoff = table["tpep_dropoff_datetime"].to_numpy().copy()
    pickup = table["tpep_pickup_datetime"].to_numpy()
    dropoff[rows] = pickup[rows] + (rng.uniform(shortest, 60.0) * 60e6).astype("timedelta64[us]")
    table = table.set_column(table.schema.get_field_index("trip_distance"), "trip_distance", pa.array(distance))
    column = table.schema.get_field_index("tpep_dropoff_datetime")
    return table.set_column(column, "tpep_dropoff_datetime", pa.array(dropoff, pa.timestamp("us")))


@pytest.fixture(scope="module")
def next_clean_month() -> pa.Table:
    return clean_trips(generate_month(2024, 2, 200_000, seed=1), 2024, 2).table


def test_absurd_distances_in_a_month_leave_its_model_as_good_as_without_them(next_clean_month):
    january = generate_month(2024, 1, 200_000)
    corrupted = clean_trips(odometer_errors(january, 0.0005, (60.0, 300_000.0)), 2024, 1)
    clean = clean_trips(january, 2024, 1)
    # The drops appear under their reason (a few of the 100 errors fell on rows already dropped for another one).
    errors = corrupted.dropped["distance_above_100_mi"] + corrupted.dropped["speed_above_80_mph"]
    assert 90 <= errors - clean.dropped["speed_above_80_mph"] <= 100 and corrupted.dropped["distance_above_100_mi"] > 80
    with_errors = evaluate(train_duration_model([corrupted.table], 0.0).model, next_clean_month)
    without = evaluate(train_duration_model([clean.table], 0.0).model, next_clean_month)
    assert with_errors <= without * 1.02


def test_robust_fit_barely_moves_when_wrong_distances_slip_through_the_rules(next_clean_month):
    january = generate_month(2024, 1, 200_000)
    clean = clean_trips(january, 2024, 1).table
    # 20–75 miles at a plausible speed: the rules keep them, and least squares is pulled far off by them.
    slipped = clean_trips(odometer_errors(january, 0.0005, (20.0, 75.0), plausible_speed=True), 2024, 1).table
    assert slipped.num_rows >= clean.num_rows
    reference = evaluate(train_duration_model([clean], 0.0).model, next_clean_month)
    robust = train_duration_model([slipped], 0.0)
    plain = train_duration_model([slipped], 0.0, robust=False)
    assert evaluate(robust.model, next_clean_month) <= reference * 1.02
    assert evaluate(plain.model, next_clean_month) > reference * 1.10
    assert robust.rides_bounded >= 100 and plain.rides_bounded == 0


def test_ride_ids_are_zero_padded_year_month_and_row_index():
    assert ride_ids(2024, 3, np.array([0, 17])).to_pylist() == ["2024/03_0", "2024/03_17"]


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"drop": "trip_distance"}, "missing column 'trip_distance'"),
        ({"PULocationID": pa.array(["1", "2", "3", "4"])}, "column 'PULocationID' has type string, expected integer"),
        ({"tpep_pickup_datetime": pa.array(["2024-01-05 08:00"] * 4)}, "column 'tpep_pickup_datetime' has type string"),
    ],
)
def test_schema_errors_name_the_column(change, expected):
    table = trips()
    if "drop" in change:
        table = table.drop_columns([change["drop"]])
    else:
        [(name, column)] = change.items()
        table = table.set_column(table.schema.get_field_index(name), name, column)
    with pytest.raises(InvalidTripData, match=expected) as caught:
        read_trips(parquet_bytes(table), "s3://landing/yellow_tripdata_2024-01.parquet")
    assert "yellow_tripdata_2024-01.parquet" in str(caught.value)


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "not a readable Parquet file"),
        (b"VendorID,tpep_pickup_datetime\n1,2024-01-01\n", "not a readable Parquet file"),
        (parquet_bytes(trips()).getvalue()[:-200], "not a readable Parquet file"),
        (parquet_bytes(trips().slice(0, 0)).getvalue(), "0 rows"),
    ],
    ids=["zero-bytes", "csv", "truncated", "empty-table"],
)
def test_unreadable_files_are_named_errors(content, expected):
    with pytest.raises(InvalidTripData, match=expected):
        read_trips(io.BytesIO(content), "landing/yellow_tripdata_2024-01.parquet")


def test_closed_form_model_equals_zoomcamp_dictvectorizer_linear_regression():
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    cleaned = clean_trips(generate_month(2024, 1, 20_000), 2024, 1).table
    frame = cleaned.select(["PULocationID", "DOLocationID", "trip_distance"]).to_pandas()
    y = cleaned["duration"].to_numpy()
    dicts = pd.DataFrame(
        {"PU_DO": frame.PULocationID.astype(str) + "_" + frame.DOLocationID.astype(str), "trip_distance": frame.trip_distance}
    ).to_dict(orient="records")
    reference = make_pipeline(DictVectorizer(), LinearRegression()).fit(dicts, y)

    ours = ZonePairDurationRegressor(smoothing=0.0, robust=False).fit(frame, y)
    # Same model; sklearn solves the sparse system iteratively (lsqr), we solve it exactly (and clip to the
    # 1–60 minutes trained on), so ours fits at least as well and the two agree to well under a second.
    expected = np.clip(reference.predict(dicts), 1, 60)
    np.testing.assert_allclose(ours.predict(frame), expected, atol=0.01)
    assert np.sum((y - ours.predict(frame)) ** 2) <= np.sum((y - expected) ** 2) + 1e-6


def test_model_accepts_arrays_and_frames_and_rejects_unknown_zones():
    cleaned = clean_trips(generate_month(2024, 1, 5_000), 2024, 1).table
    model = train_duration_model([cleaned]).model
    frame = pd.DataFrame({"PULocationID": [132, 7], "DOLocationID": [236, 7], "trip_distance": [10.0, 0.5]})
    np.testing.assert_allclose(model.predict(frame), model.predict(frame.to_numpy()))
    with pytest.raises(ValueError, match="PULocationID must be a TLC zone id"):
        model.predict(pd.DataFrame({"PULocationID": [999], "DOLocationID": [1], "trip_distance": [1.0]}))


def test_scoring_output_matches_the_published_schema():
    cleaned = clean_trips(generate_month(2024, 1, 5_000), 2024, 1).table
    scored = score_trips(cleaned, train_duration_model([cleaned]).model, "7")
    assert scored.schema == PREDICTION_SCHEMA
    assert scored.num_rows == cleaned.num_rows
    assert set(scored["model_version"].to_pylist()) == {"7"}


def test_distance_counts_add_up_over_batches_and_survive_storage():
    cleaned = clean_trips(generate_month(2024, 1, 20_000), 2024, 1).table
    whole = ZonePairStatistics.from_table(cleaned)
    by_batches = ZonePairStatistics.from_batches(cleaned.to_batches(max_chunksize=3_000))
    np.testing.assert_array_equal(by_batches.distance_counts, whole.distance_counts)
    np.testing.assert_array_equal(whole.distance_counts, distance_bin_counts(cleaned["trip_distance"].to_numpy()))
    assert len(whole.distance_counts) == DISTANCE_BIN_COUNT and whole.distance_counts.sum() == cleaned.num_rows
    # Months add up like batches: a window's histogram is the sum of its months'.
    np.testing.assert_array_equal((whole + whole).distance_counts, 2 * whole.distance_counts)

    # Stored with the table (one row per zone pair still), through Parquet and back.
    table = whole.to_table()
    assert table.num_rows == int((whole.count > 0).sum())
    stored = ZonePairStatistics.from_stored(pq.read_table(parquet_bytes(table)))
    np.testing.assert_array_equal(stored.distance_counts, whole.distance_counts)
    assert stored.to_table().equals(table, check_metadata=True)

    # A table written before the counts were recorded still loads: its histogram is unknown, and so is any
    # window's it is part of.
    older = ZonePairStatistics.from_stored(pq.read_table(parquet_bytes(table.replace_schema_metadata(None))))
    assert older.distance_counts is None and older.to_table().equals(table)
    assert (stored + older).distance_counts is None and (stored + older).rides == 2 * whole.rides


def test_mlflow_run_metrics_are_what_was_measured():
    """A model fitted from statistics has no hold-out and no training RMSE: its run logs neither (no NaN); a model
    trained with a hold-out logs both."""
    from deploy_assets.core.model import TrainedModel
    from deploy_assets.core.registry import run_metrics

    from_statistics = TrainedModel(
        model=None, holdout=None, train_rows=10, holdout_rows=0, holdout_rmse=float("nan"), train_rmse=float("nan")
    )
    assert run_metrics(from_statistics, {"test_rmse": 3.5, "test_rows": 4}) == {
        "train_rows": 10.0, "test_rmse": 3.5, "test_rows": 4.0,
    }
    with_holdout = TrainedModel(model=None, holdout=None, train_rows=8, holdout_rows=2, holdout_rmse=3.0, train_rmse=2.5)
    assert run_metrics(with_holdout) == {"train_rows": 8.0, "train_rmse": 2.5, "holdout_rows": 2.0, "holdout_rmse": 3.0}


def test_output_policy_clips_drops_or_fails_predictions_outside_the_declared_range():
    from deploy_assets.core.contract import OutputPolicy, PredictionsOutOfRange

    predicted = np.array([-16.2, 12.0, 303.0, np.nan])
    values, adjusted = OutputPolicy().apply(predicted)
    np.testing.assert_array_equal(values, [0.0, 12.0, 180.0, np.nan])  # a NaN is left for the audit to refuse
    assert adjusted.tolist() == [True, False, True, False]
    values, adjusted = OutputPolicy(action="drop").apply(predicted)
    np.testing.assert_array_equal(values, predicted)
    assert adjusted.tolist() == [True, False, True, False]
    with pytest.raises(PredictionsOutOfRange, match=r"2 of 4 predictions outside 0–180 min \(output policy 'fail'\)"):
        OutputPolicy(action="fail").apply(predicted)
    with pytest.raises(ValueError, match="output policy action 'round'"):
        OutputPolicy(action="round")

    # Batch scoring applies it: clipped rows are flagged, dropped rides have no row.
    cleaned = clean_trips(generate_month(2024, 1, 5_000), 2024, 1).table
    model = train_duration_model([cleaned]).model
    top = float(np.median(model.predict_arrays(*(cleaned[c].to_numpy() for c in ("PULocationID", "DOLocationID", "trip_distance")))))
    clipped = score_trips(cleaned, model, "7", OutputPolicy(max_minutes=top))
    flags = clipped["prediction_adjusted"].to_numpy(zero_copy_only=False)
    assert clipped.num_rows == cleaned.num_rows and 0.4 < flags.mean() < 0.6
    assert clipped["predicted_duration"].to_numpy().max() == top
    dropped = score_trips(cleaned, model, "7", OutputPolicy(max_minutes=top, action="drop"))
    assert dropped.num_rows == cleaned.num_rows - flags.sum() and not any(dropped["prediction_adjusted"].to_pylist())


def test_promotion_rule_keeps_the_champion_from_a_worse_or_baseline_level_candidate(next_clean_month):
    from deploy_assets.core.promotion import PromotionMargins, decide_promotion

    # The first model of a deployment gets the absolute test: it must beat the mean baseline by the margin.
    first = decide_promotion("1", 4.9, 5.0, None, None, "2024-02-01")
    assert not first.promote and first.reason == (
        "not promoted: RMSE 4.900 on 2024-02-01 does not beat the mean baseline's 5.000 by 5%"
    )
    assert decide_promotion("1", 3.5, 5.0, None, None, "2024-02-01").reason == (
        "promoted 1 (was None): RMSE 3.500 on 2024-02-01 vs the mean baseline's 5.000"
    )
    assert not decide_promotion("1", float("nan"), 5.0, None, None, "2024-02-01").promote
    # Against a champion: on the same rides, within the margin.
    worse = decide_promotion("3", 3.8, 8.0, "2", 3.5, "2024-03-01", "2024-02-01")
    assert not worse.promote
    assert worse.reason == "kept 2: RMSE 3.800 vs 3.500 on 2024-03-01 (the same rides; margin 5%)"
    assert "≤ 0.95 × mean baseline's and ≤ 1.05 × champion's on the same rides" in worse.rule
    assert decide_promotion("3", 3.6, 8.0, "2", 3.5, "2024-03-01", "2024-02-01").promote
    assert decide_promotion("3", 3.8, 8.0, "2", 3.5, "2024-03-01", margins=PromotionMargins(over_champion=0.1)).promote
    older = decide_promotion("3", 1.0, 8.0, "4", 3.5, "2024-03-01", "2024-04-01")
    assert not older.promote and older.reason == "kept 4: it is of a later month (2024-04-01)"
    assert decide_promotion("4", 1.0, 8.0, "4", 1.0, "2024-04-01").reason == "already champion"

    # A model trained on a month with odometer errors, with the ride rules' bounds and the robust fit off, is
    # kept out in favour of the model of the clean month, judged on the same rides.
    january = generate_month(2024, 1, 200_000)
    no_bounds = RideRules(max_distance_miles=float("inf"), max_speed_mph=float("inf"))
    corrupted = clean_trips(odometer_errors(january, 0.0005, (60.0, 300_000.0)), 2024, 1, no_bounds).table
    candidate = train_duration_model([corrupted], 0.0, robust=False).model
    champion = train_duration_model([clean_trips(january, 2024, 1).table], 0.0).model
    baseline = float(np.std(next_clean_month["duration"].to_numpy()))
    decision = decide_promotion(
        "2", evaluate(candidate, next_clean_month), baseline, "1", evaluate(champion, next_clean_month), "2024-02-01"
    )
    assert not decision.promote and decision.reason.startswith("kept 1: RMSE ")


def test_the_month_steps_import_no_dagster():
    """bench/ and any other caller run a month's steps without Dagster: the package must not pull it in."""
    code = (
        "import pkgutil, sys\n"
        "import deploy_assets.steps as steps\n"
        "for module in pkgutil.iter_modules(steps.__path__):\n"
        "    __import__(f'deploy_assets.steps.{module.name}')\n"
        "print(sorted({name.split('.')[0] for name in sys.modules if name.startswith('dagster')}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"
