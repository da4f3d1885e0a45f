"""Erasure inside kept models: a fitted recommendation model (``recommendation_models``) holds
each fitted person's factors, 64 floats derived from their purchases, as the rows of its
``person_factors`` array, aligned with ``person_ids``. Erasing a person rewrites every version
holding them without their row, with its new digest, in the erasure's transaction; a process
that read the old payload reads the new one at its next renewal (the digest names a payload).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.store import schema

IDS, ROWS = "person_ids", ("person_factors",)


def without_people(blob: bytes, nodes: set[int]) -> bytes | None:
    """``blob`` (an ``.npz``) without the rows of ``nodes``; ``None`` when it holds none."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        if IDS not in npz.files:
            return None
        arrays = {name: npz[name] for name in npz.files}
    ids = arrays[IDS]
    keep = ~np.isin(ids, np.fromiter(nodes, np.int64, len(nodes)))
    if keep.all():
        return None
    arrays[IDS] = ids[keep]
    for name in ROWS:
        arrays[name] = arrays[name][keep]
    out = io.BytesIO()
    np.savez_compressed(out, **arrays)
    return out.getvalue()


def erase(conn: Connection, nodes: Iterable[int]) -> int:
    """Rewrite every kept model holding one of ``nodes`` without them; how many were."""
    table, wanted = schema.recommendation_models, set(nodes)
    rewritten = 0
    for version in conn.execute(sa.select(table.c.version)).scalars().all():
        blob = conn.execute(sa.select(table.c.payload).where(table.c.version == version)).scalar()
        smaller = None if blob is None else without_people(bytes(blob), wanted)
        if smaller is None:
            continue
        conn.execute(
            table.update()
            .where(table.c.version == version)
            .values(payload=smaller, digest=hashlib.sha256(smaller).hexdigest())
        )
        rewritten += 1
    return rewritten
