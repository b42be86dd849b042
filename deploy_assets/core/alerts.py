"""What a notification says (no Dagster): one message per failed run or overdue asset, built from the one line
the run's error already gives (`asset[YYYY-MM-01] failed: <cause>`, see `assets/errors.py`).

The first line is the headline (also the SNS subject); the lines after it say which kind of failure it is and
where to look. The kinds, and what to do about each, are in the README ("When something goes wrong").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from deploy_assets.core.months import Month

# What every partition failure of the assets says (assets/errors.py): `yellow/raw_trips[2024-02-01] failed: <cause>`.
FAILURE_LINE = re.compile(
    r"(?P<asset>[A-Za-z_]\w*(?:/[A-Za-z_]\w*)*)\[(?P<month>\d{4}-\d{2}-\d{2})\] failed: (?P<cause>.+)"
)
BLOCKING_CHECK = re.compile(r"^check (?P<check>\w+) failed")
REFUSED_AT_PROMOTION = ("ModelContractError", "PromotionRefused")
SUBJECT_LIMIT = 100  # SNS: at most 100 printable ASCII characters


@dataclass(frozen=True)
class Failure:
    """One failed asset month, read from a step's error line."""

    asset: str
    month: str
    cause: str

    @property
    def kind(self) -> str:
        check = BLOCKING_CHECK.match(self.cause)
        if check:
            return f"blocking check {check['check']} failed"
        if self.asset.rsplit("/", 1)[-1] == "model_promotion" and self.cause.startswith(REFUSED_AT_PROMOTION):
            return "model refused at promotion"
        return "failed"


def parse_failure(error: str) -> Failure | None:
    """The asset, month and cause named by the first line of `error` that names them (a `dg.Failure`
    description, or a chain of exception messages such as `…PartitionError: raw_trips[…] failed: …`); None when
    no line does."""
    for line in error.splitlines():
        match = FAILURE_LINE.search(line)
        if match:
            return Failure(match["asset"], match["month"], match["cause"].strip())
    return None


def _prefix(deployment: str | None) -> str:
    return f"[{deployment}] " if deployment else ""


def run_failure_message(
    step_errors: list[str],
    run_error: str,
    *,
    run_id: str,
    job: str,
    partition: str | None = None,
    deployment: str | None = None,
    run_url: str | None = None,
) -> str:
    """One message for one failed run: a line per failed asset month (asset, month, kind, cause); a run that
    failed without a named asset (a crashed worker, a launch error) says what the run's own failure said."""
    failures = [failure for failure in map(parse_failure, step_errors) if failure is not None]
    if failures:
        first = failures[0]
        headline = f"{_prefix(deployment)}{first.asset} {first.month} {first.kind}: {first.cause}"
        details = [f"- {f.asset} {f.month} {f.kind}: {f.cause}" for f in failures[1:]]
    else:
        cause = next((line for line in (*step_errors, run_error) if line.strip()), "no error recorded")
        month = f" {partition}" if partition else ""
        headline = f"{_prefix(deployment)}run of {job}{month} failed: {cause.strip().splitlines()[0]}"
        details = []
    where = f"run {run_id}" + (f": {run_url}" if run_url else "")
    return "\n".join([headline, *details, where])


def due_month(deadline_passed_at: datetime) -> str:
    """The month whose predictions a deadline is for: the month that closed before the deadline's month."""
    return Month.of(deadline_passed_at).previous.key


def overdue_message(
    asset: str,
    deadline_passed_at: datetime,
    *,
    deadline: str,
    latest_month: str | None,
    latest_at: datetime | None,
    deployment: str | None = None,
    asset_url: str | None = None,
) -> str:
    """One message for a deadline an asset missed: which month was due, by when, and what exists instead."""
    month = due_month(deadline_passed_at)
    headline = f"{_prefix(deployment)}{asset} {month} overdue: not materialized by its deadline ({deadline})"
    if latest_at is None:
        latest = "it was never materialized"
    else:
        stamp = latest_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        latest = f"latest materialization: {latest_month or 'unpartitioned'} at {stamp}"
    return "\n".join([headline, latest] + ([asset_url] if asset_url else []))


def subject(message: str) -> str:
    """The headline as an SNS subject: printable ASCII, at most 100 characters."""
    headline = message.splitlines()[0] if message else "deploy_assets notification"
    ascii_only = "".join(c if 32 <= ord(c) < 127 else "?" for c in headline)
    return ascii_only if len(ascii_only) <= SUBJECT_LIMIT else ascii_only[: SUBJECT_LIMIT - 3] + "..."
