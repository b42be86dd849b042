"""Month: the one month value of the platform, and all the month arithmetic it needs.

A partition key (`2024-03-01`), a `(year, month)` pair, a date, the label `2024-03` and a TLC file name
(`yellow_tripdata_2024-03.parquet`) are five spellings of one month; code passes a `Month` and spells it at the
edge, so stepping over a year boundary or choosing a training window is written once, here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

# `YYYY-MM`, optionally followed by a day and a time: what a user may type for "the month of this date".
_MONTH_TEXT = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?(?:[T ].*)?$")


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month, ordered in time; `Month(2024, 3) + 1 == Month(2024, 4)`."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1 <= self.year <= 9999:
            raise ValueError(f"no such month: {self.year}-{self.month}")

    # --- from other spellings ---------------------------------------------------------------------------------

    @classmethod
    def from_key(cls, key: str) -> Month:
        """From a partition key `YYYY-MM-01`; any other string raises ValueError."""
        day = date.fromisoformat(key)
        if day.day != 1 or len(key) != 10:
            raise ValueError(f"{key!r} is not a monthly partition key (YYYY-MM-01)")
        return cls(day.year, day.month)

    @classmethod
    def of(cls, day: date | Month) -> Month:
        """The month a date (or datetime) falls in; a Month is itself."""
        return cls(day.year, day.month)

    @classmethod
    def parse(cls, text: str) -> Month:
        """The month of `YYYY-MM`, `YYYY-MM-DD` or `YYYY-MM-DDThh:mm…` (what a user types); ValueError otherwise."""
        match = _MONTH_TEXT.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a month (YYYY-MM) nor a date in one (YYYY-MM-DD)")
        month = cls(int(match.group(1)), int(match.group(2)))
        if match.group(3):
            date(month.year, month.month, int(match.group(3)))  # raises ValueError for 2024-02-30
        return month

    @classmethod
    def from_file_name(cls, name: str, prefix: str) -> Month | None:
        """The month of `<prefix>YYYY-MM.parquet`, None for any other name (other prefix, month 13, suffix)."""
        rest = name.removeprefix(prefix)
        if rest == name or not re.fullmatch(r"\d{4}-\d{2}\.parquet", rest):
            return None
        try:
            return cls(int(rest[:4]), int(rest[5:7]))
        except ValueError:
            return None

    # --- to other spellings -----------------------------------------------------------------------------------

    @property
    def key(self) -> str:
        """The partition key, `YYYY-MM-01`."""
        return f"{self.year:04d}-{self.month:02d}-01"

    @property
    def label(self) -> str:
        """`YYYY-MM`, as the TLC names its files and as messages name a month."""
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def pair(self) -> tuple[int, int]:
        return self.year, self.month

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def start(self) -> datetime:
        """The month's first instant (naive, as TLC timestamps are)."""
        return datetime(self.year, self.month, 1)

    @property
    def end(self) -> datetime:
        """The next month's first instant: a time t is in the month when start <= t < end."""
        return self.next.start

    def file_name(self, prefix: str) -> str:
        """The TLC file of this month for a service's prefix, e.g. `yellow_tripdata_2024-03.parquet`."""
        return f"{prefix}{self.label}.parquet"

    def __str__(self) -> str:
        return self.label

    # --- arithmetic -------------------------------------------------------------------------------------------

    @property
    def index(self) -> int:
        """Months since January of year 0: consecutive months have consecutive indexes."""
        return self.year * 12 + self.month - 1

    @classmethod
    def from_index(cls, index: int) -> Month:
        year, month = divmod(index, 12)
        return cls(year, month + 1)

    def __add__(self, months: int) -> Month:
        if not isinstance(months, int):
            return NotImplemented
        return Month.from_index(self.index + months)

    def __sub__(self, other: int | Month):
        """`month - 3` is a Month; `month - other_month` is the number of months between them."""
        if isinstance(other, Month):
            return self.index - other.index
        if isinstance(other, int):
            return self + -other
        return NotImplemented

    @property
    def next(self) -> Month:
        return self + 1

    @property
    def previous(self) -> Month:
        return self - 1

    def through(self, last: Month) -> list[Month]:
        """The months from this one to `last`, both included (empty when `last` is earlier)."""
        return [self + offset for offset in range(last - self + 1)]

    def span(self, count: int) -> list[Month]:
        """This month and the `count - 1` months after it."""
        return self.through(self + (count - 1))

    def training_window(self, months: int, first: Month) -> list[Month]:
        """The `months` months before this one, oldest first, without those before `first` (the first partition)."""
        return max(self - months, first).through(self.previous)
