"""Signals and entries beyond events, in the store (DuckDB and PostgreSQL): a consent withdrawal
takes people out at once, a location near a store enters a ``near`` journey, segment, schedule
and date entries come with the worker, and a webhook step is signed and retried."""

from __future__ import annotations

import hashlib
import hmac
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import orjson
import sqlalchemy as sa
from journey_world import T0, add_people, email_of, people_rows, publish, track, welcome_document

from surmesure.config import get_settings
from surmesure.dispatch import outbox
from surmesure.dispatch.dispatcher import drain
from surmesure.journeys import signals, webhooks
from surmesure.journeys.entering import enter_people
from surmesure.journeys.published import Versions
from surmesure.journeys.worker import run_once
from surmesure.protect.consent import consent_row, record_consents
from surmesure.store import Store, schema
from surmesure.unify.profile import decode_json

ONE_STEP = [
    {"id": "hello", "send": {"channels": {"email": {"text": "Hi"}}}, "next": "done"},
    {"id": "done", "exit": {}},
]


def _journey(
    name: str, entry: dict[str, Any], steps: list[dict[str, Any]] = ONE_STEP
) -> dict[str, Any]:
    return {"name": name, "entry": entry, "re_entry": "never", "steps": steps}


def test_a_consent_withdrawal_takes_the_person_out_at_once(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 2)
    publish(store, welcome_document())
    track(store, "C1", "Signed Up", T0)
    track(store, "C2", "Signed Up", T0)
    at = T0 + timedelta(hours=1)
    with store.begin() as conn:
        record_consents(
            conn,
            [
                consent_row(
                    ids[1], "marketing", "email", False, source="web", evidence=None, recorded_at=at
                )
            ],
        )
        outbox.append(store, conn, outbox.CONSENT, [ids[1]], at=at, details=["marketing"])
    drain(store, now=at)
    rows = people_rows(store, "welcome")
    assert rows[ids[1]]["status"] == "done" and rows[ids[1]]["reason"] == "consent_withdrawn"
    assert rows[ids[2]]["status"] == "running"


def test_a_location_near_a_store_enters_a_near_journey(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 2)
    with store.begin() as conn:
        conn.execute(
            schema.stores.insert().values(
                store_id="lyon1", name="Lyon", latitude=45.7640, longitude=4.8357, updated_at=T0
            )
        )
    publish(store, _journey("nearby", {"near": {"radius_km": 2}}))
    track(store, "C1", "Location Updated", T0, latitude=45.7700, longitude=4.8400)  # ~0.7 km
    track(store, "C2", "Location Updated", T0, latitude=45.9000, longitude=4.8400)  # ~15 km
    rows = people_rows(store, "nearby")
    assert list(rows) == [ids[1]] and rows[ids[1]]["reason"] == "finished"


def test_segment_schedule_and_date_entries_come_with_the_worker(
    store: Store, tmp_path: Path
) -> None:
    ids = add_people(store, tmp_path, 3, extra={2: {"birth_date": "1990-03-05"}})
    from surmesure.segment import repository
    from surmesure.segment.definitions import parse

    repository.save(
        store, parse({"name": "vip", "where": {"trait": {"name": "city", "op": "exists"}}}), T0
    )
    publish(store, _journey("joined", {"segment": {"name": "vip", "on": "enter"}}))
    publish(store, _journey("weekly", {"schedule": {"every_days": 7, "at": "09:00"}}))
    publish(store, _journey("birthday", {"date": {"trait": "birth_date", "days_before": 2}}))
    with store.begin() as conn:
        conn.execute(
            schema.segment_changes.insert().values(
                segment="vip",
                person_id=ids[3],
                change="entered",
                changed_at=T0 + timedelta(hours=1),
            )
        )
    first = run_once(store, T0 + timedelta(hours=2))  # Monday 2 March, 12:00
    assert list(people_rows(store, "joined")) == [ids[3]]
    assert people_rows(store, "weekly") == {}  # published after today's 09:00
    assert people_rows(store, "birthday") == {}  # 5 March is 3 days away
    assert first.entered == 1
    second = run_once(store, T0 + timedelta(days=1))  # Tuesday 3 March, 10:00
    assert sorted(people_rows(store, "weekly")) == sorted(ids.values())
    assert list(people_rows(store, "birthday")) == [ids[2]]  # 2 days before
    assert second.entered == 4
    third = run_once(store, T0 + timedelta(days=2))  # the schedule waits a week
    assert third.entered == 0


