"""raw_trips and trip_statistics: a month of TLC trips from the landing zone, validated, cleaned and stored.

One step writes both: `raw_trips[M]`, the cleaned month that is scored, and `trip_statistics[M]`, the month as
training data for the models of the months after it. Keeping the training data a node of its own is what lets
duration_model[M] read the months before M while every edge among raw_trips, duration_model, trip_predictions and
prediction_table stays month-to-same-month. A backfill of months A…B also brings month B+1's model (and what it
scores) up to date, since it trains on trip_statistics[B].

The two are one unit: whatever selects either of them (the UI, automation, a backfill, the CLI) runs the step,
both outputs and its checks, so no path writes a month without its audit. The checks on the month (schema,
dirty share, volume) are computed in this step from what it has in hand and reported with it; a month that fails
a blocking check is not stored. The step also reports which version (ETag) of the landing file it read, so the
landing sensor seeing that same file later is not a change.
"""

import dagster as dg

from deploy_assets.assets.checks import check_specs, month_check_evaluations
from deploy_assets.assets.errors import failures_named, partition_failure
from deploy_assets.assets.history import latest_metadata
from deploy_assets.assets.monthly import Deployment
from deploy_assets.assets.versions import month_data_version
from deploy_assets.assets.landing import LANDING_FILE, landing_observation
from deploy_assets.automation import converge
from deploy_assets.partitions import previous_month, year_month
from deploy_assets.resources.quality import QualityThresholds
from deploy_assets.resources.io_manager import PartitionedParquetIOManager
from deploy_assets.steps.findings import Findings
from deploy_assets.steps.ingest import RAW_CHECKS, store_month

def report_what_was_read(context: dg.AssetExecutionContext, deployment: Deployment, key: str) -> None:
    """Record landing_file[M] as this step finds it, before reading it: the materializations then name the
    version they were made from, whether or not the landing sensor has seen it yet."""
    landed = deployment.landing.landed_file(*year_month(key))
    if landed is None:
        return
    landing_file = deployment.key(LANDING_FILE)
    context.log_event(landing_observation(landing_file, key, landed))
    # Dagster looked up the inputs' versions before the step started; look again, to see this observation.
    context.get_step_execution_context().wipe_input_asset_version_info(landing_file)


def build_ingest(deployment: Deployment) -> dg.AssetsDefinition:
    """The deployment's ingest step: raw_trips and trip_statistics with their checks."""
    raw, months = deployment.label("raw_trips"), deployment.months
    monthly = deployment.monthly()
    monthly.pop("key_prefix")  # the outs carry the keys

    @dg.multi_asset(
        outs={
            "raw_trips": dg.AssetOut(
                key=deployment.key("raw_trips"),
                description=(
                    "The month's TLC file, schema-checked, its valid rides kept (core.features.RideRules), as Parquet."
                ),
                io_manager_key="parquet_io_manager",
                automation_condition=converge(),
                kinds={"parquet"},
                code_version="4",
            ),
            "trip_statistics": dg.AssetOut(
                key=deployment.key("trip_statistics"),
                description="The month as training data for the models of the months after it (Parquet).",
                io_manager_key="parquet_io_manager",
                automation_condition=converge(),
                kinds={"parquet"},
                code_version="4",
            ),
        },
        deps=[deployment.key(LANDING_FILE)],
        check_specs=check_specs(deployment.key("raw_trips"), RAW_CHECKS, months.partitions_def),
        name=deployment.named("ingest"),
        **monthly,
        can_subset=False,
    )
    def ingest(
        context: dg.AssetExecutionContext,
        parquet_io_manager: dg.ResourceParam[PartitionedParquetIOManager],
        thresholds: QualityThresholds,
    ):
        """Read, validate and clean the month by record batches; a month that fails a blocking check (too dirty,
        wrong schema) is not stored and fails the run naming the partition and the check."""
        findings, stored = Findings(), {}
        for key in context.partition_keys:
            with failures_named(raw, key):
                report_what_was_read(context, deployment, key)
                # The month before, as stored by this run (a range) or an earlier one.
                previous = stored[previous_month(key)].metadata if previous_month(key) in stored else {
                    "raw_trips": latest_metadata(context.instance, deployment.key("raw_trips"), previous_month(key))
                }
                month = store_month(
                    deployment.landing, deployment.rules, deployment.clean_schema,
                    parquet_io_manager.partition_path(raw, key),
                    parquet_io_manager.partition_path(deployment.label("trip_statistics"), key),
                    key, previous["raw_trips"].get("dagster/row_count"), deployment.limits(thresholds),
                )
            findings.update(month.findings)
            if month.stored is not None:
                stored[key] = month.stored
        failed = findings.blocking_failure(RAW_CHECKS)
        if failed:
            # A bad month loses nothing for the others: the months stored are recorded as materialized, so automation
            # carries on with them while this run fails naming the refused month.
            for key, month in stored.items():
                for asset, values in month.metadata.items():
                    context.log_event(
                        dg.AssetMaterialization(asset_key=deployment.key(asset), partition=key, metadata=values)
                    )
            yield from month_check_evaluations(context, deployment.key("raw_trips"), RAW_CHECKS, findings)
            check, month, problem = failed
            raise partition_failure(raw, month, f"check {check} failed, nothing stored: {problem}")
        for asset in ("raw_trips", "trip_statistics"):
            asset_key = deployment.key(asset)
            for key, month in stored.items():
                context.add_asset_metadata(month.metadata[asset], asset_key=asset_key, partition_key=key)
            versions = {key: month.versions[asset] for key, month in stored.items()}
            yield dg.MaterializeResult(asset_key=asset_key, data_version=month_data_version(context, versions))
        yield from month_check_evaluations(context, deployment.key("raw_trips"), RAW_CHECKS, findings)

    return ingest
