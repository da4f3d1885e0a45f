"""An entry of the shared serving cache (:mod:`surmesure.decide.shared_cache`) as JSON text:
what the cache keeps of a root person (:class:`~surmesure.unify.reader.PersonRead`), the
lookup identifiers they hold and the people merged into them; times as ISO text (naive UTC,
as the store keeps them), ``as_of`` as read (a date, or a timestamp).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import orjson

from surmesure.domain.traits import Observation
from surmesure.protect.consent import Record
from surmesure.protect.marketing import Preference
from surmesure.unify.people_read import PeopleRead
from surmesure.unify.reader import PersonRead


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def encode(found: PeopleRead, pid: int, metrics: frozenset[str]) -> str:
    read = found.reads[pid]
    data = {
        "metrics": sorted(metrics),
        "c": [
            [c.purpose, c.channel, c.granted, c.recorded_at, c.consent_id] for c in read.consents
        ],
        "o": [[o.name, o.value, o.source, o.observed_at, o.reliability] for o in read.observations],
        "s": sorted(read.segments),
        "m": {name: [list(r) for r in rows] for name, rows in read.metrics.items()},
        "e": read.seen,
        "p": [
            [p.kind, p.name, p.value, p.until, p.recorded_at, p.preference_id]
            for p in read.preferences
        ],
        "i": [list(k) for k, holder in found.identifiers.items() if holder == pid],
        "a": [a for a, into in found.absorbed.items() if into == pid],
    }
    return orjson.dumps(data, default=str).decode()


def decode(pid: int, data: dict[str, Any]) -> tuple[PersonRead, list[tuple[str, str]], list[int]]:
    read = PersonRead(
        pid,
        consents=[Record(p, ch, bool(g), when(t), cid) for p, ch, g, t, cid in data["c"]],
        observations=[Observation(n, v, s, when(t), float(r)) for n, v, s, t, r in data["o"]],
        segments=frozenset(data["s"]),
        metrics={
            name: [(str(on), when(at), _day(of), value) for on, at, of, value in rows]
            for name, rows in data["m"].items()
        },
        seen={c: when(t) for c, t in data["e"].items()},
        preferences=[
            Preference(k, n, v, None if u is None else when(u), when(t), i)
            for k, n, v, u, t, i in data["p"]
        ],
    )
    return read, [(str(k), str(v)) for k, v in data["i"]], [int(a) for a in data["a"]]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _day(text: str) -> Any:
    """``as_of`` as it was read: a date, or a timestamp."""
    return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
