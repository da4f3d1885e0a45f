"""Journeys over HTTP with an admin key, and the whole real-time path inside one server: a
collected event (``/v1/track``) enters people, the server's journey worker sends their first
step to a real SMTP server."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from api_helpers import WRITE_KEY, server_key, serving
from journey_world import add_people, email_of, welcome_document
from smtp_sink import Sink, start
from test_campaign_send import _free_port

from surmesure.store import Store


def _track(customer: str, event: str, n: int) -> dict[str, object]:
    return {
        "type": "track",
        "event": event,
        "userId": customer,
        "messageId": f"api-{customer}-{n}",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def test_journeys_over_http_and_from_track_to_the_smtp_server(store: Store, tmp_path: Path) -> None:
    add_people(store, tmp_path, 3)
    admin = (server_key(store, "admin"), "")
    reader = (server_key(store, "read"), "")
    sink, port = Sink(), _free_port()
    controller = start(port, sink)
    body = welcome_document()
    smtp = f"smtp://127.0.0.1:{port}?sender=news@example.com"
    try:
        with serving(
            store, email_url=smtp, outbox_dir=tmp_path / "outbox", journey_period_seconds=0.2
        ) as (url, _app):
            assert httpx.put(f"{url}/v1/journeys", json=body, auth=reader).status_code == 403
            bad = httpx.put(f"{url}/v1/journeys", json={**body, "colour": 1}, auth=admin)
            assert bad.status_code == 400 and bad.json()["error"]["field"] == "colour"
            schema = httpx.get(f"{url}/v1/journeys/schema", auth=admin).json()
            assert "steps" in schema["properties"]
            done = httpx.put(f"{url}/v1/journeys", json=body, auth=admin).json()
            assert done == {"name": "welcome", "version": 1, "changed": True}
            read = httpx.get(f"{url}/v1/journeys/welcome", auth=admin).json()
            assert read["status"] == "active" and read["definition"]["steps"][0]["id"] == "hello"
            for i in (1, 2):
                sent = httpx.post(
                    f"{url}/v1/track", json=_track(f"C{i}", "Signed Up", i), auth=(WRITE_KEY, "")
                )
                assert sent.status_code == 200
            deadline = time.monotonic() + 30
            while len(sink.messages()) < 2:
                assert time.monotonic() < deadline, "the first step was not sent"
                time.sleep(0.1)
            status = httpx.get(f"{url}/v1/journeys/welcome/status", auth=admin).json()
            assert status["entered"] == 2 and status["running"] == 2
            person = httpx.get(
                f"{url}/v1/journeys/welcome/people/customer_id:C1", auth=admin
            ).json()
            assert person["entries"][0]["step"] == "pause"
            paused = httpx.post(f"{url}/v1/journeys/welcome/pause", auth=admin).json()
            assert paused["status"] == "paused"
            wrong = httpx.post(f"{url}/v1/journeys/welcome/explode", auth=admin)
            assert wrong.status_code == 400
            missing = httpx.get(f"{url}/v1/journeys/autumn/status", auth=admin)
            assert missing.status_code == 404
    finally:
        controller.stop()
    assert sorted(m["To"] for m in sink.messages()) == [email_of(1), email_of(2)]
