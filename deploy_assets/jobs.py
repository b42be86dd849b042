"""Jobs over the monthly asset graph."""

import dagster as dg

# Everything for one month: ingest, train (on earlier months), promote, score, publish.
month_end_to_end_job = dg.define_asset_job(
    "month_end_to_end",
    selection=dg.AssetSelection.groups("taxi_trips").materializable(),
    description="Materialize every asset of one month: raw trips, model, promotion, predictions, predictions table.",
)
