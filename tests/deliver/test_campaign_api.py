"""Campaigns over HTTP with an admin key: save, read, preview, send (dry run and for real, to a
real SMTP server) and status give what the commands give; other keys are refused; a bad
document is a 400 naming the field."""

from __future__ import annotations

from pathlib import Path

import httpx
from api_helpers import server_key, serving
from campaign_world import add_people, document, email_of, refuse
from smtp_sink import Sink, start
from test_campaign_send import _free_port

from surmesure.store import Store


def test_campaigns_over_http(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 3)
    refuse(store, ids[3], "email")
    admin = (server_key(store, "admin"), "")
    reader = (server_key(store, "read"), "")
    sink, port = Sink(), _free_port()
    controller = start(port, sink)
    body = document(channels={"email": document()["channels"]["email"]}, policy=None)
    smtp = f"smtp://127.0.0.1:{port}?sender=news@example.com"
    try:
        with serving(store, email_url=smtp, outbox_dir=tmp_path / "outbox") as (url, _app):
            assert httpx.put(f"{url}/v1/campaigns", json=body, auth=reader).status_code == 403
            bad = httpx.put(f"{url}/v1/campaigns", json={**body, "colour": 1}, auth=admin)
            assert bad.status_code == 400 and bad.json()["error"]["field"] == "colour"
            saved = httpx.put(f"{url}/v1/campaigns", json=body, auth=admin)
            assert saved.json() == {"name": "spring", "version": 1, "changed": True}
            read = httpx.get(f"{url}/v1/campaigns/spring", auth=admin).json()
            assert read["version"] == 1 and read["definition"]["topic"] == "offers"
            preview = httpx.get(
                f"{url}/v1/campaigns/spring/preview",
                params={"person": "customer_id:C1"},
                auth=admin,
            ).json()
            assert preview["status"] == "planned" and preview["content"]["subject"] == "Hello Name1"
            dry = httpx.post(f"{url}/v1/campaigns/spring/send?dry_run=true", auth=admin).json()
            assert dry["plan"] == {"planned": 2, "suppressed:opted_out_marketing": 1}
            sent = httpx.post(f"{url}/v1/campaigns/spring/send", auth=admin, timeout=60).json()
            assert sent["sent"] == {"sent": 2}
            status = httpx.get(f"{url}/v1/campaigns/spring/status", auth=admin).json()
            assert status["by_status"] == {"sent": 2, "suppressed": 1}
            missing = httpx.get(f"{url}/v1/campaigns/autumn/status", auth=admin)
            assert missing.status_code == 404
    finally:
        controller.stop()
    assert sorted(m["To"] for m in sink.messages()) == [email_of(1), email_of(2)]
