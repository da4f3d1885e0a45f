"""One address at a time: a hard bounce closes the address it came from (the person's other
addresses and channels stay open), and a letter returned undeliverable makes the next campaign
skip the postal address, with the reason, until a new address is known. Imports of returns and
call outcomes set bad rows aside in the quarantine."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from campaign_world import HOUR, T0, add_people, document, email_of
from import_helpers import write_file
from smtp_sink import (
    Sink,
    smtp_fixture,  # noqa: F401 - the fixture smtp
)
from test_campaign_send import _channel

from conftest import invoke, invoke_json
from surmesure.collect.importer import import_file
from surmesure.collect.replay import replay
from surmesure.config import get_settings
from surmesure.deliver import documents, feedback, plan, service
from surmesure.deliver.paper import PaperChannel, PaperSettings
from surmesure.deliver.returns import import_returns
from surmesure.protect.consent import refused_ids
from surmesure.store import Store, schema

DAY = 24 * HOUR
SECOND = "second@example.net"


def dsn(message_id: str, recipient: str) -> bytes:
    """A mail server's hard bounce of our message ``message_id`` sent to ``recipient``."""
    return (
        "From: MAILER-DAEMON@mx.example.org\r\nTo: news@example.com\r\nSubject: failed\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nUndelivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{message_id}@example.com>\r\nSubject: Spring\r\n\r\n"
        "--B--\r\n"
    ).encode()


def message_of(store: Store, campaign: str, person: int) -> tuple[str, str, str | None]:
    m = schema.messages
    with store.connect() as conn:
        row = conn.execute(
            sa.select(m.c.message_id, m.c.status, m.c.reason).where(
                m.c.campaign == campaign, m.c.person_id == person
            )
        ).one()
    return str(row[0]), str(row[1]), row[2]


def campaign(store: Store, name: str, at: Any, **change: Any) -> None:
    documents.save(store, documents.parse(document(name=name, **change)), at)


def test_a_bounce_closes_that_address_only(
    store: Store, tmp_path: Path, smtp: tuple[Sink, int]
) -> None:
    sink, port = smtp
    ids = add_people(store, tmp_path, 3, phones={3})
    # person 1 gives a second, newer address: the one e-mails go to
    later = [{"customer_id": "C1", "email": SECOND, "observed_at": "2026-02-01 09:00:00"}]
    import_file(store, "customers", write_file(tmp_path, "more", "csv", later), source="crm")

    def send(name: str, at: Any) -> list[str]:
        campaign(store, name, at)
        channel = _channel(port)
        service.send(store, name, at, channels={"email": channel}, folder=tmp_path)
        channel.close()
        got = sorted(str(m["To"]) for m in sink.messages())
        sink.received.clear()
        return got

    assert send("spring", T0) == sorted([SECOND, email_of(2), email_of(3)])
    settings = get_settings()
    for person, address in ((ids[1], SECOND), (ids[3], email_of(3))):
        found = feedback.read(dsn(message_of(store, "spring", person)[0], address))
        assert found is not None and found.recipient == address
        assert feedback.apply(store, found, settings=settings, now=T0 + HOUR) == "recorded"

    # the next campaign writes to person 1's other address, and reaches person 3 by SMS
    assert send("summer", T0 + DAY) == sorted([email_of(1), email_of(2)])
    assert message_of(store, "summer", ids[3])[1:] == ("planned", None)  # the SMS waits
    m = schema.messages
    with store.connect() as conn:
        channel = conn.execute(
            sa.select(m.c.channel).where(m.c.campaign == "summer", m.c.person_id == ids[3])
        ).scalar_one()
    assert channel == "sms"

    # once that address bounces too, person 1 has no e-mail left: bounced
    found = feedback.read(dsn(message_of(store, "summer", ids[1])[0], email_of(1)))
    assert found is not None
    feedback.apply(store, found, settings=settings, now=T0 + DAY + HOUR)
    assert send("autumn", T0 + 2 * DAY) == [email_of(2)]
    assert message_of(store, "autumn", ids[1])[1:] == ("suppressed", "bounced")
    f = schema.address_flags
    with store.connect() as conn:
        flags = conn.execute(sa.select(f.c.kind, f.c.person_id, f.c.status, f.c.reason)).all()
    assert sorted(tuple(r) for r in flags) == sorted(
        [
            ("email", ids[1], "bounced", "5.1.1"),
            ("email", ids[1], "bounced", "5.1.1"),
            ("email", ids[3], "bounced", "5.1.1"),
        ]
    )


def planned(store: Store, name: str, at: Any) -> dict[str, int]:
    """Plan campaign ``name`` at ``at`` and record its rows; the plan's counts."""
    with store.begin() as conn:
        definition, version = documents.get(conn, name)
        result = plan.plan(store, conn, definition, version, at)
        plan.record(store, conn, result, at)
    return result.counts


def _csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


POSTAL = {"street": "1 rue de la Paix", "postcode": "69002", "city": "Lyon"}


