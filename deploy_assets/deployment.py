"""One deployment's Definitions, built from its settings, and the code location's shared part."""

import dagster as dg

from deploy_assets.assets.champion import build_champion_model
from deploy_assets.assets.landing import build_landing_file
from deploy_assets.assets.model import build_model_assets
from deploy_assets.assets.monthly import Deployment
from deploy_assets.assets.predictions import build_prediction_assets
from deploy_assets.assets.raw import build_ingest
from deploy_assets.automation import build_automation_sensor
from deploy_assets.jobs import build_month_job
from deploy_assets.notifications import build_failure_alert_sensor, build_freshness_alert_sensor, with_deadline
from deploy_assets.resources import build_resources
from deploy_assets.schedules import build_monthly_schedule
from deploy_assets.sensors import build_reporting_sensors
from deploy_assets.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """Every asset, check, sensor and job of one deployment, under its name (`<name>/raw_trips`,
    `<name>_landing_sensor`, ...): nothing about the graph is decided before this is called, so two settings give
    two independent graphs in one code location. The resources they use are the code location's (`shared`)."""
    deployment = Deployment(settings)
    job = build_month_job(deployment.name)
    return dg.Definitions(
        assets=[
            build_landing_file(deployment),
            build_champion_model(deployment),
            build_ingest(deployment),
            *build_model_assets(deployment),
            *dg.map_asset_specs(with_deadline(deployment), build_prediction_assets(deployment)),
        ],
        jobs=[job],
        sensors=[
            *build_reporting_sensors(deployment),
            build_automation_sensor(deployment.name, settings.sensor_interval_seconds, settings.automation),
            build_freshness_alert_sensor(deployment),
        ],
        schedules=[build_monthly_schedule(deployment.name, job)],
    )


def shared(settings: Settings) -> dg.Definitions:
    """What every deployment of the code location uses: the connections (`build_resources`), the failure alerts
    and the executor."""
    return dg.Definitions(
        resources=build_resources(settings),
        sensors=[build_failure_alert_sensor(settings)],
        # A month's steps run one after another in the run's own process: no process per step (seconds each), and
        # the run queue (dagster.yaml) is what keeps a 2-core machine from being overrun.
        executor=dg.in_process_executor,
    )


def standalone(settings: Settings) -> dg.Definitions:
    """One deployment with the shared part: a code location of its own (the one-shot command, tests)."""
    return dg.Definitions.merge(build_definitions(settings), shared(settings))
