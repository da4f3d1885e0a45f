"""An attacker's pass over what campaigns added: the links a recipient holds (unsubscribe,
tracking, personal page, preference centre), the callbacks of the SMS gateway and the mailbox,
the admin routes' bodies and the paper letters. Each test is an attack; those marked "once
succeeded" failed before the fix that came with them. On a real server, on both stores."""

from __future__ import annotations

import html
import http.server
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from api_helpers import TEST_SECRET, gigabyte_answer, server_key, serving
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer
from pypdf import PdfReader

from surmesure.clock import utcnow
from surmesure.decide import pages
from surmesure.decide.page_words import WORDS
from surmesure.deliver import tracking
from surmesure.deliver.channel import Message
from surmesure.deliver.feedback import feedback_key
from surmesure.deliver.mjml import compile_mjml
from surmesure.deliver.paper import PaperChannel, PaperSettings
from surmesure.deliver.sms import REPORTS_PATH, SmsChannel, SmsSettings, signature
from surmesure.deliver.unsubscribe import UnsubscribeLinks
from surmesure.errors import InvalidInput
from surmesure.protect import preferences
from surmesure.store import Store, schema

PERSON, OTHER = 1, 2


def _people(store: Store) -> None:
    with store.begin() as conn:
        now = utcnow()
        conn.execute(
            schema.people.insert(),
            [dict(person_id=p, created_at=now, updated_at=now) for p in (PERSON, OTHER)],
        )


def _count(store: Store, table: sa.Table) -> int:
    with store.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _tokens(base: str) -> dict[str, str]:
    """One genuine token of each kind for :data:`PERSON`, made as the server makes them."""
    now = utcnow()
    email = UnsubscribeLinks(base, TEST_SECRET).url(PERSON, "email")
    return {
        "unsubscribe": email.rpartition("/")[2],
        "page": pages.make_token(PERSON, days=7, now=now, secret=TEST_SECRET),
        "preferences": preferences.make_token(PERSON, days=7, now=now, secret=TEST_SECRET),
        "pixel": URLSafeSerializer(TEST_SECRET, salt=tracking.SALT).dumps({"p": PERSON, "c": "x"}),
    }


def test_a_link_opens_only_the_door_it_was_made_for(store: Store) -> None:
    """Each token is signed under a salt naming its use: an unsubscribe link is no page link,
    a page link unsubscribes nobody, an open pixel redirects nowhere, and a link signed with
    another secret, unsigned ("none"), truncated or expired opens nothing."""
    _people(store)
    with serving(store) as (base, _):
        t = _tokens(base)
        foreign = URLSafeTimedSerializer("another-secret", salt="unsubscribe:email").dumps(
            {"p": OTHER, "e": int(utcnow().timestamp()) + 3600}
        )
        payload = t["unsubscribe"].split(".")[0]
        expired = UnsubscribeLinks(
            base, TEST_SECRET, clock=lambda: utcnow() - timedelta(days=30), days=7
        ).url(PERSON)
        wrong_door = {
            f"/p/{t['unsubscribe']}": "GET",
            f"/preferences/{t['unsubscribe']}": "GET",
            f"/t/c/{t['unsubscribe']}": "GET",
            f"/t/c/{t['pixel']}": "GET",
            f"/u/email/{t['page']}": "POST",
            f"/u/email/{t['preferences']}": "POST",
            f"/u/sms/{t['unsubscribe']}": "POST",
            f"/u/any/{t['unsubscribe']}": "POST",
            f"/u/email/{foreign}": "POST",
            f"/u/email/{payload}": "POST",  # no signature at all
            f"/u/email/{payload}..": "POST",
            f"/u/email/{t['unsubscribe'][:-6]}": "POST",  # truncated signature
            f"/u/email/{expired.rpartition('/')[2]}": "POST",
            f"/p/{t['page']}x": "GET",
        }
        answers = {
            path: httpx.request(method, base + path, follow_redirects=False).status_code
            for path, method in wrong_door.items()
        }
        # the genuine ones do open their own door
        own = httpx.post(f"{base}/u/email/{t['unsubscribe']}").status_code
    assert answers == dict.fromkeys(wrong_door, 404)
    assert own == 200
    c = schema.consents
    with store.connect() as conn:
        rows = conn.execute(sa.select(c.c.person_id, c.c.channel, c.c.granted)).all()
    assert [tuple(r) for r in rows] == [(PERSON, "email", False)]