def test_a_returned_letter_makes_the_next_campaign_skip_the_address(
    store: Store, tmp_path: Path
) -> None:
    ids = add_people(
        store, tmp_path, 4, no_email={1, 2, 3, 4}, extra={i: POSTAL for i in range(1, 5)}
    )
    paper = {"channels": {"paper": {"text": "Bonjour"}}, "policy": {"order": ["paper"]}}
    campaign(store, "spring", T0, **paper)
    channel = PaperChannel(PaperSettings(folder=tmp_path / "print", workers=1))
    service.send(
        store, "spring", T0, channels={"paper": channel}, folder=tmp_path, clock=lambda: T0
    )
    channel.close()
    letters = {p: message_of(store, "spring", ids[p])[0] for p in range(1, 5)}
    assert {message_of(store, "spring", ids[p])[1] for p in range(1, 5)} == {"sent"}

    # person 3 moved after the letter left: the return says nothing of the new address
    moved = [{"customer_id": "C3", "street": "9 quai Saint-Vincent", "observed_at": "2026-03-05"}]
    import_file(store, "customers", write_file(tmp_path, "moved", "csv", moved), source="crm")
    returns = _csv(
        tmp_path / "returns.csv",
        ["message_id", "reason", "returned_at"],
        [
            {"message_id": letters[1], "reason": "NPAI", "returned_at": "2026-03-09T08:00:00"},
            {"message_id": letters[3], "reason": "NPAI", "returned_at": ""},
            {"message_id": "no-such-letter", "reason": "", "returned_at": ""},
            {"message_id": letters[2], "reason": "", "returned_at": "yesterday"},
        ],
    )
    done = import_returns(store, returns, now=T0 + 7 * DAY)
    assert done.to_dict() == {"flagged": 1, "quarantined": 2, "erased": 0, "moved_since": 1}
    q = schema.quarantine
    with store.connect() as conn:
        aside = conn.execute(
            sa.select(q.c.kind, q.c.location, q.c.field, q.c.reason).order_by(q.c.location)
        ).all()
    assert [tuple(r[:3]) for r in aside] == [
        ("paper_returns", "row 4", "message_id"),
        ("paper_returns", "row 5", "returned_at"),
    ]
    assert "manifest" in aside[0][3]

    # the next campaign skips person 1 on paper, with the reason
    campaign(store, "summer", T0 + 8 * DAY, **paper)
    counts = planned(store, "summer", T0 + 8 * DAY)
    assert counts == {"planned": 3, "suppressed:undeliverable_address": 1}
    assert message_of(store, "summer", ids[1])[1:] == ("suppressed", "undeliverable_address")
    assert message_of(store, "summer", ids[2])[1:] == ("planned", None)
    # ... until a new address is known
    new = [{"customer_id": "C1", "street": "3 rue Neuve", "observed_at": "2026-03-20"}]
    import_file(store, "customers", write_file(tmp_path, "new", "csv", new), source="crm")
    campaign(store, "autumn", T0 + 30 * DAY, **paper)
    assert planned(store, "autumn", T0 + 30 * DAY) == {"planned": 4}
    assert message_of(store, "autumn", ids[1])[1:] == ("planned", None)

    # the return whose date did not read is replayed once its value is fixed: person 2's
    # address is flagged too; the row naming no letter of ours stays open, as it was
    fix = tmp_path / "fix.yaml"
    fix.write_text("values:\n  returned_at: {yesterday: '2026-03-08T00:00:00'}\n")
    done = replay(store, kind="paper_returns", mapping=fix)
    assert (done.considered, done.replayed, done.still_open) == (2, 1, 1)
    with store.connect() as conn:
        left = conn.execute(sa.select(q.c.location, q.c.status).order_by(q.c.location)).all()
    assert [tuple(r) for r in left] == [("row 4", "open"), ("row 5", "replayed")]
    campaign(store, "winter", T0 + 31 * DAY, **paper)
    counts = planned(store, "winter", T0 + 31 * DAY)
    assert counts == {"planned": 3, "suppressed:undeliverable_address": 1}
    assert message_of(store, "winter", ids[2])[1:] == ("suppressed", "undeliverable_address")


def test_the_commands_import_calls_and_returns(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = add_people(store, tmp_path, 2, phones={1, 2})
    calls = _csv(
        tmp_path / "calls.csv",
        ["message_id", "person_id", "outcome", "called_at"],
        [
            {"person_id": str(ids[1]), "outcome": "Opt-out", "called_at": "2026-03-02T10:00"},
            {"person_id": str(ids[2]), "outcome": "interested", "called_at": "2026-03-02T10:05"},
            {"person_id": str(ids[2]), "outcome": "call back", "called_at": "2026-03-02T10:06"},
        ],
    )
    done = invoke_json(monkeypatch, store.url, "campaign", "calls", "import", str(calls))
    assert done == {
        "recorded": {"opt_out": 1, "interested": 1},
        "quarantined": 1,
        "erased": 0,
        "already_recorded": 0,
    }
    with store.connect() as conn:
        assert refused_ids(conn, "marketing", "phone", T0 + DAY) == {ids[1]}
    shown = invoke(monkeypatch, store.url, "campaign", "calls", "import", str(calls))
    assert shown.exit_code == 0 and "already_recorded: 2" in shown.output

    returns = _csv(tmp_path / "returns.csv", ["message_id"], [{"message_id": "nothing-here"}])
    out = invoke_json(monkeypatch, store.url, "campaign", "returns", "import", str(returns))
    assert out == {"flagged": 0, "quarantined": 1, "erased": 0, "moved_since": 0}
    missing = _csv(tmp_path / "wrong.csv", ["letter"], [{"letter": "x"}])
    refused = invoke(monkeypatch, store.url, "campaign", "returns", "import", str(missing))
    assert refused.exit_code == 2 and "message_id" in refused.output