class _Hook(BaseHTTPRequestHandler):
    calls: ClassVar[list[tuple[bytes, str]]] = []
    fail_first = 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.calls.append((body, self.headers.get("X-Surmesure-Signature", "")))
        code = 503 if len(_Hook.calls) <= _Hook.fail_first else 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _hook_server() -> tuple[HTTPServer, str]:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.calls = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/h"


def _hooked(url: str) -> dict[str, Any]:
    steps = [
        {"id": "hook", "webhook": {"url": url, "retries": 2}, "next": "done"},
        {"id": "done", "exit": {}},
    ]
    return _journey("hooked", {"event": {"name": "Signed Up"}}, steps)


def _hook_rows(store: Store) -> list[tuple[str, int]]:
    m = schema.messages
    with store.connect() as conn:
        rows = conn.execute(sa.select(m.c.status, m.c.attempts).where(m.c.channel == "webhook"))
        return sorted((str(r[0]), int(r[1])) for r in rows)


def test_a_webhook_step_is_signed_and_retried(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 1)
    server, url = _hook_server()
    _Hook.fail_first = 1
    try:
        publish(store, _hooked(url))
        track(store, "C1", "Signed Up", T0)  # called after the commit: a 503
        assert len(_Hook.calls) == 1
        assert _hook_rows(store) == [("planned", 1)]  # to try again in 30 s
        run_once(store, T0 + timedelta(seconds=10))
        assert len(_Hook.calls) == 1
        run_once(store, T0 + timedelta(minutes=1))
    finally:
        server.shutdown()
    assert len(_Hook.calls) == 2  # a 503, then accepted
    assert _hook_rows(store) == [("sent", 2)]
    body, signature = _Hook.calls[-1]
    key = get_settings().secret_key.encode()
    assert signature == "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    assert b'"person_id":%d' % ids[1] in body and b'"step":"hook"' in body
    with store.connect() as conn:
        log = schema.journey_log
        steps_seen = [
            r[0] for r in conn.execute(sa.select(log.c.step).where(log.c.journey == "hooked"))
        ]
    assert steps_seen == ["hook", "done", "done"]


def test_a_webhook_planned_before_a_crash_is_called_once_after_it(
    store: Store, tmp_path: Path
) -> None:
    ids = add_people(store, tmp_path, 2)
    server, url = _hook_server()
    _Hook.fail_first = 0
    try:
        publish(store, _hooked(url))
        versions = Versions()
        with store.begin() as conn:
            definition = versions.get(conn, "hooked", 1)
            enter_people(store, conn, definition, 1, {ids[2]: None}, T0)
        with store.begin() as conn:
            # person 2's call is claimed by a worker that dies while calling
            assert len(webhooks.claim(store, conn, T0, None, set())) == 1
        with store.begin() as conn:
            # person 1's move commits, then the process dies before the call
            enter_people(store, conn, definition, 1, {ids[1]: None}, T0)
        assert _Hook.calls == [] and _hook_rows(store) == [("planned", 0), ("sending", 1)]
        run_once(store, T0 + timedelta(minutes=1))  # person 2's claim is still leased
        assert [orjson.loads(body)["person_id"] for body, _ in _Hook.calls] == [ids[1]]
        run_once(store, T0 + timedelta(minutes=6))
        run_once(store, T0 + timedelta(minutes=20))
    finally:
        server.shutdown()
    called = sorted(orjson.loads(body)["person_id"] for body, _ in _Hook.calls)
    assert called == [ids[1], ids[2]]
    assert _hook_rows(store) == [("sent", 1), ("sent", 2)]


