"""Next-best-action models kept in the store, by name and version (``action_models``).

``uplift actions --save NAME`` keeps the fitted model of each action with the features'
encoding and each action's value and cost (:class:`~surmesure.learn.uplift.saved.ActionModel`);
saving under a name already used makes the next version. A template whose ``next_best_action``
names a model reads its latest version; a version is read once per process and kept. The
fitted models are pickled with their SHA-256, checked before they are read back; they hold
split thresholds and leaf values, no person's data.
"""

from __future__ import annotations

import hashlib
import pickle
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.errors import InvalidInput, NotFound
from surmesure.learn.uplift.saved import ActionModel, from_description
from surmesure.store import schema

TABLE = schema.action_models


def save(
    conn: Connection,
    model: ActionModel,
    at: datetime,
    figures: dict[str, Any] | None = None,
) -> int:
    """Keep ``model`` under its name as the next version; that version."""
    latest = conn.execute(
        sa.select(sa.func.max(TABLE.c.version)).where(TABLE.c.name == model.name)
    ).scalar()
    version = int(latest or 0) + 1
    blob = pickle.dumps(model.models, protocol=pickle.HIGHEST_PROTOCOL)
    conn.execute(
        TABLE.insert().values(
            name=model.name,
            version=version,
            created_at=at,
            description={**model.describe(), "figures": figures or {}},
            models=blob,
            digest=hashlib.sha256(blob).hexdigest(),
        )
    )
    return version


def _latest(conn: Connection, name: str, version: int | None = None) -> tuple[int, str]:
    """The version (default: the latest) of model ``name`` and its digest."""
    query = sa.select(TABLE.c.version, TABLE.c.digest).where(TABLE.c.name == name)
    if version is not None:
        query = query.where(TABLE.c.version == version)
    found = conn.execute(query.order_by(TABLE.c.version.desc()).limit(1)).first()
    if found is None:
        which = "" if version is None else f" version {version}"
        raise NotFound(
            f"There is no next-best-action model {name!r}{which}.",
            field="next_best_action.model",
            hint="save one with `surmesure uplift actions FILE ... --save NAME`",
        )
    return int(found.version), str(found.digest)


def load(conn: Connection, name: str, version: int | None = None) -> ActionModel:
    """Model ``name`` at ``version`` (default: the latest); read once per process and kept,
    by store, name, version and digest (a store emptied and saved again holds another)."""
    wanted, digest = _latest(conn, name, version)
    key = (conn.engine.url.render_as_string(hide_password=True), name, wanted, digest)
    held = _CACHE.get(key)
    if held is None:
        held = _CACHE[key] = _read(conn, name, wanted)
        while len(_CACHE) > 16:
            _CACHE.pop(next(iter(_CACHE)))
    return held


_CACHE: dict[tuple[str, str, int, str], ActionModel] = {}


def _read(conn: Connection, name: str, version: int) -> ActionModel:
    row = conn.execute(
        sa.select(TABLE.c.description, TABLE.c.models, TABLE.c.digest).where(
            TABLE.c.name == name, TABLE.c.version == version
        )
    ).one()  # found by _latest in the same transaction
    blob = bytes(row.models)
    if hashlib.sha256(blob).hexdigest() != row.digest:
        raise InvalidInput(
            f"Next-best-action model {name!r} version {version} does not match its digest.",
            field="next_best_action.model",
            hint="save the model again",
        )
    models = pickle.loads(blob)
    return from_description(name, version, row.description, models)
