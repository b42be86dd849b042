"""The code location: the deployment the environment describes (`deploy_assets.settings.Settings`)."""

from deploy_assets.deployment import build_definitions
from deploy_assets.settings import Settings

defs = build_definitions(Settings.from_env())
