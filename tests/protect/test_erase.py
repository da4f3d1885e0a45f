"""Erasure and export of one person, driven by the schema's personal tags, on both stores."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from import_helpers import quarantined
from person_world import ANA, BO, count_where, import_world, person_of, write_world

from surmesure.errors import InvalidInput, NotFound
from surmesure.protect import blind
from surmesure.protect.erase import erase_person
from surmesure.protect.export import export_person
from surmesure.store import Store, schema
from surmesure.unify.profile import find_person

NODE_COLUMNS = {"person_id", "node_id", "merged_into"}


def _node_columns(table: sa.Table) -> list[str]:
    tag = table.info.get("personal") or ""
    named = {c.strip() for c in tag.split(",")} if "," in tag else set()
    return sorted(c.name for c in table.c if c.name in NODE_COLUMNS | named)


def _text_columns(table: sa.Table) -> list[str]:
    return [c.name for c in table.c if isinstance(c.type, sa.String | sa.Text | sa.JSON)]


def _sales(store: Store) -> tuple[int, float]:
    with store.connect() as conn:
        n, total = conn.execute(sa.text("SELECT count(*), sum(total_amount) FROM orders")).one()
    return int(n), float(total)


def _holds(record: dict[str, object], value: str) -> bool:
    """Whether a quarantined record, opened, holds ``value``."""
    return value.lower() in orjson.dumps(record["payload"]).decode().lower()


def _rows_of(store: Store, person: int) -> dict[str, int]:
    tables = [t for t in schema.metadata.sorted_tables if "person_id" in t.c]
    return {t.name: count_where(store, t.name, "person_id = :p", p=person) for t in tables}


def test_erase_leaves_no_trace_of_the_person(store: Store, tmp_path: Path) -> None:
    import_world(store, write_world(tmp_path))
    ana, bo = person_of(store, "email", ANA["email"]), person_of(store, "email", BO["email"])
    with store.connect() as conn:
        nodes = find_person(conn, f"customer_id:{ANA['customer_id']}").nodes
    assert len(nodes) == 2 and ana in nodes  # the shop and CRM records were merged
    bo_before = _rows_of(store, bo)
    sales_before = _sales(store)
    hers = [r["quarantine_id"] for r in quarantined(store) if _holds(r, ANA["email"])]
    assert len(hers) == 1 and count_where(store, "person_keys", "node_id = :n", n=-hers[0]) == 1

    erasure = erase_person(store, f"email:{ANA['email']}", confirmed=True)

    assert erasure.person_id == ana
    assert erasure.deleted["people"] == 2
    assert erasure.deleted["identifiers"] == 4
    assert erasure.deleted["merges"] == 1
    assert erasure.deleted["quarantine"] == 1
    assert erasure.records_shredded == 1  # that record's own key went with it
    assert count_where(store, "person_keys", "node_id = :n", n=-hers[0]) == 0
    assert erasure.detached == {"orders": 3}
    offending: list[str] = []
    with store.connect() as conn:
        for table in schema.metadata.sorted_tables:
            for column in _node_columns(table):
                n = conn.execute(
                    sa.select(sa.func.count()).select_from(table).where(table.c[column].in_(nodes))
                ).scalar_one()
                if n:
                    offending.append(f"{table.name}.{column}: {n} rows")
            for column in _text_columns(table):
                text = sa.func.lower(sa.cast(table.c[column], sa.Text))
                for value in (*ANA.values(), "06 12 34 56 78"):
                    n = conn.execute(
                        sa.select(sa.func.count())
                        .select_from(table)
                        .where(text.contains(value.lower()))
                    ).scalar_one()
                    if n:
                        offending.append(f"{table.name}.{column} holds {value}")
    assert offending == []
    assert _rows_of(store, bo) == bo_before
    assert [_holds(r, "Bo.Durand") for r in quarantined(store)].count(True) == 1
    assert _sales(store) == sales_before  # detached orders still count
    assert count_where(store, "orders", "person_id IS NULL AND customer_ref IS NULL") == 4
    assert count_where(store, "order_lines", "order_id = 'A-1001'") == 2
    with pytest.raises(NotFound):
        erase_person(store, str(ana), confirmed=True)


def test_erase_refuses_without_confirmation(store: Store, tmp_path: Path) -> None:
    import_world(store, write_world(tmp_path))
    with pytest.raises(InvalidInput) as caught:
        erase_person(store, f"email:{ANA['email']}", confirmed=False)
    assert caught.value.hint == "add --yes to confirm"
    assert (
        count_where(store, "identifiers", "value = :v", v=blind.index(store, "email", ANA["email"]))
        == 1
    )


def test_export_holds_every_personal_table_the_person_is_in(store: Store, tmp_path: Path) -> None:
    import_world(store, write_world(tmp_path))
    out = tmp_path / "ana.json"
    export = export_person(store, f"phone:{ANA['phone']}", out=out)
    ana = person_of(store, "email", ANA["email"])
    assert export.person_id == ana
    expected = set()
    with store.connect() as conn:
        for table in schema.personal_tables():
            if table.name in {"quarantine", "order_lines"}:
                continue
            columns = _node_columns(table)
            where = sa.or_(*(table.c[c].in_(export.nodes) for c in columns))
            if conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar():
                expected.add(table.name)
    assert expected >= {"people", "identifiers", "traits", "merges", "orders", "consents"}
    assert set(export.tables) == expected | {"order_lines", "quarantine"}
    assert export.counts()["order_lines"] == 4
    (held,) = export.tables["quarantine"]
    assert held["payload"]["email"] == " ANA.MARTIN@example.org"
    assert {o["order_id"] for o in export.tables["orders"]} == {"A-1001", "A-1002", "R-1003"}
    document = orjson.loads(out.read_bytes())
    assert document["person_id"] == ana
    assert sorted(c["recorded_at"] for c in document["tables"]["consents"]) == [
        "2024-01-01T08:00:00",
        "2024-02-01T08:00:00",
    ]
    assert {i["value"] for i in document["tables"]["identifiers"]} == set(ANA.values())


def test_unknown_person_is_not_found_with_a_hint(store: Store, tmp_path: Path) -> None:
    import_world(store, write_world(tmp_path))
    with pytest.raises(NotFound) as caught:
        export_person(store, "email:nobody@example.org")
    assert caught.value.hint and "kind:value" in caught.value.hint
    with pytest.raises(InvalidInput):
        export_person(store, "nickname:ana")


def test_erase_removes_the_persons_factors_from_kept_models(store: Store, tmp_path: Path) -> None:
    """A kept recommendation model holds each fitted person's factors: every version holding
    the erased person is rewritten without them; the others' factors and the model still read."""
    import numpy as np
    from scipy.sparse import csr_matrix

    from surmesure.decide.recommend import kept
    from surmesure.decide.recommend.learned import Learned

    import_world(store, write_world(tmp_path))
    ana, bo = person_of(store, "email", ANA["email"]), person_of(store, "email", BO["email"])
    with store.connect() as conn:
        (absorbed,) = set(find_person(conn, f"email:{ANA['email']}").nodes) - {ana}
    rng = np.random.default_rng(7)
    # a model fitted before Ana's two records were merged holds a row for each of them
    people = [ana, bo, 10_000, absorbed]
    factors = rng.random((4, 4), dtype=np.float32)
    learned = Learned(
        codes=("A", "B"),
        index={"A": 0, "B": 1},
        similarity=csr_matrix(np.eye(2)),
        item_factors=rng.random((2, 4), dtype=np.float32),
        person_row={p: i for i, p in enumerate(people)},
        person_factors=factors,
        regularization=0.05,
    )
    at = datetime(2026, 1, 1)
    blob = kept.payload(learned, None)
    with store.begin() as conn:  # as kept then (saving now would leave out who is gone)
        for version in (1, 2):
            conn.execute(
                kept.TABLE.insert().values(
                    version=version, fitted_at=at, as_of=at, data_until=None, payload=blob,
                    digest=hashlib.sha256(blob).hexdigest(), metrics={},
                )
            )  # fmt: skip

    erasure = erase_person(store, f"email:{ANA['email']}", confirmed=True)

    assert erasure.deleted["recommendation_models.person_factors"] == 2
    kept.forget()
    with store.connect() as conn:
        version = kept.latest(conn, at)
        assert version is not None
        read = kept.load(store, conn, version).learned  # its digest is the new payload's
    assert read is not None
    assert set(read.person_row) == {bo, 10_000}  # both of Ana's rows are gone
    assert np.array_equal(read.factors_of(bo), factors[1])
    assert np.array_equal(read.factors_of(10_000), factors[2])
    again = erase_person(store, f"email:{BO['email']}", confirmed=True)
    assert again.deleted["recommendation_models.person_factors"] == 2


