"""The code location: one Definitions object for the whole project."""

import dagster as dg

from deploy_assets.assets.model import duration_model
from deploy_assets.assets.predictions import prediction_table, trip_predictions
from deploy_assets.assets.raw import raw_trips
from deploy_assets.jobs import month_end_to_end_job
from deploy_assets.resources import build_resources
from deploy_assets.schedules import monthly_scoring_schedule
from deploy_assets.sensors import champion_promotion_sensor, raw_trips_landing_sensor

defs = dg.Definitions(
    assets=[raw_trips, duration_model, trip_predictions, prediction_table],
    jobs=[month_end_to_end_job],
    sensors=[raw_trips_landing_sensor, champion_promotion_sensor],
    schedules=[monthly_scoring_schedule],
    resources=build_resources(),
)
