"""Turn an error a user can cause into a Dagster failure that names the asset partition and the cause."""

from __future__ import annotations

import dagster as dg


def partition_failure(asset: str, partition_key: str, cause: str | Exception, **metadata) -> dg.Failure:
    """A non-retryable failure: retrying cannot fix bad input, and the message says what to fix."""
    return dg.Failure(
        description=f"{asset}[{partition_key}] failed: {cause}",
        metadata={"partition": partition_key, "cause": str(cause), **metadata},
        allow_retries=False,
    )
