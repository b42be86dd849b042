"""The bad-input catalogue: every way a month's input can be wrong, fed through the REAL
assets and their asset checks in process (the `project` fixture: isolated landing folder, warehouse, predictions
store, MLflow store, DuckDB file and Dagster instance).

For every case:
- the run fails (or a blocking asset check fails with ERROR severity) with a message that names the asset and
  partition (`yellow/raw_trips[2024-03-01] failed: ...`) and the cause, at once (bad input is never retried);
- a month never published gets no predictions object, no file in its folder and no SQL rows;
- a month published earlier by a good run keeps its predictions object byte for byte, its folder listing and its
  SQL rows (and, when the input itself is rejected, its stored raw_trips object);
and for a representative subset, a re-run after fixing the input gives exactly what the clean first run gave.

The user-facing messages are collected in CATALOGUE below (the table in README's "Bad input" section).
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from deploy_assets.assets.landing import LANDING_FILE
from deploy_assets.core.generate import generate_month
from deploy_assets.core.schema import tlc_file_name
from deploy_assets.partitions import previous_month, year_month
from deploy_assets_tests.conftest import starting_state
from deploy_assets_tests.faults_util import (
    ALL_ASSETS,
    check_evaluations,
    events_of_type,
    failure_message,
    materialized,
    model_config,
    MonthSnapshot,
    run_month,
    snapshot,
    step_of,
    steps_with,
)
from deploy_assets_tests.instance_records import materialized_partitions

pytestmark = pytest.mark.timeout(300)

ROWS = 5_000
TRAINING, PUBLISHED, FRESH = "2024-01-01", "2024-02-01", "2024-03-01"
SEEDS = {TRAINING: 0, PUBLISHED: 1, FRESH: 2}
SCORING_WITHOUT_MODEL = ["raw_trips", "trip_predictions", "prediction_table"]


# --- inputs ----------------------------------------------------------------------------------------------------------


def good_table(partition_key: str) -> pa.Table:
    return generate_month(*year_month(partition_key), ROWS, seed=SEEDS[partition_key])


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def landed_path(project, partition_key: str) -> Path:
    return Path(project.landing.uri) / tlc_file_name(*year_month(partition_key))


def land_bytes(project, partition_key: str, data: bytes) -> None:
    path = landed_path(project, partition_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def land_good(project, partition_key: str) -> None:
    project.land(partition_key, table=good_table(partition_key))


def with_column(table: pa.Table, name: str, values) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def clean_table(partition_key: str) -> pa.Table:
    """The month with no dirty row at all: no generated dirt, and the few naturally long rides cut to 59 minutes."""
    table = generate_month(*year_month(partition_key), ROWS, seed=SEEDS[partition_key], dirty_fraction=0.0)
    pickup = table["tpep_pickup_datetime"].to_numpy()
    duration = table["tpep_dropoff_datetime"].to_numpy() - pickup
    duration = np.clip(duration, np.timedelta64(2, "m"), np.timedelta64(59, "m"))
    return with_column(table, "tpep_dropoff_datetime", pa.array(pickup + duration))


def every_row(transform: Callable[[pa.Table], pa.Table]) -> Callable:
    """A case input: the month without any dirty row, transformed (so each row is wrong only as the case says)."""

    def apply(project, partition_key: str) -> None:
        project.land(partition_key, table=transform(clean_table(partition_key)))

    return apply


def dropoff_before_pickup(table: pa.Table) -> pa.Table:
    pickup = table["tpep_pickup_datetime"].to_numpy()
    return with_column(table, "tpep_dropoff_datetime", pa.array(pickup - np.timedelta64(5, "m")))


def negative_distances(table: pa.Table) -> pa.Table:
    return with_column(table, "trip_distance", pa.array(-np.abs(table["trip_distance"].to_numpy()) - 0.1))


def odometer_errors(table: pa.Table) -> pa.Table:
    return with_column(table, "trip_distance", pa.array(1_000.0 + np.abs(table["trip_distance"].to_numpy()) * 1e4))


def zones_out_of_range(table: pa.Table) -> pa.Table:
    n = table.num_rows
    outside = np.where(np.arange(n) % 2 == 0, 0, 266 + np.arange(n) % 500).astype(np.int32)
    return with_column(table, "PULocationID", pa.array(outside))


def null_required_values(table: pa.Table) -> pa.Table:
    return with_column(table, "DOLocationID", pa.nulls(table.num_rows, pa.int32()))


def every_row_dirty_somehow(table: pa.Table) -> pa.Table:
    """Each row broken in one of four ways: no reason alone explains the month, none survives."""
    n = table.num_rows
    kind = np.arange(n) % 4
    pickup = table["tpep_pickup_datetime"].to_numpy()
    dropoff = table["tpep_dropoff_datetime"].to_numpy()
    dropoff = np.where(kind == 0, pickup - np.timedelta64(1, "m"), dropoff)  # negative duration
    dropoff = np.where(kind == 1, pickup + np.timedelta64(3, "h"), dropoff)  # 3-hour ride
    distance = np.where(kind == 2, -1.0, table["trip_distance"].to_numpy())
    zones = np.where(kind == 3, 999, table["PULocationID"].to_numpy()).astype(np.int32)
    table = with_column(table, "tpep_dropoff_datetime", pa.array(dropoff))
    table = with_column(table, "trip_distance", pa.array(distance))
    return with_column(table, "PULocationID", pa.array(zones))


def zone_ids_as_strings(table: pa.Table) -> pa.Table:
    for name in ("PULocationID", "DOLocationID"):
        table = with_column(table, name, pc.cast(table[name], pa.string()))
    return table


def timestamps_as_strings(table: pa.Table) -> pa.Table:
    for name in ("tpep_pickup_datetime", "tpep_dropoff_datetime"):
        table = with_column(table, name, pc.strftime(table[name], "%Y-%m-%d %H:%M:%S"))
    return table


def green_taxi_columns(table: pa.Table) -> pa.Table:
    return table.rename_columns([name.replace("tpep_", "lpep_") for name in table.column_names])


def missing_file(project, partition_key: str) -> None:
    landed_path(project, partition_key).unlink(missing_ok=True)


def zero_byte_file(project, partition_key: str) -> None:
    land_bytes(project, partition_key, b"")


def csv_bytes(project, partition_key: str) -> None:
    sink = io.BytesIO()
    pacsv.write_csv(good_table(partition_key), sink)
    land_bytes(project, partition_key, sink.getvalue())


def truncated_parquet(project, partition_key: str) -> None:
    data = parquet_bytes(good_table(partition_key))
    land_bytes(project, partition_key, data[: len(data) * 6 // 10])  # an interrupted upload


def corrupted_column_chunk(project, partition_key: str) -> None:
    """Bit rot in the middle of the pickup-time column: the footer is intact, the data pages are not."""
    table = good_table(partition_key)
    data = bytearray(parquet_bytes(table))
    column = pq.ParquetFile(io.BytesIO(bytes(data))).metadata.row_group(0).column(
        table.schema.get_field_index("tpep_pickup_datetime")
    )
    start = column.data_page_offset + column.total_compressed_size // 2
    data[start : start + 64] = bytes(b ^ 0xFF for b in data[start : start + 64])
    land_bytes(project, partition_key, bytes(data))


def empty_table(project, partition_key: str) -> None:
    project.land(partition_key, table=good_table(partition_key).slice(0, 0))


def another_months_trips(project, partition_key: str) -> None:
    """The month's file holds the previous month's trips (a misnamed upload)."""
    before = previous_month(partition_key)
    project.land(partition_key, table=generate_month(*year_month(before), ROWS, seed=9))


def duplicated_upload(project, partition_key: str) -> None:
    """The exact bytes already landed for the previous month, uploaded again under this month's name."""
    land_bytes(project, partition_key, landed_path(project, previous_month(partition_key)).read_bytes())


