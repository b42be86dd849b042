"""The code location: one Definitions object for the whole project."""

import dagster as dg

from deploy_assets.assets.checks import (
    duration_model_quality,
    raw_trips_dirty_share,
    raw_trips_schema,
    raw_trips_volume,
    trip_predictions_complete,
    trip_predictions_drift,
)
from deploy_assets.assets.model import duration_model
from deploy_assets.assets.predictions import prediction_table, trip_predictions
from deploy_assets.assets.raw import raw_trips
from deploy_assets.jobs import month_end_to_end_job
from deploy_assets.resources import build_resources
from deploy_assets.schedules import monthly_scoring_schedule
from deploy_assets.sensors import champion_promotion_sensor, raw_trips_landing_sensor

defs = dg.Definitions(
    assets=[raw_trips, duration_model, trip_predictions, prediction_table],
    asset_checks=[
        raw_trips_schema,
        raw_trips_dirty_share,
        raw_trips_volume,
        duration_model_quality,
        trip_predictions_complete,
        trip_predictions_drift,
    ],
    jobs=[month_end_to_end_job],
    sensors=[raw_trips_landing_sensor, champion_promotion_sensor],
    schedules=[monthly_scoring_schedule],
    resources=build_resources(),
)