def test_a_click_redirect_carries_no_header_of_the_links_making(store: Store) -> None:
    """A link whose target holds CR LF (a template building it from a trait) redirects with
    the characters escaped: no header is added to the answer, no cookie set."""
    _people(store)
    with serving(store) as (base, _):
        html = '<a href="https://shop.example/x\r\nSet-Cookie: session=stolen">go</a>'
        signer = URLSafeSerializer(TEST_SECRET, salt=tracking.SALT)
        target = "https://shop.example/x\r\nSet-Cookie: session=stolen\r\nX-Evil: 1"
        token = signer.dumps({"p": PERSON, "c": "spring", "u": target})
        answer = httpx.get(f"{base}/t/c/{token}", follow_redirects=False)
        rewritten = tracking.track(html, PERSON, "spring", public_url=base, secret=TEST_SECRET)
    assert answer.status_code == 302
    assert "set-cookie" not in answer.headers and "x-evil" not in answer.headers
    location = answer.headers["location"]
    assert location.startswith("https://shop.example/x") and "\r" not in location
    assert "\n" not in location
    assert "Set-Cookie" not in rewritten.split("/t/c/")[0]


def test_a_kannel_report_type_is_one_of_its_ascii_numbers(store: Store) -> None:
    """Once succeeded: a signed report with the Arabic-Indic digit one was read as type 1
    (delivered). Kannel sends ASCII digits only."""
    with serving(store) as (base, _):
        sig = signature(TEST_SECRET, "m1")
        answers = [
            httpx.get(f"{base}{REPORTS_PATH}", params={"id": "m1", "sig": sig, "status": s})
            for s in ("\u0661", "\uff11", " 1", "+1", "1_6", "0x1")
        ]
        good = httpx.get(f"{base}{REPORTS_PATH}", params={"id": "m1", "sig": sig, "status": "1"})
    assert [a.status_code for a in answers] == [400] * len(answers)
    assert all(a.json()["error"]["field"] == "status" for a in answers)
    assert good.status_code == 200 and good.text == "delivered"
    assert _count(store, schema.delivery_reports) == 1


NUL_BODIES: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "POST",
        "/v1/consents",
        {
            "person": str(PERSON),
            "evidence": "form\x00",
            "consents": [{"purpose": "marketing", "granted": False}],
        },
        "body.evidence",
    ),
    (
        "POST",
        "/v1/consents",
        {
            "person": str(PERSON),
            "evidence": "form 12",
            "source": "shop\x00",
            "consents": [{"purpose": "marketing", "granted": False}],
        },
        "body.source",
    ),
    (
        "POST",
        "/v1/preferences",
        {
            "person": str(PERSON),
            "evidence": "call\x00",
            "preferences": [{"kind": "frequency", "value": "weekly"}],
        },
        "body.evidence",
    ),
    (
        "PUT",
        "/v1/campaigns",
        {
            "name": "spring",
            "description": "Spring\x00",
            "audience": "everyone",
            "channels": {"sms": {"text": "-20%"}},
        },
        "description",
    ),
    (
        "PUT",
        "/v1/campaigns",
        {
            "name": "spring",
            "audience": "everyone",
            "channels": {"sms": {"text": "-20%\x00 STOP 36180"}},
        },
        "channels.sms.text",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), NUL_BODIES)
