"""The contract of each store port (``surmesure.store.ports``), run on every backend: DuckDB
and the PostgreSQL server (the ``store`` fixture). A backend that passes these can carry the
stages; where a port promises less of a database one process owns (no locks across
processes), the test says so through ``backend.shared``."""

from __future__ import annotations

import math
import threading
import time
from datetime import datetime

import pyarrow as pa
import pytest
import sqlalchemy as sa

from surmesure.errors import ConfigError
from surmesure.store import Store, backends, schema
from surmesure.store.backends.duckdb import DuckDBBackend
from surmesure.store.backends.postgres import PostgresBackend
from surmesure.store.ports import Backend

CURSORS = schema.change_cursors
CHANGES = schema.changes
AT = datetime(2026, 3, 1, 12, 30)


def _cursors(store: Store, names: list[str]) -> None:
    with store.begin() as conn:
        for position, name in enumerate(names):
            conn.execute(CURSORS.insert().values(subscriber=name, position=position, updated_at=AT))


def _changes(store: Store) -> None:
    with store.begin() as conn:
        conn.execute(
            CHANGES.insert().values(stored_at=AT),
            [
                {
                    "change_id": 1,
                    "kind": "event",
                    "person_id": 7,
                    "detail": "Order",
                    "stored_at": AT,
                },
                {
                    "change_id": 2,
                    "kind": "consent",
                    "person_id": None,
                    "detail": None,
                    "stored_at": AT,
                },
            ],
        )


# -- choosing a backend ---------------------------------------------------------------------


def test_the_url_scheme_picks_the_backend(store: Store) -> None:
    kind = DuckDBBackend if store.dialect == "duckdb" else PostgresBackend
    assert isinstance(store.backend, kind)
    assert isinstance(store.backend, Backend)
    assert store.engine is store.backend.engine
    with store.connect() as conn:
        assert backends.of(conn) is store.backend
    assert backends.backend_class(store.url) is kind


def test_an_unknown_scheme_names_the_setting_and_the_fix() -> None:
    with pytest.raises(ConfigError) as caught:
        backends.backend_for("mysql://localhost/shop")
    assert caught.value.field == "SURMESURE_DATABASE_URL"
    assert "postgresql+psycopg://" in (caught.value.hint or "")


# -- row locks ------------------------------------------------------------------------------


def test_locked_rows_are_skipped_by_another_worker_where_processes_share_the_database(
    store: Store,
) -> None:
    _cursors(store, ["a", "b", "c"])
    query = sa.select(CURSORS.c.subscriber).order_by(CURSORS.c.subscriber)
    with store.begin() as first:
        held = first.execute(store.backend.lock_rows(query.limit(2), skip_locked=True)).scalars()
        assert list(held) == ["a", "b"]
        with store.begin() as second:
            others = second.execute(store.backend.lock_rows(query, skip_locked=True)).scalars()
            expected = ["c"] if store.backend.shared else ["a", "b", "c"]
            assert list(others) == expected


def test_lock_or_create_inserts_once_then_reads_what_is_stored(store: Store) -> None:
    key, fresh = {"subscriber": "segments"}, {"position": 0, "updated_at": AT}
    with store.begin() as conn:
        assert store.backend.lock_or_create(conn, CURSORS, key, fresh)["position"] == 0
        conn.execute(CURSORS.update().values(position=41))
    with store.begin() as conn:
        row = store.backend.lock_or_create(conn, CURSORS, key, fresh)
        assert (row["subscriber"], row["position"]) == ("segments", 41)
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(CURSORS)).scalar_one() == 1


# -- named locks ----------------------------------------------------------------------------


def test_a_key_locked_by_one_transaction_waits_for_it_where_processes_share_the_database(
    store: Store,
) -> None:
    got: list[float] = []

    def second() -> None:
        with store.begin() as conn:
            store.backend.lock_key(conn, 4242)
            got.append(time.monotonic())

    with store.begin() as conn:
        store.backend.lock_key(conn, 4242)
        worker = threading.Thread(target=second)
        worker.start()
        time.sleep(0.3)
        released = time.monotonic()
    worker.join(5)
    assert len(got) == 1
    assert (got[0] >= released) is store.backend.shared


def test_a_settled_read_waits_for_every_shared_holder(store: Store) -> None:
    with store.begin() as one, store.begin() as two:
        store.backend.hold_shared(one, 77)
        store.backend.hold_shared(two, 77)  # holders never wait for each other
        with store.backend.settled(77, timeout=0.2) as conn:
            assert conn is None
    with store.backend.settled(77, timeout=2.0) as conn:
        assert conn is not None
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    with store.begin() as again:  # the reader let the key go
        store.backend.hold_shared(again, 77)


