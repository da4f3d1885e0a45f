"""Saved experiments: create (or safely update) a definition, read it back, mark its status.

Status goes ``created`` -> ``running`` (at the first recorded assignment, ``started_at``) ->
``stopped``. Timestamps are naive UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.errors import Conflict, NotFound
from surmesure.experiments.definitions import ExperimentDefinition, check_update, parse
from surmesure.store import Store
from surmesure.store.ports import RowLocks
from surmesure.store.schema import experiments


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class SavedExperiment:
    definition: ExperimentDefinition
    status: str
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the definition, status and timestamps (ISO 8601)."""
        return {
            "name": self.definition.name,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "stopped_at": self.stopped_at.isoformat() if self.stopped_at else None,
            "definition": self.definition.document(),
        }


def _definition(value: Any) -> ExperimentDefinition:
    return parse(orjson.loads(value) if isinstance(value, str | bytes) else value)


def _row(conn: Connection, name: str, locks: RowLocks | None = None) -> sa.Row[Any] | None:
    """The experiment's row; held until the transaction ends when ``locks`` is given."""
    query = sa.select(experiments).where(experiments.c.name == name)
    return conn.execute(locks.lock_rows(query) if locks else query).first()


def get(store: Store, name: str, conn: Connection | None = None) -> SavedExperiment:
    """The saved experiment; :class:`NotFound` when there is none of that name."""
    if conn is None:
        with store.connect() as own:
            return get(store, name, own)
    row = _row(conn, name)
    if row is None:
        raise NotFound(
            f"No experiment named {name!r}.",
            field="name",
            hint="create it with `surmesure experiment create FILE`",
        )
    return _saved(row)


def _saved(row: Any) -> SavedExperiment:
    return SavedExperiment(
        _definition(row.definition), row.status, row.created_at, row.started_at, row.stopped_at
    )


def list_all(store: Store) -> list[SavedExperiment]:
    """Every saved experiment, the newest first."""
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(experiments).order_by(experiments.c.created_at.desc(), experiments.c.name)
        ).all()
    return [_saved(r) for r in rows]


def _check_layer(conn: Connection, definition: ExperimentDefinition) -> None:
    """Refuse a layer range that overlaps another live experiment's in the same layer."""
    if definition.layer is None:
        return
    rows = conn.execute(
        sa.select(experiments.c.name, experiments.c.definition).where(
            experiments.c.name != definition.name, experiments.c.status != "stopped"
        )
    )
    for name, document in rows:
        other = _definition(document).layer
        if other is not None and definition.layer.overlaps(other):
            raise Conflict(
                f"Layer {other.name!r} range [{other.start}, {other.end}) is taken by {name!r}.",
                field="layer",
                hint="give this experiment a range of the layer no live experiment covers",
            )


def save(store: Store, definition: ExperimentDefinition, now: datetime | None = None) -> str:
    """Store a new experiment ("created"), or update one when no assigned person would move
    ("updated"), or do nothing for the same definition ("unchanged")."""
    now = now or utcnow()
    with store.begin() as conn:
        row = _row(conn, definition.name, store.backend)
        _check_layer(conn, definition)
        if row is None:
            conn.execute(
                experiments.insert().values(
                    name=definition.name,
                    definition=definition.document(),
                    status="created",
                    created_at=now,
                )
            )
            return "created"
        old = _definition(row.definition)
        if old == definition:
            return "unchanged"
        if row.status == "stopped":
            raise Conflict(
                f"Experiment {definition.name!r} is stopped.",
                field="name",
                hint="create an experiment with a new name",
            )
        check_update(old, definition)
        conn.execute(
            experiments.update()
            .where(experiments.c.name == definition.name)
            .values(definition=definition.document())
        )
        return "updated"


def mark_running(conn: Connection, name: str, now: datetime) -> None:
    conn.execute(
        experiments.update()
        .where(experiments.c.name == name, experiments.c.status == "created")
        .values(status="running", started_at=now)
    )


def stop(store: Store, name: str, now: datetime | None = None) -> SavedExperiment:
    """Stop an experiment: nobody more is assigned; results stay readable."""
    with store.begin() as conn:
        get(store, name, conn)
        conn.execute(
            experiments.update()
            .where(experiments.c.name == name, experiments.c.status != "stopped")
            .values(status="stopped", stopped_at=now or utcnow())
        )
        return get(store, name, conn)
