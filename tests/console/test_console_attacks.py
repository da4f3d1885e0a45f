"""The console attacked as an attacker would: every form without its CSRF token, with another
session's, from another site; every route with a role below it; odd and absent person ids;
odd path parts; markup in what people and users write; documents that expand past memory;
a disabled user's open page; a planted session cookie; many addresses tried from one client."""

from __future__ import annotations

import html
import importlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import yaml
from api_helpers import serving
from console_helpers import PASSWORD, absorbed, email_of, make_users, session_client, shot, sign_in
from playwright.sync_api import Browser

from surmesure.collect.importer import import_file
from surmesure.console import SECTIONS
from surmesure.console.segment_form import MAX_ROWS
from surmesure.documents import MAX_VALUES, load_yaml, read_text
from surmesure.errors import Conflict, InvalidInput, TooManyRequests
from surmesure.protect.users import (
    ROLE_SCOPES,
    ROLES,
    SignInLimits,
    authenticate,
    create_user,
    disable_user,
    list_users,
)
from surmesure.store import Store, schema
from surmesure.unify.search import search

World = tuple[str, Store]
#: markup a person or a user might write where a page shows text
MARKUP = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
#: what each path part of a route is filled with when the route itself is under test
PARTS = {"name": "x", "person_id": "1", "action": "pause", "act": "pause"}


def _routes() -> Iterator[tuple[str, str, str | None]]:
    """(method, path with its parts filled, scope the page needs) of every console route
    behind a signed-in page (the sign-in form and the static files are public)."""
    for section in SECTIONS:
        module = importlib.import_module(f"surmesure.console.{section}")
        for route in module.router.routes:
            needs = [
                d.call.scope  # type: ignore[attr-defined]
                for d in route.dependant.dependencies  # type: ignore[attr-defined]
                if hasattr(d.call, "scope")
            ]
            if not needs:
                continue
            scope = needs[0].partition(":")[2] or None
            path = re.sub(r"\{(\w+)\}", lambda m: PARTS[m[1]], route.path)  # type: ignore[attr-defined]
            for method in sorted(route.methods):  # type: ignore[attr-defined]
                yield method, path, scope


ROUTES = sorted(set(_routes()))
POSTS = [(m, p) for m, p, _ in ROUTES if m == "POST"]


def test_the_route_list_covers_every_section() -> None:
    assert {p.split("/")[2] or "home" for _, p, _ in ROUTES} >= {s for s in SECTIONS if s != "home"}
    assert len(POSTS) >= 15


def test_every_form_needs_its_own_sessions_token_and_this_site(console_world: World) -> None:
    base, _ = console_world
    with (
        session_client(base, "admin") as (client, csrf),
        session_client(base, "marketer") as (
            _,
            other,
        ),
    ):
        for _, path in POSTS:
            if path == "/console/logout":
                continue
            assert client.post(path, data={"x": "1"}).status_code == 403, path
            assert client.post(path, data={"csrf": other}).status_code == 403, path
            htmx = {"X-CSRF-Token": other, "HX-Request": "true"}
            assert client.post(path, headers=htmx).status_code == 403, path
            cross = client.post(
                path, data={"csrf": csrf}, headers={"Origin": "https://evil.example"}
            )
            assert cross.status_code == 403, path
            assert "another site" in cross.text
        assert client.get("/console/").status_code == 200  # the session lives on


def test_every_route_refuses_a_role_below_it(console_world: World) -> None:
    base, _ = console_world
    for role in ROLES:
        held = ROLE_SCOPES[role]
        below = [(m, p, s) for m, p, s in ROUTES if s and s not in held and "admin" not in held]
        if not below:
            continue
        with session_client(base, role) as (client, csrf):
            for method, path, scope in below:
                for headers in ({}, {"HX-Request": "true"}):  # a page, and its htmx fragment
                    got = client.request(
                        method, path, data={"csrf": csrf} if method == "POST" else None,
                        headers=headers,
                    )  # fmt: skip
                    assert got.status_code == 403, (role, method, path, scope)
                    assert "may not open this page" in got.text