def test_only_one_process_holds_a_key_where_processes_share_the_database(store: Store) -> None:
    with store.backend.only_process(99) as mine:
        assert mine
        with store.backend.only_process(99) as other:  # another connection: another session
            assert other is not store.backend.shared
    with store.backend.only_process(99) as after:
        assert after


# -- bulk writes ----------------------------------------------------------------------------


def _rows(names: list[str]) -> pa.Table:
    return pa.table(
        {
            "subscriber": pa.array(names, pa.string()),
            "position": pa.array(range(len(names)), pa.int64()),
            "updated_at": pa.array([AT] * len(names), pa.timestamp("us")),
        }
    )


def test_a_bulk_load_counts_and_returns_only_the_new_rows(store: Store) -> None:
    skip = "ON CONFLICT (subscriber) DO NOTHING"
    with store.begin() as conn:
        assert store.backend.load(conn, CURSORS, _rows(["a", "b", "c"]), skip) == 3
        assert store.backend.load(conn, CURSORS, _rows(["b", "c", "d"]), skip) == 1
        got = store.backend.load_returning(
            conn, CURSORS, _rows(["d", "e"]), skip + ' RETURNING "subscriber"'
        )
        assert [r[0] for r in got] == ["e"]
        keys = store.backend.existing_keys(conn, CURSORS, "subscriber", ["a", "e", "z"])
        assert keys == {"a", "e"}
        ids = store.backend.next_ids(conn, schema.person_id_seq, 5)
        assert len(set(ids)) == 5 and ids == sorted(ids)
        assert store.backend.next_ids(conn, schema.person_id_seq, 1)[0] > ids[-1]


# -- lists of values ------------------------------------------------------------------------


def test_a_list_of_values_joins_and_updates_in_one_statement(store: Store) -> None:
    _cursors(store, ["a", "b", "c"])
    mapping = {"subscriber": pa.array(["a", "c"]), "moved": pa.array([10, 30], pa.int64())}
    backend = store.backend
    with store.begin() as conn:
        with backend.with_values(conn, "_m", mapping) as m:
            backend.run(
                conn,
                f"UPDATE change_cursors SET position = _m.moved, updated_at = :at FROM {m.sql} "
                "WHERE change_cursors.subscriber = _m.subscriber",
                m.params | {"at": datetime(2026, 3, 2)},
            )
        with backend.with_values(conn, "_w", {"s": pa.array(["c", "b", "x"])}) as w:
            rows = backend.run(
                conn,
                f"SELECT c.subscriber, c.position, c.updated_at FROM change_cursors c "
                f"JOIN {w.sql} ON c.subscriber = _w.s ORDER BY c.subscriber",
                w.params,
            )
    assert [tuple(r) for r in rows] == [("b", 1, AT), ("c", 30, datetime(2026, 3, 2))]


# -- fast reads -----------------------------------------------------------------------------


def test_fast_reads_give_what_sqlalchemy_gives(store: Store) -> None:
    _changes(store)
    c = CHANGES.c
    query = sa.select(c.change_id, c.person_id, c.detail, c.stored_at).order_by(c.change_id)
    with store.connect() as conn:
        plain = [tuple(r) for r in conn.execute(query)]
        assert [tuple(r) for r in store.backend.fetch_literal(conn, query)] == plain
        columns = store.backend.fetch_columns(conn, query.where(c.kind.in_(["event", "consent"])))
        assert [list(col) for col in columns] == [list(col) for col in zip(*plain, strict=True)]
        assert store.backend.fetch_columns(conn, query.where(c.change_id > 5)) == []
        ids = store.backend.fetch_ids(
            conn,
            "SELECT change_id FROM changes WHERE kind <> :k ORDER BY change_id DESC",
            {"k": "x"},
        )
        assert ids.dtype.kind == "i" and ids.tolist() == [2, 1]
        numbers = store.backend.fetch_numbers(
            conn, sa.select(c.change_id, sa.cast(c.person_id, sa.Double).label("p")), ("change_id",)
        )
    assert numbers["change_id"].dtype.kind == "i" and sorted(numbers["change_id"]) == [1, 2]
    by_id = dict(zip(numbers["change_id"].tolist(), numbers["p"].tolist(), strict=True))
    assert by_id[1] == 7.0 and math.isnan(by_id[2])


# -- analytics ------------------------------------------------------------------------------


def test_ibis_reads_the_store_and_bitmaps_are_there_when_promised(store: Store) -> None:
    _changes(store)
    with store.connect() as conn, store.backend.ibis(conn) as ibis_backend:
        assert ibis_backend.table("changes").count().to_pyarrow().as_py() == 2
    bits = "SELECT bit_count(bitstring_agg(change_id, 0, 7)) FROM changes"
    with store.connect() as conn:
        if store.backend.bitstrings:
            assert conn.execute(sa.text(bits)).scalar_one() == 2
        else:
            with pytest.raises(sa.exc.DBAPIError):
                conn.execute(sa.text(bits))
