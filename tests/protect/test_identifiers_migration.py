"""Migration 0013 on a store filled before it: identifier values in clear (identifiers, a
claim, merge evidence, events, orders, derived metrics) become blind indexes and sealed
values, and every read gives the same answers as before. On both stores."""

from __future__ import annotations

from datetime import date, datetime

import orjson
import sqlalchemy as sa
from alembic import command

from surmesure.decide.audience import find_person_id
from surmesure.derive.export import latest
from surmesure.protect import blind
from surmesure.protect.export import export_person
from surmesure.store import Store
from surmesure.store.migrate import alembic_config, upgrade
from surmesure.unify.profile import find_person, show

AT = datetime(2024, 1, 2, 3, 4)
EMAIL, CUSTOMER, DEVICE = "lea.roux@example.com", "CUST-LEA-1", "dev-lea-1"
VALUES = [EMAIL, CUSTOMER, DEVICE]


def _downgrade(store: Store) -> None:
    config = alembic_config(store)
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0012")


def _fill_as_before(store: Store) -> None:
    """Léa (nodes 1 and 2, merged through her e-mail) and Max (node 3), who claims her
    customer id, written as the store held them before 0013."""
    evidence = {
        "record": "crm row 2",
        "via": {"kind": "email", "value": EMAIL},
        "identifiers": [
            {"kind": "email", "value": EMAIL}, {"kind": "customer_id", "value": CUSTOMER}
        ],
        "source": "crm",
        "basis": "trusted source 'crm'",
    }  # fmt: skip
    claim = {"record": "web 1", "reason": "a claim; held by person 1: not merged"}
    with store.begin() as conn:
        for person, merged in ((1, None), (2, 1), (3, None)):
            conn.execute(
                sa.text("INSERT INTO people VALUES (:p, :m, :at, :at)"),
                {"p": person, "m": merged, "at": AT},
            )
        conn.execute(
            sa.text(
                "INSERT INTO identifiers (kind, value, person_id, node_id, source, first_seen_at) "
                "VALUES (:k, :v, :p, :n, 'crm', :at)"
            ),
            [
                {"k": "email", "v": EMAIL, "p": 1, "n": 1, "at": AT},
                {"k": "customer_id", "v": CUSTOMER, "p": 1, "n": 2, "at": AT},
                {"k": "anonymous_id", "v": DEVICE, "p": 1, "n": 1, "at": AT},
                {"k": "anonymous_id", "v": "dev-max", "p": 3, "n": 3, "at": AT},
            ],
        )
        conn.execute(
            sa.text(
                "INSERT INTO identity_claims (node_id, kind, value, person_id, holder_id, source, "
                "claimed_at, evidence, status) VALUES (3, 'customer_id', :v, 3, 1, 'web', :at, "
                ":e, 'pending')"
            ),
            {"v": CUSTOMER, "at": AT, "e": orjson.dumps(claim).decode()},
        )
        conn.execute(
            sa.text("INSERT INTO merges VALUES (1, 1, 2, :e, :at, NULL)"),
            {"e": orjson.dumps(evidence).decode(), "at": AT},
        )
        conn.execute(
            sa.text(
                "INSERT INTO events (message_id, type, person_id, node_id, user_id, anonymous_id,"
                " occurred_at, received_at, source) VALUES "
                "('m1', 'identify', 1, 1, :c, :d, :at, :at, 'shop'),"
                "('m2', 'page', 1, 1, NULL, :d, :at, :at, 'shop')"
            ),
            {"c": CUSTOMER, "d": DEVICE, "at": AT},
        )
        conn.execute(
            sa.text(
                "INSERT INTO orders (order_id, person_id, node_id, customer_ref, ordered_at, "
                "is_return, total_amount, source) VALUES ('O1', 1, 2, :c, :at, false, 10, 'crm')"
            ),
            {"c": CUSTOMER, "at": AT},
        )
        conn.execute(
            sa.text(
                "INSERT INTO derived_metrics (person_id, computed_on, computed_at, as_of, "
                "customer_id, horizon_days, discount_rate, window_days) "
                "VALUES (1, :d, :at, :d, :c, 365, 0.1, 90)"
            ),
            {"c": CUSTOMER, "at": AT, "d": date(2024, 1, 2)},
        )


def _everything(store: Store) -> str:
    with store.connect() as conn:
        return "\n".join(
            repr(tuple(r))
            for table in ("identifiers", "identity_claims", "merges", "orders", "derived_metrics")
            for r in conn.execute(sa.text(f"SELECT * FROM {table}"))
        ) + "\n".join(
            repr(tuple(r))
            for r in conn.execute(sa.text("SELECT user_id, anonymous_id FROM events"))
        )


def test_migration_indexes_and_seals_what_was_stored_in_clear(store: Store) -> None:
    _downgrade(store)
    _fill_as_before(store)
    assert CUSTOMER in _everything(store)

    upgrade(store)

    assert [v for v in VALUES if v in _everything(store)] == []
    profile = show(store, f"email:{EMAIL}")
    assert profile.person_id == 1
    assert {(i["kind"], i["value"]) for i in profile.identifiers} == {
        ("email", EMAIL),
        ("customer_id", CUSTOMER),
        ("anonymous_id", DEVICE),
    }
    (merge,) = profile.merges
    assert merge["evidence"]["via"] == {
        "kind": "email",
        "index": blind.index(store, "email", EMAIL),
        "value": EMAIL,
    }
    assert {i["value"] for i in merge["evidence"]["identifiers"]} == {EMAIL, CUSTOMER}
    assert [(c["kind"], c["value"], c["holder_id"]) for c in profile.claims_on] == [
        ("customer_id", CUSTOMER, 1)
    ]
    with store.connect() as conn:
        assert find_person(conn, f"customer_id:{CUSTOMER}").person_id == 1
        assert find_person_id(conn, anonymous_id=DEVICE) == 1
        assert find_person_id(conn, customer_id=CUSTOMER) == 1
        user_ids = conn.execute(sa.text("SELECT user_id FROM events WHERE message_id = 'm1'"))
        assert user_ids.scalar_one() == blind.index(store, "customer_id", CUSTOMER)
    tables = export_person(store, "1").tables
    assert [o["customer_ref"] for o in tables["orders"]] == [CUSTOMER]
    assert {e["anonymous_id"] for e in tables["events"]} == {DEVICE}
    assert latest(store).column("customer_id").to_pylist() == [CUSTOMER]
    upgrade(store)  # at head already: nothing to do, nothing indexed twice
    with store.connect() as conn:
        assert find_person(conn, f"email:{EMAIL}").person_id == 1
