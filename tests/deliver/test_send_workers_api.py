"""A campaign sent over the API with ``SURMESURE_SEND_WORKERS`` 2 is rendered and handed over by
worker processes, as ``campaign send --workers 2`` does: each message reaches the SMTP server
started here once, and the server records what became of every one."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
from api_helpers import server_key, serving
from campaign_world import add_people, document, email_of
from smtp_sink import Sink, free_port, start

from surmesure.deliver import service
from surmesure.store import Store


def test_an_api_send_with_two_workers_sends_each_message_once(store: Store, tmp_path: Path) -> None:
    people = 20
    add_people(store, tmp_path, people)
    sink, port = Sink(), free_port()
    sink.refuse = {email_of(5): "550 no such user"}
    server = start(port, sink)
    admin = (server_key(store, "admin"), "")
    body = document(channels={"email": document()["channels"]["email"]}, policy=None)
    smtp = f"smtp://127.0.0.1:{port}?sender=news@example.com&pool=1"
    outbox = tmp_path / "outbox"
    try:
        with serving(store, email_url=smtp, outbox_dir=outbox, send_workers=2) as (url, _):
            assert httpx.put(f"{url}/v1/campaigns", json=body, auth=admin).status_code == 200
            sent = httpx.post(f"{url}/v1/campaigns/spring/send", auth=admin, timeout=120)
            again = httpx.post(f"{url}/v1/campaigns/spring/send", auth=admin, timeout=120)
    finally:
        server.stop()
    assert sent.status_code == 200, sent.text
    assert sent.json()["sent"] == {"sent": people - 1, "failed": 1}
    assert again.json()["sent"] == {}
    received = Counter(m["To"] for m in sink.messages())
    assert received == Counter({email_of(i): 1 for i in range(1, people + 1) if i != 5})
    assert all("Dear Name" in m.get_body(("plain",)).get_content() for m in sink.messages())
    # the worker processes handed them over (their lock is taken only there)
    assert (outbox / "spring.workers").exists()
    assert service.status(store, "spring")["by_status"] == {"sent": people - 1, "failed": 1}
