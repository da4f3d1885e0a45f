"""Content and campaigns in the console, in Chromium: a template previewed for a person on each
channel with its fallbacks and their reasons; a campaign written as a document, validated at
the field, saved, launched to a real SMTP server (aiosmtpd) with its control group, counted and
measured as the outbox and SQL say; and what a viewer or a form without its token may not do."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from api_helpers import serving
from console_helpers import make_users, session_client, shot, sign_in
from import_helpers import write_file
from playwright.sync_api import Browser, expect

from conftest import copy_demo
from surmesure.clock import utcnow
from surmesure.collect.importer import import_file
from surmesure.store import Store, open_store, schema

SMTP_PORTS = range(18240, 18250)
NAME = "console_spring_trial"


class Inbox:
    """An SMTP server's handler that keeps the recipients of what it accepted."""

    def __init__(self) -> None:
        self.recipients: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.recipients += list(envelope.rcpt_tos)
        return "250 Message accepted"


def _smtp(inbox: Inbox) -> tuple[Controller, int]:
    for port in SMTP_PORTS:
        controller = Controller(inbox, hostname="127.0.0.1", port=port)
        try:
            controller.start()
        except (OSError, RuntimeError):
            continue
        return controller, port
    raise RuntimeError("no free port for the SMTP server")


@pytest.fixture(scope="module")
def world(
    demo_world: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Store, Inbox]]:
    """A console on its own copy of the demo world whose e-mail channel is a real SMTP
    server started here, and a person known by first name only (no city)."""
    folder, _ = demo_world
    into = tmp_path_factory.mktemp("console_campaigns")
    store = open_store(copy_demo(folder, into))
    make_users(store)
    seen = utcnow().strftime("%Y-%m-%d %H:%M:%S")
    rows = [{"customer_id": "CPREVIEW1", "first_name": "Zoé", "observed_at": seen}]
    import_file(store, "customers", write_file(into, "preview_people", "csv", rows), source="crm")
    inbox = Inbox()
    controller, port = _smtp(inbox)
    email = f"smtp://127.0.0.1:{port}?pool=2&sender=news@example.com"
    try:
        with serving(store, email_url=email, outbox_dir=into / "outbox") as (base, _app):
            yield base, store, inbox
    finally:
        controller.stop()
        store.dispose()


def _scalar(store: Store, query: str, **params: Any) -> Any:
    with store.connect() as conn:
        return conn.execute(sa.text(query), params).scalar_one()


def _audits(store: Store, action: str) -> int:
    return int(_scalar(store, "SELECT count(*) FROM audit_log WHERE action = :a", a=action))


def test_a_marketer_previews_an_email_and_sees_each_fallback_with_its_reason(
    world: tuple[str, Store, Inbox], chromium: Browser
) -> None:
    base, store, _ = world
    member = int(
        _scalar(
            store,
            "SELECT min(m.person_id) FROM segment_members m JOIN traits t "
            "ON t.person_id = m.person_id AND t.name = 'first_name' "
            "WHERE m.segment = 'demo_campaign'",
        )
    )
    before = _audits(store, "console.content_preview")
    page = sign_in(chromium, base, "marketer")
    page.goto("/console/content")
    page.get_by_role("link", name="welcome_email").click()
    page.get_by_label(re.compile("^Person")).fill(str(member))
    page.get_by_role("button", name="Show").click()
    email = page.locator('section.preview[data-channel="email"]')
    expect(email.locator("iframe[sandbox='']")).to_have_count(1)
    # a member whose first name is known: used, not fallen back, and printed in the e-mail
    expect(email.locator('tr.fallback[data-field="first_name"]')).to_have_count(0)
    srcdoc = email.locator("iframe").get_attribute("srcdoc") or ""
    assert srcdoc.startswith("<!doctype html>") and "Bonjour " in srcdoc
    assert not re.search(r"Bonjour\s*,", srcdoc)  # a name follows the greeting
    assert _audits(store, "console.content_preview") == before + 1

    # a person known by first name only: the city falls back, highlighted, with its reason
    page.get_by_label(re.compile("^Person")).fill("customer_id:CPREVIEW1")
    page.get_by_role("button", name="Show").click()
    city = page.locator('section.preview[data-channel="email"] tr.fallback[data-field="city"]')
    expect(city).to_have_count(1)
    expect(city.locator(".reason")).to_have_text("no value is known for this person")
    assert city.locator(".reason").get_attribute("data-reason") == "missing"
    expect(page.locator('section.preview[data-channel="sms"] pre.sms')).to_contain_text("Zoé")
    expect(page.locator('tr.fallback[data-field="first_name"]')).to_have_count(0)
    assert page.locator('section.preview[data-channel="web"] iframe').count() == 1
    shot(page, "content-preview")
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(schema.audit_log.c.actor, schema.audit_log.c.person_id)
            .where(schema.audit_log.c.action == "console.content_preview")
            .order_by(schema.audit_log.c.occurred_at.desc())
            .limit(1)
        ).all()
    assert rows[0].actor == "console:marketer@console.test"

    # an unknown person: the message beside the field, no stack trace
    page.get_by_label(re.compile("^Person")).fill("customer_id:NOBODY_AT_ALL")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#person-error")).to_contain_text("NOBODY_AT_ALL")
    assert page.get_by_label(re.compile("^Person")).get_attribute("aria-invalid") == "true"
    page.context.close()


