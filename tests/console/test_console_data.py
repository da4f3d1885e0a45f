"""The Data section: imports, the quarantine replayed by reason, consents, API keys and users,
for admins only; in Chromium as an admin would, and with a plain HTTP client."""

from __future__ import annotations

import re
import uuid

import httpx
import sqlalchemy as sa
from console_helpers import PASSWORD, session_client, shot, sign_in
from playwright.sync_api import Browser, expect

from surmesure.store import Store, schema

World = tuple[str, Store]
q = schema.quarantine


def _audited(store: Store, action: str, actor: str) -> list[dict[str, object]]:
    a = schema.audit_log
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(a.c.detail).where(a.c.action == action, a.c.actor == actor)
        ).all()
    return [r.detail for r in rows]


def test_an_analyst_gets_403_on_every_data_page(console_world: World) -> None:
    base, _ = console_world
    with session_client(base, "analyst") as (client, csrf):
        for path in (
            "/console/data",
            "/console/data/keys",
            "/console/data/users",
            "/console/data/consents",
        ):
            refused = client.get(path)
            assert refused.status_code == 403, path
            assert "may not open this page" in refused.text
        sent = client.post(
            "/console/data/quarantine/replay",
            data={"csrf": csrf, "kind": "email", "reason": "x"},
        )
        assert sent.status_code == 403
    with session_client(base, "admin") as (client, _):
        assert client.get("/console/data").status_code == 200


def test_an_admin_replays_one_reason_with_a_known_mapping(
    console_world: World, chromium: Browser
) -> None:
    base, store = console_world
    # the e-mail platform's "forwarded" rows, refused for their kind: the example fix maps them
    with store.connect() as conn:
        reason = (
            conn.execute(
                sa.select(q.c.reason).where(
                    q.c.kind == "email", q.c.field == "kind", q.c.status == "open"
                )
            )
            .scalars()
            .first()
        )
        assert reason is not None
        ids = (
            conn.execute(
                sa.select(q.c.quarantine_id).where(
                    q.c.kind == "email", q.c.reason == reason, q.c.status == "open"
                )
            )
            .scalars()
            .all()
        )
        others = conn.execute(
            sa.select(sa.func.count()).where(q.c.status == "open", q.c.reason != reason)
        ).scalar_one()
    page = sign_in(chromium, base, "admin")
    page.goto("/console/data")
    row = page.locator('tr[data-kind="email"][data-field="kind"]')
    expect(row.locator("[data-count]")).to_have_text(f"{len(ids):,}")
    row.get_by_label("Mapping").select_option("example:fix_email")
    row.get_by_role("button", name=re.compile("Replay")).click()
    expect(page.get_by_role("heading", name=re.compile("Replay done"))).to_be_visible()
    with store.connect() as conn:
        accepted = conn.execute(
            sa.select(sa.func.count()).where(
                q.c.quarantine_id.in_(ids), q.c.status == "replayed", q.c.replayed_at.is_not(None)
            )
        ).scalar_one()
        left = conn.execute(
            sa.select(sa.func.count()).where(q.c.reason == reason, q.c.status == "open")
        ).scalar_one()
        still_others = conn.execute(
            sa.select(sa.func.count()).where(q.c.status == "open", q.c.reason != reason)
        ).scalar_one()
    assert accepted > 0
    assert left == len(ids) - accepted  # the group shrank by what was accepted, no more
    assert still_others == others + (len(ids) - accepted - left)  # no other group was replayed
    assert page.locator('[data-replay="replayed"]').inner_text() == f"{accepted:,}"
    assert page.locator('[data-replay="considered"]').inner_text() == f"{len(ids):,}"
    remaining = page.locator('tr[data-kind="email"][data-field="kind"]')
    if left:
        expect(remaining.locator("[data-count]")).to_have_text(f"{left:,}")
    else:
        expect(remaining).to_have_count(0)
    details = _audited(store, "quarantine.replay", "console:admin@console.test")
    assert any(d["mapping"] == "example:fix_email" and d["replayed"] == accepted for d in details)
    assert all(reason not in str(d) for d in details)  # the reason's text stays out
    shot(page, "data-quarantine")
    page.context.close()


