"""raw_trips and trip_statistics: a month of TLC trips from the landing zone, validated, cleaned and stored.

One step writes both: `raw_trips[M]`, the cleaned month that is scored, and `trip_statistics[M]`, the month as
training data for the models of the months after it. Keeping the training data a node of its own is what lets
duration_model[M] read the months before M while every edge among raw_trips, duration_model, trip_predictions and
prediction_table stays month-to-same-month: a backfill of months A…B launched from the asset graph then targets
exactly A…B for each of them (Dagster derives the months of non-root assets through partition mappings).

The checks on the month (schema, dirty share, volume) are computed in this step from what it has in hand and
reported with it; a month that fails a blocking check is not stored.
"""

import dagster as dg
import pyarrow as pa

from deploy_assets.assets.checks import blocking_failure, check_specs, month_check_results, raw_month_problems
from deploy_assets.assets.errors import RETRY_POLICY, failures_named, partition_failure
from deploy_assets.assets.history import latest_metadata
from deploy_assets.assets.landing import landing_file
from deploy_assets.automation import converge
from deploy_assets.core.features import clean_trips
from deploy_assets.partitions import monthly_partitions, previous_month, year_month
from deploy_assets.resources.quality import QualityThresholds
from deploy_assets.resources.storage import LandingZone

TRAINING_COLUMNS = ["tpep_pickup_datetime", "PULocationID", "DOLocationID", "trip_distance", "duration"]
RAW_CHECKS = {
    "raw_trips_schema": (True, "the stored month has exactly the cleaned columns and types scoring expects"),
    "raw_trips_dirty_share": (True, "the share of null, negative or absurd rows is under the limit"),
    "raw_trips_volume": (False, "kept rows within ±tolerance of the previous month (a warning)"),
}


def ingest_month(context: dg.AssetExecutionContext, landing: LandingZone, key: str) -> tuple[pa.Table, dict]:
    """The cleaned month and the numbers its checks look at; fails at once for a month that cannot be used."""
    year, month = year_month(key)
    with failures_named("raw_trips", key):
        cleaned = clean_trips(landing.read_month(year, month), year, month)
    dropped = {f"dropped_{reason}": count for reason, count in cleaned.dropped.items()}
    if cleaned.rows_kept == 0:
        cause = f"all {cleaned.rows_read} rows were filtered out ({dropped})"
        if cleaned.dropped["pickup_outside_month"] == cleaned.rows_read:
            cause += f"; its pickups are in {cleaned.other_month}: a misnamed or duplicated upload?"
        raise partition_failure("raw_trips", key, cause, **dropped)
    previous_rows = latest_metadata(context.instance, dg.AssetKey("raw_trips"), previous_month(key)).get("rows_kept")
    numbers = {
        "rows_read": cleaned.rows_read,
        "rows_kept": cleaned.rows_kept,
        "rows_dropped": cleaned.rows_read - cleaned.rows_kept,
        "dropped_share": 1 - cleaned.rows_kept / cleaned.rows_read,
        "dropped": {reason: count for reason, count in cleaned.dropped.items() if count},
        "schema": cleaned.table.schema,
        "previous_rows_kept": previous_rows,
    }
    context.add_asset_metadata(
        {
            "dagster/row_count": cleaned.rows_kept,
            "rows_read": cleaned.rows_read,
            "rows_kept": cleaned.rows_kept,
            "rows_dropped": numbers["rows_dropped"],
            **dropped,
            "source": str(landing.month_path(year, month)),
        },
        asset_key=dg.AssetKey("raw_trips"),
        partition_key=key,
    )
    return cleaned.table, numbers


@dg.multi_asset(
    outs={
        "raw_trips": dg.AssetOut(
            description="The month's TLC file, schema-checked, with rides of 1–60 minutes kept (Parquet).",
            io_manager_key="parquet_io_manager",
            automation_condition=converge(),
            kinds={"parquet"},
            code_version="2",
        ),
        "trip_statistics": dg.AssetOut(
            description="The month as training data for the models of the months after it (Parquet).",
            io_manager_key="parquet_io_manager",
            automation_condition=converge(),
            kinds={"parquet"},
            code_version="2",
        ),
    },
    deps=[landing_file],
    group_name="taxi_trips",
    check_specs=check_specs("raw_trips", RAW_CHECKS),
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=RETRY_POLICY,
)
def ingest(context: dg.AssetExecutionContext, landing: LandingZone, thresholds: QualityThresholds):
    """Read, validate and clean each month of the run; store nothing unless every month passes its blocking
    checks (a month too dirty or with the wrong schema fails the run naming the partition and the check)."""
    cleaned, problems, numbers = {}, {}, {}
    for key in context.partition_keys:
        cleaned[key], seen = ingest_month(context, landing, key)
        raw_month_problems(key, seen, thresholds, problems, numbers)
    results = month_check_results("raw_trips", RAW_CHECKS, problems, numbers)
    failed = blocking_failure(RAW_CHECKS, problems)
    if failed:
        yield from results
        check, month, problem = failed
        raise partition_failure("raw_trips", month, f"check {check} failed: {problem}")
    yield dg.Output(cleaned, output_name="raw_trips")
    training = {key: table.select(TRAINING_COLUMNS) for key, table in cleaned.items()}
    yield dg.Output(training, output_name="trip_statistics")
    yield from results
