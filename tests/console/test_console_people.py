"""The People section: finding a person by any identifier, their page, its audit rows, and the
admin's export and erasure, in Chromium as a user would and with a plain HTTP client as an
attacker would."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import NamedTuple

import pytest
import sqlalchemy as sa
from console_helpers import absorbed, email_of, session_client, shot, sign_in
from playwright.sync_api import Browser, expect

from held import held
from surmesure.clock import utcnow
from surmesure.protect import marketing
from surmesure.store import Store, schema
from surmesure.unify.profile import merge_history, root_of, subtree

World = tuple[str, Store]


def _moments(store: Store, person_id: int) -> tuple[int, int]:
    """(orders that are not returns, events + orders + returns) of the person, by SQL."""
    o, e = schema.orders, schema.events
    with store.connect() as conn:
        orders = conn.execute(
            sa.select(sa.func.count()).where(o.c.person_id == person_id, ~o.c.is_return)
        ).scalar_one()
        every = conn.execute(
            sa.select(sa.func.count()).where(o.c.person_id == person_id)
        ).scalar_one()
        events = conn.execute(
            sa.select(sa.func.count()).where(e.c.person_id == person_id)
        ).scalar_one()
    return int(orders), int(every) + int(events)


@pytest.fixture(scope="module")
def chosen(console_world: World) -> dict[str, tuple[int, str]]:
    """``busiest``: the person holding an e-mail address with the most events and orders, and
    that address (read by several tests); ``quietest``: the one with the fewest (erased)."""
    _, store = console_world
    emails = {person: value for _, value, person, _ in held(store, "email") if value}
    o, e = schema.orders, schema.events
    both = sa.union_all(
        sa.select(o.c.person_id.label("p")), sa.select(e.c.person_id.label("p"))
    ).subquery()
    with store.connect() as conn:
        counts = {
            p: int(n)
            for p, n in conn.execute(sa.select(both.c.p, sa.func.count()).group_by(both.c.p))
        }
    ranked = sorted(emails, key=lambda p: (-counts.get(p, 0), p))
    return {
        "busiest": (ranked[0], emails[ranked[0]]),
        "quietest": (ranked[-1], emails[ranked[-1]]),
    }


class Busiest(NamedTuple):
    base: str
    store: Store
    person_id: int
    email: str


@pytest.fixture
def busiest(console_world: World, chosen: dict[str, tuple[int, str]]) -> Busiest:
    """The console, its store, and the busiest person with an e-mail address (never erased)."""
    return Busiest(*console_world, *chosen["busiest"])


def _audit(store: Store, action: str, actor: str, person_id: int | None) -> int:
    a = schema.audit_log
    with store.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    a.c.action == action,
                    a.c.actor == actor,
                    a.c.person_id.is_(None) if person_id is None else a.c.person_id == person_id,
                )
            ).scalar_one()
        )


def test_an_analyst_finds_a_customer_by_email(busiest: Busiest, chromium: Browser) -> None:
    base, store, person_id, email = busiest
    orders, moments = _moments(store, person_id)
    assert moments > 20  # the timeline pages
    actor = f"console:{email_of('analyst')}"
    shown_before = _audit(store, "person.show", actor, person_id)
    page = sign_in(chromium, base, "analyst")
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="People").click()
    page.get_by_label("Identifier").fill(email.upper())  # typed as it comes: normalized
    shot(page, "people-search")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(f"**/console/people/{person_id}")
    expect(page.get_by_role("heading", name=f"Person {person_id}", exact=True)).to_be_visible()
    assert page.locator('[data-count="orders"]').inner_text().replace(",", "") == str(orders)
    expect(page.get_by_role("cell", name=email, exact=True)).to_be_visible()
    # latest first, 20 at a time, and "More" brings the next ones in place (htmx)
    rows = page.locator("#timeline-rows tr[class^=moment-]")
    assert rows.count() == 20
    page.get_by_role("link", name="More").click()
    expect(rows).to_have_count(min(moments, 40))
    shown = [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())]
    assert len(set(shown)) > 1
    shot(page, "person-page")
    # an analyst may read, not export nor erase
    expect(page.get_by_role("button", name="Export everything (JSON)")).to_have_count(0)
    page.context.close()
    assert _audit(store, "person.show", actor, person_id) == shown_before + 1
    assert _audit(store, "person.search", actor, person_id) >= 1
    assert _audit(store, "person.timeline", actor, person_id) >= 1


def test_the_page_shows_every_decision_and_its_reasons(console_world: World) -> None:
    base, store = console_world
    d = schema.decisions
    with store.connect() as conn:
        decided = conn.execute(
            sa.select(d.c.person_id, sa.func.count())
            .where(d.c.person_id.is_not(None))
            .group_by(d.c.person_id)
            .order_by(d.c.person_id)
        ).first()
    assert decided is not None
    with session_client(base, "analyst") as (client, _):
        got = client.get(f"/console/people/{decided[0]}")
    assert got.status_code == 200
    assert got.text.count('class="card decision"') == min(int(decided[1]), 10)
    assert "Full explanation" in got.text


def test_searches_that_find_nobody_or_several_say_so(console_world: World) -> None:
    base, store = console_world
    with session_client(base, "analyst") as (client, csrf):
        nobody = client.post("/console/people", data={"csrf": csrf, "q": "nobody@nowhere.example"})
        assert nobody.status_code == 200 and "Nobody is known by this identifier." in nobody.text
        empty = client.post("/console/people", data={"csrf": csrf, "q": "   "})
        assert empty.status_code == 400
        assert 'class="field-error"' in empty.text and "Type an identifier" in empty.text
        # a person id answers for its person; an absorbed one leads to whom it merged into
        node, root = absorbed(store)
        by_id = client.post("/console/people", data={"csrf": csrf, "q": str(node)})
        assert by_id.status_code == 303 and by_id.headers["location"].endswith(f"/{root}")
        moved = client.get(f"/console/people/{node}")
        assert moved.status_code == 303 and moved.headers["location"].endswith(f"/{root}")
        bad = client.get("/console/people/not-a-number")
        assert bad.status_code == 400 and "is not a person id" in bad.text
        # an address cannot announce the erasure of someone still here
        told = client.get(f"/console/people?erased={root}&deleted=9&suppressed=2")
        assert told.status_code == 200 and "data-erased" not in told.text


def test_a_viewer_gets_403_and_a_marketer_cannot_export_or_erase(busiest: Busiest) -> None:
    base, store, person_id, _ = busiest
    with session_client(base, "viewer") as (client, csrf):
        for path in ("/console/people", f"/console/people/{person_id}"):
            refused = client.get(path)
            assert refused.status_code == 403 and "may not open this page" in refused.text
        assert client.post("/console/people", data={"csrf": csrf, "q": "1"}).status_code == 403
    with session_client(base, "marketer") as (client, csrf):
        assert client.get(f"/console/people/{person_id}").status_code == 200
        assert client.get(f"/console/people/{person_id}/erase").status_code == 403
        for act in ("erase", "export"):
            sent = client.post(
                f"/console/people/{person_id}/{act}",
                data={"csrf": csrf, "confirm": str(person_id)},
            )
            assert sent.status_code == 403, act
    with store.connect() as conn:
        kept = conn.execute(
            sa.select(sa.func.count()).where(schema.people.c.person_id == person_id)
        ).scalar_one()
    assert kept == 1
    assert _audit(store, "person.erase", f"console:{email_of('marketer')}", person_id) == 0


def test_forms_without_the_csrf_token_are_refused(busiest: Busiest) -> None:
    base, _, person_id, email = busiest
    with session_client(base, "admin") as (client, _):
        erase = client.post(f"/console/people/{person_id}/erase", data={"confirm": str(person_id)})
        assert erase.status_code == 403 and "did not come from this console" in erase.text
        assert client.post(f"/console/people/{person_id}/export", data={}).status_code == 403
        assert client.post("/console/people", data={"q": email}).status_code == 403
        assert client.get(f"/console/people/{person_id}").status_code == 200  # not erased


@pytest.mark.parametrize("wrong", ["", "0"])
def test_erasure_needs_the_person_id_typed(busiest: Busiest, wrong: str) -> None:
    base, _, person_id, _ = busiest
    with session_client(base, "admin") as (client, csrf):
        sent = client.post(
            f"/console/people/{person_id}/erase", data={"csrf": csrf, "confirm": wrong}
        )
        assert sent.status_code == 400
        assert "nothing was erased" in sent.text and 'aria-invalid="true"' in sent.text
        assert client.get(f"/console/people/{person_id}").status_code == 200


def test_an_admin_exports_then_erases_a_person(
    console_world: World, chromium: Browser, chosen: dict[str, tuple[int, str]]
) -> None:
    base, store = console_world
    person_id, email = chosen["quietest"]
    actor = f"console:{email_of('admin')}"
    page = sign_in(chromium, base, "admin")
    page.goto(f"/console/people/{person_id}")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export everything (JSON)").click()
    exported = json.loads(download.value.path().read_text())
    assert exported["person_id"] == person_id
    assert email in {i["value"] for i in exported["tables"]["identifiers"]}
    assert _audit(store, "person.export", actor, person_id) == 1
    page.get_by_role("link", name="Erase this person").click()
    page.get_by_label(re.compile("Type the person id")).fill(str(person_id + 1))
    page.get_by_role("button", name="Erase for ever").click()
    expect(page.get_by_role("alert")).to_contain_text("nothing was erased")
    page.get_by_label(re.compile("Type the person id")).fill(str(person_id))
    page.get_by_role("button", name="Erase for ever").click()
    page.wait_for_url(re.compile(r".*/console/people\?erased="))
    expect(page.get_by_role("status")).to_contain_text(f"Person erased {person_id}")
    page.get_by_label("Identifier").fill(email)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("status")).to_have_text("Nobody is known by this identifier.")
    page.context.close()
    with store.connect() as conn:
        left = conn.execute(
            sa.select(sa.func.count()).where(schema.people.c.person_id == person_id)
        ).scalar_one()
    assert left == 0
    assert _audit(store, "person.erase", actor, person_id) == 1


def test_the_page_shows_the_merge_history_and_the_contact_preferences(
    console_world: World,
) -> None:
    """Someone merged from two records shows each merge (what linked them, why it was allowed);
    their contact preferences show what is in force (a topic left, weekly at most, a pause)."""
    base, store = console_world
    m = schema.merges
    with store.connect() as conn:
        merge = conn.execute(
            sa.select(m.c.merge_id, m.c.survivor_id, m.c.absorbed_id)
            .where(m.c.undone_at.is_(None))
            .order_by(m.c.merge_id)
        ).first()
    assert merge is not None, "the demo world holds merged records"
    with store.connect() as conn:
        person = root_of(conn, int(merge.survivor_id))
    assert person is not None
    now = utcnow()
    topic = next(iter(store.settings.preference_topics))
    rows = [
        marketing.preference_row(person, kind, value, name=name, until=until, source="test",
                                 evidence=None, recorded_at=now, pause_max_days=90)
        for kind, name, value, until in (
            ("topic", topic, "out", None),
            ("frequency", "", "weekly", None),
            ("pause", "", "on", now + timedelta(days=10)),
        )
    ]  # fmt: skip
    with store.begin() as conn:
        marketing.record(conn, rows)
        merges = merge_history(conn, subtree(conn, person))
    with session_client(base, "analyst") as (client, _):
        got = client.get(f"/console/people/{person}")
    assert got.status_code == 200
    shown = re.findall(
        r'<tr data-merge="(\d+)"><td>[^<]*</td><td>(\d+)</td><td>(\d+)</td>', got.text
    )
    assert shown == [
        (str(r["merge_id"]), str(r["absorbed_id"]), str(r["survivor_id"])) for r in merges
    ]
    assert (str(merge.merge_id), str(merge.absorbed_id), str(merge.survivor_id)) in shown
    assert 'data-pref="frequency">at most weekly<' in got.text
    assert f'data-topic="{topic}">left<' in got.text
    paused = re.search(r'data-pref="paused_until">([^<]+)<', got.text)
    assert paused is not None and paused[1] != "not paused"
