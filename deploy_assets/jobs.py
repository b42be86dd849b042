"""Jobs over a deployment's monthly asset graph."""
from __future__ import annotations


import dagster as dg


def build_month_job(name: str) -> dg.JobDefinition:
    """`<name>_month_end_to_end`: everything for one month of the deployment `name`: ingest, train (on earlier
    months), promote, score, publish."""
    return dg.define_asset_job(
        f"{name}_month_end_to_end",
        selection=dg.AssetSelection.groups(name).materializable(),
        description="Materialize every asset of one month: raw trips, model, promotion, predictions, predictions table.",
    )
