"""What a step's checks found, per check and month, and the one failure type a step raises."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# check name → (blocking, description)
CheckSpecs = Mapping[str, tuple[bool, str]]


class StepFailure(Exception):
    """A month's step cannot go on for a reason retrying cannot fix (bad input, a missing model); `cause` says
    what, `metadata` the numbers that show it."""

    def __init__(self, cause: str, **metadata) -> None:
        super().__init__(cause)
        self.cause, self.metadata = cause, metadata


@dataclass
class Findings:
    """Per check and month: the numbers the UI plots (`{"skipped": why}` when there was nothing to evaluate) and,
    for a check that failed, what failed."""

    numbers: dict[str, dict[str, dict]] = field(default_factory=dict)
    problems: dict[str, dict[str, str]] = field(default_factory=dict)

    def measured(self, check: str, month: str, **values) -> None:
        self.numbers.setdefault(check, {}).setdefault(month, {}).update(values)

    def failed(self, check: str, month: str, problem: str) -> None:
        self.problems.setdefault(check, {})[month] = problem

    def update(self, other: Findings) -> None:
        for check, months in other.numbers.items():
            for month, values in months.items():
                self.measured(check, month, **values)
        for check, months in other.problems.items():
            for month, problem in months.items():
                self.failed(check, month, problem)

    def blocking_failure(self, checks: CheckSpecs) -> tuple[str, str, str] | None:
        """(check, month, problem) of the first failed blocking check, or None."""
        for name, (blocking, _) in checks.items():
            if blocking and self.problems.get(name):
                month, problem = next(iter(self.problems[name].items()))
                return name, month, problem
        return None