def dirty_share_above_limit(project, partition_key: str) -> None:
    year, month = year_month(partition_key)
    project.land(partition_key, table=generate_month(year, month, ROWS, seed=SEEDS[partition_key], dirty_fraction=0.35))


def delete_version(project, version: str) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=project.registry.tracking_uri, registry_uri=project.registry.tracking_uri)
    try:
        client.delete_model_version(project.registry.model_name, version)
    except MlflowException:
        pass  # already deleted


def model_999(project, partition_key: str) -> dict:
    land_good(project, partition_key)
    return model_config("999")


def deleted_version(project, partition_key: str) -> dict:
    """Version 1 (the model that scored the published month) deleted in the registry, then asked for by number,
    as a promotion request or a re-score queued before the deletion would."""
    land_good(project, partition_key)
    delete_version(project, "1")
    return model_config("1")


def month_model_deleted(project, partition_key: str) -> None:
    """The month's own model (policy `partition`, the default) no longer exists: never trained, or deleted."""
    from mlflow import MlflowClient

    land_good(project, partition_key)
    client = MlflowClient(tracking_uri=project.registry.tracking_uri, registry_uri=project.registry.tracking_uri)
    for version in client.search_model_versions(
        f"name = '{project.registry.model_name}' and tags.partition = '{partition_key}'"
    ):
        delete_version(project, str(version.version))