def test_an_admin_creates_a_key_that_works_once_shown(
    console_world: World, chromium: Browser
) -> None:
    base, store = console_world
    name = f"console-key-{uuid.uuid4().hex[:8]}"
    page = sign_in(chromium, base, "admin")
    page.goto("/console/data/keys")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("checkbox", name="read").check()
    page.get_by_role("button", name="Create the key").click()
    secret = page.locator("[data-secret]").inner_text().strip()
    assert secret.startswith("sm_")
    with httpx.Client(base_url=base, timeout=30) as client:
        unknown = client.get("/v1/experiments/x", headers={"Authorization": f"Bearer {secret}"})
        assert unknown.status_code == 404, unknown.text  # the key opens the route: no such one
        assert client.get("/v1/experiments/x").status_code == 401
    page.goto("/console/data/keys")  # shown once: never again
    assert secret not in page.content()
    expect(page.locator(f'tr[data-key="{name}"]')).to_contain_text("read")
    page.get_by_role("button", name=f"Revoke {name}").click()
    expect(page.locator(f'tr[data-key="{name}"]')).not_to_contain_text("active")
    k = schema.api_keys
    with store.connect() as conn:
        revoked = conn.execute(sa.select(k.c.revoked_at).where(k.c.name == name)).scalar_one()
    assert revoked is not None
    actor = "console:admin@console.test"
    assert any(
        d["name"] == name and d["scopes"] == ["read"] for d in _audited(store, "key.create", actor)
    )
    assert any(d["name"] == name for d in _audited(store, "key.revoke", actor))
    page.context.close()


def test_a_key_needs_a_scope_and_a_form_needs_its_token(console_world: World) -> None:
    base, store = console_world
    name = f"console-key-{uuid.uuid4().hex[:8]}"
    with session_client(base, "admin") as (client, csrf):
        refused = client.post("/console/data/keys", data={"name": name, "scope": "read"})
        assert refused.status_code == 403
        none = client.post("/console/data/keys", data={"csrf": csrf, "name": name})
        assert none.status_code == 400
        assert 'class="field-error"' in none.text and "at least one scope" in none.text
        two = client.post(
            "/console/data/keys",
            data={"csrf": csrf, "name": name, "scope": ["read", "decide"]},
        )
        assert two.status_code == 200
    k = schema.api_keys
    with store.connect() as conn:
        scopes = conn.execute(sa.select(k.c.scopes).where(k.c.name == name)).scalars().all()
    assert scopes == ["decide,read"]  # one key, made by the form that carried its token


def test_an_admin_creates_and_disables_a_user(console_world: World) -> None:
    base, store = console_world
    email = f"new-{uuid.uuid4().hex[:8]}@console.test"
    with session_client(base, "admin") as (client, csrf):
        short = client.post(
            "/console/data/users",
            data={"csrf": csrf, "email": email, "password": "short", "role": "analyst"},
        )
        assert short.status_code == 400
        assert 'id="user-password-error"' in short.text and "12 characters" in short.text
        made = client.post(
            "/console/data/users",
            data={
                "csrf": csrf,
                "email": email,
                "password": PASSWORD,
                "role": "analyst",
                "language": "fr",
            },
        )
        assert made.status_code == 303
        assert email in client.get("/console/data/users").text
        gone = client.post("/console/data/users/disable", data={"csrf": csrf, "email": email})
        assert gone.status_code == 303
    u = schema.console_users
    with store.connect() as conn:
        row = conn.execute(sa.select(u).where(u.c.email == email)).one()
    assert row.role == "analyst" and row.language == "fr" and row.disabled_at is not None
    actor = "console:admin@console.test"
    assert any(d["user_id"] == row.user_id for d in _audited(store, "user.create", actor))
    assert any(d["user_id"] == row.user_id for d in _audited(store, "user.disable", actor))


def test_consent_counts_match_the_records_in_force(console_world: World) -> None:
    base, store = console_world
    c = schema.consents
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(c.c.person_id, c.c.granted, c.c.recorded_at, c.c.consent_id).where(
                c.c.purpose == "marketing", c.c.channel == "email"
            )
        ).all()
    latest: dict[int, tuple[object, ...]] = {}
    for r in rows:
        key = (r.recorded_at, r.consent_id)
        if r.person_id not in latest or key > latest[r.person_id][0]:  # type: ignore[operator]
            latest[r.person_id] = (key, r.granted)
    refusing = sum(1 for _, granted in latest.values() if not granted)
    granting = len(latest) - refusing
    with session_client(base, "admin") as (client, _):
        got = client.get("/console/data/consents")
    assert got.status_code == 200
    row = re.search(r'data-purpose="marketing" data-channel="email">(.*?)</tr>', got.text, re.S)
    assert row is not None
    cells = re.findall(r'<td class="num">([\d,]+)</td>', row.group(1))
    assert [int(x.replace(",", "")) for x in cells[:2]] == [granting, refusing]
    assert "@" not in got.text.split("<main", 1)[1].split("</main>", 1)[0].replace(
        "admin@console.test", ""
    )  # no e-mail address among the changes
