"""One-click unsubscribe end to end: the link an e-mail carries, POSTed as a mail reader does
(RFC 8058), records a marketing refusal on e-mail for the person (the one an absorbed id was
merged into), with evidence that is not the link; GET changes nothing; a tampered link, or a
link of another channel, records nothing."""

from __future__ import annotations

from datetime import datetime

import httpx
import sqlalchemy as sa
from api_helpers import serving
from people_rows import activity_rows, add_people
from smtp_sink import Sink, start

from surmesure.deliver.channel import Message
from surmesure.deliver.email import EmailChannel, EmailSettings
from surmesure.deliver.unsubscribe import SOURCE, UnsubscribeLinks
from surmesure.protect.consent import refused_ids
from surmesure.store import Store, schema

SECRET = "a-test-secret-of-some-length"
PORT = 18453


def _records(store: Store) -> list[tuple[int, str, str, bool, str, str]]:
    k = schema.consents
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(
                k.c.person_id, k.c.purpose, k.c.channel, k.c.granted, k.c.source, k.c.evidence
            )
        ).all()
    return [(int(r[0]), str(r[1]), str(r[2]), bool(r[3]), str(r[4]), str(r[5])) for r in rows]


def _mailed_link(url: str) -> str:
    """The https link of the List-Unsubscribe header of an e-mail sent to person 8."""
    sink = Sink()
    controller = start(PORT, sink)
    try:
        links = UnsubscribeLinks(url, SECRET, mailto="unsubscribe@example.com")
        channel = EmailChannel(EmailSettings(port=PORT, pool=1), links)
        message = Message("m1", "email", "bob@example.org", "Hello", "Offers", person_id=8)
        assert channel.send([message])[0].outcome == "sent"
        channel.close()
    finally:
        controller.stop()
    [mail] = sink.messages()
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    return str(mail["List-Unsubscribe"]).split(",")[0].strip(" <>")


def test_one_click_records_an_email_opt_out_once(store: Store) -> None:
    add_people(store, (7, None), (8, 7))
    with serving(store, secret_key=SECRET) as (url, _app):
        link = _mailed_link(url)
        assert link.startswith(f"{url}/u/email/")
        page = httpx.get(link, params={"lang": "en"})
        assert page.status_code == 200 and '<form method="post">' in page.text
        assert _records(store) == []  # looking at the page changes nothing
        one_click = {"content-type": "application/x-www-form-urlencoded"}
        answer = httpx.post(link, content=b"List-Unsubscribe=One-Click", headers=one_click)
        assert answer.status_code == 200 and "e-mail" in answer.text
        again = httpx.post(link, content=b"List-Unsubscribe=One-Click", headers=one_click)
        assert again.status_code == 200
    [(person, purpose, channel, granted, source, evidence)] = _records(store)
    assert (person, purpose, channel, granted, source) == (7, "marketing", "email", False, SOURCE)
    token = link.rpartition("/")[2]
    assert evidence.startswith("link:") and token not in evidence
    with store.connect() as conn:
        assert refused_ids(conn, "marketing", "email", datetime(2100, 1, 1)) == {7}
        assert refused_ids(conn, "marketing", "sms", datetime(2100, 1, 1)) == set()
    with store.connect() as conn:
        audit = conn.execute(
            sa.select(schema.audit_log.c.action).where(schema.audit_log.c.person_id == 7)
        ).all()
    assert [a[0] for a in audit] == ["consent.unsubscribe"]
    done = activity_rows(store, "person_id", "node_id", "channel", "kind")
    assert done == [(7, 8, "email", "unsubscribed")]


def test_a_tampered_or_foreign_link_records_nothing(store: Store) -> None:
    add_people(store, (7, None), (8, 7))
    links = UnsubscribeLinks("http://x", SECRET)
    email_token = links.url(7, "email").rpartition("/")[2]
    with serving(store, secret_key=SECRET) as (url, _app):
        tampered = email_token[:-3] + ("AAA" if not email_token.endswith("AAA") else "BBB")
        assert httpx.post(f"{url}/u/email/{tampered}").status_code == 404
        assert httpx.post(f"{url}/u/sms/{email_token}").status_code == 404
        assert httpx.post(f"{url}/u/pigeon/{email_token}").status_code == 404
        assert httpx.get(f"{url}/u/email/{tampered}").status_code == 404
        other = UnsubscribeLinks(url, "another-secret-of-some-length").url(7)
        assert httpx.post(other).status_code == 404
    assert _records(store) == []