def unknown_policy(project, partition_key: str) -> dict:
    land_good(project, partition_key)
    return model_config("latest")


# Directories made unwritable by a case; the autouse fixture below makes them writable again.
_LOCKED: list[Path] = []


def lock_directory(path: Path) -> None:
    """Make `path` unwritable for this process, also as root (root ignores mode bits, not the immutable flag)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        path.chmod(0o555)
        _LOCKED.append(path)
        return
    chattr = shutil.which("chattr")
    result = subprocess.run([chattr or "chattr", "+i", str(path)], capture_output=True, text=True) if chattr else None
    if result is None or result.returncode != 0:
        why = result.stderr.strip() if result else "no chattr"
        pytest.skip(f"running as root without a usable `chattr +i` ({why})")
    _LOCKED.append(path)


def unlock_directories() -> None:
    while _LOCKED:
        path = _LOCKED.pop()
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        else:
            path.chmod(0o755)


@pytest.fixture(autouse=True)
def _unlock_after_test():
    yield
    unlock_directories()


def predictions_not_writable(project, partition_key: str) -> None:
    land_good(project, partition_key)
    year, month = year_month(partition_key)
    year_folder = Path(project.predictions.uri) / f"year={year:04d}"
    lock_directory(year_folder)  # a new month folder cannot be created
    if (year_folder / f"month={month:02d}").exists():
        lock_directory(year_folder / f"month={month:02d}")  # no temporary object can be created beside the old one


# --- the catalogue ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadInput:
    id: str
    input: str  # what is wrong, for the README table
    apply: Callable  # (project, partition_key) -> run config or None
    node: str  # the step that fails
    # Regexes the message must match, formatted with `fields()`: {key} {mm} {source} {previous} {tracking_uri}
    # {model} {predictions}.
    cause: tuple[str, ...]
    selection: tuple[str, ...] = tuple(ALL_ASSETS)
    # The input is rejected before anything is stored: the stored raw_trips object is untouched too.
    rejects_raw: bool = True
    fix: Callable | None = None  # (project, partition_key) -> None; default: land the good month
    check: str | None = None  # a blocking asset check that fails instead of a step


def raw(id: str, input: str, apply: Callable, *cause: str) -> BadInput:
    return BadInput(id, input, apply, "raw_trips", cause)


def scoring(id: str, input: str, apply: Callable, *cause: str, **options) -> BadInput:
    return BadInput(id, input, apply, "trip_predictions", cause, rejects_raw=False, **options)


SOURCE = r"{source}: "
UNREADABLE = SOURCE + r"not a readable Parquet file \("
NO_PARQUET_FOOTER = UNREADABLE + "Parquet magic bytes not found in footer"


def filtered(reason: str, rows: str = str(ROWS)) -> str:
    """`all N rows were filtered out ({... 'dropped_<reason>': N ...})` (braces doubled for the second format)."""
    return rf"all {rows} rows were filtered out \(\{{{{.*'dropped_{reason}': {rows}(?!\d)"


MISNAMED = r"; its pickups are in {previous}: a misnamed or duplicated upload\?$"
NOT_FOUND = (
    r"RegistryLookupError: MLflow at {tracking_uri}: could not load models:/{model}/%s:"
    r" Model Version \(name={model}, version=%s\) not found$"
)

CATALOGUE = [
    raw("missing-file", "no file for the month", missing_file, SOURCE + "no such file in the landing zone$"),
    raw("zero-byte-file", "zero-byte file", zero_byte_file, UNREADABLE + r"Parquet file size is 0 bytes\)$"),
    raw("csv-bytes", "CSV bytes under the .parquet name", csv_bytes, NO_PARQUET_FOOTER),
    raw("truncated-parquet", "truncated Parquet (interrupted upload)", truncated_parquet, NO_PARQUET_FOOTER),
    raw(
        "corrupted-column-chunk", "Parquet with a corrupted data page (bit rot)", corrupted_column_chunk,
        UNREADABLE + r"Corrupt snappy compressed data\.\)$",
    ),
    raw("empty-table", "valid schema, 0 rows", empty_table, SOURCE + r"the file holds no trips \(0 rows\)$"),
    raw(
        "missing-column", "a required column missing (trip_distance)",
        every_row(lambda table: table.drop_columns(["trip_distance"])), SOURCE + "missing column 'trip_distance'$",
    ),
    raw(
        "green-taxi-file", "a green-taxi file (lpep_* columns) under the yellow name", every_row(green_taxi_columns),
        SOURCE + "missing column 'tpep_pickup_datetime'; missing column 'tpep_dropoff_datetime'$",
    ),
    raw(
        "zone-ids-as-strings", "zone IDs stored as strings", every_row(zone_ids_as_strings),
        SOURCE + "column 'PULocationID' has type string, expected integer;"
        " column 'DOLocationID' has type string, expected integer$",
    ),
    raw(
        "timestamps-as-strings", "timestamps stored as strings", every_row(timestamps_as_strings),
        SOURCE + "column 'tpep_pickup_datetime' has type string, expected timestamp;"
        " column 'tpep_dropoff_datetime' has type string, expected timestamp$",
    ),
    raw(
        "all-rows-filtered", "every row dirty, for mixed reasons", every_row(every_row_dirty_somehow),
        r"all 5000 rows were filtered out \(\{{'dropped_null_required_value': 0, 'dropped_pickup_outside_month': 0,"
        r" 'dropped_duration_below_1_min': 1250, 'dropped_duration_above_60_min': 1250,"
        r" 'dropped_zone_id_out_of_range': 1250, 'dropped_negative_or_nan_distance': 1250,"
        r" 'dropped_distance_above_100_mi': 0, 'dropped_speed_above_80_mph': 0\}}\)$",
    ),
    raw(
        "null-required-values", "a required column entirely null", every_row(null_required_values),
        filtered("null_required_value"),
    ),
    raw(
        "dropoff-before-pickup", "dropoff before pickup in every row", every_row(dropoff_before_pickup),
        filtered("duration_below_1_min"),
    ),
    raw(
        "negative-distances", "negative distance in every row", every_row(negative_distances),
        filtered("negative_or_nan_distance"),
    ),
    raw(
        "odometer-errors", "trip distances of thousands of miles in every row", every_row(odometer_errors),
        filtered("distance_above_100_mi"),
    ),
    raw(
        "zone-ids-out-of-range", "zone IDs outside 1-265 in every row", every_row(zones_out_of_range),
        filtered("zone_id_out_of_range"),
    ),
    raw(
        "another-months-trips", "the file holds the previous month's trips (misnamed upload)", another_months_trips,
        filtered("pickup_outside_month"), MISNAMED,
    ),
    raw(
        "duplicated-upload", "the previous month's file uploaded again under this month's name", duplicated_upload,
        filtered("pickup_outside_month", rows=r"\d+"), MISNAMED,
    ),
    raw(
        "dirty-share-above-limit", "35% dirty rows (limit 20%)", dirty_share_above_limit,
        r"check raw_trips_dirty_share failed, nothing stored: 3\d% of rows dropped \(limit 20%\):"
        r" \{{'pickup_outside_month': \d+, 'duration_below_1_min': \d+",
    ),
    scoring("model-version-999", "run config model: '999' (no such version)", model_999, NOT_FOUND % (999, 999)),
    scoring(
        "model-version-deleted", "run config model: '1' after version 1 was deleted", deleted_version,
        NOT_FOUND % (1, 1),
    ),
    scoring(
        "no-model-for-month", "default policy, the month's model never trained or deleted", month_model_deleted,
        "no registered model for this month: materialize duration_model first$",
        selection=tuple(SCORING_WITHOUT_MODEL),
    ),
    scoring("unknown-model-policy", "run config model: 'latest'", unknown_policy, "unknown model policy 'latest'$"),
    scoring(
        "predictions-not-writable", "predictions location not writable", predictions_not_writable,
        # A new month's folder cannot be created; a published month's object cannot be replaced (the staged
        # object is renamed onto it, which the locked folder refuses).
        r"PermissionError: \[Errno (1|13)\] (Operation not permitted|Permission denied):"
        r" '{predictions}/(_staging/year=2024/month={mm}/predictions.parquet' -> '{predictions}/)?year=2024/month={mm}",
        fix=lambda project, key: unlock_directories(),
    ),
]
CASES = {case.id: case for case in CATALOGUE}
# The re-run-after-fix subset: one of each kind of failure (input missing, unreadable, misnamed, too dirty,
# wrong model reference, unwritable output).
RERUN_AFTER_FIX = [
    "missing-file", "truncated-parquet", "another-months-trips", "dirty-share-above-limit", "model-version-999",
    "predictions-not-writable",
]


def fields(project, case: BadInput, partition_key: str) -> dict[str, str]:
    return {
        "key": partition_key,
        "mm": partition_key[5:7],
        "source": re.escape(str(landed_path(project, partition_key))),
        "previous": previous_month(partition_key)[:7],
        "tracking_uri": re.escape(project.registry.tracking_uri),
        "model": re.escape(project.registry.model_name),
        "predictions": re.escape(project.predictions.uri),
    }


# --- fixtures and assertions -----------------------------------------------------------------------------------------


def publish(project) -> MonthSnapshot:
    """January ingested, February published by a clean first run (with checks); returns February's snapshot."""
    land_good(project, TRAINING)
    land_good(project, PUBLISHED)
    assert run_month(project, ["raw_trips"], TRAINING).success
    first = run_month(project, ALL_ASSETS, PUBLISHED)
    assert first.success
    assert all(evaluation.passed for evaluation in check_evaluations(first).values())
    before = snapshot(project, PUBLISHED)
    assert before.predictions is not None and len(before.table_rows) > 0 and before.files == ("predictions.parquet",)
    return before


