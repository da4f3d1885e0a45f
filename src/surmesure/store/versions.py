"""Versioned documents (segments, campaigns): a table of heads (name, version in force,
created_at, updated_at) and a table of every version (name, version, definition, created_at)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def add_version(
    conn: Connection,
    heads: sa.Table,
    versions: sa.Table,
    name: str,
    document: dict[str, Any],
    now: datetime,
    current: int | None,
) -> int:
    """Store ``document`` as the next version of ``name`` (``current`` is the one in force,
    ``None`` for a new name) and make it the one in force; returns its number."""
    version = 1 if current is None else current + 1
    conn.execute(
        versions.insert().values(name=name, version=version, definition=document, created_at=now)
    )
    if current is None:
        conn.execute(
            heads.insert().values(name=name, version=version, created_at=now, updated_at=now)
        )
    else:
        conn.execute(
            heads.update().where(heads.c.name == name).values(version=version, updated_at=now)
        )
    return version
