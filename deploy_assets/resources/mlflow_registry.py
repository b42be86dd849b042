"""MLflow tracking and model registry: every trained model is a run and a version of one registered model.

Each version carries the partition it was trained for (tag `partition`), so the batch job can score month M with
exactly `duration_model[M]`; the `champion` alias marks the version the online services and the champion
scoring policy serve.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from deploy_assets.core.features import FEATURE_COLUMNS
from deploy_assets.core.model import TrainedModel, ZonePairDurationRegressor
from deploy_assets.resources.storage import REPO_DATA_DIR

MODEL_CLASS = f"{ZonePairDurationRegressor.__module__}.{ZonePairDurationRegressor.__qualname__}"


@functools.lru_cache(maxsize=8)
def _client_for(tracking_uri: str):
    """One client per tracking URI: building one costs ~50 ms and a model registration asks several times."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


class RegistryError(RuntimeError):
    """The tracking server or registry could not do what was asked; the message names the tracking URI."""


class RegistryLookupError(RegistryError):
    """The registry answered, but what was asked for does not exist or is invalid (retrying cannot help)."""


@dataclass(frozen=True)
class RegisteredVersion:
    version: str
    run_id: str
    model_uri: str


class ModelRegistry(dg.ConfigurableResource):
    """Logs, registers, promotes and loads trip-duration models."""

    tracking_uri: str = Field(
        default=f"sqlite:///{REPO_DATA_DIR / 'mlflow' / 'mlflow.db'}",
        description="MLflow tracking URI (a local sqlite store by default, http://... for a server)",
    )
    artifact_location: str | None = Field(
        default=str(REPO_DATA_DIR / "mlflow" / "artifacts"),
        description="artifact root for a new experiment; None lets a tracking server decide",
    )
    experiment_name: str = "trip-duration"
    model_name: str = "trip-duration"
    champion_alias: str = "champion"

    def _client(self):
        return _client_for(self.tracking_uri)

    @contextmanager
    def _fluent_api(self) -> Iterator[None]:
        """Point MLflow's process-wide fluent API at this registry, and restore what was there before."""
        import mlflow

        previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(previous[0])
            mlflow.set_registry_uri(previous[1])

    def _fail(self, action: str, error: Exception) -> RegistryError:
        from mlflow.exceptions import MlflowException

        kind = RegistryError
        if isinstance(error, MlflowException) and error.error_code in (
            "RESOURCE_DOES_NOT_EXIST",
            "INVALID_PARAMETER_VALUE",
        ):
            kind = RegistryLookupError
        return kind(f"MLflow at {self.tracking_uri}: could not {action}: {error}")

    def _experiment_id(self, client) -> str:
        from mlflow.exceptions import MlflowException

        experiment = client.get_experiment_by_name(self.experiment_name)
        if experiment is not None:
            return experiment.experiment_id
        try:
            return client.create_experiment(self.experiment_name, artifact_location=self.artifact_location)
        except MlflowException:  # created concurrently by another run
            return client.get_experiment_by_name(self.experiment_name).experiment_id

    def log_and_register(
        self, trained: TrainedModel, partition_key: str, training_partitions: list[str], params: dict
    ) -> RegisteredVersion:
        """Log params, metrics and the model (with signature) as a run; register it as a new version."""
        import mlflow
        import sklearn
        from mlflow.models import infer_signature

        example = pd.DataFrame(
            {
                "PULocationID": np.array([132, 236], dtype=np.int32),
                "DOLocationID": np.array([236, 132], dtype=np.int32),
                "trip_distance": np.array([17.5, 1.2]),
            }
        )[list(FEATURE_COLUMNS)]
        signature = infer_signature(example, trained.model.predict(example))
        try:
            client = self._client()
            experiment_id = self._experiment_id(client)
            tags = {"partition": partition_key, "training_partitions": ",".join(training_partitions)}
            run_name = f"duration_model[{partition_key}]"
            with self._fluent_api():
                with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
                    mlflow.log_params({**params, "training_partitions": tags["training_partitions"]})
                    mlflow.log_metrics(
                        {
                            "holdout_rmse": trained.holdout_rmse,
                            "train_rmse": trained.train_rmse,
                            "train_rows": trained.train_rows,
                            "holdout_rows": trained.holdout_rows,
                        }
                    )
                    info = mlflow.sklearn.log_model(
                        trained.model,
                        name="model",
                        signature=signature,
                        input_example=example,
                        # Explicit requirements: inferring them spawns a subprocess per model (~7 s).
                        pip_requirements=[
                            f"scikit-learn=={sklearn.__version__}",
                            f"numpy=={np.__version__}",
                            "deploy_assets",
                        ],
                        serialization_format="skops",
                        skops_trusted_types=[MODEL_CLASS],
                    )
                self._ensure_registered_model(client)
                # Resolving the logged model behind `models:/m-...` goes through the fluent API's URIs too.
                version = client.create_model_version(
                    self.model_name, source=info.model_uri, run_id=run.info.run_id, model_id=info.model_id, tags=tags
                )
        except RegistryError:
            raise
        except Exception as error:  # noqa: BLE001 - any client/transport error becomes one named failure
            raise self._fail(f"register a model for {partition_key}", error) from error
        return RegisteredVersion(version=str(version.version), run_id=run.info.run_id, model_uri=info.model_uri)

    def _ensure_registered_model(self, client) -> None:
        from mlflow.exceptions import MlflowException

        try:
            client.get_registered_model(self.model_name)
        except MlflowException:
            try:
                client.create_registered_model(self.model_name)
            except MlflowException:  # created concurrently
                client.get_registered_model(self.model_name)

    def version_for_partition(self, partition_key: str) -> str | None:
        """The newest registered version trained for `partition_key`, or None."""
        try:
            versions = self._client().search_model_versions(
                f"name = '{self.model_name}' and tags.partition = '{partition_key}'"
            )
        except Exception as error:  # noqa: BLE001
            raise self._fail(f"look up the model for {partition_key}", error) from error
        return str(max(int(v.version) for v in versions)) if versions else None

    def champion_version(self) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self._client().get_model_version_by_alias(self.model_name, self.champion_alias).version)
        except MlflowException as error:
            if "RESOURCE_DOES_NOT_EXIST" in str(error.error_code) or "not found" in str(error).lower():
                return None
            raise self._fail(f"read alias @{self.champion_alias}", error) from error
        except Exception as error:  # noqa: BLE001
            raise self._fail(f"read alias @{self.champion_alias}", error) from error

    def promote(self, version: str) -> None:
        try:
            self._client().set_registered_model_alias(self.model_name, self.champion_alias, version)
        except Exception as error:  # noqa: BLE001
            raise self._fail(f"move @{self.champion_alias} to version {version}", error) from error

    def load(self, version: str) -> ZonePairDurationRegressor:
        import mlflow

        uri = f"models:/{self.model_name}/{version}"
        try:
            with self._fluent_api():
                return mlflow.sklearn.load_model(uri)
        except Exception as error:  # noqa: BLE001
            raise self._fail(f"load {uri}", error) from error
