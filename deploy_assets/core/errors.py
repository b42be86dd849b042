"""Typed errors of the trip data, the model registry and the model contract (no Dagster, no MLflow import).

The asset layer maps `RegistryLookupError` (and so its subclasses `ModelContractError`, `PromotionRefused`) to a
failure without retries: the registry answered, and what it answered cannot be used; asking again cannot help.
A plain `RegistryError` (tracking server unreachable, transport errors) may be transient and is retried.
"""

from __future__ import annotations


class RegistryError(RuntimeError):
    """The tracking server or registry could not do what was asked; the message names the tracking URI."""


class RegistryLookupError(RegistryError):
    """The registry answered, but what was asked for does not exist or is invalid (retrying cannot help)."""


class ModelContractError(RegistryLookupError):
    """A model cannot be deployed: its inputs cannot be determined, it asks for a column the platform does not
    compute, it does not load, or it does not answer a smoke batch with finite numbers.

    `version` is the registered version (or a label), `column` the offending input when there is one.
    """

    def __init__(self, version: str | None, reason: str, column: str | None = None):
        self.version = None if version is None else str(version)
        self.reason = reason
        self.column = column
        subject = f"model version {self.version}" if self.version is not None else "model"
        super().__init__(f"{subject} cannot be deployed: {reason}")


class PromotionRefused(RegistryLookupError):
    """An alias move that would go backwards in time (an older partition than the alias holder's) without
    `allow_backwards=True`; the alias is left where it was."""


class TripDataError(ValueError):
    """A month of trips that cannot be used; the message names the source and the cause."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class MissingTripData(TripDataError):
    """The month's file does not exist where the landing zone says it should be."""


class InvalidTripData(TripDataError):
    """The file exists but is not a usable TLC month (corrupt, empty, wrong schema, no valid rows)."""