DOCUMENT = f"""\
name: {NAME}
description: A spring trial written in the console
audience: {{segment: demo_campaign}}
topic: offers
channels:
  email:
    subject: "{{{{ person.first_name or 'Bonjour' }}}}, le printemps arrive"
    text: "Bonjour {{{{ person.first_name }}}}, -20 % cette semaine."
    fields: {{first_name: {{trait: first_name, fallback: ""}}}}
policy: {{order: [email]}}
control: 0.2
costs: {{email: 0.001}}
"""


def test_a_marketer_creates_launches_and_measures_a_campaign_with_a_control_group(
    world: tuple[str, Store, Inbox], chromium: Browser
) -> None:
    base, store, inbox = world
    page = sign_in(chromium, base, "marketer")
    page.goto("/console/campaigns/new")
    upload = {"name": "trial.yaml", "mimeType": "text/yaml", "buffer": DOCUMENT.encode()}
    page.get_by_label("Or load a file into the document").set_input_files(upload)
    page.get_by_role("button", name="Load", exact=True).click()
    document = page.get_by_label(re.compile("Campaign document"))
    expect(document).to_have_value(DOCUMENT)
    document.fill(DOCUMENT.replace("control: 0.2", "control: 0.2\nchanels: {}"))
    page.get_by_role("button", name="Validate").click()
    error = page.locator("#document-error")
    expect(error).to_contain_text("remove this field")
    assert error.locator("[data-field]").get_attribute("data-field") == "chanels"
    assert document.get_attribute("aria-describedby") == "document-error"
    shot(page, "campaign-new")

    document.fill(DOCUMENT)
    page.get_by_role("button", name="Validate").click()
    expect(page.get_by_role("status")).to_contain_text(NAME)
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(f"/console/campaigns/{NAME}$"))
    page.get_by_role("button", name="Launch").click()
    # the messages leave from the server's launcher, the page refreshing itself meanwhile
    expect(page).to_have_url(re.compile(f"/console/campaigns/{NAME}$"))
    done = page.locator('[data-launch="done"]')
    expect(done).to_be_visible(timeout=60_000)
    expect(page.locator('[data-status="sent"]')).to_be_visible()

    def count(where: str) -> int:
        return int(
            _scalar(store, f"SELECT count(*) FROM messages WHERE campaign = :c{where}", c=NAME)
        )

    for state in ("sent", "held_out"):
        shown = page.locator(f'[data-status="{state}"]').inner_text()
        assert int(shown) == count(f" AND status = '{state}'"), state
    assert int(page.locator('[data-status="total"]').inner_text()) == count("")
    assert count(" AND status = 'held_out' AND reason = 'control'") > 0
    assert len(inbox.recipients) == count(" AND status = 'sent'")
    left = count(" AND status = 'sent'")
    assert f"{left:,} sent" in done.inner_text()

    # two treated people and one of the control group buy the day after the send
    with store.connect() as conn:
        m = schema.messages
        sent_at, treated_ids, control_ids = (
            conn.execute(
                sa.select(sa.func.max(m.c.sent_at)).where(m.c.campaign == NAME)
            ).scalar_one(),
            conn.execute(
                sa.select(m.c.person_id)
                .where(m.c.campaign == NAME, m.c.status == "sent")
                .order_by(m.c.person_id)
            )
            .scalars()
            .all()[:2],
            conn.execute(
                sa.select(m.c.person_id)
                .where(m.c.campaign == NAME, m.c.reason == "control")
                .order_by(m.c.person_id)
            )
            .scalars()
            .all()[:1],
        )
    buyers = [*treated_ids, *control_ids]
    with store.begin() as conn:
        store.bulk_insert(conn, schema.orders, pa.Table.from_pylist([
            {"order_id": f"console-trial-{p}", "person_id": p, "node_id": p,
             "ordered_at": sent_at + timedelta(days=1), "is_return": False,
             "total_amount": 80.0, "currency": "EUR", "source": "shop"}
            for p in buyers
        ]))  # fmt: skip
    page.get_by_role("link", name="Results").click()
    expect(page.get_by_role("heading", name=f"Results {NAME}")).to_be_visible()
    for arm, bought in (("message", treated_ids), ("control", control_ids)):
        cell = page.locator(f'tr[data-arm="{arm}"][data-channel="all"] [data-converted]')
        assert cell.get_attribute("data-converted") == str(len(bought)), arm
    treated = page.locator('tr[data-arm="message"][data-channel="all"] [data-people]')
    control = page.locator('tr[data-arm="control"][data-channel="all"] [data-people]')
    step0 = " AND step = 0 AND NOT (status = 'suppressed' AND attempts = 0)"
    controls = count(step0 + " AND status = 'held_out' AND reason = 'control'")
    assert int(treated.get_attribute("data-people") or -1) == count(step0) - controls
    assert int(control.get_attribute("data-people") or -1) == controls
    assert page.locator("figure svg[role=img]").count() >= 2
    page.get_by_label("Break down by segment").select_option("demo_campaign")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("figure figcaption", has_text="by segment")).to_have_count(1)
    shot(page, "campaign-results")
    page.context.close()


