"""Writing to Kinesis: PutRecords in chunks, retrying only the records that failed, with exponential backoff.

`KinesisWriter.put` returns the indexes of the entries still failing after every attempt; the handler reports
those records to Lambda as batch item failures (and never checkpoints past them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence

log = logging.getLogger(__name__)

PUT_RECORDS_MAX_RECORDS = 500
PUT_RECORDS_MAX_BYTES = 5 * 1024 * 1024

# Error codes worth retrying (per record in a PutRecords answer, or for a whole call).
RETRYABLE_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "InternalFailure",
        "ServiceUnavailable",
        "KMSThrottlingException",
        "ThrottlingException",
        "LimitExceededException",
        "RequestTimeout",
        "SlowDown",
        "InternalError",
    }
)


class WriteFailed(RuntimeError):
    """Records could not be written after the retries; nothing was checkpointed past them."""


def error_code(error: Exception) -> str | None:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def is_retryable(error: Exception) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    if isinstance(error, (BotoConnectionError, HTTPClientError)):
        return True
    return error_code(error) in RETRYABLE_ERROR_CODES


def make_client(service: str, endpoint_url: str | None = None):
    """A boto3 client; without `endpoint_url`, botocore reads AWS_ENDPOINT_URL(_<SERVICE>) from the environment."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
    return boto3.session.Session().client(service, endpoint_url=endpoint_url or None, config=config)


class Backoff:
    """Exponential backoff with a cap: base · 2^attempt, at most `cap` seconds."""

    def __init__(self, attempts: int = 8, base: float = 0.05, cap: float = 2.0, sleep: Callable[[float], None] = time.sleep):
        self.attempts = attempts
        self.base = base
        self.cap = cap
        self.sleep = sleep

    def pause(self, attempt: int) -> None:
        self.sleep(min(self.cap, self.base * (2**attempt)))


class KinesisWriter:
    """PutRecords in chunks of ≤ 500 records / 5 MiB; retries only the records that failed."""

    def __init__(self, client, stream_name: str, backoff: Backoff | None = None):
        self.client = client
        self.stream_name = stream_name
        self.backoff = backoff or Backoff()
        self.records_retried = 0
        self.calls = 0

    @property
    def destination(self) -> str:
        return f"kinesis://{self.stream_name}"

    def _chunks(self, entries: Sequence[tuple[bytes, str]]) -> Iterable[list[int]]:
        chunk: list[int] = []
        size = 0
        for index, (data, key) in enumerate(entries):
            entry_size = len(data) + len(key.encode())
            if chunk and (len(chunk) == PUT_RECORDS_MAX_RECORDS or size + entry_size > PUT_RECORDS_MAX_BYTES):
                yield chunk
                chunk, size = [], 0
            chunk.append(index)
            size += entry_size
        if chunk:
            yield chunk

    def put(self, entries: Sequence[tuple[bytes, str]]) -> list[int]:
        """Write (data, partition key) entries; return the indexes still failing after every attempt."""
        still_failing: list[int] = []
        for chunk in self._chunks(entries):
            pending = chunk
            for attempt in range(self.backoff.attempts):
                try:
                    self.calls += 1
                    response = self.client.put_records(
                        StreamName=self.stream_name,
                        Records=[{"Data": entries[i][0], "PartitionKey": entries[i][1]} for i in pending],
                    )
                except Exception as error:  # noqa: BLE001 - classified below
                    if not is_retryable(error):
                        raise
                    if attempt == self.backoff.attempts - 1:
                        log.error("PutRecords to %s kept failing: %s", self.stream_name, error)
                        break  # `pending` are reported as failed
                    log.warning("PutRecords to %s failed (%s), retrying", self.stream_name, error)
                    self.backoff.pause(attempt)
                    continue
                results = response.get("Records", [])
                failed = [i for i, result in zip(pending, results) if result.get("ErrorCode")]
                failed.extend(pending[len(results) :])  # a short answer: treat the missing ones as failed
                if not failed:
                    pending = []
                    break
                codes = sorted({result.get("ErrorCode") for result in results if result.get("ErrorCode")})
                log.warning(
                    "PutRecords to %s: %d of %d records failed (%s), retrying them",
                    self.stream_name, len(failed), len(pending), ", ".join(map(str, codes)),
                )
                self.records_retried += len(failed)
                pending = failed
                if attempt < self.backoff.attempts - 1:
                    self.backoff.pause(attempt)
            still_failing.extend(pending)
        return still_failing


