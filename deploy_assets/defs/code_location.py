"""What the deployments of this folder share: the resources, the failure alerts and the executor."""

import dagster as dg

from deploy_assets.declared import declared_settings
from deploy_assets.deployment import shared
from deploy_assets.settings import Settings


@dg.definitions
def code_location(context: dg.ComponentLoadContext) -> dg.Definitions:
    settings = Settings.from_env()
    if settings.deployments is not None:
        unknown = set(settings.deployments) - set(declared_settings(context.component_tree))
        if unknown:
            raise ValueError(
                f"DEPLOY_ASSETS_DEPLOYMENTS names {', '.join(sorted(unknown))}: not declared under defs/"
            )
    return shared(settings)
