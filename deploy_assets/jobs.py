"""Jobs over the monthly asset graph."""

import dagster as dg

from deploy_assets.partitions import monthly_partitions

# Everything for one month: ingest, train (on earlier months), score, publish.
month_end_to_end_job = dg.define_asset_job(
    "month_end_to_end",
    selection=dg.AssetSelection.groups("taxi_trips"),
    partitions_def=monthly_partitions,
    description="Materialize every asset of one month: raw trips, model, predictions, predictions table.",
)
