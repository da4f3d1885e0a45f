"""What the CLI and the API call: validate, publish, pause, resume, archive, status, person.

:func:`status` is the funnel of a journey: people who entered, who are on each step now,
who went through each step, how the journey ended for each (by reason), the goals reached
(conversions) and, for each split, every path against its control path (conversion to the
goal, a test of two proportions from :mod:`surmesure.learn.frequentist`).
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from surmesure.errors import InvalidInput
from surmesure.journeys import published
from surmesure.journeys.document import JourneyDefinition
from surmesure.journeys.steps import SplitStep
from surmesure.learn.frequentist import compare
from surmesure.learn.moments import Moments
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import find_person

ACTIONS = {"pause": "paused", "resume": "active", "archive": "archived"}


def validate(store: Store, path: Path) -> JourneyDefinition:
    return published.validate(store, path)


def publish_file(store: Store, path: Path, now: datetime) -> published.Published:
    return published.publish(store, published.load_file(path), now)


def name_of(file_or_name: str) -> str:
    """A journey's name, given as such or as the path of its document."""
    path = Path(file_or_name)
    if path.suffix in (".yaml", ".yml", ".json") and path.exists():
        return published.load_file(path).name
    return file_or_name


def change(store: Store, file_or_name: str, action: str, now: datetime) -> dict[str, str]:
    if action not in ACTIONS:
        raise InvalidInput(
            f"Unknown action {action!r}.", field="ACTION", hint="use pause, resume or archive"
        )
    name = name_of(file_or_name)
    before = published.set_status(store, name, ACTIONS[action], now)
    return {"name": name, "before": before, "status": ACTIONS[action]}


def migrate(
    store: Store, name: str, now: datetime, from_version: int | None = None
) -> dict[str, Any]:
    """Move the people in flight on older versions (or on ``from_version`` only) to the
    version in force, where their step is still there and of the same kind (their timer
    kept); the others stay on their version. Each move is logged."""
    p, log = schema.journey_people, schema.journey_log
    moved: dict[str, int] = {}
    stayed: dict[str, int] = {}
    with store.begin() as conn:
        current = int(published.head(conn, name).version)
        new = published.version_of(conn, name, current)
        versions = [
            int(r[0])
            for r in conn.execute(
                sa.select(p.c.version)
                .where(p.c.journey == name, p.c.status == "running", p.c.version != current)
                .distinct()
            )
        ]
        for version in sorted(versions):
            if from_version is not None and version != from_version:
                continue
            old = published.version_of(conn, name, version)
            same = [
                step.id
                for step in old.steps
                if step.id in new.by_id and type(new.step(step.id)) is type(step)
            ]
            where = (p.c.journey == name) & (p.c.version == version) & (p.c.status == "running")
            rows = conn.execute(
                sa.select(p.c.person_id, p.c.entry, p.c.step).where(where, p.c.step.in_(same))
            ).all()
            left = conn.execute(
                sa.select(sa.func.count()).select_from(p).where(where, p.c.step.not_in(same))
            ).scalar_one()
            conn.execute(
                p.update().where(where, p.c.step.in_(same)).values(version=current, updated_at=now)
            )
            if rows:
                what = f"migrated from version {version}"
                conn.execute(
                    log.insert(),
                    [
                        {
                            "journey": name,
                            "person_id": r.person_id,
                            "entry": r.entry,
                            "version": current,
                            "step": r.step,
                            "what": what,
                            "logged_at": now,
                        }
                        for r in rows
                    ],
                )
            moved[str(version)] = len(rows)
            stayed[str(version)] = int(left)
    return {"name": name, "version": current, "moved": moved, "stayed": stayed}


def _counts(conn: Any, query: sa.Select[Any]) -> dict[str, int]:
    return {str(r[0]): int(r[1]) for r in conn.execute(query)}


def status(store: Store, name: str) -> dict[str, Any]:
    """The journey's funnel (see the module), as plain JSON data."""
    p, log = schema.journey_people, schema.journey_log
    with store.connect() as conn:
        row = published.head(conn, name)
        definition = published.version_of(conn, name, int(row.version))
        mine = p.c.journey == name
        entered = conn.execute(sa.select(sa.func.count()).select_from(p).where(mine)).scalar_one()
        now_on = _counts(
            conn,
            sa.select(p.c.step, sa.func.count())
            .where(mine, p.c.status == "running")
            .group_by(p.c.step),
        )
        visits = (
            sa.select(log.c.step, log.c.person_id, log.c.entry)
            .where(log.c.journey == name, ~log.c.what.like("ended:%"), ~log.c.what.like("path %"))
            .distinct()
            .subquery()
        )
        through = _counts(conn, sa.select(visits.c.step, sa.func.count()).group_by(visits.c.step))
        ended = _counts(
            conn,
            sa.select(p.c.reason, sa.func.count())
            .where(mine, p.c.status == "done")
            .group_by(p.c.reason),
        )
        versions = _counts(
            conn, sa.select(p.c.version, sa.func.count()).where(mine).group_by(p.c.version)
        )
        splits = {
            step.id: _split(conn, name, step)
            for step in definition.steps
            if isinstance(step, SplitStep)
        }
    order = [s.id for s in definition.steps]
    goals = ended.get("goal", 0)
    return {
        "name": name,
        "version": int(row.version),
        "status": str(row.status),
        "entered": int(entered),
        "running": sum(now_on.values()),
        "steps": [
            {"step": s, "now": now_on.get(s, 0), "through": through.get(s, 0)} for s in order
        ],
        "ended": dict(sorted(ended.items())),
        "goals": goals,
        "conversion": goals / entered if entered else None,
        "by_version": {str(k): v for k, v in sorted(versions.items())},
        "splits": splits,
    }