published_state, project, published = starting_state("published", publish)


def run_case(project, case: BadInput, partition_key: str) -> dg.ExecuteInProcessResult:
    run_config = case.apply(project, partition_key)
    return run_month(project, list(case.selection), partition_key, run_config)


def assert_fails_as_described(project, case: BadInput, partition_key: str, result) -> str:
    """The run failed where and why the case says, at once, and published nothing; returns the message."""
    assert not result.success
    values = fields(project, case, partition_key)
    if case.check:
        evaluation = check_evaluations(result)[case.check]
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
        message = evaluation.description
        assert "blocking asset check failed with ERROR severity" in failure_message(result, case.node)
    else:
        full = failure_message(result, case.node)  # the step of the asset (raw_trips: ingest)
        label = project.deployment.label(case.node)  # yellow/raw_trips
        prefix = f"dagster._core.definitions.events.Failure: {label}[{partition_key}] failed: "
        assert full.startswith(prefix), full
        message = full.strip()
    for pattern in case.cause:
        assert re.search(pattern.format(**values), message), f"{pattern.format(**values)!r} not in {message!r}"
    # Bad input and wrong references are not retried: retrying cannot fix them.
    assert not events_of_type(result, "STEP_UP_FOR_RETRY")
    # Nothing downstream of the failure ran and nothing was published: no predictions, no rows, and no
    # completeness check reported (it is computed in trip_predictions' step, on what would be published).
    assert not {"yellow/trip_predictions", "yellow/prediction_table"} & materialized(result)
    assert step_of("prediction_table") not in steps_with(result, "STEP_START")
    assert "trip_predictions_complete" not in check_evaluations(result)
    if case.node == "raw_trips":  # rejected input: neither output of the ingest step is stored
        assert not {"yellow/raw_trips", "yellow/trip_statistics"} & materialized(result)
        assert step_of(case.node) in steps_with(result, "STEP_FAILURE")
    return message


