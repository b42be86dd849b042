"""The MLflow model registry as a plain client (no Dagster): log, register, find, validate, promote, load.

Used directly by the online services and commands; `resources.mlflow_registry.ModelRegistry` is a thin Dagster
resource over it. Every version the platform registers carries its partition (tag `partition`) and, when given,
the version of the data it was trained on (tag `training_data_version`), so a retried run finds the version it
already registered instead of registering twice. Aliases: `@champion` (served and published) and `@challenger`
(scored in shadow). An alias only moves to a version that passes the model contract (`core.contract`), and never
backwards in time (an older `partition` than the holder's) unless asked to (a roll-back). Each move leaves an audit
trail on the version it moved to: who, from which version, when and why (tags `<alias>.promoted_by`, …).
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from deploy_assets.core.contract import SMOKE_RIDES, DeployableModel, as_deployable, feature_frame, validate_model
from deploy_assets.core.errors import ModelContractError, PromotionRefused, RegistryError, RegistryLookupError
from deploy_assets.core.model import ZonePairDurationRegressor

log = logging.getLogger(__name__)

MODEL_CLASS = f"{ZonePairDurationRegressor.__module__}.{ZonePairDurationRegressor.__qualname__}"
CHAMPION = "champion"
CHALLENGER = "challenger"
AUDIT_FIELDS = ("promoted_by", "promoted_from", "promoted_at", "reason")

__all__ = [
    "RegistryClient",
    "RegisteredVersion",
    "RegistryError",
    "RegistryLookupError",
    "ModelContractError",
    "PromotionRefused",
]


@functools.lru_cache(maxsize=8)
def _client_for(tracking_uri: str):
    """One client per tracking URI: building one costs ~50 ms and a model registration asks several times."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def run_metrics(trained, extra: dict[str, float] | None = None) -> dict[str, float]:
    """The trained model's measured numbers for its MLflow run (a model fitted from statistics has no hold-out
    and no training RMSE; a built-in fit counts the rides it bounded), with `extra`."""
    measured = {"train_rows": trained.train_rows, "train_rmse": trained.train_rmse}
    if trained.rides_bounded is not None:
        measured["rides_bounded"] = trained.rides_bounded
    if trained.holdout_rows:
        measured.update(holdout_rows=trained.holdout_rows, holdout_rmse=trained.holdout_rmse)
    measured.update(extra or {})
    return {name: float(value) for name, value in measured.items() if math.isfinite(value)}


@dataclass(frozen=True)
class RegisteredVersion:
    version: str
    run_id: str
    model_uri: str


def pip_requirements(model) -> list[str]:
    """Explicit requirements: letting MLflow infer them spawns a subprocess per model (~7 s)."""
    import sklearn

    requirements = [f"scikit-learn=={sklearn.__version__}", f"numpy=={np.__version__}"]
    return [*requirements, "deploy_assets"] if isinstance(model, ZonePairDurationRegressor) else requirements


def trusted_types(model) -> list[str]:
    """Types skops must trust to load `model`: the platform trains and logs these models itself, so the types
    its own fresh object uses (e.g. sklearn's tree storage for a forest) are trusted."""
    if isinstance(model, ZonePairDurationRegressor):
        return [MODEL_CLASS]
    import skops.io

    return skops.io.get_untrusted_types(data=skops.io.dumps(model))


