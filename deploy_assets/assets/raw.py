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

from deploy_assets.assets.checks import blocking_failure, check_specs, month_check_evaluations, raw_month_problems
from deploy_assets.assets.errors import RETRY_POLICY, failures_named, partition_failure
from deploy_assets.assets.history import latest_metadata
from deploy_assets.assets.landing import landing_file
from deploy_assets.automation import converge
from deploy_assets.core.features import CLEAN_SCHEMA
from deploy_assets.partitions import monthly_partitions, previous_month, year_month
from deploy_assets.resources.quality import QualityThresholds
from deploy_assets.resources.storage import (
    LandingZone,
    PartitionedParquetIOManager,
    parquet_writer_atomic,
    write_parquet_atomic,
)

RAW_CHECKS = {
    "raw_trips_schema": (True, "the stored month has exactly the cleaned columns and types scoring expects"),
    "raw_trips_dirty_share": (True, "the share of null, negative or absurd rows is under the limit"),
    "raw_trips_volume": (False, "kept rows within ±tolerance of the previous month (a warning)"),
}


class MonthRefused(Exception):
    """Raised inside the month's writer: the month is not stored (the writer discards what it wrote)."""


def ingest_month(
    landing: LandingZone,
    warehouse: PartitionedParquetIOManager,
    thresholds: QualityThresholds,
    key: str,
    previous_rows: int | None,
    problems: dict,
    numbers: dict,
) -> dict[str, dict] | None:
    """Stream the month's file by record batches into raw_trips[M] (memory: one batch, whatever the month's size)
    and store its training statistics as trip_statistics[M]. The checks are computed from what was counted on
    the way; a month that fails a blocking check, or keeps no row, is not stored at all (None). Returns the
    metadata of the month's two materializations; `previous_rows` is the month before's kept rows (volume check)."""
    year, month = year_month(key)
    with failures_named("raw_trips", key):
        try:
            with parquet_writer_atomic(warehouse.partition_path("raw_trips", key), CLEAN_SCHEMA) as writer:
                ingested = landing.ingest_month(year, month, writer)
                dropped = {f"dropped_{reason}": count for reason, count in ingested.dropped.items()}
                if ingested.rows_kept == 0:
                    cause = f"all {ingested.rows_read} rows were filtered out ({dropped})"
                    if ingested.dropped.get("pickup_outside_month") == ingested.rows_read:
                        cause += f"; its pickups are in {ingested.other_month}: a misnamed or duplicated upload?"
                    raise partition_failure("raw_trips", key, cause, **dropped)
                raw_month_problems(key, ingested, previous_rows, thresholds, problems, numbers)
                if any(key in problems.get(name, {}) for name, (blocking, _) in RAW_CHECKS.items() if blocking):
                    raise MonthRefused
        except MonthRefused:
            return None
        statistics = ingested.statistics.to_table()
        write_parquet_atomic(warehouse.partition_path("trip_statistics", key), statistics)
    return {
        "raw_trips": {
            "dagster/row_count": ingested.rows_kept,
            "rows_read": ingested.rows_read,
            "rows_kept": ingested.rows_kept,
            "rows_dropped": ingested.rows_dropped,
            **dropped,
            "source": str(landing.month_path(year, month)),
        },
        "trip_statistics": {"rides": ingested.statistics.rides, "zone_pairs": statistics.num_rows},
    }


@dg.multi_asset(
    outs={
        "raw_trips": dg.AssetOut(
            description="The month's TLC file, schema-checked, its valid rides kept (core.features.RideRules), as Parquet.",
            io_manager_key="parquet_io_manager",
            is_required=False,
            automation_condition=converge(),
            kinds={"parquet"},
            code_version="3",
        ),
        "trip_statistics": dg.AssetOut(
            description="The month as training data for the models of the months after it (Parquet).",
            io_manager_key="parquet_io_manager",
            is_required=False,
            automation_condition=converge(),
            kinds={"parquet"},
            code_version="3",
        ),
    },
    deps=[landing_file],
    group_name="taxi_trips",
    check_specs=check_specs("raw_trips", RAW_CHECKS),
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=RETRY_POLICY,
    # Selectable on their own (the UI does not force trip_statistics into a selection of raw_trips, which would
    # bring the month-crossing edge into a backfill's partition mapping); the step writes both either way.
    can_subset=True,
)
def ingest(
    context: dg.AssetExecutionContext,
    landing: LandingZone,
    parquet_io_manager: dg.ResourceParam[PartitionedParquetIOManager],
    thresholds: QualityThresholds,
):
    """Read, validate and clean each month of the run by record batches; a month that fails a blocking check
    (too dirty, wrong schema) is not stored and fails the run naming the partition and the check."""
    problems, numbers, stored = {}, {}, {}
    for key in context.partition_keys:
        # The month before, as stored by this run (a range) or an earlier one.
        previous = stored.get(previous_month(key)) or {
            "raw_trips": latest_metadata(context.instance, dg.AssetKey("raw_trips"), previous_month(key))
        }
        previous_rows = previous["raw_trips"].get("rows_kept")
        metadata = ingest_month(landing, parquet_io_manager, thresholds, key, previous_rows, problems, numbers)
        if metadata is not None:
            stored[key] = metadata
    evaluations = list(month_check_evaluations(context, "raw_trips", RAW_CHECKS, problems, numbers))
    failed = blocking_failure(RAW_CHECKS, problems)
    if failed:
        # A bad month loses nothing for the others: the months stored are recorded as materialized, so automation
        # carries on with them while this run fails naming the refused month.
        for key, metadata in stored.items():
            for asset, values in metadata.items():
                context.log_event(dg.AssetMaterialization(asset_key=asset, partition=key, metadata=values))
        yield from evaluations
        check, month, problem = failed
        raise partition_failure("raw_trips", month, f"check {check} failed, nothing stored: {problem}")
    selected = {key.to_user_string() for key in context.selected_asset_keys}
    for key, metadata in stored.items():
        for asset, values in metadata.items():
            if asset in selected:
                context.add_asset_metadata(values, asset_key=asset, partition_key=key)
    if "raw_trips" in selected:
        yield dg.MaterializeResult(asset_key="raw_trips")
    if "trip_statistics" in selected:
        yield dg.MaterializeResult(asset_key="trip_statistics")
    yield from evaluations
    for key, metadata in stored.items():
        for asset, values in metadata.items():
            if asset not in selected:  # written all the same (it is the same pass over the file): recorded as such
                context.log_event(dg.AssetMaterialization(asset_key=asset, partition=key, metadata=values))