# --- tests -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CATALOGUE, ids=lambda case: case.id)
def test_bad_input_fails_naming_the_partition_and_publishes_nothing(project, published, case):
    # A month never published: no object, no folder content, no rows.
    result = run_case(project, case, FRESH)
    assert_fails_as_described(project, case, FRESH, result)
    fresh = snapshot(project, FRESH)
    assert fresh.is_empty, fresh.files
    if case.rejects_raw:
        assert fresh.raw_trips is None

    # The published month: its object, folder and rows are exactly what the good run left.
    result = run_case(project, case, PUBLISHED)
    assert_fails_as_described(project, case, PUBLISHED, result)
    unlock_directories()  # read the folder listing as it is, whatever the case locked
    after = snapshot(project, PUBLISHED)
    assert after.predictions == published.predictions
    assert after.files == published.files
    assert after.table_rows == published.table_rows
    if case.rejects_raw:
        assert after.raw_trips == published.raw_trips


@pytest.mark.parametrize("case", [CASES[name] for name in RERUN_AFTER_FIX], ids=lambda case: case.id)
def test_rerun_after_fixing_the_input_matches_the_clean_first_run(project, published, case):
    [version] = versions_for(project, PUBLISHED)
    failed = run_case(project, case, PUBLISHED)
    assert_fails_as_described(project, case, PUBLISHED, failed)

    (case.fix or land_good)(project, PUBLISHED)
    fixed = run_month(project, ALL_ASSETS, PUBLISHED)

    assert fixed.success
    assert all(e.passed for e in check_evaluations(fixed).values() if e.severity == dg.AssetCheckSeverity.ERROR)
    after = snapshot(project, PUBLISHED)
    assert after.files == ("predictions.parquet",)
    assert after.raw_trips == published.raw_trips
    # The same training data (January) as the clean first run: its model was found, not registered again, and
    # the month is published exactly as the clean first run published it, byte for byte, rows included.
    assert versions_for(project, PUBLISHED) == [version]
    assert after.predictions == published.predictions
    assert after.table_rows == published.table_rows
    assert set(pq.read_table(io.BytesIO(after.predictions))["model_version"].to_pylist()) == {version}


