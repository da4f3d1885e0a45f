"""Journeys in the store, on DuckDB and PostgreSQL: entries from collected events, timers,
a purchase ending the journey, a stock-out re-routing it, versions and re-entry rules."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from journey_world import (
    T0,
    add_people,
    messages_of,
    people_rows,
    publish,
    track,
    welcome_document,
)

from surmesure.journeys.published import Versions
from surmesure.journeys.worker import run_once
from surmesure.store import Store, schema

DAY = timedelta(days=1)


def _set_stock(store: Store, product: str, quantity: int) -> None:
    st = schema.stock
    with store.begin() as conn:
        conn.execute(st.delete().where(st.c.product_code == product))
        conn.execute(
            st.insert().values(
                product_code=product, store_id="online", quantity=quantity, updated_at=T0
            )
        )


def test_events_enter_people_and_signals_move_them(store: Store, tmp_path: Path) -> None:
    welcome = welcome_document()
    ids = add_people(store, tmp_path, 4)
    _set_stock(store, "P1", 5)
    publish(store, welcome)
    track(store, "C1", "Signed Up", T0)
    track(store, "C2", "Signed Up", T0, product_id="P1")
    track(store, "C3", "Signed Up", T0, product_id="P1")
    track(store, "C4", "Page Viewed", T0)  # not the entry event

    rows = people_rows(store, "welcome")
    assert sorted(rows) == sorted([ids[1], ids[2], ids[3]])
    assert {r["step"] for r in rows.values()} == {"pause"}
    assert rows[ids[2]]["product"] == "P1"
    assert rows[ids[1]]["due_at"] == T0 + 2 * DAY
    hello = messages_of(store, "j_welcome_hello")
    assert hello == {ids[i]: ("planned", 1, 1) for i in (1, 2, 3)}

    # a purchase ends the journey for person 1, whatever the step
    track(store, "C1", "Order Completed", T0 + DAY, order_id="O1", revenue=10.0)
    assert people_rows(store, "welcome")[ids[1]]["reason"] == "goal"

    # P1 runs out: the people waiting before the reminder with P1 are re-routed at once
    _set_stock(store, "P1", 0)
    run_once(store, T0 + DAY + timedelta(hours=1))
    rows = people_rows(store, "welcome")
    assert rows[ids[2]]["status"] == "done" and rows[ids[3]]["status"] == "done"
    assert sorted(messages_of(store, "j_welcome_similar")) == sorted([ids[2], ids[3]])
    assert messages_of(store, "j_welcome_reminder") == {}

    # nothing more for anyone after the timers: they are all done
    done = run_once(store, T0 + 10 * DAY)
    assert done.transitions == 0
    assert len(messages_of(store, "j_welcome_hello")) == 3


def test_timers_run_the_steps_once_each(store: Store, tmp_path: Path) -> None:
    welcome = welcome_document()
    ids = add_people(store, tmp_path, 3)
    publish(store, welcome)
    for i in (1, 2):
        track(store, f"C{i}", "Signed Up", T0)
    early = run_once(store, T0 + DAY)
    assert early.transitions == 0
    due = run_once(store, T0 + 2 * DAY)
    assert due.transitions == 4  # reminder and watch, for each
    assert run_once(store, T0 + 2 * DAY).transitions == 0  # the same round again: nothing
    assert sorted(messages_of(store, "j_welcome_reminder")) == sorted([ids[1], ids[2]])
    # person 2 views a product: the branch (not in Lyon) leads to the end
    track(store, "C2", "Product Viewed", T0 + 3 * DAY)
    rows = people_rows(store, "welcome")
    assert rows[ids[2]]["reason"] == "finished"
    assert rows[ids[1]]["step"] == "watch"
    run_once(store, T0 + 6 * DAY)  # the 72 hours are over for person 1
    assert people_rows(store, "welcome")[ids[1]]["reason"] == "finished"
    with store.connect() as conn:
        log = schema.journey_log
        steps = [
            (str(r.step), str(r.what))
            for r in conn.execute(
                sa.select(log.c.step, log.c.what)
                .where(log.c.person_id == ids[1])
                .order_by(log.c.logged_at, log.c.step)
            )
        ]
    assert steps[0] == ("hello", "entered")
    assert ("watch", "timer") not in steps and ("done", "timer") in steps
    assert steps[-1] == ("done", "ended: finished")


def test_people_in_flight_stay_on_their_version(store: Store, tmp_path: Path) -> None:
    welcome = welcome_document()
    ids = add_people(store, tmp_path, 2)
    assert publish(store, welcome) == 1
    track(store, "C1", "Signed Up", T0)
    welcome["steps"][1]["wait"] = {"days": 5}
    assert publish(store, welcome, T0 + timedelta(hours=1)) == 2
    assert publish(store, welcome, T0 + timedelta(hours=2)) == 2  # unchanged: no version
    track(store, "C2", "Signed Up", T0 + timedelta(hours=3))
    rows = people_rows(store, "welcome")
    assert rows[ids[1]]["version"] == 1 and rows[ids[1]]["due_at"] == T0 + 2 * DAY
    assert rows[ids[2]]["version"] == 2
    assert rows[ids[2]]["due_at"] == T0 + timedelta(hours=3) + 5 * DAY
    run_once(store, T0 + 2 * DAY, versions=Versions())
    reminder = messages_of(store, "j_welcome_reminder")
    assert reminder == {ids[1]: ("planned", 1, 1)}


def test_re_entry_rules(store: Store, tmp_path: Path) -> None:
    welcome = welcome_document()
    ids = add_people(store, tmp_path, 3)
    welcome["re_entry"] = {"after_days": 10}
    welcome["limit_per_day"] = 2
    publish(store, welcome)
    for i in (1, 2, 3):
        track(store, f"C{i}", "Signed Up", T0)
    rows = people_rows(store, "welcome")
    assert sorted(rows) == sorted([ids[1], ids[2]])  # the daily limit
    track(store, "C1", "Order Completed", T0 + DAY)  # person 1 is done
    track(store, "C1", "Signed Up", T0 + 2 * DAY)  # too soon
    assert people_rows(store, "welcome")[ids[1]]["entry"] == 1
    track(store, "C1", "Signed Up", T0 + 11 * DAY)
    assert people_rows(store, "welcome")[ids[1]]["entry"] == 2
    assert messages_of(store, "j_welcome_hello")[ids[1]] == ("planned", 1, 2)
    track(store, "C2", "Signed Up", T0 + 11 * DAY)  # still running: no second entry
    assert people_rows(store, "welcome")[ids[2]]["entry"] == 1

    welcome["re_entry"] = "never"
    publish(store, welcome, T0 + 12 * DAY)
    track(store, "C1", "Order Completed", T0 + 13 * DAY)
    track(store, "C1", "Signed Up", T0 + 30 * DAY)
    assert people_rows(store, "welcome")[ids[1]]["entry"] == 2


def test_people_in_flight_move_to_a_new_version_only_when_asked(
    store: Store, tmp_path: Path
) -> None:
    from surmesure.journeys import service

    welcome = welcome_document()
    ids = add_people(store, tmp_path, 2)
    publish(store, welcome)
    track(store, "C1", "Signed Up", T0)
    track(store, "C2", "Signed Up", T0 + DAY)
    run_once(store, T0 + 2 * DAY)  # person 1 on watch, person 2 still on pause
    welcome["steps"][3]["wait_for_event"]["timeout_hours"] = 24  # watch, same kind
    welcome["steps"][1] = {  # pause changes kind: person 2 stays on version 1
        "id": "pause",
        "wait_for_event": {"event": "Product Added", "timeout_hours": 24},
        "next": "reminder",
        "timeout": "reminder",
    }
    publish(store, welcome, T0 + 2 * DAY)
    out = service.migrate(store, "welcome", T0 + 2 * DAY)
    assert out == {"name": "welcome", "version": 2, "moved": {"1": 1}, "stayed": {"1": 1}}
    rows = people_rows(store, "welcome")
    assert (rows[ids[1]]["version"], rows[ids[2]]["version"]) == (2, 1)
    assert rows[ids[1]]["due_at"] == T0 + 5 * DAY  # the timer set on version 1 is kept
    again = service.migrate(store, "welcome", T0 + 2 * DAY)
    assert again["moved"] == {"1": 0} and again["stayed"] == {"1": 1}