def test_erase_deletes_a_kept_model_tampered_with_rather_than_vouch_for_it(
    store: Store, tmp_path: Path
) -> None:
    """A kept model whose payload no longer matches its digest is not rewritten with a new
    digest (which would vouch for the change): the erasure deletes that version."""
    import numpy as np
    from scipy.sparse import csr_matrix

    from surmesure.decide.recommend import kept
    from surmesure.decide.recommend.learned import Learned

    import_world(store, write_world(tmp_path))
    ana = person_of(store, "email", ANA["email"])
    learned = Learned(
        codes=("A",),
        index={"A": 0},
        similarity=csr_matrix(np.eye(1)),
        item_factors=np.ones((1, 2), dtype=np.float32),
        person_row={ana: 0, 10_000: 1},
        person_factors=np.ones((2, 2), dtype=np.float32),
        regularization=0.05,
    )
    at, table = datetime(2026, 1, 1), kept.TABLE
    with store.begin() as conn:
        for _ in range(2):
            kept.save(conn, learned, None, as_of=at, fitted_at=at, data_until=None, metrics={})
        good = conn.execute(sa.select(table.c.payload).where(table.c.version == 1)).scalar()
        changed = kept.payload(replace(learned, regularization=9.0), None)
        conn.execute(table.update().where(table.c.version == 2).values(payload=changed))
        assert good is not None and bytes(good) != changed

    erasure = erase_person(store, f"email:{ANA['email']}", confirmed=True)

    assert erasure.deleted["recommendation_models.person_factors"] == 2
    with store.connect() as conn:
        assert conn.execute(sa.select(table.c.version)).scalars().all() == [1]


