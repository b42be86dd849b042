"""What every materializable asset of a deployment shares: its months (one per run), its retries, its group."""

from typing import Any

from deploy_assets.assets.errors import RETRY_POLICY
from deploy_assets.assets.versions import ONE_MONTH_PER_RUN
from deploy_assets.partitions import Months


def monthly(months: Months, group: str) -> dict[str, Any]:
    """The decorator arguments of a deployment's monthly assets (`@dg.asset(**monthly(months, group), ...)`)."""
    return {
        "partitions_def": months.partitions_def,
        "backfill_policy": ONE_MONTH_PER_RUN,
        "retry_policy": RETRY_POLICY,
        "group_name": group,
    }
