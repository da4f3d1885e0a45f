"""The gateways' keys and the links' tokens never reach a log line: the feedback key travels
in ``Authorization: Bearer``, and where a key must stay in the URL (Kannel's ``get-url`` sends
no header) no log of the server, uvicorn's included, prints a path's values or a query
string; the access log names route templates. Before, the feedback key could only travel in
the query string, and ``--log-level trace`` printed every request's query."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from api_helpers import TEST_SECRET, serving
from people_rows import add_people

from surmesure.cli.serve import server_options
from surmesure.clock import utcnow
from surmesure.decide import pages
from surmesure.deliver.feedback import feedback_key
from surmesure.deliver.sms import INBOUND_PATH, inbound_key
from surmesure.deliver.unsubscribe import UnsubscribeLinks
from surmesure.errors import InvalidInput
from surmesure.store import Store

LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "surmesure")
PHONE = "+33612345678"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()} {record.exc_text or ''}")


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    access = logging.getLogger("surmesure.access")
    try:
        yield handler
    finally:
        for name in (*LOGGERS, "surmesure.access"):
            logging.getLogger(name).removeHandler(handler)
        access.handlers.clear()
        access.setLevel(logging.WARNING)


def test_no_log_line_prints_a_key_or_a_token(
    duckdb_store: Store, lines: Lines, capfd: pytest.CaptureFixture[str]
) -> None:
    add_people(duckdb_store, (7, None))
    feedback, inbound = feedback_key(TEST_SECRET), inbound_key(TEST_SECRET)
    page = pages.make_token(7, days=7, now=utcnow(), secret=TEST_SECRET)
    report = b"From: a@example.org\r\nSubject: hello\r\n\r\nnot a report\r\n"
    with serving(duckdb_store, server=server_options("debug", access_log=True)) as (base, _):
        for name in (*LOGGERS, "surmesure.access"):  # after uvicorn configured its logging
            logging.getLogger(name).addHandler(lines)
        url = f"{base}/v1/email/feedback"
        bearer = httpx.post(url, headers={"Authorization": f"Bearer {feedback}"}, content=report)
        assert bearer.status_code == 200 and bearer.json() == {"outcome": "ignored"}
        assert httpx.post(url, params={"key": feedback}, content=report).status_code == 200
        wrong = httpx.post(url, headers={"Authorization": "Bearer not-the-key"}, content=report)
        assert wrong.status_code == 404
        assert httpx.post(url, content=report).status_code == 404
        # the documented Kannel get-url: key=KEY&from=%p&text=%a&charset=%C&id=%I
        query = {"key": inbound, "from": PHONE, "text": "STOP", "charset": "UTF-8", "id": "k1"}
        assert httpx.get(base + INBOUND_PATH, params=query).status_code == 200
        assert httpx.get(base + INBOUND_PATH, params=query | {"key": "x"}).status_code == 404
        assert httpx.get(f"{base}/p/{page}", params={"lang": "fr"}).status_code == 200
        unsubscribe = UnsubscribeLinks(base, TEST_SECRET).url(7)
        assert httpx.post(unsubscribe).status_code == 200
    captured = capfd.readouterr()
    text = "\n".join([*lines.lines, captured.out, captured.err])
    token = unsubscribe.rpartition("/")[2]
    for secret in (feedback, inbound, PHONE, "%2B33612345678", page, token):
        assert secret not in text
    assert "POST /v1/email/feedback 200" in text and "POST /v1/email/feedback 404" in text
    assert f"GET {INBOUND_PATH} 200" in text and "GET /p/{token} 200" in text


def test_the_server_takes_no_option_that_logs_queries_or_believes_any_proxy() -> None:
    options = server_options("info")
    assert options["access_log"] is False and options["proxy_headers"] is False
    with pytest.raises(InvalidInput, match="trace"):
        server_options("trace")
