"""The model registry as a Dagster resource: the MLflow connection, shared by every deployment.

Each version carries the partition it was trained for (tag `partition`), so the batch job can score month M with
exactly `duration_model[M]`; `@champion` marks the version the online services and the champion scoring policy
serve, `@challenger` the one scored in shadow. The logic lives in the Dagster-free client, which the web service
and the stream consumer use directly.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from deploy_assets.core.errors import ModelContractError, PromotionRefused, RegistryError, RegistryLookupError
from deploy_assets.core.registry import CHALLENGER, CHAMPION, MODEL_CLASS, RegisteredVersion, RegistryClient

__all__ = [
    "MODEL_CLASS",
    "RegistryClient",
    "ModelContractError",
    "ModelRegistry",
    "PromotionRefused",
    "RegisteredVersion",
    "RegistryError",
    "RegistryLookupError",
]


class ModelRegistry(dg.ConfigurableResource):
    """The MLflow tracking server and registry every deployment registers its models in; `client(model_name)` is
    one deployment's registered model (`core.registry.RegistryClient`: log, register, validate, promote, load)."""

    tracking_uri: str = Field(description="MLflow tracking URI (sqlite:///… for a local store, http://… for a server)")
    artifact_location: str | None = Field(
        default=None, description="artifact root for a new experiment; None lets a tracking server decide"
    )
    champion_alias: str = CHAMPION
    challenger_alias: str = CHALLENGER

    def client(
        self, model_name: str, deployment: str | None = None, ride_columns: tuple[str, ...] | None = None
    ) -> RegistryClient:
        """The registered model `model_name`, logged in the experiment of the same name; `deployment` and
        `ride_columns` (its dataset's) are what its versions are validated against."""
        return RegistryClient(
            tracking_uri=self.tracking_uri,
            artifact_location=self.artifact_location,
            experiment_name=model_name,
            model_name=model_name,
            champion_alias=self.champion_alias,
            challenger_alias=self.challenger_alias,
            deployment=deployment,
            ride_columns=ride_columns,
        )
