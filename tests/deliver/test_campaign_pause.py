"""A paused campaign sends nothing: its planned messages stay in the outbox, a send is
refused, and once resumed they leave, once, to a real SMTP server."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from campaign_world import T0, add_people, document, email_of
from smtp_sink import (
    Sink,
    smtp_fixture,  # noqa: F401 - the fixture smtp
)

from conftest import invoke_json
from surmesure.deliver import documents, outbox, plan, service
from surmesure.deliver.email import EmailChannel, EmailSettings
from surmesure.deliver.unsubscribe import UnsubscribeLinks
from surmesure.errors import Conflict
from surmesure.store import Store, schema


def _channel(port: int) -> EmailChannel:
    settings = EmailSettings(port=port, sender="news@example.com", pool=1)
    return EmailChannel(settings, UnsubscribeLinks("https://shop.example", "s" * 32))


def _statuses(store: Store) -> dict[str, int]:
    m = schema.messages
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(m.c.status, sa.func.count())
            .where(m.c.campaign == "spring")
            .group_by(m.c.status)
        )
        return {str(s): int(n) for s, n in rows}


def test_a_paused_campaign_sends_nothing_until_resumed(
    store: Store, tmp_path: Path, smtp: tuple[Sink, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    sink, port = smtp
    add_people(store, tmp_path, 3)
    documents.save(store, documents.parse(document(policy={"order": ["email"]})), T0)
    with store.begin() as conn:
        definition, version = documents.get(conn, "spring")
        plan.record(store, conn, plan.plan(store, conn, definition, version, T0), T0)
    assert _statuses(store) == {"planned": 3}

    held = invoke_json(monkeypatch, store.url, "campaign", "pause", "spring")
    assert held == {"campaign": "spring", "paused": 3}
    assert _statuses(store) == {"paused": 3}
    assert service.status(store, "spring")["by_status"] == {"paused": 3}
    assert [c["paused"] for c in service.overview(store) if c["campaign"] == "spring"] == [True]
    channel = _channel(port)
    with pytest.raises(Conflict, match="paused") as refused:
        service.send(store, "spring", T0, channels={"email": channel}, folder=tmp_path)
    assert "resume" in (refused.value.hint or "")
    assert sink.messages() == []  # nothing left

    assert outbox.resume(store, "spring", T0) == 3
    service.send(store, "spring", T0, channels={"email": channel}, folder=tmp_path)
    channel.close()
    assert sorted(m["To"] for m in sink.messages()) == [email_of(i) for i in (1, 2, 3)]
    assert _statuses(store) == {"sent": 3}
    assert outbox.pause(store, "spring", T0) == 0  # nothing left to hold back


def test_pausing_an_unknown_campaign_names_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import invoke

    done = invoke(monkeypatch, store.url, "campaign", "pause", "nothing_here")
    assert done.exit_code != 0
    assert "nothing_here" in done.output