def test_an_admin_body_no_store_can_keep_is_a_400_naming_its_field(
    store: Store, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    """Once succeeded (on PostgreSQL): a NUL character in a consent's evidence or source, a
    preference's evidence or a campaign's text answered 500 with nothing said of why."""
    _people(store)
    admin = server_key(store, "admin")
    with serving(store) as (base, _):
        answer = httpx.request(method, base + path, json=body, auth=(admin, ""))
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["field"] == field and error["code"] == "invalid_input"
    assert "Value error" not in error["message"]
    assert _count(store, schema.consents) == 0
    assert _count(store, schema.campaign_versions) == 0


@pytest.fixture
def web_server() -> Iterator[tuple[str, list[str]]]:
    """A web server on loopback that records each path asked of it (answers 404, quoting
    the ``to`` parameter)."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            to = parse_qs(urlsplit(self.path).query).get("to", ["nobody"])[0]
            text = f"Invalid destination {to}".encode()  # as some gateways answer
            self.send_response(404)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def test_a_letter_fetches_nothing_its_template_names(
    tmp_path: Path, web_server: tuple[str, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    """Once succeeded: WeasyPrint fetched every URL of a letter, so a template (or a value in
    it) could embed a server file in the PDF (``<a rel="attachment">``) or make the server
    call an address of its network (images, stylesheets, ``url()``), and its log named each
    URL, with the personal values built into it. Letters now fetch nothing but ``data:``."""
    web, asked = web_server
    secret = tmp_path / "server-secret.txt"
    secret.write_text("SERVER-SECRET-7d1f")
    email = "ana.martin@example.org"
    html = (
        f'<p>Bonjour</p><a rel="attachment" href="file://{secret}">pièce</a>'
        f'<img src="file://{secret}"><img src="{web}/pixel.png?who={email}">'
        f'<link rel="stylesheet" href="{web}/style.css?who={email}">'
        f'<div style="background: url({web}/bg.png)">fond</div>'
        f"<style>@import url({web}/import.css); @font-face {{ font-family: x; "
        f"src: url({web}/font.woff) }}</style>"
        '<img src="data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACwAAAAAAQABAAACAkQBADs=">'
    )
    caplog.set_level(logging.DEBUG)
    channel = PaperChannel(PaperSettings(folder=tmp_path / "print", workers=1))
    message = Message("m1", "paper", "Mme Ana Martin\n12 rue des Lilas\n75001 PARIS", "", html=html)
    [delivery] = channel.send([message])
    assert delivery.outcome == "sent", delivery.detail
    pdf = PdfReader(next((tmp_path / "print").glob("*.pdf")))
    assert asked == []
    assert pdf.attachments == {}
    assert "Bonjour" in pdf.pages[0].extract_text()  # the letter itself was laid out
    logged = caplog.text  # messages and traces, as a log handler writes them
    assert "Failed to load" in logged  # what was left out is still said
    assert email not in logged and str(secret) not in logged and web not in logged


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ("score=9&comment=tr%C3%A8s%00bien", "comment"),
        ("score=%C2%B2", "score"),  # superscript two: a digit to str.isdigit(), not to int()
        ("score=%D9%A1", "score"),  # Arabic-Indic one
        ("score=%3Cscript%3Ealert(1)%3C/script%3E", "score"),  # reflected, escaped (kept)
    ],
)
def test_a_keyless_nps_form_no_store_can_keep_records_nothing(
    store: Store, form: str, field: str
) -> None:
    """Once succeeded: anyone holding a page link (no key) made the server answer 500 with a
    NUL character in the comment (PostgreSQL) or a score of "²" (both stores)."""
    _people(store)
    token = pages.make_token(PERSON, days=7, now=utcnow(), secret=TEST_SECRET)
    with serving(store) as (base, _):
        answer = httpx.post(
            f"{base}/p/{token}/nps",
            content=form,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        as_json = httpx.post(f"{base}/p/{token}/nps", json={"score": 9, "comment": "a\x00"})
        fine = httpx.post(f"{base}/p/{token}/nps", data={"score": "9", "comment": "très bien"})
    assert answer.status_code == 400 and as_json.status_code == 400, answer.text
    said = "bad_comment" if field == "comment" else "bad_score"  # in the page's language
    assert any(html.escape(words[said]) in answer.text for words in WORDS.values()), answer.text
    assert "<script>" not in answer.text
    assert fine.status_code == 200
    s = schema.survey_answers
    with store.connect() as conn:
        rows = conn.execute(sa.select(s.c.person_id, s.c.score, s.c.comment)).all()
    assert [tuple(r) for r in rows] == [(PERSON, 9, "très bien")]


def test_an_mjml_template_reads_no_file_of_the_server(tmp_path: Path) -> None:
    """``<mj-include path=...>`` would put a server file in every e-mail of a campaign saved
    over the API: the compiler has no loader, so the template is refused, its message naming
    neither the path nor what the file holds."""
    secret = tmp_path / "part.mjml"
    secret.write_text("<mj-text>SERVER-SECRET-7d1f</mj-text>")
    source = (
        "<mjml><mj-body><mj-section><mj-column>"
        f'<mj-include path="{secret}"/><mj-include path="{secret}" type="html"/>'
        "</mj-column></mj-section></mj-body></mjml>"
    )
    with pytest.raises(InvalidInput) as refused:
        compile_mjml(source)
    assert refused.value.field == "html"
    assert str(secret) not in refused.value.message and "SERVER-SECRET" not in str(refused.value)


def test_a_page_opened_by_a_link_is_kept_by_no_cache_and_named_to_no_site(store: Store) -> None:
    """Once succeeded: the personal page, the preference centre and the unsubscribe page were
    answered with no cache rule, no referrer rule and no frame rule, so a shared proxy or the
    browser's history kept a person's page, a site it links to could get its address (the
    token) in the ``Referer`` and another site could frame its buttons."""
    _people(store)
    with serving(store) as (base, _):
        t = _tokens(base)
        answers = [
            httpx.get(f"{base}/p/{t['page']}"),
            httpx.post(f"{base}/p/{t['page']}/nps", data={"score": "8"}),
            httpx.get(f"{base}/preferences/{t['preferences']}"),
            httpx.post(f"{base}/preferences/{t['preferences']}", data={"email": "on"}),
            httpx.get(f"{base}/u/email/{t['unsubscribe']}"),
            httpx.post(f"{base}/u/email/{t['unsubscribe']}"),
            httpx.get(f"{base}/p/not-a-token"),
        ]
    assert [a.status_code for a in answers] == [200] * 6 + [404]
    for answer in answers:
        assert "no-store" in answer.headers["cache-control"], answer.request.url
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


def _nested(levels: int, kind: str) -> bytes:
    head = (
        b"Content-Type: multipart/report; report-type=" + kind.encode() + b'; boundary="b0"\r\n'
        b"\r\n--b0\r\n"
    )
    if kind == "feedback-report":
        return head + b"Content-Type: message/rfc822\r\n\r\n" * levels
    return head + b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (n, n)
        for n in range(1, levels)
    )


@pytest.mark.parametrize("kind", ["delivery-status", "feedback-report"])
def test_a_report_nested_deep_is_refused_not_a_server_error(store: Store, kind: str) -> None:
    """Once succeeded: the bounce mailbox passes on whatever anyone mails it, and a report
    nesting a few thousand parts (170 KB) exhausted the parser's stack: 500, and seconds of
    the event loop's time. It is now a 400 naming the body, and nothing is recorded."""
    with serving(store) as (base, _):
        answer = httpx.post(
            f"{base}/v1/email/feedback",
            params={"key": feedback_key(TEST_SECRET)},
            content=_nested(3000, kind),
            timeout=30,
        )
        alive = httpx.get(f"{base}/health")
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == "body"
    assert alive.status_code == 200
    assert _count(store, schema.delivery_reports) == 0
    assert _count(store, schema.consents) == 0


def test_a_gateway_refusal_quoting_the_number_keeps_no_number(
    web_server: tuple[str, list[str]],
) -> None:
    """A gateway that refuses with the number in its answer (``400 Invalid destination
    +33612345678``, 404 here for any path) leaves a detail without it: the outbox row that
    keeps it outlives the person's erasure."""
    web, asked = web_server
    channel = SmsChannel(SmsSettings(url=f"{web}/sendsms", username="u", password="p"))
    number = "+33612345678"
    try:
        [delivery] = channel.send([Message("m1", "sms", number, "Bonjour")])
    finally:
        channel.close()
    assert len(asked) == 1 and delivery.outcome == "failed"
    assert delivery.detail is not None and delivery.detail.startswith("404")
    assert number not in delivery.detail and "(recipient)" in delivery.detail


@pytest.mark.parametrize(
    "path", ["/v1/consents", "/v1/preferences", "/v1/pages/links", "/v1/local/run"]
)
def test_a_keyless_gigabyte_is_refused_before_it_is_read(store: Store, path: str) -> None:
    """Once succeeded: these routes took their body as a FastAPI body parameter, which is read
    whole before the key is checked, so a client with no key made the server wait for (and
    hold) the gigabyte it announced. The key is now checked first; a keyed body is bounded."""
    decide = server_key(store, "decide")
    with serving(store) as (base, _):
        answer = gigabyte_answer(base, path, "application/json", b'{"person": "')
        keyed = httpx.post(
            base + path,
            content=b'{"person": "' + b"x" * 100_000 + b'"}',
            headers={"content-type": "application/json"},
            auth=(decide, ""),
        )
    assert answer.startswith(b"HTTP/1.1 401"), answer
    # the decide key opens only page links; the local channel takes no key at all
    expected = {"/v1/pages/links": 413, "/v1/local/run": 401}.get(path, 403)
    assert keyed.status_code == expected, keyed.text


def test_an_sms_carries_no_escape_or_control_a_value_brought() -> None:
    """Once succeeded: a first name holding a raw escape (``\\x1b``) or other control
    characters reached the gateway as they were; read as GSM-7's escape, ``\\x1be`` shows as
    ``€`` and the message is cut and billed otherwise than counted. They are left out; the
    extension characters themselves (``€``, ``{``) count two septets as before."""
    channel = SmsChannel(SmsSettings(username="u", password="p"))
    try:
        query = channel.params(Message("m1", "sms", "+33612345678", "Bonjour \x1be\x00Ana\x07 €{"))
    finally:
        channel.close()
    assert isinstance(query, dict)
    assert query["text"] == "Bonjour eAna €{" and query["coding"] == "0"