def test_a_viewer_reads_results_but_may_not_launch_and_a_form_needs_its_token(
    world: tuple[str, Store, Inbox],
) -> None:
    base, store, _ = world
    with session_client(base, "viewer") as (client, csrf):
        assert client.get("/console/campaigns").status_code == 200
        assert client.get("/console/campaigns/demo_email/results").status_code == 200
        refused = client.post("/console/campaigns/demo_email/launch", data={"csrf": csrf})
        assert refused.status_code == 403
        assert client.get("/console/campaigns/new").status_code == 403
        assert client.get("/console/content").status_code == 403  # a person's data: read
        files = {"file": ("x.yaml", DOCUMENT.encode(), "text/yaml")}
        headers = {"X-CSRF-Token": csrf}
        assert (
            client.post("/console/campaigns/upload", files=files, headers=headers).status_code
            == 403
        )
    before = _audits(store, "console.campaign_launch")
    with session_client(base, "marketer") as (client, csrf):
        missing = client.post("/console/campaigns/demo_email/pause", data={})
        assert missing.status_code == 403 and "expired" in missing.text
        forged = client.post("/console/campaigns/demo_email/launch", data={"csrf": "0" * 64})
        assert forged.status_code == 403
        files = {"file": ("x.yaml", b"\xff\xfe not text", "text/yaml")}
        bad = client.post("/console/campaigns/upload", files=files, headers={"X-CSRF-Token": csrf})
        assert bad.status_code == 400 and "UTF-8" in bad.text
        broken = client.post(
            "/console/campaigns/new",
            data={"csrf": csrf, "document": "name: [unclosed", "action": "validate"},
        )
        assert broken.status_code == 400 and "not valid YAML" in broken.text
        assert (
            'data-field="(document)"' in broken.text and "name: [unclosed</textarea>" in broken.text
        )
        unsigned = client.post("/console/campaigns/upload", files=files)
        assert unsigned.status_code == 403
    assert _audits(store, "console.campaign_launch") == before
    assert _scalar(store, "SELECT count(*) FROM messages WHERE status = 'paused'") == 0


def test_a_marketer_pauses_and_resumes_what_waits_to_leave(
    world: tuple[str, Store, Inbox],
) -> None:
    base, store, _ = world
    name = "console_sms_pause_trial"
    text = DOCUMENT.replace(NAME, name).replace("[email]", "[sms]").replace("email:", "sms:")
    with session_client(base, "marketer") as (client, csrf):
        saved = client.post(
            "/console/campaigns/new", data={"csrf": csrf, "document": text, "action": "save"}
        )
        assert saved.status_code == 303, saved.text[:2000]
        # no SMS gateway here: the messages are recorded and wait, planned
        waiting = client.post(f"/console/campaigns/{name}/launch", data={"csrf": csrf})
        assert waiting.status_code == 409 and "SURMESURE_SMS_URL" in waiting.text
        planned = _scalar(
            store,
            "SELECT count(*) FROM messages WHERE campaign = :c AND status = 'planned'",
            c=name,
        )
        assert planned > 0
        assert (
            client.post(f"/console/campaigns/{name}/pause", data={"csrf": csrf}).status_code == 303
        )
        page = client.get(f"/console/campaigns/{name}")
        assert "no message leaves until it is resumed" in page.text
        assert f'data-status="paused">{planned}<' in page.text
        refused = client.post(f"/console/campaigns/{name}/launch", data={"csrf": csrf})
        assert refused.status_code == 409 and "paused" in refused.text
        assert (
            client.post(f"/console/campaigns/{name}/resume", data={"csrf": csrf}).status_code == 303
        )
        after = client.get(f"/console/campaigns/{name}")
        assert f'data-status="planned">{planned}<' in after.text
        assert (
            client.post(f"/console/campaigns/{name}/stop", data={"csrf": csrf}).status_code == 404
        )
    assert _audits(store, "console.campaign_pause") == 1
    assert _audits(store, "console.campaign_resume") == 1
