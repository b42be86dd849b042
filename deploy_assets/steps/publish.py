"""The publishing steps: a month's audited predictions moved from staging onto the key users read, then loaded
into the deployment's SQL table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deploy_assets.core.months import Month

if TYPE_CHECKING:  # the resources are Dagster's; a step only calls their plain methods
    from deploy_assets.resources.predictions_store import PredictionStore
    from deploy_assets.resources.warehouse import PredictionWarehouse


def publish_month(predictions: PredictionStore, key: str) -> str:
    """Move the month's staged predictions onto its published key (one atomic replacement); returns the URI."""
    return predictions.publish(*Month.from_key(key).pair)


def discard_staged(predictions: PredictionStore, key: str) -> None:
    predictions.discard_staging(*Month.from_key(key).pair)


def load_into_table(table: PredictionWarehouse, predictions: PredictionStore, key: str) -> dict[str, Any]:
    """Replace the month's rows of the table with its published predictions, in one transaction."""
    month = Month.from_key(key)
    rows = table.replace_month_from_parquet(month.first_day, predictions.month_path(*month.pair))
    return {"dagster/row_count": rows, "dagster/table_name": table.table, "database": table.display_url}
