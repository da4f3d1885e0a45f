"""One array parameter in place of a parameter per id: the same rows, on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import sqlalchemy as sa

from surmesure.store import Store, schema
from surmesure.store.among import among_ids, among_texts

T0 = datetime(2026, 3, 2, 10)


def test_among_picks_exactly_the_values_given(store: Store) -> None:
    ids = list(range(1, 2001))
    times = pa.array([T0] * len(ids), pa.timestamp("us"))
    with store.begin() as conn:
        store.bulk_insert(
            conn,
            schema.people,
            pa.table({"person_id": ids, "merged_into": pa.nulls(len(ids), pa.int64()),
                      "created_at": times, "updated_at": times}),
        )  # fmt: skip
    p = schema.people
    wanted = [*range(3, 2001, 7), 99_999]  # one unknown id
    with store.connect() as conn:
        found = conn.execute(sa.select(p.c.person_id).where(among_ids(p.c.person_id, wanted)))
        assert sorted(int(r[0]) for r in found) == list(range(3, 2001, 7))
        none = conn.execute(sa.select(sa.func.count()).where(among_ids(p.c.person_id, [])))
        assert none.scalar_one() == 0
        texts = sa.cast(p.c.person_id, sa.Text)
        some = conn.execute(sa.select(p.c.person_id).where(among_texts(texts, ["5", "12", "x"])))
        assert sorted(int(r[0]) for r in some) == [5, 12]
