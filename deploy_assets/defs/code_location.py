"""What the deployments of this folder share: the resources, the failure alerts and the executor."""

import dagster as dg

from deploy_assets.deployment import shared
from deploy_assets.settings import Settings


@dg.definitions
def code_location() -> dg.Definitions:
    return shared(Settings.from_env())