def test_a_viewer_sees_a_segments_size_but_nobody_in_it(console_world: World) -> None:
    base, _ = console_world
    form = {"name": "attack_sized", "join": "all", "c0.kind": "metric", "c0.name": "frequency",
            "c0.op": "ge", "c0.value": "1"}  # fmt: skip
    shown: dict[str, str] = {}
    for role in ("viewer", "analyst"):
        with session_client(base, role) as (client, csrf):
            got = client.post("/console/segments/preview", data={**form, "csrf": csrf})
            assert got.status_code == 200
            shown[role] = got.text
    size = re.search(r'data-size="&gt;=(\d+)"', shown["viewer"])  # rounded down to tens
    assert size is not None and int(size[1]) > 0 and int(size[1]) % 10 == 0
    assert '<table class="preview">' not in shown["viewer"]
    assert '<table class="preview">' in shown["analyst"]  # the same preview lists people


def test_absorbed_erased_and_unknown_person_ids(console_world: World, tmp_path: Path) -> None:
    base, store = console_world
    people = schema.people
    node, root = absorbed(store)
    with store.connect() as conn:
        unknown = int(conn.execute(sa.select(sa.func.max(people.c.person_id))).scalar_one()) + 10
    (tmp_path / "gone.csv").write_text("customer_id,first_name\nATTACK-GONE,Gone\n")
    assert (
        import_file(store, "customers", tmp_path / "gone.csv", source="crm").rows_quarantined == 0
    )
    gone = search(store, "customer_id:ATTACK-GONE")[0].person_id
    htmx = {"HX-Request": "true"}
    with session_client(base, "admin") as (client, csrf):
        erased = client.post(
            f"/console/people/{gone}/erase", data={"csrf": csrf, "confirm": str(gone)}
        )
        assert erased.status_code == 303
        moved = client.get(f"/console/people/{node}")
        assert moved.status_code == 303 and moved.headers["location"] == f"/console/people/{root}"
        timeline = client.get(f"/console/people/{node}/timeline", headers=htmx)
        assert timeline.status_code == 200
        for missing in (gone, unknown):
            assert client.get(f"/console/people/{missing}").status_code == 404
            assert (
                client.get(f"/console/people/{missing}/timeline", headers=htmx).status_code == 404
            )
            assert (
                client.post(f"/console/people/{missing}/export", data={"csrf": csrf}).status_code
                == 404
            )
            refused = client.post(
                f"/console/people/{missing}/erase", data={"csrf": csrf, "confirm": str(missing)}
            )
            assert refused.status_code == 404
    a = schema.audit_log
    with store.connect() as conn:
        audited = conn.execute(
            sa.select(a.c.action, a.c.person_id).where(
                a.c.person_id.in_([node, unknown]), a.c.action.like("person.%")
            )
        ).all()
    assert audited == []  # an absorbed id is audited as its person; an unknown one not at all


ODD = ["..%2f..%2fetc%2fpasswd", "%2e%2e", "a" * 3000, "é€😀", "<script>", "x%0d%0aSet-Cookie:a=1"]


def test_odd_path_parts_get_a_clear_page_never_a_crash(console_world: World) -> None:
    base, _ = console_world
    gets = sorted({p for m, p, _ in ROUTES if m == "GET" and re.search(r"/(x|1)(/|$)", p)})
    with session_client(base, "admin") as (client, _):
        for path in [*gets, "/console/static/x"]:
            for odd in ODD:
                odd_path = re.sub(r"/(x|1)(?=/|$)", "/" + odd, path, count=1)
                got = client.get(odd_path)
                assert got.status_code in (400, 404), (odd_path, got.status_code)
                assert "Traceback" not in got.text and "<script>" not in got.text
                assert "set-cookie" not in got.headers or "a=1" not in got.headers["set-cookie"]
        passwd = client.get("/console/static/..%2f..%2f..%2f..%2fetc%2fpasswd")
        assert passwd.status_code == 404 and "root:" not in passwd.text


