"""Where the online services get their model: the registry's `models:/NAME@champion`, hot-swapped when it moves.

Any deployable model (see `core.contract`): a newly aliased version goes live only after it passes the same
validation as promotion (`core.contract.validate_model`: inputs known and satisfiable, a smoke batch answered with
finite numbers). A version that fails it is logged and kept in `status()["last_error"]`; the previous champion
keeps serving. `LoadedModel.model` is a `DeployableModel` (or, in shadow mode, a `MirroredModel` over one).

`ChampionModel` holds one `LoadedModel` (version + model, immutable). Request handlers read
`source.current` once and use that object for both the prediction and the `model_version` they report, so an
answer is always consistent with itself. `refresh()` reads the alias and, when it points to a different
version, loads that version *outside* any lock the readers could wait on, checks it predicts, then swaps the
reference under a lock. A request that started before the swap finishes with the model it picked up (nothing is
torn down), one that starts after it gets the new one: no request is dropped or fails because of a reload.

A background thread (`start()`) calls `refresh()` every `refresh_seconds` (more often until the first model is
loaded). A failed check or load (registry down, broken artifact) is logged and kept in `status()["last_error"]`;
the model already loaded keeps serving. If the alias disappears, the current model also keeps serving.

Configuration: `ChampionModel.from_settings(ServingSettings)` (`deploy_assets.settings`: the registry, model,
alias, refresh interval, shadow mode, see `serving.shadow`, and the deployment's dataset, whose ride columns are all
a version may read: one reading `trip_distance` never goes live on FHV).
Artifacts in S3 also need `MLFLOW_S3_ENDPOINT_URL` (for a non-AWS endpoint) and AWS credentials, read by MLflow.
Imports no Dagster: the registry is the plain `core.registry.RegistryClient`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from deploy_assets.core.contract import as_deployable, validate_model
from deploy_assets.serving.features import MirroredModel
from deploy_assets.settings import ServingSettings

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = ServingSettings.model_name
DEFAULT_ALIAS = ServingSettings.model_alias
DEFAULT_REFRESH_SECONDS = ServingSettings.model_refresh_seconds
# Until a first model is loaded, look again at least this often.
NOT_READY_RETRY_SECONDS = 2.0


class ModelNotReady(RuntimeError):
    """No model is loaded yet (the alias does not exist, or the registry could not be reached)."""


@dataclass(frozen=True)
class LoadedModel:
    version: str
    model: Any  # a DeployableModel, or a MirroredModel in shadow mode: what `serving.features.score_rides` takes
    model_uri: str
    loaded_at: float = field(default_factory=time.time)


class Registry(Protocol):
    """What `ChampionModel` needs from `deploy_assets.core.registry.RegistryClient`."""

    model_name: str

    def champion_version(self) -> str | None: ...

    def load(self, version: str) -> Any: ...


class ModelSource(Protocol):
    """What the web app and the stream consumer read: `current` (None until loaded). `start`/`stop` optional."""

    @property
    def current(self) -> LoadedModel | None: ...


class StaticModel:
    """A fixed model and version (tests, benchmarks, a model file baked into an image)."""

    def __init__(self, model, version: str = "static", model_uri: str = "static"):
        deployable = as_deployable(model, str(version))
        self._current = LoadedModel(version=str(version), model=deployable, model_uri=model_uri)

    @property
    def current(self) -> LoadedModel:
        return self._current

    def get(self) -> LoadedModel:
        return self._current

    def status(self) -> dict:
        return {"model_version": self._current.version, "model_uri": self._current.model_uri, "ready": True}


class ChampionModel:
    """The model behind `models:/NAME@ALIAS`, reloaded when the alias moves. Thread-safe; see module docstring."""

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        tracking_uri: str | None = None,
        model_name: str = DEFAULT_MODEL_NAME,
        alias: str = DEFAULT_ALIAS,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        shadow=None,
        ride_columns: tuple[str, ...] | None = None,
    ):
        if registry is None:
            # Imported here: the registry module imports MLflow, which tests with a fake registry skip.
            from deploy_assets.core.registry import RegistryClient

            registry = RegistryClient(tracking_uri=tracking_uri, model_name=model_name, champion_alias=alias)
        if refresh_seconds <= 0:
            raise ValueError(f"refresh_seconds must be > 0, got {refresh_seconds}")
        self.registry = registry
        self.model_name = getattr(registry, "model_name", model_name)
        self.alias = getattr(registry, "champion_alias", alias)
        self.refresh_seconds = float(refresh_seconds)
        self._current: LoadedModel | None = None
        self._swap_lock = threading.Lock()  # guards the reference swap
        self._refresh_lock = threading.Lock()  # one refresh at a time (background thread vs. a manual call)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_checked: float | None = None
        self.last_error: str | None = None
        self.reloads = 0
        self.shadow = shadow  # a serving.shadow.ShadowMirror: answers are mirrored to it (shadow mode)
        # The ride columns the deployment's requests have: a version reading another one is not loaded.
        self.ride_columns = ride_columns

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> ChampionModel:
        return cls.from_settings(ServingSettings.from_env(environ), **overrides)

    @classmethod
    def from_settings(cls, settings: ServingSettings, **overrides) -> ChampionModel:
        options = {
            "tracking_uri": settings.mlflow_tracking_uri,
            "model_name": settings.model_name,
            "alias": settings.model_alias,
            "refresh_seconds": settings.model_refresh_seconds,
            "ride_columns": settings.ride_dataset.model_columns,
        }
        options.update({key: value for key, value in overrides.items() if value is not None})
        shadow_alias = settings.shadow_alias
        if shadow_alias and "shadow" not in options:
            from deploy_assets.serving.shadow import ShadowMirror

            shared = ("tracking_uri", "model_name", "refresh_seconds", "ride_columns")
            shadow_options = {key: options[key] for key in shared if key in options}
            options["shadow"] = ShadowMirror(
                cls(alias=shadow_alias, **shadow_options),
                threshold_minutes=settings.shadow_threshold_minutes,
            )
        return cls(**options)

    # --- reading (hot path: one attribute read, no lock) -----------------------------------------------------------

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def get(self) -> LoadedModel:
        loaded = self._current
        if loaded is None:
            raise ModelNotReady(self._not_ready_reason())
        return loaded

    def _not_ready_reason(self) -> str:
        reason = f"no model loaded yet for models:/{self.model_name}@{self.alias}"
        return f"{reason} (last error: {self.last_error})" if self.last_error else reason

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def status(self) -> dict:
        loaded = self._current
        return {
            "ready": loaded is not None,
            "model_name": self.model_name,
            "alias": self.alias,
            "model_version": loaded.version if loaded else None,
            "model_uri": loaded.model_uri if loaded else None,
            "loaded_at": loaded.loaded_at if loaded else None,
            "last_checked": self.last_checked,
            "last_error": self.last_error,
            "reloads": self.reloads,
            "refresh_seconds": self.refresh_seconds,
            **({"shadow": self.shadow.status()} if self.shadow is not None else {}),
        }

    # --- refreshing ------------------------------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Check the alias once; load and swap in the version it names if that differs. True if swapped.

        Raises what the registry raised (the background thread logs it and keeps the current model).
        """
        with self._refresh_lock:
            version = self.registry.champion_version()
            self.last_checked = time.time()
            current = self._current
            if version is None:
                if current is not None:
                    log.warning(
                        "alias @%s of %s no longer exists; still serving version %s",
                        self.alias, self.model_name, current.version,
                    )
                self.last_error = f"models:/{self.model_name}@{self.alias} does not exist"
                return False
            version = str(version)
            if current is not None and current.version == version:
                self.last_error = None
                return False
            started = time.perf_counter()
            # The door promotion uses: a version that fails it never goes live (ModelContractError, logged).
            model = validate_model(self.registry.load(version), version, self.ride_columns)
            if self.shadow is not None:
                model = MirroredModel(model, self.shadow, version)
            loaded = LoadedModel(version=version, model=model, model_uri=f"models:/{self.model_name}/{version}")
            with self._swap_lock:
                self._current = loaded
            self.reloads += 1
            self.last_error = None
            self._ready.set()
            log.info(
                "serving %s (@%s) version %s (was %s), loaded in %.2f s",
                self.model_name, self.alias, version, current.version if current else None,
                time.perf_counter() - started,
            )
            return True

    def refresh_quietly(self) -> bool:
        try:
            return self.refresh()
        except Exception as error:  # noqa: BLE001 - keep serving; the error is reported by status() and logs
            self.last_error = f"{type(error).__name__}: {error}"
            log.warning("model refresh for %s@%s failed: %s", self.model_name, self.alias, self.last_error)
            return False

    def refresh_if_due(self) -> bool:
        """For callers without a background thread (a Lambda invocation): refresh when the interval has passed."""
        due = self.last_checked is None or time.time() - self.last_checked >= (
            self.refresh_seconds if self._current is not None else min(self.refresh_seconds, NOT_READY_RETRY_SECONDS)
        )
        return self.refresh_quietly() if due else False

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh_quietly()
            interval = self.refresh_seconds if self._current is not None else min(
                self.refresh_seconds, NOT_READY_RETRY_SECONDS
            )
            self._stop.wait(interval)

    def start(self) -> ChampionModel:
        """Start the background refresher (first load included); returns at once. Idempotent."""
        if self.shadow is not None:
            self.shadow.start()
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"champion-refresh-{self.model_name}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None
        if self.shadow is not None:
            self.shadow.stop(timeout)
