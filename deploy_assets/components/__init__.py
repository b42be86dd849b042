"""The project's component types, listed by `dg list components`."""

from deploy_assets.components.model_deployment import ModelDeployment

__all__ = ["ModelDeployment"]
