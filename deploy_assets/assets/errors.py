"""Errors of one asset partition: named after the partition, retried only when retrying can help.

Only a transient failure (a connection refused or reset, a timeout, throttling, a 5xx from S3 or the tracking
server) is retried, by the assets' RETRY_POLICY with exponential backoff. Everything else (bad input, a wrong
reference, a model that breaks the contract, and any bug such as an AttributeError) fails at once with the
partition and the cause: asking again would fail the same way.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from deploy_assets.core.schema import TripDataError
from deploy_assets.steps.findings import StepFailure

RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

# Error codes S3 and other AWS services answer when asking again later can succeed.
TRANSIENT_AWS_CODES = frozenset(
    {"Throttling", "ThrottlingException", "SlowDown", "RequestTimeout", "RequestTimeTooSkewed",
     "ServiceUnavailable", "InternalError", "500", "502", "503", "504"}
)
# Exception class names of the HTTP stacks underneath boto3, s3fs and the MLflow client that mean "the network or
# the server was not there" (matched by name: those libraries are optional at import time here).
TRANSIENT_ERROR_NAMES = frozenset(
    {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
     "ProxyConnectionError", "ResponseStreamingError", "NewConnectionError", "MaxRetryError", "ProtocolError",
     "ConnectTimeout", "ReadTimeout", "Timeout", "ConnectionError", "ChunkedEncodingError",
     "ServerDisconnectedError", "ClientConnectorError", "ClientOSError"}
)


class PartitionError(RuntimeError):
    """A transient failure of one partition (retried); the message names the partition and the cause."""


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def is_transient(error: BaseException) -> bool:
    """True when the error, or one it was raised from, says the network or a server was briefly unavailable."""
    for cause in _causes(error):
        if isinstance(cause, (ConnectionError, TimeoutError)):
            return True
        if type(cause).__name__ in TRANSIENT_ERROR_NAMES:
            return True
        code = getattr(cause, "response", None)
        if isinstance(code, dict) and str(code.get("Error", {}).get("Code")) in TRANSIENT_AWS_CODES:
            return True
        if getattr(cause, "error_code", None) == "TEMPORARILY_UNAVAILABLE":  # MLflow
            return True
        if "Could not set lock on file" in str(cause):  # DuckDB: another process has the file open right now
            return True
    return False


def partition_failure(asset: str, partition_key: str, cause: str | Exception, **metadata) -> dg.Failure:
    """A non-retryable failure: retrying cannot fix bad input, and the message says what to fix."""
    return dg.Failure(
        description=f"{asset}[{partition_key}] failed: {cause}",
        metadata={"partition": partition_key, "cause": str(cause), **metadata},
        allow_retries=False,
    )


@contextmanager
def failures_named(asset: str, partition_key: str) -> Iterator[None]:
    """Re-raise anything that goes wrong inside as a failure of `asset[partition_key]`, retried only if transient."""
    try:
        yield
    except dg.Failure:
        raise
    except StepFailure as error:
        raise partition_failure(asset, partition_key, error.cause, **error.metadata) from error
    except TripDataError as error:
        raise partition_failure(asset, partition_key, error, source=error.source) from error
    except Exception as error:  # noqa: BLE001 - classified: transient errors are retried, the rest fail at once
        cause = f"{type(error).__name__}: {error}"
        if is_transient(error):
            raise PartitionError(f"{asset}[{partition_key}] failed: {cause}") from error
        raise partition_failure(asset, partition_key, cause) from error
