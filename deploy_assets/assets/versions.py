"""Data versions from content, and one month per run, so that recomputing identical data changes nothing downstream.

Each asset's data version is a fingerprint of what it holds (the bytes of its Parquet object, the training
statistics, the registered model version). Dagster records one data version per asset and run, so a run that
held several months would give them all one version and make every month after them look changed: every
asset runs one month per run, in backfills and automation alike.
"""

import dagster as dg

ONE_MONTH_PER_RUN = dg.BackfillPolicy.multi_run(1)


def month_data_version(context: dg.AssetExecutionContext, by_month: dict[str, str]) -> dg.DataVersion | None:
    """The content version of the run's month; None over a range of months run in one process (by hand, with
    partition-range tags), where no single version is right for all of them."""
    keys = context.partition_keys
    if len(keys) != 1 or keys[0] not in by_month:
        return None
    return dg.DataVersion(by_month[keys[0]])
