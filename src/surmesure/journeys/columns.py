"""A batch of people's journey states, and the facts read about them, as columns (one array per
field): what the worker reads from the store and hands to :func:`.columnar.advance`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from surmesure.journeys import engine
from surmesure.journeys.document import JourneyDefinition
from surmesure.journeys.engine import Facts, State

Column = np.ndarray


@dataclass(frozen=True)
class People:
    """States of people on one journey version, one array per field of :class:`.engine.State`
    (``reason`` aside: only running people are stepped). Text, times and products are object
    arrays (``None`` where missing)."""

    person_id: Column
    entry: Column
    step: Column
    status: Column
    entered_at: Column
    due_at: Column
    product: Column
    held: Column

    def __len__(self) -> int:
        return int(self.person_id.size)

    def state(self, i: int) -> State:
        return State(
            int(self.person_id[i]),
            int(self.entry[i]),
            self.step[i],
            self.status[i],
            self.entered_at[i],
            self.due_at[i],
            self.product[i],
            bool(self.held[i]),
        )

    @classmethod
    def of(cls, states: Sequence[State]) -> People:
        """From states (the per-person form)."""
        return cls.from_rows(
            [
                (s.person_id, s.entry, s.step, s.status, s.entered_at, s.due_at, s.product, s.held)
                for s in states
            ]
        )

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[object]]) -> People:
        """From rows of ``(person_id, entry, step, status, entered_at, due_at, product,
        held)``."""
        return cls.from_columns(list(zip(*rows, strict=True)) if rows else [()] * 8)

    @classmethod
    def from_columns(cls, columns: Sequence[Sequence[object]]) -> People:
        """From the columns of :meth:`from_rows`."""
        return cls(
            np.asarray(columns[0], dtype=np.int64),
            np.asarray(columns[1], dtype=np.int64),
            objects(columns[2]),
            objects(columns[3]),
            objects(columns[4]),
            objects(columns[5]),
            objects(columns[6]),
            np.asarray(columns[7], dtype=bool),
        )

    @classmethod
    def entering(
        cls,
        definition: JourneyDefinition,
        person_id: Column,
        entry: Column,
        product: Column,
        now: datetime,
    ) -> People:
        """People starting the journey at ``now`` (before its first step is run)."""
        n = int(person_id.size)
        return cls(
            np.asarray(person_id, dtype=np.int64),
            np.asarray(entry, dtype=np.int64),
            filled(n, definition.first),
            filled(n, "running"),
            filled(n, now),
            filled(n, None),
            objects(product),
            np.zeros(n, dtype=bool),
        )

    def take(self, index: Column) -> People:
        return People(
            self.person_id[index],
            self.entry[index],
            self.step[index],
            self.status[index],
            self.entered_at[index],
            self.due_at[index],
            self.product[index],
            self.held[index],
        )


@dataclass(frozen=True)
class BatchFacts:
    """:class:`.engine.Facts` as columns, aligned with a :class:`People`."""

    conditions: dict[str, Column]
    """Branch step id -> whether its condition holds for each person."""
    out_of_stock: Column
    zone: Column
    """Each person's time zone (object array, ``None`` where unknown)."""

    def at(self, i: int) -> Facts:
        held = frozenset(step for step, mask in self.conditions.items() if mask[i])
        stock_out = bool(self.out_of_stock[i])
        zone = self.zone[i]
        if not held and not stock_out and zone is None:
            return engine.NO_FACTS
        return Facts(conditions=held, out_of_stock=stock_out, zone=zone)

    def take(self, index: Column) -> BatchFacts:
        conditions = {step: mask[index] for step, mask in self.conditions.items()}
        return BatchFacts(conditions, self.out_of_stock[index], self.zone[index])

    @classmethod
    def none(cls, n: int) -> BatchFacts:
        return cls({}, np.zeros(n, dtype=bool), filled(n, None))


def objects(values: Sequence[object] | Column) -> Column:
    out = filled(len(values), None)
    out[:] = list(values)
    return out


def filled(n: int, value: object) -> Column:
    out = np.empty(n, dtype=object)
    out[:] = [value] * n
    return out
