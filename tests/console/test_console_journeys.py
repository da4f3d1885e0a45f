"""Journeys in the console: the graph with its people, publishing a document with its errors
at the field, pausing; roles that may only look."""

from __future__ import annotations

from importlib.resources import files

import sqlalchemy as sa
from console_helpers import session_client, shot, sign_in
from playwright.sync_api import Browser, expect

from surmesure.clock import utcnow
from surmesure.journeys import published
from surmesure.journeys.entering import enter_people
from surmesure.store import Store, schema

World = tuple[str, Store]


def _people_on_steps(store: Store, name: str) -> dict[str, int]:
    p = schema.journey_people
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(p.c.step, sa.func.count())
            .where(p.c.journey == name, p.c.status == "running")
            .group_by(p.c.step)
        ).all()
    return {str(step): int(n) for step, n in rows}


def test_a_journey_is_drawn_with_its_people(console_world: World, chromium: Browser) -> None:
    base, store = console_world
    name = "welcome"
    with store.begin() as conn:  # 20 customers enter the demo's welcome journey
        head = published.head(conn, name)
        definition = published.version_of(conn, name, int(head.version))
        ids = conn.execute(
            sa.select(schema.people.c.person_id).order_by(schema.people.c.person_id).limit(20)
        ).scalars()
        enter_people(store, conn, definition, int(head.version), dict.fromkeys(ids), utcnow())
    on_steps = _people_on_steps(store, name)
    assert sum(on_steps.values()) > 0
    page = sign_in(chromium, base, "viewer")
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Journeys").click()
    page.get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_role("heading", name=f"Journey {name}")).to_be_visible()
    assert page.locator("figure svg[role=img]").count() == 1
    page.get_by_text("Steps", exact=True).click()
    for step, n in on_steps.items():
        cell = page.locator(f'tr[data-step="{step}"] td').nth(2)
        assert int(cell.inner_text().replace(",", "")) == n, step
    running = int(page.locator('[data-kpi="running"]').inner_text().replace(",", ""))
    assert running == sum(on_steps.values())
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)  # a viewer only looks
    shot(page, "journey")
    page.context.close()


def test_a_marketer_publishes_and_pauses_a_journey(console_world: World, chromium: Browser) -> None:
    base, store = console_world
    page = sign_in(chromium, base, "marketer")
    page.goto("/console/journeys")
    document = page.get_by_label("Document (YAML or JSON)")
    document.fill("name: broken\nentry: {event: {name: Product Added}}\nsteps:\n  - id: a\n"
                  "    wait: {days: 1}\n    next: nowhere\n")  # fmt: skip
    page.get_by_role("button", name="Check and publish").click()
    error = page.locator("#document-error")
    expect(error).to_contain_text("nowhere")
    assert document.get_attribute("aria-invalid") == "true"
    text = (files("surmesure.journeys") / "examples" / "welcome.yaml").read_text()
    document.fill(text.replace("name: welcome", "name: console_welcome", 1))
    page.get_by_role("button", name="Check and publish").click()
    expect(page.get_by_role("heading", name="Journey console_welcome")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Published version 1")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator('[data-kpi="status"]')).to_have_text("paused")
    j = schema.journeys
    with store.connect() as conn:
        status = conn.execute(
            sa.select(j.c.status).where(j.c.name == "console_welcome")
        ).scalar_one()
        actor = conn.execute(
            sa.select(schema.audit_log.c.actor).where(schema.audit_log.c.action == "journey.pause")
        ).scalar_one()
    assert status == "paused"
    assert actor == "console:marketer@console.test"
    page.context.close()


def test_roles_that_may_only_look_cannot_change_a_journey(console_world: World) -> None:
    base, store = console_world
    for role in ("viewer", "analyst"):
        with session_client(base, role) as (client, csrf):
            assert client.get("/console/journeys/welcome").status_code == 200
            refused = client.post("/console/journeys/welcome/pause", data={"csrf": csrf})
            assert refused.status_code == 403, role
            refused = client.post("/console/journeys", data={"csrf": csrf, "document": "x: 1"})
            assert refused.status_code == 403, role
    j = schema.journeys
    with store.connect() as conn:
        assert conn.execute(sa.select(j.c.status).where(j.c.name == "welcome")).scalar_one() == (
            "active"
        )
