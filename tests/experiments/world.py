"""A small world for experiment tests: people, outcomes with known times, and the per-person
metrics computed independently in NumPy from the same records (no SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from surmesure.experiments.definitions import ExperimentDefinition, parse
from surmesure.learn.moments import Moments
from surmesure.store import Store
from surmesure.store.schema import channel_activity, events, identifiers, orders, people

T0 = datetime(2026, 3, 1, 9, 0, 0)
DAY = timedelta(days=1)


def definition(**overrides: Any) -> ExperimentDefinition:
    doc: dict[str, Any] = {
        "name": "welcome_offer",
        "variants": [
            {"name": "control", "weight": 0.3},
            {"name": "offer", "weight": 0.3},
            {"name": "offer_plus", "weight": 0.3},
        ],
        "control": "control",
        "holdout": 0.1,
        "primary": "conversion",
        "guardrails": ["visit", "revenue", "unsubscribe"],
        "attribution_days": 7,
        "cuped": True,
    }
    doc.update(overrides)
    return parse(doc)


def add_people(
    store: Store,
    ids: list[int],
    merged: dict[int, int] | None = None,
    kind: str = "customer_id",
) -> None:
    """People ``ids``, each holding one identifier of ``kind`` (``C<id>`` or ``A<id>``)."""
    merged = merged or {}
    created = pa.array([T0 - 30 * DAY] * len(ids), pa.timestamp("us"))
    prefix = "A" if kind == "anonymous_id" else "C"
    with store.begin() as conn:
        store.bulk_insert(
            conn,
            people,
            pa.table(
                {
                    "person_id": pa.array(ids, pa.int64()),
                    "merged_into": pa.array([merged.get(i) for i in ids], pa.int64()),
                    "created_at": created,
                    "updated_at": created,
                }
            ),
        )
        store.bulk_insert(
            conn,
            identifiers,
            pa.table(
                {
                    "kind": [kind] * len(ids),
                    "value": [f"{prefix}{i}" for i in ids],
                    "person_id": pa.array(ids, pa.int64()),
                    "node_id": pa.array(ids, pa.int64()),
                    "source": ["crm"] * len(ids),
                    "first_seen_at": created,
                }
            ),
        )


@dataclass
class Outcomes:
    """Records as plain lists: (person, time, kind) and (person, time, is_return, amount)."""

    events: list[tuple[int, datetime, str]]
    orders: list[tuple[int, datetime, bool, float]]
    unsubscribes: list[tuple[int, datetime]]


def add_outcomes(store: Store, out: Outcomes) -> None:
    us = pa.timestamp("us")
    with store.begin() as conn:
        store.bulk_insert(
            conn,
            events,
            pa.table(
                {
                    "message_id": [f"m{i}" for i in range(len(out.events))],
                    "type": [k for _, _, k in out.events],
                    "event": ["Viewed" if k == "track" else None for _, _, k in out.events],
                    "person_id": pa.array([p for p, _, _ in out.events], pa.int64()),
                    "occurred_at": pa.array([t for _, t, _ in out.events], us),
                    "received_at": pa.array([t for _, t, _ in out.events], us),
                    "source": ["web"] * len(out.events),
                }
            ),
        )
        store.bulk_insert(
            conn,
            orders,
            pa.table(
                {
                    "order_id": [f"o{i}" for i in range(len(out.orders))],
                    "person_id": pa.array([o[0] for o in out.orders], pa.int64()),
                    "ordered_at": pa.array([o[1] for o in out.orders], us),
                    "is_return": pa.array([o[2] for o in out.orders], pa.bool_()),
                    "total_amount": pa.array([o[3] for o in out.orders], pa.float64()),
                    "source": ["shop"] * len(out.orders),
                }
            ),
        )
        store.bulk_insert(
            conn,
            channel_activity,
            pa.table(
                {
                    "activity_id": [f"c{i}" for i in range(len(out.unsubscribes))],
                    "person_id": pa.array([p for p, _ in out.unsubscribes], pa.int64()),
                    "channel": ["email"] * len(out.unsubscribes),
                    "kind": ["unsubscribed"] * len(out.unsubscribes),
                    "occurred_at": pa.array([t for _, t in out.unsubscribes], us),
                    "source": ["email"] * len(out.unsubscribes),
                }
            ),
        )


def random_outcomes(ids: list[int], seed: int = 7) -> Outcomes:
    """Outcomes spread from 12 days before T0 to 12 days after, with a lift for 'offer'
    people of even id (it does not matter who they are: the test recomputes everything)."""
    rng = np.random.default_rng(seed)
    evs: list[tuple[int, datetime, str]] = []
    ods: list[tuple[int, datetime, bool, float]] = []
    uns: list[tuple[int, datetime]] = []

    def when() -> datetime:
        return T0 + timedelta(seconds=int(rng.integers(-12 * 86400, 12 * 86400)))

    for pid in ids:
        for _ in range(int(rng.poisson(1.5))):
            evs.append((pid, when(), str(rng.choice(["page", "track", "identify"]))))
        for _ in range(int(rng.poisson(0.6 + 0.3 * (pid % 2)))):
            is_return = bool(rng.random() < 0.2)
            amount = round(float(rng.gamma(2.0, 30.0)), 2)
            # returns arrive with either sign: the metric counts them negative
            signed = -amount if is_return and rng.random() < 0.5 else amount
            ods.append((pid, when(), is_return, signed))
        if rng.random() < 0.08:
            uns.append((pid, when()))
    return Outcomes(evs, ods, uns)


def per_person(
    out: Outcomes, assigned: dict[int, datetime], days: int, metric: str, before: bool = False
) -> dict[int, float]:
    """The metric of each assigned person over [at, at + days) (or [at - days, at))."""
    span = timedelta(days=days)

    def inside(person: int, t: datetime) -> bool:
        at = assigned[person]
        return at - span <= t < at if before else at <= t < at + span

    value = dict.fromkeys(assigned, 0.0)
    if metric == "visit":
        for p, t, k in out.events:
            if p in assigned and k in ("page", "track") and inside(p, t):
                value[p] = 1.0
    elif metric == "conversion":
        for p, t, r, _ in out.orders:
            if p in assigned and not r and inside(p, t):
                value[p] = 1.0
    elif metric == "revenue":
        for p, t, r, a in out.orders:
            if p in assigned and inside(p, t):
                value[p] += -abs(a) if r else a
    elif metric == "unsubscribe":
        for p, t in out.unsubscribes:
            if p in assigned and inside(p, t):
                value[p] = 1.0
    return value


def expected_moments(
    out: Outcomes,
    variant_of: dict[int, str],
    assigned: dict[int, datetime],
    d: ExperimentDefinition,
    metric: str,
) -> dict[str, Moments]:
    y = per_person(out, assigned, d.attribution_days, metric)
    x = per_person(out, assigned, d.attribution_days, metric, before=True)
    kind = "binomial" if metric in ("visit", "conversion", "unsubscribe") else "mean"
    result = {}
    for v in d.variants:
        who = [p for p, name in variant_of.items() if name == v.name]
        ys = np.array([y[p] for p in who], dtype=np.float64)
        xs = np.array([x[p] for p in who], dtype=np.float64) if d.cuped else None
        result[v.name] = Moments.of(ys, xs, kind=kind)  # type: ignore[arg-type]
    return result
