"""The project's code location with every deployment's automation sensor (`<name>_automation_sensor`) rebuilt
from bench settings: a scratch variant for `bench/automation_month.py --emit-runs / --automation-interval`, so a
sensor setting can be measured on the real daemon without changing the project. Everything else (assets, jobs,
other sensors, resources, executor) is `deploy_assets.definitions.defs` as it is; each rebuilt sensor keeps its
name, target (its deployment's assets) and description.

    BENCH_EMIT_BACKFILLS=0                     automation requests runs (one per month) instead of a backfill
    BENCH_AUTOMATION_INTERVAL_SECONDS=N        the automation sensors' minimum_interval_seconds (default: as defined)
"""

from __future__ import annotations

import os

import dagster as dg

from deploy_assets.definitions import defs as project

_interval = os.getenv("BENCH_AUTOMATION_INTERVAL_SECONDS")


def rebuilt(defined: dg.AutomationConditionSensorDefinition) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        defined.name,
        target=defined.asset_selection,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=int(_interval) if _interval else defined.minimum_interval_seconds,
        description=defined.description,
        emit_backfills=os.getenv("BENCH_EMIT_BACKFILLS", "1") != "0",
    )


defs = dg.Definitions(
    assets=project.assets,
    asset_checks=project.asset_checks,
    jobs=project.jobs,
    sensors=[rebuilt(s) if isinstance(s, dg.AutomationConditionSensorDefinition) else s for s in project.sensors],
    schedules=project.schedules,
    resources=project.resources,
    executor=project.executor,
)
