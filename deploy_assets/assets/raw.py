"""raw_trips: a month of TLC trips from the landing zone, validated and cleaned."""

import dagster as dg
import pyarrow as pa

from deploy_assets.assets.errors import RETRY_POLICY, failures_named, partition_failure
from deploy_assets.core.features import clean_trips
from deploy_assets.partitions import monthly_partitions, year_month
from deploy_assets.resources.quality import QualityThresholds
from deploy_assets.resources.storage import LandingZone


def ingest_month(
    context: dg.AssetExecutionContext, landing: LandingZone, thresholds: QualityThresholds, key: str
) -> pa.Table:
    year, month = year_month(key)
    with failures_named("raw_trips", key):
        cleaned = clean_trips(landing.read_month(year, month), year, month)
    dropped = {f"dropped_{reason}": count for reason, count in cleaned.dropped.items()}
    share = 1 - cleaned.rows_kept / cleaned.rows_read
    if cleaned.rows_kept == 0:
        cause = f"all {cleaned.rows_read} rows were filtered out ({dropped})"
        if cleaned.dropped["pickup_outside_month"] == cleaned.rows_read:
            cause += f"; its pickups are in {cleaned.other_month}: a misnamed or duplicated upload?"
        raise partition_failure("raw_trips", key, cause, **dropped)
    if share > thresholds.max_dropped_share:
        # Not stored at all: a month this dirty is a broken extract, and nothing downstream may use it.
        reasons = {reason: count for reason, count in cleaned.dropped.items() if count}
        cause = f"{share:.0%} of rows dropped (limit {thresholds.max_dropped_share:.0%}): {reasons}"
        raise partition_failure("raw_trips", key, cause, **dropped)
    context.add_asset_metadata(
        {
            "dagster/row_count": cleaned.rows_kept,
            "rows_read": cleaned.rows_read,
            "rows_kept": cleaned.rows_kept,
            "rows_dropped": cleaned.rows_read - cleaned.rows_kept,
            **dropped,
            "source": str(landing.month_path(year, month)),
        },
        partition_key=key,
    )
    return cleaned.table


@dg.asset(
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="parquet_io_manager",
    retry_policy=RETRY_POLICY,
    group_name="taxi_trips",
    kinds={"parquet"},
    code_version="1",
)
def raw_trips(
    context: dg.AssetExecutionContext, landing: LandingZone, thresholds: QualityThresholds
) -> dict[str, pa.Table]:
    """The month's `yellow_tripdata_YYYY-MM.parquet`, schema-checked, with rides of 1–60 minutes kept.

    Dirty rows are dropped and counted per reason in the metadata; a file that cannot be used at all (missing,
    corrupt, wrong schema, no usable rows, more dirty rows than `thresholds.max_dropped_share`) fails the run
    with the partition and the cause, and nothing is stored. Every month of the
    run is validated before any is stored.
    """
    return {key: ingest_month(context, landing, thresholds, key) for key in context.partition_keys}
