"""``surmesure campaign``: validate, save, preview (what a person would get and why), send
--dry-run and status, as a user types them; a template that fails for one person fails that
message only."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from campaign_world import T0, add_people, document, refuse

from conftest import invoke, invoke_json
from surmesure.deliver import documents, service
from surmesure.deliver.outbox import BACKOFF
from surmesure.store import Store, schema


def _write(tmp_path: Path, **change: object) -> Path:
    path = tmp_path / "spring.yaml"
    path.write_text(yaml.safe_dump(document(**change)), encoding="utf-8")
    return path


def test_validate_save_preview_dry_run_and_status(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = add_people(store, tmp_path, 4, no_email={4})
    refuse(store, ids[2], "email")
    path = _write(tmp_path)
    assert invoke_json(monkeypatch, store.url, "campaign", "validate", str(path)) == {
        "name": "spring",
        "valid": True,
    }
    bad = _write(tmp_path, chanels={})
    refused = invoke(monkeypatch, store.url, "campaign", "validate", str(bad))
    assert refused.exit_code == 2
    assert "chanels" in refused.output and "remove this field" in refused.output
    saved = invoke_json(monkeypatch, store.url, "campaign", "save", str(_write(tmp_path)))
    assert saved == {"name": "spring", "version": 1, "changed": True}

    one = invoke_json(
        monkeypatch, store.url, "campaign", "preview", "spring", "--person", "customer_id:C1"
    )
    assert (one["status"], one["channel"], one["recorded"]) == ("planned", "email", False)
    assert one["content"]["subject"] == "Hello Name1"
    assert one["explanation"]["fields"][0]["used"] is True
    two = invoke_json(
        monkeypatch, store.url, "campaign", "preview", "spring", "--person", "customer_id:C2"
    )
    assert (two["status"], two["reason"]) == ("suppressed", "opted_out_marketing")
    assert "content" not in two
    assert two["why_channel"].startswith("no channel (opted_out_marketing)")
    shown = invoke(
        monkeypatch, store.url, "campaign", "preview", "spring", "--person", "customer_id:C1"
    )
    assert "why: email: first reachable channel of the order" in shown.output

    dry = invoke_json(monkeypatch, store.url, "campaign", "send", "spring", "--dry-run")
    assert dry["plan"] == {
        "planned": 2,
        "suppressed:opted_out_marketing": 1,
        "suppressed:unreachable": 1,
    }
    assert dry["sent"] is None
    status = invoke_json(monkeypatch, store.url, "campaign", "status", "spring")
    assert status["total"] == 0  # the dry run recorded nothing
    autumn = str(_write(tmp_path, name="autumn"))
    by_file = invoke_json(monkeypatch, store.url, "campaign", "send", autumn, "--dry-run")
    assert (by_file["campaign"], by_file["version"]) == ("autumn", 0)  # not saved
    assert by_file["plan"] == dry["plan"]
    unknown = invoke(monkeypatch, store.url, "campaign", "status", "autumn")
    assert unknown.exit_code == 2 and "no campaign 'autumn'" in unknown.output


def test_a_template_failing_for_one_person_fails_that_message_only(
    store: Store, tmp_path: Path
) -> None:
    add_people(store, tmp_path, 10)  # first names Name1 .. Name10
    email = {
        "text": "{{ 100 // ((person.first_name | length) - 5) }}",
        "fields": {"first_name": {"trait": "first_name", "fallback": "x"}},
    }
    documents.save(store, documents.parse(document(channels={"email": email}, policy=None)), T0)
    sent = service.send(store, "spring", T0, channels={"email": _Accepting()}, folder=tmp_path)
    assert sent.sent is not None
    assert sent.sent.counts["sent"] == 1  # Name10: 100 // 1
    status = service.status(store, "spring")
    assert status["by_status"] == {"failed": 9, "sent": 1}


#: about 9,000 small steps: a second or more of rendering, past the 250 ms a render may take
SLOW = (
    "{% for i in range(1000) %}{% for j in range(9) %}"
    "{{ ('ab' * 40000)|replace('a', 'c')|length }}{% endfor %}{% endfor %}"
)


def test_a_render_stopped_by_its_time_limit_is_tried_again_then_fails(
    store: Store, tmp_path: Path
) -> None:
    add_people(store, tmp_path, 2)
    email = {
        "text": "{% if person.first_name == 'Name1' %}" + SLOW + "{% endif %}Hello",
        "fields": {"first_name": {"trait": "first_name", "fallback": "x"}},
    }
    documents.save(store, documents.parse(document(channels={"email": email}, policy=None)), T0)
    channels = {"email": _Accepting()}
    first = service.send(store, "spring", T0, channels=channels, folder=tmp_path, clock=lambda: T0)
    # a busy machine may have slowed the render down: not failed yet, tried again later
    assert first.sent is not None and first.sent.counts == {"sent": 1, "retry": 1}
    assert service.status(store, "spring")["by_status"] == {"planned": 1, "sent": 1}
    at = T0
    for wait in BACKOFF:  # each attempt once its wait has passed, stopped again
        at += wait
        again = service.send(
            store, "spring", at, channels=channels, folder=tmp_path, clock=lambda at=at: at
        )
        assert again.sent is not None and sum(again.sent.counts.values()) == 1
    status = service.status(store, "spring")
    assert status["by_status"] == {"failed": 1, "sent": 1}  # after the last attempt
    m = schema.messages
    with store.connect() as conn:
        reason, attempts = conn.execute(
            sa.select(m.c.reason, m.c.attempts).where(m.c.status == "failed")
        ).one()
    assert "time limit" in reason and attempts == len(BACKOFF) + 1


class _Accepting:
    name = "email"

    def send(self, messages):  # type: ignore[no-untyped-def]
        from surmesure.deliver.channel import Delivery

        return [Delivery(m.message_id, "sent", provider_id=m.message_id) for m in messages]

    def close(self) -> None:
        pass


def test_gateways_prints_what_the_providers_call_with_their_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"duckdb:///{tmp_path / 'unused.duckdb'}"  # the command reads settings alone
    monkeypatch.setenv("SURMESURE_PUBLIC_URL", "https://crm.example.com/")
    monkeypatch.setenv("SURMESURE_SECRET_KEY", "one-secret-of-enough-length")
    first = invoke_json(monkeypatch, url, "campaign", "gateways")
    assert first["sms_reports_url"] == "https://crm.example.com"
    assert first["email_feedback"].startswith("https://crm.example.com/v1/email/feedback?key=")
    assert first["sms_inbound"].startswith("https://crm.example.com/v1/sms/inbound?key=")
    assert first["sms_inbound"].endswith("&from=%p&text=%a&charset=%C&id=%I")
    # the keys hang on the secret key: another one, other keys
    monkeypatch.setenv("SURMESURE_SECRET_KEY", "another-secret-of-enough-length")
    second = invoke_json(monkeypatch, url, "campaign", "gateways")
    assert second["email_feedback"] != first["email_feedback"]
    assert second["sms_inbound"] != first["sms_inbound"]
    monkeypatch.delenv("SURMESURE_SECRET_KEY")
    printed = invoke(monkeypatch, url, "campaign", "gateways")
    assert printed.exit_code == 0, printed.output
    assert "sms_inbound: https://crm.example.com/v1/sms/inbound?key=" in printed.output
    assert "SURMESURE_SECRET_KEY is the development one" in printed.output