def versions_for(project, partition_key: str) -> list[str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=project.registry.tracking_uri, registry_uri=project.registry.tracking_uri)
    found = client.search_model_versions(
        f"name = '{project.registry.model_name}' and tags.partition = '{partition_key}'"
    )
    return sorted(str(v.version) for v in found)


def test_each_copy_of_the_published_state_is_its_own(published_state, tmp_path):
    """What one test does to its copy of the published project (registry, files, instance) is not in the next copy."""
    with published_state.copy(tmp_path / "first") as first:
        delete_version(first, "1")
        first.predictions.month_path(*year_month(PUBLISHED)).unlink()
        assert not run_month(first, ["raw_trips"], FRESH).success  # one more run, in this copy's instance only
        assert len(first.instance.get_runs()) == 3
    with published_state.copy(tmp_path / "second") as second:
        assert versions_for(second, PUBLISHED) == ["1"]
        assert snapshot(second, PUBLISHED) == published_state.value
        assert len(second.instance.get_runs()) == 2
        assert materialized_partitions(second.instance, "trip_predictions") == [PUBLISHED]
        assert second.registry.tracking_uri != first.registry.tracking_uri


def test_a_few_dirty_rows_are_dropped_and_counted_not_fatal(project, published):
    """~3% dirty rows (as real TLC months have): dropped per reason, the month is scored, every check passes."""
    land_good(project, FRESH)
    result = run_month(project, ALL_ASSETS, FRESH)

    assert result.success
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == project.key("raw_trips")]
    raw = {k: v.value for k, v in event.materialization.metadata.items()}
    assert 0 < raw["rows_dropped"] / raw["rows_read"] < 0.05
    assert raw["rows_dropped"] == sum(v for k, v in raw.items() if k.startswith("dropped_"))
    for reason in ("pickup_outside_month", "duration_below_1_min", "duration_above_60_min", "negative_or_nan_distance"):
        assert raw[f"dropped_{reason}"] > 0
    evaluations = check_evaluations(result)
    assert {"raw_trips_dirty_share", "raw_trips_schema", "duration_model_quality", "trip_predictions_complete"} <= set(
        evaluations
    )
    assert all(evaluation.passed for evaluation in evaluations.values()), {
        name: e.description for name, e in evaluations.items() if not e.passed
    }
    assert project.predictions.read_month(2024, 3).num_rows == raw["dagster/row_count"]


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_files_naming_months_outside_the_partitions_are_skipped_with_a_logged_reason(project):
    folder = Path(project.landing.uri)
    folder.mkdir(parents=True)
    outside = ["2019-06-01", "2099-01-01"]  # before the first partition (2023-01); a month that has not ended
    for key in outside:
        year, month = year_month(key)
        pq.write_table(generate_month(year, month, 100), folder / tlc_file_name(year, month))
    land_good(project, FRESH)  # a valid month in the same tick is still reported

    context = dg.build_sensor_context(instance=project.instance)
    records = _Records()
    context.log.addHandler(records)
    landing_sensor = project.sensor("landing_sensor")
    result = landing_sensor(context)

    assert [(e.asset_key, e.partition) for e in result.asset_events] == [(project.key(LANDING_FILE), FRESH)]
    for key in outside:
        name = tlc_file_name(*year_month(key))
        line = f"skipping landing object {name!r}: month {key} is outside the partitions"
        assert records.messages.count(line) == 1, records.messages
    assert result.cursor  # the skipped files are in the cursor: they are not logged on every tick

    # The next tick logs nothing about them again.
    context = dg.build_sensor_context(instance=project.instance, cursor=result.cursor)
    records = _Records()
    context.log.addHandler(records)
    assert landing_sensor(context).asset_events == []
    assert not [m for m in records.messages if m.startswith("skipping")], records.messages

    # Materializing such a month by hand is refused before anything runs, naming the key.
    with pytest.raises(dg.DagsterUnknownPartitionError, match="Could not find a partition with key `2019-06-01`"):
        project.materialize(["raw_trips"], "2019-06-01")


