"""The web channel: a page link printed in an e-mail delivers the campaign's web message, a
campaign can publish pages as its own channel, and opening a page counts as an open in the
campaign's results."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from campaign_world import T0, add_people, document, email_of
from kannel_box import PASSWORD, USER, kannel, sendsms_url
from smtp_sink import (
    Sink,
    smtp_fixture,  # noqa: F401 - the fixture smtp
)
from test_campaign_send import _channel

from surmesure.config import get_settings
from surmesure.deliver import documents, outbox, plan, results, service, web_pages
from surmesure.deliver.sms import SmsChannel, SmsSettings
from surmesure.deliver.web import WebChannel
from surmesure.store import Store, schema

LINK = re.compile(r"https?://[^\s\"<>]+/p/[A-Za-z0-9_\-.]+")


def web_rows(store: Store) -> dict[int, tuple[str, str | None]]:
    m = schema.messages
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(m.c.person_id, m.c.status, m.c.reason).where(m.c.channel == "web")
        )
        return {int(r[0]): (str(r[1]), r[2]) for r in rows}


def delivered(store: Store) -> list[str]:
    r = schema.delivery_reports
    with store.connect() as conn:
        return [
            str(x[0])
            for x in conn.execute(
                sa.select(r.c.message_id).where(r.c.channel == "web", r.c.status == "delivered")
            )
        ]


def group(report: dict[str, Any], channel: str) -> dict[str, Any]:
    return next(g for g in report["groups"] if g["arm"] == "message" and g["channel"] == channel)


def test_a_page_link_in_an_email_delivers_the_web_message(
    store: Store, tmp_path: Path, smtp: tuple[Sink, int]
) -> None:
    sink, port = smtp
    ids = add_people(store, tmp_path, 4)
    doc = document(
        channels={
            "email": {"subject": "Spring", "text": "Your offers: {{ page_link }}"},
            "web": {"template": "personal_page"},
        },
        policy={"order": ["email"]},
    )
    documents.save(store, documents.parse(doc), T0)
    shown = service.preview(store, "spring", "customer_id:C1", T0)
    assert shown["channel"] == "email" and len(LINK.findall(shown["content"]["text"])) == 1
    channel = _channel(port)
    service.send(
        store, "spring", T0, channels={"email": channel}, folder=tmp_path, clock=lambda: T0
    )
    channel.close()

    received = sink.messages()
    assert len(received) == 4
    links = {}
    for m in received:
        found = LINK.findall(m.get_body(("plain",)).get_content())
        assert len(found) == 1, "each e-mail prints its person's page link once"
        links[m["To"]] = found[0]
    assert len(set(links.values())) == 4
    # each e-mail that left delivered its person's web message, at no cost
    assert web_rows(store) == {p: ("sent", "link:email") for p in ids.values()}
    assert len(delivered(store)) == 4
    before = results.measure(store, "spring")
    assert group(before, "email")["delivered"] == 4 and group(before, "email")["opened"] == 0

    # two people open their page, one of them twice: two opens
    settings = get_settings()
    for to in (email_of(1), email_of(2), email_of(2)):
        token = links[to].rsplit("/", 1)[1]
        html, person = web_pages.open_page(store, token, now=T0, settings=settings)
        assert person == ids[int(to.removeprefix("person").split("@")[0])]
        assert "<html" in html
    after = results.measure(store, "spring")
    assert group(after, "email")["opened"] == 2
    assert group(after, "email")["people"] == 4
    activity = schema.channel_activity
    with store.connect() as conn:
        opens = conn.execute(
            sa.select(activity.c.person_id)
            .where(activity.c.channel == "web", activity.c.campaign == "spring")
            .order_by(activity.c.person_id)
        ).all()
    assert [r[0] for r in opens] == sorted([ids[1], ids[2], ids[2]])
    assert len(delivered(store)) == 4  # an open of a delivered page reports nothing again
    # the preview still shows the e-mail, not the web message its link delivered
    assert service.preview(store, "spring", "customer_id:C2", T0)["channel"] == "email"


def test_web_as_the_campaigns_own_channel(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 3, no_email={2, 3})
    doc = document(
        channels={
            "email": {"subject": "Spring", "text": "-20%"},
            "web": {"subject": "Spring", "text": "-20% on your page"},
        },
        policy={"order": ["email", "web"]},
    )
    documents.save(store, documents.parse(doc), T0)
    seen: list[Any] = []

    class Recording(WebChannel):
        def send(self, messages: Any, on_result: Any = None) -> Any:
            seen.extend(messages)
            return super().send(messages, on_result)

    report = service.send(
        store, "spring", T0, channels={"web": Recording()}, folder=tmp_path, clock=lambda: T0
    )
    assert report.sent is not None and report.sent.counts == {"sent": 2}
    # those without an e-mail get a page: sent (published), not yet delivered
    assert web_rows(store) == {ids[2]: ("sent", None), ids[3]: ("sent", None)}
    assert sorted(m.person_id for m in seen) == [ids[2], ids[3]]
    assert all("/p/" in m.to for m in seen)
    before = results.measure(store, "spring")
    assert group(before, "web")["sent"] == 2 and group(before, "web")["delivered"] == 0

    token = next(m.to for m in seen if m.person_id == ids[3]).rsplit("/", 1)[1]
    web_pages.open_page(store, token, now=T0, settings=get_settings())
    after = results.measure(store, "spring")
    assert group(after, "web")["delivered"] == 1 and group(after, "web")["opened"] == 1
    # the e-mail of person 1 is still waiting for its channel
    assert service.status(store, "spring")["by_status"] == {"planned": 1, "sent": 2}


def test_a_refusal_of_web_marketing_holds_the_page_back(store: Store, tmp_path: Path) -> None:
    from campaign_world import refuse

    ids = add_people(store, tmp_path, 2, no_email={1, 2})
    refuse(store, ids[1], "web")
    doc = document(channels={"web": {"text": "Spring"}}, policy={"order": ["web"]})
    documents.save(store, documents.parse(doc), T0)
    service.send(
        store, "spring", T0, channels={"web": WebChannel()}, folder=tmp_path, clock=lambda: T0
    )
    rows = web_rows(store)
    assert rows[ids[1]] == ("suppressed", "opted_out_marketing")
    assert rows[ids[2]] == ("sent", None)


def test_a_link_that_left_before_a_crash_still_delivers_the_web_message(
    store: Store, tmp_path: Path, smtp: tuple[Sink, int]
) -> None:
    sink, port = smtp
    ids = add_people(store, tmp_path, 3)
    doc = document(
        channels={"email": {"subject": "Spring", "text": "Your page: {{ page_link }}"}},
        policy={"order": ["email"]},
    )
    documents.save(store, documents.parse(doc), T0)
    with store.begin() as conn:
        definition, version = documents.get(conn, "spring")
        plan.record(store, conn, plan.plan(store, conn, definition, version, T0), T0)
    # a run claimed the three e-mails, the provider accepted two, then the process was killed
    m = schema.messages
    with store.begin() as conn:
        conn.execute(m.update().where(m.c.campaign == "spring").values(status="sending"))
    handed = [message_of(store, ids[1]), message_of(store, ids[2])]
    with outbox.journal_of(tmp_path, "spring") as journal:
        for message_id in handed:
            journal.write(message_id)
    channel = _channel(port)
    service.send(
        store, "spring", T0, channels={"email": channel}, folder=tmp_path, clock=lambda: T0
    )
    channel.close()
    # the two that left are settled sent and delivered their pages; the third leaves now
    assert [m["To"] for m in sink.messages()] == [email_of(3)]
    assert web_rows(store) == {p: ("sent", "link:email") for p in ids.values()}
    assert len(delivered(store)) == 3
    assert message_of(store, ids[3], "status") == "sent"


def message_of(store: Store, person: int, column: str = "message_id") -> str:
    m = schema.messages
    with store.connect() as conn:
        return str(
            conn.execute(
                sa.select(m.c[column]).where(
                    m.c.campaign == "spring", m.c.person_id == person, m.c.channel == "email"
                )
            ).scalar_one()
        )


KANNEL_BASE = 18520  # .. 18523


def test_a_page_link_in_an_sms_through_kannel_delivers_the_web_message(
    store: Store, tmp_path: Path
) -> None:
    ids = add_people(store, tmp_path, 2, no_email={1, 2}, phones={1, 2})
    text = "Vos offres: {{ page_link }} STOP 36180"
    doc = document(channels={"sms": {"text": text, "sender": "MAISON"}}, policy={"order": ["sms"]})
    documents.save(store, documents.parse(doc), T0)
    settings = SmsSettings(url=sendsms_url(KANNEL_BASE), username=USER, password=PASSWORD)
    with kannel(tmp_path, KANNEL_BASE) as phone:
        sms = SmsChannel(settings)
        service.send(store, "spring", T0, channels={"sms": sms}, folder=tmp_path, clock=lambda: T0)
        sms.close()
        phone.wait_for(2)
        texts = phone.received()
    links = {to: LINK.findall(payload) for _, to, _, payload in texts}
    assert sorted(links) == ["+33612340001", "+33612340002"]
    assert all(len(found) == 1 for found in links.values())
    assert web_rows(store) == {p: ("sent", "link:sms") for p in ids.values()}
    assert len(delivered(store)) == 2
    # the link the phone received opens the person's page, an open of the campaign
    token = links["+33612340002"][0].rsplit("/", 1)[1]
    _, person = web_pages.open_page(store, token, now=T0, settings=get_settings())
    assert person == ids[2]
    report = results.measure(store, "spring")
    assert group(report, "sms")["opened"] == 1 and group(report, "sms")["sent"] == 2