def test_markup_people_and_users_write_is_shown_as_text(
    console_world: World, tmp_path: Path, chromium: Browser
) -> None:
    base, store = console_world
    path = tmp_path / "markup.csv"
    quoted = MARKUP.replace('"', '""')
    path.write_text(f'customer_id,email,first_name\nATTACK-XSS,xss@attack.test,"{quoted}"\n')
    assert import_file(store, "customers", path, source="crm").rows_quarantined == 0
    person = search(store, "customer_id:ATTACK-XSS")[0].person_id
    segment = {"name": "attack_markup", "description": MARKUP, "join": "all", "c0.kind": "metric",
               "c0.name": "frequency", "c0.op": "ge", "c0.value": "1"}  # fmt: skip
    campaign = (
        "name: attack_markup\n"
        f"description: '{MARKUP}'\n"
        "audience: {segment: demo_campaign}\ntopic: offers\n"
        "channels: {email: {subject: hello, text: hello}}\npolicy: {order: [email]}\n"
    )
    with session_client(base, "marketer") as (client, csrf):
        saved = client.post("/console/segments/save", data={**segment, "csrf": csrf})
        assert saved.status_code == 303, saved.text[:500]
        created = client.post(
            "/console/campaigns/new", data={"csrf": csrf, "document": campaign, "action": "save"}
        )
        assert created.status_code == 303, created.text[:2000]
        pages = [
            f"/console/people/{person}",
            f"/console/content/welcome_email?person={person}",
            "/console/segments/attack_markup",
            "/console/segments",
            "/console/campaigns",
            "/console/campaigns/attack_markup",
        ]
        for url in pages:
            got = client.get(url)
            assert got.status_code == 200, url
            assert "<script>alert" not in got.text and "<img src=x" not in got.text, url
        shown = client.get(f"/console/people/{person}").text
        assert html.escape(MARKUP[1:], quote=False) in shown  # the first name, as text
        preview = client.get(f"/console/content/welcome_email?person={person}").text
        assert re.search(r'<iframe sandbox="" srcdoc=', preview)
    # in a browser: the pages run none of it
    page = sign_in(chromium, base, "marketer")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    for url in pages:
        page.goto(url)
        page.wait_for_load_state("load")
    shot(page, "attack-markup-campaign")
    page.goto(f"/console/people/{person}")
    assert MARKUP in page.locator("body").inner_text()
    shot(page, "attack-markup-person")
    page.context.close()
    assert dialogs == []
    with session_client(base, "admin") as (client, csrf):  # the world counts its people again
        done = {"csrf": csrf, "confirm": str(person)}
        assert client.post(f"/console/people/{person}/erase", data=done).status_code == 303


def _bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\nname: bomb\n"


def test_documents_that_expand_past_memory_are_refused_at_once(console_world: World) -> None:
    base, _ = console_world
    with session_client(base, "marketer") as (client, csrf):
        for text in (_bomb(), "[" * 5000, "a: &a [*a]"):
            for url, field in (
                ("/console/campaigns/new", "document"),
                ("/console/journeys", "document"),
            ):
                got = client.post(url, data={"csrf": csrf, field: text, "action": "validate"})
                assert got.status_code in (200, 400), (url, got.status_code)
                assert "not valid YAML or JSON" in got.text, url
            raw = client.post(
                "/console/segments/preview", data={"csrf": csrf, "name": "bomb", "raw": text}
            )
            assert raw.status_code == 200 and "raw condition is not valid YAML" in raw.text


def test_yaml_anchors_within_reason_still_load() -> None:
    text = "base: &b {channel: email, cap: 2}\nfirst: *b\nsecond:\n  <<: *b\n  cap: 3\n"
    assert load_yaml(text) == {
        "base": {"channel": "email", "cap": 2},
        "first": {"channel": "email", "cap": 2},
        "second": {"channel": "email", "cap": 3},
    }
    assert load_yaml("") is None
    a = "a: &a [" + ", ".join(["x"] * 1000) + "]\n"
    under = a + "b: [" + ", ".join(["*a"] * 98) + "]\n"  # 99,103 values once expanded
    assert len(load_yaml(under)["b"]) == 98
    over = a + "b: [" + ", ".join(["*a"] * 100) + "]\n"  # 101,105
    with pytest.raises(yaml.YAMLError, match=f"more than {MAX_VALUES:,} values"):
        load_yaml(over)
    with pytest.raises(InvalidInput, match="not valid YAML"):
        read_text(_bomb())


