"""champion_model: the registry's @champion, an external asset observed on every month (data version = version).

Observed per month, not once, so that Dagster's per-partition staleness and automation follow it: a move makes
every month scored by another version stale, and under the champion scoring policy re-scores it; a roll-back is
one more change. The champion sensor (`sensors.py`) reports it when the alias moves.
"""

from __future__ import annotations

import dagster as dg

from deploy_assets.assets.monthly import Deployment
from deploy_assets.partitions import Months
from deploy_assets.resources.mlflow_registry import ModelRegistry

CHAMPION_MODEL = "champion_model"


def champion_versions(version: str, months: Months) -> dg.DataVersionsByPartition:
    return dg.DataVersionsByPartition({key: version for key in months.keys()})


def build_champion_model(deployment: Deployment) -> dg.AssetsDefinition:
    @dg.observable_source_asset(
        name=CHAMPION_MODEL,
        **deployment.observed(),
        description="The registry's @champion version of the deployment's model (data version), observed for every month.",
    )
    def champion_model(registry: ModelRegistry) -> dg.DataVersionsByPartition:
        version = deployment.model(registry).champion_version()
        return champion_versions(version, deployment.months) if version else dg.DataVersionsByPartition({})

    return champion_model