def _split(conn: Any, name: str, step: SplitStep) -> list[dict[str, Any]]:
    """Each path of a split: people, goals, and its lift over the control path."""
    p, log = schema.journey_people, schema.journey_log
    rows = conn.execute(
        sa.select(
            log.c.what, sa.func.count(), sa.func.sum(sa.case((p.c.reason == "goal", 1), else_=0))
        )
        .select_from(
            log.join(
                p,
                sa.and_(
                    p.c.journey == log.c.journey,
                    p.c.person_id == log.c.person_id,
                    p.c.entry == log.c.entry,
                ),
            )
        )
        .where(log.c.journey == name, log.c.step == step.id, log.c.what.like("path %"))
        .group_by(log.c.what)
    )
    found = {int(str(r[0]).split()[1]): (int(r[1]), int(r[2] or 0)) for r in rows}
    control = next((i for i, path in enumerate(step.split.paths) if path.control), None)
    out = []
    for i, path in enumerate(step.split.paths):
        n, goals = found.get(i, (0, 0))
        item: dict[str, Any] = {
            "path": i,
            "next": path.next,
            "control": path.control,
            "people": n,
            "goals": goals,
            "conversion": goals / n if n else None,
        }
        if control is not None and i != control:
            cn, cg = found.get(control, (0, 0))
            result = compare(Moments.binomial(cn, cg), Moments.binomial(n, goals))
            lift = result.absolute
            item["lift"] = None if math.isnan(lift.estimate) else lift.estimate
            item["p_value"] = None if math.isnan(lift.p_value) else lift.p_value
            item["reason"] = lift.reason
        out.append(item)
    return out


def _entry(r: Any) -> dict[str, Any]:
    """One ``journey_people`` row: an entry of a person in a journey."""
    return {
        "entry": int(r.entry),
        "version": int(r.version),
        "step": str(r.step),
        "status": str(r.status),
        "due_at": r.due_at,
        "reason": r.reason,
        "entered_at": r.entered_at,
    }


def person(store: Store, name: str, ref: str) -> dict[str, Any]:
    """Where one person is in the journey, each time they entered, and every step they went
    through, with why."""
    p, log = schema.journey_people, schema.journey_log
    with store.connect() as conn:
        published.head(conn, name)
        who = find_person(conn, ref)
        entries = [
            _entry(r)
            for r in conn.execute(
                sa.select(p)
                .where(p.c.journey == name, p.c.person_id == who.person_id)
                .order_by(p.c.entry)
            )
        ]
        history = [
            {"entry": int(r.entry), "step": str(r.step), "what": str(r.what), "at": r.logged_at}
            for r in conn.execute(
                sa.select(log.c.entry, log.c.step, log.c.what, log.c.logged_at)
                .where(log.c.journey == name, log.c.person_id == who.person_id)
                .order_by(log.c.logged_at, log.c.entry)
            )
        ]
    return {"journey": name, "person_id": who.person_id, "entries": entries, "history": history}


def journeys_of(store: Store, person_id: int) -> list[dict[str, Any]]:
    """Every journey entry of ``person_id`` (a root person), running ones first, then the
    latest entered: ``{"journey", "entry", "version", "step", "status", "due_at", "reason",
    "held", "entered_at", "last"}``, ``last`` the latest line of the entry's log (what moved
    the person last, and when), ``None`` before any."""
    p, log = schema.journey_people, schema.journey_log
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(p).where(p.c.person_id == person_id).order_by(p.c.entered_at.desc())
        ).all()
        lines = conn.execute(
            sa.select(log.c.journey, log.c.entry, log.c.step, log.c.what, log.c.logged_at)
            .where(log.c.person_id == person_id)
            .order_by(log.c.logged_at)
        ).all()
    last = {(str(r.journey), int(r.entry)): r for r in lines}
    out = []
    for r in rows:
        line = last.get((str(r.journey), int(r.entry)))
        out.append(
            {
                "journey": str(r.journey),
                **_entry(r),
                "held": bool(r.held),
                "last": None
                if line is None
                else {"step": str(line.step), "what": str(line.what), "at": line.logged_at},
            }
        )
    return sorted(out, key=lambda j: j["status"] != "running")
