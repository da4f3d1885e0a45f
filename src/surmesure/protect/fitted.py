"""Erasure inside kept models: a fitted recommendation model (``recommendation_models``) holds
each fitted person's factors, 64 floats derived from their purchases, as the rows of its
``person_factors`` array, aligned with ``person_ids``. Erasing a person rewrites every version
holding them without their row, with its new digest, in the erasure's transaction; a process
that read the old payload reads the new one at its next renewal (the digest names a payload).
A version found tampered with or unreadable is deleted, never given a new digest.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
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
    """Rewrite every kept model holding one of ``nodes`` without them; how many were. A
    version whose payload does not match its digest, or is not one, is deleted: it could not
    be served, it may hold them, and a digest made again would vouch for what was changed."""
    table, wanted = schema.recommendation_models, set(nodes)
    rewritten = 0
    for version in conn.execute(sa.select(table.c.version)).scalars().all():
        row = conn.execute(
            sa.select(table.c.payload, table.c.digest).where(table.c.version == version)
        ).one()
        blob = None if row.payload is None else bytes(row.payload)
        try:
            if blob is None or hashlib.sha256(blob).hexdigest() != row.digest:
                raise ValueError("not the payload its digest names")
            smaller = without_people(blob, wanted)
        except (ValueError, KeyError, IndexError, OSError, zipfile.BadZipFile):
            conn.execute(table.delete().where(table.c.version == version))
            rewritten += 1
            continue
        if smaller is None:
            continue
        conn.execute(
            table.update()
            .where(table.c.version == version)
            .values(payload=smaller, digest=hashlib.sha256(smaller).hexdigest())
        )
        rewritten += 1
    return rewritten
