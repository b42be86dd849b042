"""The model registry as a Dagster resource: a thin `ConfigurableResource` over `core.registry.RegistryClient`.

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
from deploy_assets.settings import Settings

__all__ = [
    "MODEL_CLASS",
    "ModelContractError",
    "ModelRegistry",
    "PromotionRefused",
    "RegisteredVersion",
    "RegistryError",
    "RegistryLookupError",
]


class ModelRegistry(dg.ConfigurableResource):
    """Logs, registers, validates, promotes and loads trip-duration models (see `core.registry.RegistryClient`)."""

    tracking_uri: str = Field(description="MLflow tracking URI (sqlite:///… for a local store, http://… for a server)")
    artifact_location: str | None = Field(
        default=None, description="artifact root for a new experiment; None lets a tracking server decide"
    )
    experiment_name: str = Settings.model_name
    model_name: str = Settings.model_name
    champion_alias: str = CHAMPION
    challenger_alias: str = CHALLENGER

    @property
    def client(self) -> RegistryClient:
        return RegistryClient(
            tracking_uri=self.tracking_uri,
            artifact_location=self.artifact_location,
            experiment_name=self.experiment_name,
            model_name=self.model_name,
            champion_alias=self.champion_alias,
            challenger_alias=self.challenger_alias,
        )

    def log_and_register(
        self,
        trained,
        partition_key: str,
        training_partitions: list[str],
        params: dict,
        training_data_version: str | None = None,
        metrics: dict[str, float] | None = None,
    ) -> RegisteredVersion:
        return self.client.log_and_register(
            trained, partition_key, training_partitions, params,
            training_data_version=training_data_version, metrics=metrics,
        )

    def version_for_partition(self, partition_key: str) -> str | None:
        return self.client.version_for_partition(partition_key)

    def find_version(self, partition_key: str, training_data_version: str) -> str | None:
        return self.client.find_version(partition_key, training_data_version)

    def champion_version(self) -> str | None:
        return self.client.champion_version()

    def challenger_version(self) -> str | None:
        return self.client.challenger_version()

    def promote(
        self, version: str, alias: str | None = None, allow_backwards: bool = False, by: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.client.promote(version, alias=alias, allow_backwards=allow_backwards, by=by, reason=reason)

    def validate(self, version: str):
        return self.client.validate(version)

    def load(self, version: str):
        return self.client.load(version)