def test_a_model_kept_now_leaves_out_who_is_gone(store: Store, tmp_path: Path) -> None:
    """A fit that read its data before an erasure or a merge is saved without those people."""
    import numpy as np
    from scipy.sparse import csr_matrix

    from surmesure.decide.recommend import kept
    from surmesure.decide.recommend.learned import Learned

    import_world(store, write_world(tmp_path))
    ana, bo = person_of(store, "email", ANA["email"]), person_of(store, "email", BO["email"])
    with store.connect() as conn:
        (absorbed,) = set(find_person(conn, f"email:{ANA['email']}").nodes) - {ana}
    factors = np.arange(16, dtype=np.float32).reshape(4, 4)
    learned = Learned(
        codes=("A", "B"),
        index={"A": 0, "B": 1},
        similarity=csr_matrix(np.eye(2)),
        item_factors=np.ones((2, 4), dtype=np.float32),
        person_row={p: i for i, p in enumerate([ana, 10_000, absorbed, bo])},
        person_factors=factors,
        regularization=0.05,
    )
    at = datetime(2026, 1, 1)
    with store.begin() as conn:
        kept.save(conn, learned, None, as_of=at, fitted_at=at, data_until=None, metrics={})
    kept.forget()
    with store.connect() as conn:
        version = kept.latest(conn, at)
        assert version is not None
        read = kept.load(store, conn, version).learned
    assert read is not None and set(read.person_row) == {ana, bo}
    assert np.array_equal(read.factors_of(bo), factors[3])