class RegistryClient:
    """Logs, registers, validates, promotes and loads trip-duration models in one MLflow registry.

    `deployment` and `ride_columns` (the ride columns its dataset has) are those of the deployment the model
    serves: a version reading a column they lack is refused at the door, naming both."""

    def __init__(
        self,
        tracking_uri: str | None = None,
        artifact_location: str | None = None,
        experiment_name: str | None = None,
        *,
        model_name: str,
        champion_alias: str = CHAMPION,
        challenger_alias: str = CHALLENGER,
        deployment: str | None = None,
        ride_columns: tuple[str, ...] | None = None,
    ):
        if tracking_uri is None:
            import mlflow

            tracking_uri = mlflow.get_tracking_uri()  # MLFLOW_TRACKING_URI, or MLflow's own default
        self.tracking_uri = str(tracking_uri)
        self.artifact_location = artifact_location
        self.experiment_name = experiment_name or model_name  # one experiment per registered model by default
        self.model_name = model_name
        self.champion_alias = champion_alias
        self.challenger_alias = challenger_alias
        self.deployment = deployment
        self.ride_columns = ride_columns

    def _client(self):
        return _client_for(self.tracking_uri)

    @contextmanager
    def _fluent_api(self) -> Iterator[None]:
        """Point MLflow's process-wide fluent API at this registry, and restore exactly what was there before.

        `mlflow.set_tracking_uri` also writes MLFLOW_TRACKING_URI (and the registry's MLFLOW_REGISTRY_URI) into the
        environment: restoring through it would pin MLflow's *default* URI there for everything that runs later,
        so the module globals and the variables are put back as they were."""
        import mlflow
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        saved_globals = getattr(tracking_utils, "_tracking_uri", None), getattr(registry_utils, "_registry_uri", None)
        saved_env = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        try:
            yield
        finally:
            tracking_utils._tracking_uri, registry_utils._registry_uri = saved_globals
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

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

    def _ensure_registered_model(self, client) -> None:
        from mlflow.exceptions import MlflowException

        try:
            client.get_registered_model(self.model_name)
        except MlflowException:
            try:
                client.create_registered_model(self.model_name)
            except MlflowException:  # created concurrently
                client.get_registered_model(self.model_name)

    # --- logging and registering --------------------------------------------------------------------------------

    def log_and_register(
        self,
        trained,
        partition_key: str,
        training_partitions: list[str],
        params: dict,
        training_data_version: str | None = None,
        metrics: dict[str, float] | None = None,
    ) -> RegisteredVersion:
        """Log params, metrics and the model (signature + input example) as a run; register a new version.

        `trained` is a `TrainedModel`-like object (`model`, `holdout_rmse`, `train_rmse`, `train_rows`,
        `holdout_rows`); its model is the built-in regressor or any scikit-learn estimator whose inputs the
        contract can read (a `DictVectorizer` pipeline, or one fitted on a frame of ride features). Only what was
        measured is logged: no hold-out numbers without a hold-out, no NaN; `metrics` adds others (e.g. the RMSE
        on the month the model will score).
        """
        import mlflow
        from mlflow.models import infer_signature

        model = trained.model
        deployable = as_deployable(model, f"being registered for {partition_key}")
        example = feature_frame(SMOKE_RIDES, deployable.contract.inputs).head(2)
        signature = infer_signature(example, deployable.predict_rides({k: v[:2] for k, v in SMOKE_RIDES.items()}))
        flavour_options = {"serialization_format": "skops", "skops_trusted_types": trusted_types(model)}
        tags = {"partition": partition_key, "training_partitions": ",".join(training_partitions)}
        if training_data_version is not None:
            tags["training_data_version"] = str(training_data_version)
        try:
            client = self._client()
            experiment_id = self._experiment_id(client)
            run_name = f"duration_model[{partition_key}]"
            with self._fluent_api():
                with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
                    mlflow.log_params({**params, "training_partitions": tags["training_partitions"]})
                    mlflow.log_metrics(run_metrics(trained, metrics))
                    info = mlflow.sklearn.log_model(
                        model,
                        name="model",
                        signature=signature,
                        input_example=example,
                        pip_requirements=pip_requirements(model),
                        **flavour_options,
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

    # --- finding versions ---------------------------------------------------------------------------------------

    def _newest(self, query: str, action: str) -> str | None:
        try:
            versions = self._client().search_model_versions(f"name = '{self.model_name}' and {query}")
        except Exception as error:  # noqa: BLE001
            raise self._fail(action, error) from error
        return str(max(int(v.version) for v in versions)) if versions else None

    def version_for_partition(self, partition_key: str) -> str | None:
        """The newest registered version trained for `partition_key`, or None."""
        return self._newest(f"tags.partition = '{partition_key}'", f"look up the model for {partition_key}")

    def find_version(self, partition_key: str, training_data_version: str) -> str | None:
        """The newest version registered for `partition_key` from exactly this training data, or None: a retried
        run asks this before registering, so it never registers the same model twice."""
        return self._newest(
            f"tags.partition = '{partition_key}' and tags.training_data_version = '{training_data_version}'",
            f"look up the model for {partition_key} trained on data version {training_data_version}",
        )

    def alias_version(self, alias: str) -> str | None:
        """The version `@alias` points to, or None when the alias (or the model) does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self._client().get_model_version_by_alias(self.model_name, alias).version)
        except MlflowException as error:
            if "RESOURCE_DOES_NOT_EXIST" in str(error.error_code) or "not found" in str(error).lower():
                return None
            raise self._fail(f"read alias @{alias}", error) from error
        except Exception as error:  # noqa: BLE001
            raise self._fail(f"read alias @{alias}", error) from error

    def champion_version(self) -> str | None:
        return self.alias_version(self.champion_alias)

    def remove_alias(self, alias: str) -> None:
        try:
            self._client().delete_registered_model_alias(self.model_name, alias)
        except Exception as error:  # noqa: BLE001
            raise self._fail(f"remove alias @{alias}", error) from error

    def challenger_version(self) -> str | None:
        return self.alias_version(self.challenger_alias)

    def version_tags(self, version: str) -> dict[str, str]:
        try:
            return dict(self._client().get_model_version(self.model_name, str(version)).tags)
        except Exception as error:  # noqa: BLE001
            raise self._fail(f"read version {version}", error) from error

    def version_run_id(self, version: str) -> str | None:
        """The MLflow run that logged a version (None for a version registered from outside a run)."""
        try:
            return self._client().get_model_version(self.model_name, str(version)).run_id or None
        except Exception as error:  # noqa: BLE001
            raise self._fail(f"read version {version}", error) from error

    # --- loading, validating, promoting -------------------------------------------------------------------------

    def load(self, version: str):
        """Something scoring accepts for any flavour: the built-in regressor itself (its fast path), or a
        `DeployableModel` (the pyfunc's native model with the contract read from it). Raises ModelContractError
        when the version's inputs cannot be determined or satisfied."""
        import mlflow

        uri = f"models:/{self.model_name}/{version}"
        try:
            with self._fluent_api():
                pyfunc = mlflow.pyfunc.load_model(uri)
        except Exception as error:  # noqa: BLE001
            raise self._fail(f"load {uri}", error) from error
        deployable = as_deployable(pyfunc, str(version))
        return deployable.native if deployable.is_builtin else deployable

    def load_deployable(self, version: str) -> DeployableModel:
        """`load`, held to the model contract and the deployment's rides (what scoring calls: a version that does
        not exist stays load's RegistryLookupError)."""
        return validate_model(self.load(version), str(version), self.ride_columns, self.deployment)

    def validate(self, version: str) -> DeployableModel:
        """The door: the version loads, its inputs are known and satisfiable from the deployment's rides, it answers
        a smoke batch with finite numbers. Returns it; raises ModelContractError naming the version (and column)."""
        try:
            return self.load_deployable(version)
        except ModelContractError:
            raise
        except RegistryLookupError as error:
            raise ModelContractError(version, f"it does not load ({error})") from error

    def promotion_audit(self, version: str, alias: str | None = None) -> dict[str, str]:
        """Who moved `@alias` to `version`, from which version, when and why (what `promote` recorded)."""
        alias = alias or self.champion_alias
        tags = self.version_tags(version)
        return {field: tags[f"{alias}.{field}"] for field in AUDIT_FIELDS if f"{alias}.{field}" in tags}

    def promote(
        self,
        version: str,
        alias: str | None = None,
        allow_backwards: bool = False,
        by: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Move `@alias` (default: the champion alias) to `version`, after `validate(version)`, and record on the
        version who (`by`) moved it, from which version, when and why (`reason`).

        Refused with PromotionRefused, leaving the alias where it was, when the version was trained for an older
        partition than the alias holder's, unless `allow_backwards` (a deliberate roll-back). Versions without a
        `partition` tag (registered by hand) are not ordered in time.
        """
        alias = alias or self.champion_alias
        version = str(version)
        self.validate(version)
        holder = self.alias_version(alias)
        if holder is not None and holder != version and not allow_backwards:
            new_partition = self.version_tags(version).get("partition")
            old_partition = self.version_tags(holder).get("partition")
            if new_partition and old_partition and new_partition < old_partition:
                raise PromotionRefused(
                    f"@{alias} of {self.model_name} stays on version {holder}: version {version} was trained for"
                    f" {new_partition}, older than {old_partition}; roll back explicitly with allow_backwards"
                    f" (deploy-assets-promote {version} --alias {alias} --allow-backwards)"
                )
        audit = {
            "promoted_by": by or "unknown",
            "promoted_from": holder or "none",
            "promoted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "reason": reason or "",
        }
        try:
            client = self._client()
            client.set_registered_model_alias(self.model_name, alias, version)
            for field, value in audit.items():
                client.set_model_version_tag(self.model_name, version, f"{alias}.{field}", value)
        except Exception as error:  # noqa: BLE001
            raise self._fail(f"move @{alias} to version {version}", error) from error
        log.info("%s@%s → version %s (was %s)", self.model_name, alias, version, holder)

