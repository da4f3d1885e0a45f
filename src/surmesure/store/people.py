"""Whom a bulk command (``recommend --all``, ``experiment assign --all``) addresses.

By default the identified people: current people (not merged into another) holding at least
one identifier a person gives (customer id, e-mail, phone, loyalty card). People known only by
anonymous ids (web devices) join them when asked. Ids come sorted ascending.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sqlalchemy.engine import Connection

from surmesure.store.engine import Store

CURRENT = "SELECT person_id FROM people WHERE merged_into IS NULL ORDER BY person_id"
IDENTIFIED = (
    "SELECT p.person_id FROM people p WHERE p.merged_into IS NULL AND EXISTS ("
    "SELECT 1 FROM identifiers i WHERE i.person_id = p.person_id AND i.kind <> 'anonymous_id'"
    ") ORDER BY p.person_id"
)


def bulk_audience(
    store: Store, conn: Connection, *, anonymous: bool = False
) -> npt.NDArray[np.int64]:
    """Identified current people; every current person when ``anonymous``."""
    return ids_of(store, conn, CURRENT if anonymous else IDENTIFIED)


def ids_of(
    store: Store, conn: Connection, sql: str, params: dict[str, object] | None = None
) -> npt.NDArray[np.int64]:
    """The ``person_id`` column (the first) of ``sql`` as an array (fetched as NumPy where the
    driver makes arrays)."""
    return store.backend.fetch_ids(conn, sql, params)
