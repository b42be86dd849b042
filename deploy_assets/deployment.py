"""One deployment's Definitions, built from its settings."""

import dagster as dg

from deploy_assets.assets.champion import build_champion_model
from deploy_assets.assets.landing import build_landing_file
from deploy_assets.assets.model import build_model_assets
from deploy_assets.assets.predictions import build_prediction_assets
from deploy_assets.assets.raw import build_ingest
from deploy_assets.automation import build_automation_sensor
from deploy_assets.jobs import build_month_job
from deploy_assets.notifications import build_alert_sensors, with_deadline
from deploy_assets.partitions import Months
from deploy_assets.resources import build_resources
from deploy_assets.schedules import build_monthly_schedule
from deploy_assets.sensors import build_reporting_sensors
from deploy_assets.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """Every asset, check, sensor, job and resource of one deployment: nothing about the graph is decided before
    this is called, so two settings give two independent graphs in one process."""
    months, group = Months.of(settings), settings.name
    predictions = build_prediction_assets(months, settings.scoring_policy, group)
    job = build_month_job(group)
    return dg.Definitions(
        assets=[
            build_landing_file(months, group),
            build_champion_model(months, group),
            build_ingest(months, group),
            *build_model_assets(months, group),
            *dg.map_asset_specs(with_deadline(settings), predictions),
        ],
        jobs=[job],
        sensors=[
            *build_reporting_sensors(months, settings.sensor_interval_seconds),
            build_automation_sensor(settings.sensor_interval_seconds),
            *build_alert_sensors(settings),
        ],
        schedules=[build_monthly_schedule(job)],
        resources=build_resources(settings),
        # A month's steps run one after another in the run's own process: no process per step (seconds each), and
        # the run queue (dagster.yaml) is what keeps a 2-core machine from being overrun.
        executor=dg.in_process_executor,
    )