def test_month_rejected_by_a_blocking_check_is_not_published_by_a_later_scoring_run(project, published):
    dirty_share_above_limit(project, PUBLISHED)
    rejected = run_month(project, ALL_ASSETS, PUBLISHED)
    assert "of rows dropped (limit 20%)" in failure_message(rejected, "raw_trips")

    # The month's stored raw_trips is still the good one (nothing was stored)...
    assert snapshot(project, PUBLISHED).raw_trips == published.raw_trips
    # ... so re-scoring it with the champion (what the champion policy does when @champion moves) publishes the
    # good rides again, never the rejected ones.
    assert run_month(project, ["model_promotion"], PUBLISHED).success
    champion = project.registry.champion_version()
    assert champion == project.registry.version_for_partition(PUBLISHED)
    assert run_month(project, ["trip_predictions", "prediction_table"], PUBLISHED, model_config("champion")).success

    after = snapshot(project, PUBLISHED)
    assert after.predictions == published.predictions
    assert after.table_rows == published.table_rows


def test_predictions_location_under_a_regular_file_fails_at_once(project, published):
    blocker = project.root / "not-a-folder"
    blocker.write_text("a file where the predictions folder should be")
    project.use(predictions_uri=str(blocker / "predictions"))

    result = run_month(project, ["trip_predictions", "prediction_table"], PUBLISHED)

    assert not result.success
    assert not events_of_type(result, "STEP_UP_FOR_RETRY")
    message = failure_message(result, "trip_predictions")
    expected = f"yellow/trip_predictions[{PUBLISHED}] failed: NotADirectoryError: [Errno 20] Not a directory: '{blocker}/"
    assert expected in message


def test_a_bad_month_in_a_ranged_run_fails_on_its_own_month_and_the_others_are_stored(project):
    """A backfill's single run over three months, the middle one too dirty: the run fails naming that month, the
    other two are stored and materialized, and each month's check results are recorded on that month."""
    land_good(project, TRAINING)
    dirty_share_above_limit(project, PUBLISHED)
    land_good(project, FRESH)
    defs = project.defs
    result = dg.materialize(
        [*defs.assets, *(defs.asset_checks or [])],
        selection=dg.AssetSelection.assets(project.key("raw_trips")).required_multi_asset_neighbors(),
        tags={"dagster/asset_partition_range_start": TRAINING, "dagster/asset_partition_range_end": FRESH},
        instance=project.instance,
        resources=project.resources,
        raise_on_error=False,
    )

    assert not result.success
    assert f"yellow/raw_trips[{PUBLISHED}] failed: check raw_trips_dirty_share failed, nothing stored" in failure_message(
        result, "raw_trips"
    )
    assert materialized_partitions(project.instance, "raw_trips") == [TRAINING, FRESH]
    assert materialized_partitions(project.instance, "trip_statistics") == [TRAINING, FRESH]
    assert not project.resources["parquet_io_manager"].partition_path("yellow/raw_trips", PUBLISHED).exists()
    dirty_share = {
        e.partition: e.passed for e in result.get_asset_check_evaluations() if e.check_name == "raw_trips_dirty_share"
    }
    assert dirty_share == {TRAINING: True, PUBLISHED: False, FRESH: True}