def test_a_send_refused_for_one_person_takes_the_error_exit(store: Store, tmp_path: Path) -> None:
    from smtp_sink import Sink, start
    from test_campaign_send import _channel, _free_port

    ids = add_people(store, tmp_path, 2)
    steps = [
        {
            "id": "hello",
            "send": {"channels": {"email": {"text": "Hi"}}},
            "error": "oops",
            "next": "pause",
        },
        {"id": "pause", "wait": {"days": 1}, "next": "done"},
        {"id": "oops", "update_trait": {"trait": "bad_email", "value": True}, "next": "done"},
        {"id": "done", "exit": {}},
    ]
    publish(store, _journey("careful", {"event": {"name": "Signed Up"}}, steps))
    track(store, "C1", "Signed Up", T0)
    track(store, "C2", "Signed Up", T0)
    sink, port = Sink(), _free_port()
    sink.refuse = {email_of(2): "550 no such user"}
    controller = start(port, sink)
    try:
        channel = _channel(port)
        run_once(store, T0, channels={"email": channel}, folder=tmp_path)
        again = run_once(
            store, T0 + timedelta(minutes=1), channels={"email": channel}, folder=tmp_path
        )
        channel.close()
    finally:
        controller.stop()
    assert [m["To"] for m in sink.messages()] == [email_of(1)]
    rows = people_rows(store, "careful")
    assert rows[ids[1]]["step"] == "pause" and rows[ids[1]]["status"] == "running"
    assert rows[ids[2]]["status"] == "done" and rows[ids[2]]["reason"] == "finished"
    assert again.transitions == 0  # the failure moved person 2 once
    with store.connect() as conn:
        t = schema.traits
        value = conn.execute(
            sa.select(t.c.value).where(t.c.person_id == ids[2], t.c.name == "bad_email")
        ).scalar_one()
        log = schema.journey_log
        whats = [
            str(r[0])
            for r in conn.execute(
                sa.select(log.c.what).where(log.c.person_id == ids[2], log.c.step == "oops")
            )
        ]
    assert decode_json(value) is True
    assert whats == ["failed at hello"]


def test_events_no_journey_can_use_are_not_read(store: Store, tmp_path: Path) -> None:
    """With no journey active and nobody in one, the journeys' subscriber reads no event back;
    with one active, only the events its entry names (and every event of people in one)."""
    ids = add_people(store, tmp_path, 2)
    track(store, "C1", "Product Viewed", T0)
    track(store, "C2", "Signed Up", T0)
    e = schema.events
    with store.connect() as conn:
        refs = {str(r[0]): str(r[1]) for r in conn.execute(sa.select(e.c.message_id, e.c.event))}
    changes = [
        outbox.Change(n, outbox.EVENT, ids[1 if name == "Product Viewed" else 2], "track", ref, T0)
        for n, (ref, name) in enumerate(sorted(refs.items()))
    ]

    def events_read() -> list[str]:
        with store.begin() as conn, store.statements() as sent:
            signals.handle(store, conn, changes, T0)
        return [s for s in sent if "FROM events" in s]

    assert events_read() == []
    publish(store, welcome_document())  # its entry: Signed Up
    (read,) = events_read()
    assert "Signed Up" in read or "event IN" in read
    assert set(people_rows(store, "welcome")) == {ids[2]}


def test_with_no_journey_a_round_reads_the_catalog_alone(store: Store, tmp_path: Path) -> None:
    """Journeys are never deleted: with none, nobody can be in one, and a round of events
    costs the one statement that finds none; once one is published, the named changes that
    are not its entry are passed over without reading events back."""
    ids = add_people(store, tmp_path, 2)
    changes = [
        outbox.Change(1, outbox.EVENT, ids[1], "track", "m-1", T0, "Product Viewed"),
        outbox.Change(2, outbox.EVENT, ids[2], "track", "m-2", T0, "Product Viewed"),
    ]

    def sent() -> list[str]:
        with store.begin() as conn, store.statements() as statements:
            signals.handle(store, conn, changes, T0)
        return statements

    (only,) = sent()
    assert "FROM journeys" in only
    publish(store, welcome_document())  # its entry: Signed Up
    assert not [s for s in sent() if "FROM events" in s]
