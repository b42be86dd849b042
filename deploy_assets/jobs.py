"""Jobs over a deployment's monthly asset graph."""
from __future__ import annotations


import dagster as dg


def build_month_job(group: str) -> dg.JobDefinition:
    """Everything for one month of the deployment whose assets are in `group`: ingest, train (on earlier months),
    promote, score, publish."""
    return dg.define_asset_job(
        "month_end_to_end",
        selection=dg.AssetSelection.groups(group).materializable(),
        description="Materialize every asset of one month: raw trips, model, promotion, predictions, predictions table.",
    )