def test_a_disabled_users_open_page_gets_nothing_more(console_world: World) -> None:
    base, store = console_world
    create_user(store, "attack-leaver@console.test", PASSWORD, "analyst", replace=True)
    with httpx.Client(base_url=base, timeout=30) as client:
        form = client.get("/console/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        client.post(
            "/console/login",
            data={"csrf": token[1], "email": "attack-leaver@console.test", "password": PASSWORD},
        )
        home = client.get("/console/")
        csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', home.text)
        assert home.status_code == 200 and csrf is not None
        disable_user(store, "attack-leaver@console.test")
        htmx = {"HX-Request": "true", "X-CSRF-Token": csrf[1]}
        timeline = client.get("/console/people/1/timeline", headers=htmx)
        preview = client.post("/console/segments/preview", data={"name": "x"}, headers=htmx)
        for got in (timeline, preview):
            assert got.status_code == 401 and got.headers["hx-redirect"] == "/console/login"
            assert got.text == ""


def test_a_planted_session_cookie_is_replaced_at_sign_in(console_world: World) -> None:
    base, _ = console_world
    with session_client(base, "viewer") as (planter, _):
        planted = planter.cookies.get("surmesure_console")
    assert planted is not None
    with httpx.Client(base_url=base, timeout=30) as victim:
        victim.cookies.set("surmesure_console", planted, path="/console")
        form = victim.get("/console/login", follow_redirects=False)
        assert form.status_code == 303  # already signed in: as the planter, nobody more
        victim.cookies.clear()
        victim.cookies.set("surmesure_console", planted, path="/console")
        victim.cookies.set("surmesure_sign_in", "forged", path="/console")
        refused = victim.post(
            "/console/login",
            data={"csrf": "x", "email": email_of("admin"), "password": PASSWORD},
        )
        assert refused.status_code == 400  # a sign-in form whose cookie is forged
    with httpx.Client(base_url=base, timeout=30) as victim:
        form = victim.get("/console/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        victim.cookies.set("surmesure_console", planted, path="/console")
        done = victim.post(
            "/console/login",
            data={"csrf": token[1], "email": email_of("analyst"), "password": PASSWORD},
        )
        assert done.status_code == 303
        fresh = done.cookies.get("surmesure_console")
        assert fresh is not None and fresh != planted
    with httpx.Client(base_url=base, cookies={"surmesure_console": planted}) as planter:
        assert planter.get("/console/people").status_code == 403  # still the viewer's


def test_a_new_key_and_a_persons_page_are_never_cached(console_world: World) -> None:
    base, _ = console_world
    with session_client(base, "admin") as (client, csrf):
        created = client.post(
            "/console/data/keys", data={"csrf": csrf, "name": "attack-cache", "scope": "read"}
        )
        assert created.status_code == 200, created.text[:1000]
        assert "no-store" in created.headers["cache-control"]
        for url in ("/console/people/1", "/console/data/users"):
            got = client.get(url, follow_redirects=True)
            assert "no-store" in got.headers["cache-control"], url
        exported = client.post("/console/people/1/export", data={"csrf": csrf})
        assert "no-store" in exported.headers["cache-control"]


def test_sign_in_next_carries_no_header(console_world: World) -> None:
    base, _ = console_world
    with httpx.Client(base_url=base, timeout=30) as client:
        target = "/console/\r\nSet-Cookie: planted=1"
        form = client.get("/console/login", params={"next": target})
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        done = client.post(
            "/console/login",
            data={"csrf": token[1], "email": email_of("viewer"), "password": PASSWORD,
                  "next": target},
        )  # fmt: skip
        assert done.status_code == 303
        assert "\n" not in done.headers["location"] and "\r" not in done.headers["location"]
        assert "planted" not in done.headers.get("set-cookie", "")


def test_many_addresses_from_one_client_are_stopped(console_world: World) -> None:
    """On a server of its own, so that the client it stops is no other test's."""
    _, store = console_world
    statuses: list[int] = []
    with serving(store) as (base, _app), httpx.Client(base_url=base, timeout=30) as client:
        form = client.get("/console/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        for i in range(52):
            got = client.post(
                "/console/login",
                data={"csrf": token[1], "email": f"guess{i}@attack.test", "password": "x"},
            )
            statuses.append(got.status_code)
            if got.status_code == 401:  # each failure sends a new form and cookie
                token = re.search(r'name="csrf" value="([^"]+)"', got.text)
                assert token is not None
        right = client.post(
            "/console/login",
            data={"csrf": token[1], "email": email_of("admin"), "password": PASSWORD},
        )
    assert statuses[:50] == [401] * 50 and statuses[50:] == [429, 429]
    assert right.status_code == 429  # even the right password, from that client, waits


def test_the_last_admin_cannot_be_disabled(store: Store) -> None:
    create_user(store, "only-admin@shop.example", PASSWORD, "admin")
    create_user(store, "analyst@shop.example", PASSWORD, "analyst")
    with pytest.raises(Conflict, match="is the last admin") as refused:
        disable_user(store, "only-admin@shop.example")
    assert refused.value.field == "email" and "--role admin" in (refused.value.hint or "")
    create_user(store, "second-admin@shop.example", PASSWORD, "admin")
    assert disable_user(store, "only-admin@shop.example").disabled_at is not None
    with pytest.raises(Conflict):  # the one left is now the last
        disable_user(store, "second-admin@shop.example")
    assert disable_user(store, "analyst@shop.example").disabled_at is not None


def test_the_last_admin_cannot_be_demoted_by_a_reset(store: Store) -> None:
    create_user(store, "only-admin@shop.example", PASSWORD, "admin")
    with pytest.raises(Conflict, match="is the last admin"):
        create_user(store, "only-admin@shop.example", PASSWORD + "!", "viewer", replace=True)
    [kept] = [u for u in list_users(store) if u.email == "only-admin@shop.example"]
    assert kept.role == "admin" and authenticate(store, kept.email, PASSWORD) is not None
    # an admin's own reset keeps the role; with a second admin, the first may be demoted
    assert create_user(store, kept.email, PASSWORD, "admin", replace=True).role == "admin"
    create_user(store, "second-admin@shop.example", PASSWORD, "admin")
    assert create_user(store, kept.email, PASSWORD, "analyst", replace=True).role == "analyst"
    with pytest.raises(Conflict):  # the one left is now the last
        create_user(store, "second-admin@shop.example", PASSWORD, "marketer", replace=True)


def test_an_admin_cannot_disable_itself_when_alone(duckdb_store: Store) -> None:
    """On a console of its own, whose one admin tries to disable its own account."""
    make_users(duckdb_store)
    with serving(duckdb_store) as (base, _app), session_client(base, "admin") as (client, csrf):
        refused = client.post(
            "/console/data/users/disable", data={"csrf": csrf, "email": email_of("admin")}
        )
        assert refused.status_code == 409 and "is the last admin" in refused.text
        assert client.get("/console/data/users").status_code == 200  # still signed in


def test_a_burst_of_guesses_sent_at_once_is_limited_too(console_world: World) -> None:
    """Thirty guesses at one address sent together: ten are checked, the rest wait (they all
    used to pass before the first failure was counted)."""
    _, store = console_world
    statuses: list[int] = []
    with serving(store) as (base, _app):
        forms: list[tuple[httpx.Client, str]] = []
        for _ in range(30):
            client = httpx.Client(base_url=base, timeout=60)
            token = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text)
            assert token is not None
            forms.append((client, token[1]))
        ready = threading.Barrier(len(forms))

        def guess(client: httpx.Client, token: str) -> None:
            ready.wait()
            data = {"csrf": token, "email": email_of("admin"), "password": "a wrong guess"}
            statuses.append(client.post("/console/login", data=data).status_code)

        threads = [threading.Thread(target=guess, args=form) for form in forms]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for client, _ in forms:
            client.close()
    assert sorted(statuses) == [401] * 10 + [429] * 20


def test_a_segment_form_of_thousands_of_rows_is_refused(console_world: World) -> None:
    """Any signed-in user may draft a segment: a 250 KB form of 19,000 rows used to cost
    seconds and a 46 MB page."""
    base, _ = console_world
    with session_client(base, "viewer") as (client, csrf):
        full = {f"c{i}.kind": "metric" for i in range(MAX_ROWS)}
        kept = client.post("/console/segments/edit", data={**full, "csrf": csrf, "action": "add"})
        assert kept.status_code == 200
        assert f'name="c{MAX_ROWS - 1}.kind"' in kept.text
        assert f'name="c{MAX_ROWS}.kind"' not in kept.text  # full: no row added
        many = {f"c{i}.kind": "m" for i in range(12_000)}  # under the 256 KB a form may hold
        for url in ("/console/segments/edit", "/console/segments/preview"):
            refused = client.post(url, data={**many, "csrf": csrf})
            assert refused.status_code == 400, url
            assert f"holds {MAX_ROWS} at most" in refused.text and len(refused.content) < 50_000


def test_guessing_from_one_client_does_not_lock_the_admin_out_elsewhere() -> None:
    """Ten failures at the admin's address from one client lock it for that client only; a
    hundred from many clients lock it everywhere; fifty from one client lock that client."""
    limits = SignInLimits()
    admin = "admin@shop.example"

    def attempt(email: str, client: str, *, failed: bool = True) -> bool:
        try:
            limits.begin(email, client)
        except TooManyRequests:
            return False
        limits.end(email, client, failed=failed)
        return True

    assert all(attempt(admin, "203.0.113.7") for _ in range(10))
    assert not attempt(admin, "203.0.113.7")  # that client waits
    assert attempt(admin, "198.51.100.1", failed=False)  # the admin, elsewhere, signs in
    spread = [attempt(admin, f"192.0.2.{i // 9}") for i in range(200)]  # 9 guesses a client
    assert sum(spread) == 100 - 10 and not any(spread[90:])  # the address's 100, then none
    assert not attempt(admin, "198.51.100.1", failed=False)  # now locked from everywhere
    others = [attempt(f"user{i}@shop.example", "203.0.113.9") for i in range(60)]
    assert others == [True] * 50 + [False] * 10  # one client's fifty, whatever the address


def test_an_address_padded_past_the_cut_counts_as_the_address(console_world: World) -> None:
    """Spaces then anything after the admin's address, past the 320 characters kept: each
    padding is the admin's address to the password check, so each counts against it."""
    _, store = console_world
    admin = email_of("admin")
    spaces = [
        " ",
        "\t",
        "\u00a0",
        "\u1680",
        "\u3000",
        "\u202f",
        "\u205f",
        *map(chr, range(0x2000, 0x200B)),
    ]
    statuses: list[int] = []
    with serving(store) as (base, _app), httpx.Client(base_url=base, timeout=30) as client:
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text)
        for space in spaces[:11]:
            assert token is not None
            padded = admin + " " * (319 - len(admin)) + space + "x"
            got = client.post(
                "/console/login", data={"csrf": token[1], "email": padded, "password": "x"}
            )
            statuses.append(got.status_code)
            token = re.search(r'name="csrf" value="([^"]+)"', got.text) or token
        assert token is not None
        padded = admin + " " * (319 - len(admin)) + spaces[11] + "x"
        right = client.post(
            "/console/login", data={"csrf": token[1], "email": padded, "password": PASSWORD}
        )
    assert statuses == [401] * 10 + [429]
    assert right.status_code == 429
