"""Migration 0014 seals the personal values a store held in clear before it, and the readers
give the same answers after it as before. On both stores."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from conftest import PG_ADMIN_URL
from surmesure.decide.decisions import why
from surmesure.protect.export import personal_rows
from surmesure.store import Store, open_store
from surmesure.store.migrate import alembic_config, current, upgrade
from surmesure.unify.profile import find_person, resolved_traits

AT = datetime(2026, 3, 1, 12, 0)
CONTEXT = {"ip": "198.51.100.23", "userAgent": "Mozilla/5.0 (Oldphone)"}
TRAITS = {"first_name": "Gwenaelle", "street": "4 impasse des Tanneurs", "city": "Brest"}
RESULT = {"content": {"body": "Bonjour Gwenaelle !"}}


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store at revision 0012, before sealing."""
    if request.param == "duckdb":
        store = open_store(f"duckdb:///{tmp_path / 'old.duckdb'}", migrate=False)
        upgrade(store, "0012")
        yield store
        store.dispose()
        return
    name = f"surmesure_old_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    store = open_store(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, migrate=False)
    upgrade(store, "0012")
    yield store
    store.dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _populate(store: Store) -> None:
    """One person with traits, an identify and a track carrying a context, and a decision,
    written in clear as the store held them at 0012."""
    with store.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO people (person_id, merged_into, created_at, updated_at) "
                "VALUES (7, NULL, :at, :at)"
            ),
            {"at": AT},
        )
        conn.execute(
            sa.text(
                "INSERT INTO identifiers (kind, value, person_id, node_id, source, first_seen_at)"
                " VALUES ('customer_id', 'C-7', 7, 7, 'crm', :at)"
            ),
            {"at": AT},
        )
        for name, value in TRAITS.items():
            conn.execute(
                sa.text(
                    "INSERT INTO traits (record_key, name, person_id, node_id, value, source, "
                    "observed_at, reliability) VALUES ('r1', :name, 7, 7, :value, 'crm', :at, 0.9)"
                ),
                {"name": name, "value": _json(value), "at": AT},
            )
        for message_id, kind, properties in (
            ("m-identify", "identify", {"firstName": TRAITS["first_name"]}),
            ("m-track", "track", {"sku": "P1"}),
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO events (message_id, type, event, person_id, node_id, user_id, "
                    "anonymous_id, occurred_at, received_at, properties, context, source) "
                    "VALUES (:id, :type, NULL, 7, 7, 'C-7', NULL, :at, :at, :props, :ctx, 'web')"
                ),
                {
                    "id": message_id,
                    "type": kind,
                    "at": AT,
                    "props": _json(properties),
                    "ctx": _json(CONTEXT),
                },
            )
        for decision_id, person, result in (
            ("d-7", 7, RESULT),
            ("d-anonymous", None, {"content": {"body": "Bonjour !"}}),
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO decisions (decision_id, person_id, placement, context, result, "
                    "explanation, decided_at) VALUES (:id, :p, 'home', :ctx, :result, :why, :at)"
                ),
                {
                    "id": decision_id,
                    "p": person,
                    "ctx": _json({"locale": "fr"}),
                    "result": _json(result),
                    "why": _json({"person": f"person {person}"}),
                    "at": AT,
                },
            )


def _answers(store: Store) -> dict[str, Any]:
    """What the readers give: resolved traits, the export's rows, the decision log."""
    with store.connect() as conn:
        person = find_person(conn, "7")
        traits = {n: t.value for n, t in resolved_traits(conn, 7, AT, 365.0).items()}
        rows = personal_rows(store, conn, person, "FR")
    return {
        "traits": traits,
        "events": {e["message_id"]: (e["properties"], e["context"]) for e in rows["events"]},
        "decisions": [r["result"] for r in rows["decisions"]],
        "why": [(d["result"], d["explanation"]) for d in why(store, 7, now=AT, days=1)],
    }


def test_the_migration_seals_what_was_held_in_clear_and_reads_stay_the_same(
    old_store: Store,
) -> None:
    store = old_store
    _populate(store)
    assert current(store) == "0012"

    upgrade(store)

    assert current(store) == ScriptDirectory.from_config(alembic_config(store)).get_current_head()
    answers = _answers(store)
    assert answers["traits"] == TRAITS
    assert answers["events"] == {
        "m-identify": ({"firstName": TRAITS["first_name"]}, CONTEXT),
        "m-track": ({"sku": "P1"}, CONTEXT),
    }
    assert answers["decisions"] == [RESULT]
    assert answers["why"] == [(RESULT, {"person": "person 7"})]
    with store.connect() as conn:
        stored = {
            t: [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {t}"))]
            for t in ("traits", "events", "decisions")
        }
    text = orjson.dumps(stored, default=lambda v: bytes(v).hex()).decode()
    for secret in (TRAITS["first_name"], TRAITS["street"], CONTEXT["ip"], CONTEXT["userAgent"]):
        assert secret not in text
    assert "Brest" in text  # a trait that is no direct identifier stays plain
    assert "P1" in text  # and so do a track's properties
    plain = {r["decision_id"]: r for r in stored["decisions"]}
    assert plain["d-anonymous"]["sealed"] is None  # nobody's key to seal it under
    assert plain["d-7"]["sealed"] is not None and plain["d-7"]["result"] is None


def test_the_downgrade_opens_the_sealed_values_back(old_store: Store) -> None:
    store = old_store
    _populate(store)
    upgrade(store)
    config = alembic_config(store)
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0012")

    assert current(store) == "0012"
    with store.connect() as conn:
        traits = dict(conn.execute(sa.text("SELECT name, CAST(value AS TEXT) FROM traits")).all())
        events = dict(
            conn.execute(sa.text("SELECT message_id, CAST(context AS TEXT) FROM events")).all()
        )
        (result,) = conn.execute(
            sa.text("SELECT CAST(result AS TEXT) FROM decisions WHERE decision_id = 'd-7'")
        ).one()
    assert {k: orjson.loads(v) for k, v in traits.items()} == TRAITS
    assert {k: orjson.loads(v) for k, v in events.items()} == {
        "m-identify": CONTEXT,
        "m-track": CONTEXT,
    }
    assert orjson.loads(result) == RESULT
