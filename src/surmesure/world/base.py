"""What every part of the demo world shares: its size and seed, its calendar, and random
streams that depend on nothing but the seed.

Times are whole seconds since the Unix epoch, naive UTC (the importers read a time without a
zone as UTC). Each part draws from its own named stream, so changing how one file is generated
never changes the others.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

DEFAULT_END = date(2026, 10, 31)
"""Last day of the default world: fixed, so the same seed gives the same files any day."""

DAY = 86_400
WEEKDAY = np.array([0.9, 0.9, 1.0, 1.0, 1.1, 1.45, 0.65])  # Monday .. Sunday
MONTH = np.array([0.95, 0.75, 0.85, 0.9, 0.95, 0.95, 1.0, 0.75, 0.9, 0.95, 1.2, 1.0])
STORE_HOURS = np.array(
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 5, 8, 9, 7, 6, 7, 8, 9, 9, 6, 1, 0, 0, 0], dtype=float
)
WEB_HOURS = np.array(
    [2, 1, 1, 0.5, 0.5, 0.5, 1, 2, 3, 4, 4, 5, 6, 6, 5, 5, 5, 6, 7, 8, 9, 9, 7, 4], dtype=float
)


@dataclass(frozen=True)
class Spec:
    """A world: ``customers`` true customers, drawn from ``seed``, over the ``months`` calendar
    months that end with the month of ``end`` (the last day, included)."""

    customers: int
    seed: int = 7
    months: int = 15
    end: date = DEFAULT_END

    def __post_init__(self) -> None:
        if self.customers < 100:
            raise ValueError(f"customers is {self.customers}; a world needs at least 100")
        if not 12 <= self.months <= 60:
            raise ValueError(f"months is {self.months}; use 12 to 60 months")

    @property
    def start(self) -> date:
        """First day of the window."""
        index = self.end.year * 12 + self.end.month - 1 - (self.months - 1)
        return date(index // 12, index % 12 + 1, 1)

    @property
    def start_ts(self) -> int:
        return seconds(self.start)

    @property
    def end_ts(self) -> int:
        """The first second after the window."""
        return seconds(self.end + timedelta(days=1))

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def rng(self, stream: str) -> np.random.Generator:
        """The random stream ``stream`` of this world."""
        return np.random.default_rng([self.seed, zlib.crc32(stream.encode())])


def seconds(day: date) -> int:
    return int((datetime(day.year, day.month, day.day) - datetime(1970, 1, 1)).total_seconds())


def _weekday_of_month(year: int, month: int, weekday: int, nth: int) -> date:
    """The ``nth`` (1-based; -1 for the last) ``weekday`` (Monday 0) of a month."""
    if nth > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1))
    following = date(year + month // 12, month % 12 + 1, 1)
    last = following - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


@dataclass(frozen=True)
class Calendar:
    """Per day of the window: the demand factor and whether prices are reduced.

    Demand follows the French retail year: Black Friday week, the weeks before Christmas, the
    winter sales (from the second Wednesday of January, four weeks) and the summer sales (from
    the last Wednesday of June, four weeks), quiet February and August, busy Saturdays.
    """

    days: np.ndarray  # datetime64[D]
    demand: np.ndarray
    sales: np.ndarray  # bool: winter or summer sales
    black_friday: np.ndarray  # bool

    @classmethod
    def of(cls, spec: Spec) -> Calendar:
        days = np.arange(
            np.datetime64(spec.start, "D"), np.datetime64(spec.end, "D") + 1, dtype="datetime64[D]"
        )
        months = days.astype("datetime64[M]").astype(int) % 12
        weekday = (days.astype(int) + 3) % 7
        demand = MONTH[months] * WEEKDAY[weekday]
        sales = np.zeros(len(days), bool)
        black_friday = np.zeros(len(days), bool)
        for year in range(spec.start.year, spec.end.year + 1):
            for begin in (
                _weekday_of_month(year, 1, 2, 2),
                _weekday_of_month(year, 6, 2, -1),
            ):
                sales |= (days >= np.datetime64(begin)) & (
                    days < np.datetime64(begin + timedelta(days=28))
                )
            friday = _weekday_of_month(year, 11, 3, 4) + timedelta(days=1)
            black_friday |= (days >= np.datetime64(friday - timedelta(days=3))) & (
                days <= np.datetime64(friday + timedelta(days=3))
            )
            christmas = (days >= np.datetime64(date(year, 12, 1))) & (
                days <= np.datetime64(date(year, 12, 24))
            )
            demand = np.where(christmas, demand * 2.1, demand)
        demand = np.where(sales, demand * 1.5, demand)
        demand = np.where(black_friday, demand * 1.9, demand)
        return cls(days, demand, sales, black_friday)

    def day_index(self, ts: np.ndarray, spec: Spec) -> np.ndarray:
        return np.asarray(np.clip((ts - spec.start_ts) // DAY, 0, len(self.days) - 1))


def time_of_day(rng: np.random.Generator, count: int, hours: np.ndarray) -> np.ndarray:
    """Seconds after midnight, the hour drawn from the weights ``hours``."""
    hour = rng.choice(24, size=count, p=hours / hours.sum())
    return hour * 3600 + rng.integers(0, 3600, size=count)
