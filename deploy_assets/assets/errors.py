"""Errors of one asset partition: named after the partition, retried only when retrying can help.

Bad input or a wrong reference (a corrupt file, a model version that no longer exists, a location we may not
write to) fails at once with the cause; an unavailable service (S3, MLflow) is retried by the assets'
RETRY_POLICY with exponential backoff, then fails with the same naming.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from deploy_assets.core.schema import TripDataError
from deploy_assets.resources.mlflow_registry import RegistryLookupError

RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


class PartitionError(RuntimeError):
    """A transient failure of one partition (retried); the message names the partition and the cause."""


def partition_failure(asset: str, partition_key: str, cause: str | Exception, **metadata) -> dg.Failure:
    """A non-retryable failure: retrying cannot fix bad input, and the message says what to fix."""
    return dg.Failure(
        description=f"{asset}[{partition_key}] failed: {cause}",
        metadata={"partition": partition_key, "cause": str(cause), **metadata},
        allow_retries=False,
    )


@contextmanager
def failures_named(asset: str, partition_key: str) -> Iterator[None]:
    """Re-raise anything that goes wrong inside as a failure of `asset[partition_key]`."""
    try:
        yield
    except dg.Failure:
        raise
    except TripDataError as error:
        raise partition_failure(asset, partition_key, error, source=error.source) from error
    except (RegistryLookupError, PermissionError, NotADirectoryError, IsADirectoryError, FileExistsError) as error:
        # A wrong reference or a location we may not or cannot write to: the same on every attempt.
        raise partition_failure(asset, partition_key, f"{type(error).__name__}: {error}") from error
    except Exception as error:  # noqa: BLE001 - anything else may be transient: retried, then reported
        raise PartitionError(f"{asset}[{partition_key}] failed: {type(error).__name__}: {error}") from error
