"""Decisions from the serving view: the same decisions as reading the store, a ledger that knows
its own exposures at once, records written behind, and changes to the store picked up."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import sqlalchemy as sa
from decide_world import DAY, NOW, add_person, add_stores, set_consent

from surmesure.decide.library import EXAMPLES, Library
from surmesure.decide.service import DecideRequest, decide
from surmesure.decide.serving import Serving
from surmesure.decide.whole_view import build_view
from surmesure.protect import atrest, blind
from surmesure.store import Store, schema
from surmesure.unify.profile import root_of

LIBRARY = Library(EXAMPLES)


def _world(store: Store) -> None:
    add_stores(store, [("LYO", "Lyon", "69001", 45.7640, 4.8357)])
    traits = {
        "first_name": ("Anna", "crm", 0.9, NOW - 2 * DAY),
        "city": ("Lyon", "web", 0.6, NOW - 40 * DAY),
    }
    add_person(
        store,
        1,
        traits,
        identifiers={"customer_id": "C1", "anonymous_id": "anon-1"},
        segments=["loyal_customers"],
    )
    add_person(store, 2, traits, identifiers={"customer_id": "C2"})
    add_person(store, 3, traits, identifiers={"customer_id": "C3"}, segments=["loyal_customers"])
    set_consent(store, 3, True, NOW - 9 * DAY)
    set_consent(store, 3, False, NOW - 3 * DAY)  # the latest refuses personalization
    add_person(store, 4, {"first_name": ("Zoé", "partner", 0.3, NOW - DAY)})
    add_person(store, 5)
    with store.begin() as conn:
        conn.execute(schema.people.update().where(schema.people.c.person_id == 5).values(
            merged_into=1))  # fmt: skip
        conn.execute(
            schema.derived_metrics.insert().values(
                person_id=2,
                computed_on=date(2026, 3, 8),
                computed_at=NOW - 2 * DAY,
                as_of=date(2026, 3, 8),
                frequency=1,
                rfm_segment="New",
                horizon_days=365,
                discount_rate=0.1,
                window_days=365,
            )
        )


REQUESTS = [
    DecideRequest(placement="email_weekly", customer_id="C1"),
    DecideRequest(placement="email_weekly", customer_id="C2"),
    DecideRequest(placement="email_weekly", customer_id="C3"),
    DecideRequest(placement="email_weekly", person_id=4),
    DecideRequest(placement="home_banner", anonymous_id="anon-1"),
    DecideRequest(placement="home_banner", person_id=5),  # merged into 1
    DecideRequest(placement="home_banner", person_id=1),  # spring_sale: not again in 7 days
    DecideRequest(placement="home_banner", anonymous_id="never-seen"),
    DecideRequest(placement="home_banner", person_id=999),
]


def _run(store: Store, serving: Serving | None) -> list[dict[str, Any]]:
    out = []
    for i, request in enumerate(REQUESTS):
        compiled = LIBRARY.for_placement(request.placement)
        at = NOW + i * 60 * DAY / 86_400  # a minute apart
        result = decide(
            store, request, compiled, now=at, use_default_recommender=False, serving=serving
        )
        out.append({k: v for k, v in result.items() if k != "decision_id"})
    return out


def _count(store: Store, table: sa.Table) -> int:
    with store.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_the_view_decides_as_the_store_does(store: Store) -> None:
    _world(store)
    direct = _run(store, None)
    with store.begin() as conn:  # the same starting point for the served run
        conn.execute(schema.exposures.delete())
        conn.execute(schema.decisions.delete())
    serving = Serving(store)  # not started: each decision is written at once
    served = _run(store, serving)
    assert served == direct
    assert [r["person_id"] for r in served] == [1, 2, 3, 4, 1, 1, 1, None, None]
    assert served[0]["content"]["variant"] == "loyal" and served[1]["content"]["variant"] == (
        "newcomer"
    )
    assert served[2]["content"]["variant"] == "default"  # opted out
    offered = [[o["content_id"] for o in r["offers"]] for r in served]
    assert "spring_sale" in offered[4] and "spring_sale" not in offered[6]
    assert _count(store, schema.decisions) == len(REQUESTS)
    with store.connect() as conn:  # the view follows merges as the store does
        view = build_view(conn)
        assert view.person_id(5, []) == root_of(conn, 5) == 1
        assert view.person_id(999, []) is None and root_of(conn, 999) is None


def test_records_are_written_behind_and_flushed_at_stop(store: Store) -> None:
    _world(store)
    serving = Serving(store, refresh_seconds=60, flush_ms=10_000)  # the thread will not flush
    serving.start()
    try:
        banner = LIBRARY.for_placement("home_banner")
        request = DecideRequest("home_banner", person_id=1)
        first = decide(store, request, banner, now=NOW, use_default_recommender=False,
                       serving=serving)  # fmt: skip
        second = decide(store, request, banner, now=NOW + DAY / 24,
                        use_default_recommender=False, serving=serving)  # fmt: skip
        # the second decision knows the first one's exposures before they are written
        assert "spring_sale" in [o["content_id"] for o in first["offers"]]
        assert "spring_sale" not in [o["content_id"] for o in second["offers"]]
        assert _count(store, schema.decisions) == 0
    finally:
        serving.stop()
    assert _count(store, schema.decisions) == 2
    assert _count(store, schema.exposures) == 2 * (1 + 2)
    d = schema.decisions
    with store.connect() as conn:
        row = conn.execute(
            sa.select(d.c.explanation, d.c.person_id, d.c.sealed).where(
                d.c.decision_id == first["decision_id"]
            )
        ).one()
        assert row.explanation is None and row.sealed is not None  # sealed at rest
        rows = [dict(row._mapping)]
        atrest.open_rows(conn, d, rows)
    explanation = rows[0]["explanation"]
    assert isinstance(explanation, dict) and explanation["person"] == "person 1"


def test_changes_to_the_store_reach_the_view(store: Store) -> None:
    _world(store)
    serving = Serving(store, refresh_seconds=0.05, flush_ms=5)
    serving.start()
    email = LIBRARY.for_placement("email_weekly")
    try:
        before = decide(store, DecideRequest("email_weekly", customer_id="C1"), email,
                        use_default_recommender=False, serving=serving)  # fmt: skip
        assert before["content"]["body"].startswith("Bonjour Anna")
        time.sleep(0.3)  # its own exposures written: no rebuild for them
        assert serving.refresh_if_changed() is False
        set_consent(store, 1, False, NOW)  # Anna refuses personalization
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            after = decide(store, DecideRequest("email_weekly", customer_id="C1"), email,
                           use_default_recommender=False, serving=serving)  # fmt: skip
            if after["content"]["variant"] == "default":
                break
            time.sleep(0.05)
        assert after["content"]["variant"] == "default"
        assert "Anna" not in after["content"]["body"]
        assert {f["reason"] for f in after["explanation"]["content"]["fields"]} == {"opted_out"}
        add_person(store, 6, identifiers={"anonymous_id": "new-visitor"})  # a new person
        deadline = time.monotonic() + 10
        held = [("anonymous_id", blind.index(store, "anonymous_id", "new-visitor"))]
        while serving.view().person_id(None, held) is None:
            assert time.monotonic() < deadline, "the new person never reached the view"
            time.sleep(0.05)
    finally:
        serving.stop()
