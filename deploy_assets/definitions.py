"""The code location: one Definitions object for the whole project."""

import dagster as dg

from deploy_assets.assets.champion import champion_model
from deploy_assets.assets.landing import landing_file
from deploy_assets.assets.model import duration_model, model_promotion
from deploy_assets.assets.predictions import prediction_table, trip_predictions
from deploy_assets.assets.raw import ingest
from deploy_assets.automation import automation_sensor, champion_sensor, landing_sensor
from deploy_assets.jobs import month_end_to_end_job
from deploy_assets.notifications import failure_alert_sensor, freshness_alert_sensor, with_deadline
from deploy_assets.resources import build_resources
from deploy_assets.schedules import monthly_scoring_schedule

defs = dg.Definitions(
    assets=[
        landing_file, champion_model, ingest, duration_model, model_promotion,
        *dg.map_asset_specs(with_deadline, [trip_predictions, prediction_table]),
    ],
    jobs=[month_end_to_end_job],
    sensors=[landing_sensor, champion_sensor, automation_sensor, failure_alert_sensor, freshness_alert_sensor],
    schedules=[monthly_scoring_schedule],
    resources=build_resources(),
    # A month's steps run one after another in the run's own process: no process per step (seconds each), and
    # the run queue (dagster.yaml) is what keeps a 2-core machine from being overrun.
    executor=dg.in_process_executor,
)
