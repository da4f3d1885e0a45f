"""An attacker's pass: what a holder of the public write key, of one personal link or of the
command line could do that they should not. Each test is an attack that once succeeded. On a
real server, on both stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from api_helpers import WRITE_KEY, gigabyte_answer, server_key, serving
from person_world import ANA, import_world, person_of, write_world
from typer.testing import CliRunner

from surmesure.cli.main import app
from surmesure.clock import utcnow
from surmesure.config import get_settings
from surmesure.protect import audit
from surmesure.protect.erase import erase_person
from surmesure.store import Store, schema


def _person(store: Store) -> None:
    with store.begin() as conn:
        now = utcnow()
        conn.execute(schema.people.insert().values(person_id=1, created_at=now, updated_at=now))


def _variants(token: str) -> list[str]:
    """Spellings of ``token`` whose signature decodes to the same bytes: base64 padding and
    the unused low bits of the signature's last character."""
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(token[-1])
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    same_bits = [alphabet[(last & ~3) | low] for low in range(4) if (last & ~3) | low != last]
    return [token + "=", token + "==", *(token[:-1] + c for c in same_bits)]


def test_one_link_takes_one_nps_answer_however_its_token_is_spelled(store: Store) -> None:
    _person(store)
    decide = server_key(store, "decide")
    with serving(store) as (base, _):
        made = httpx.post(f"{base}/v1/pages/links", json={"person": "1"}, auth=(decide, ""))
        token = made.json()["url"].rsplit("/", 1)[1]
        first = httpx.post(f"{base}/p/{token}/nps", data={"score": "10"})
        others = [
            httpx.post(f"{base}/p/{t}/nps", data={"score": "0"}).status_code
            for t in _variants(token)
        ]
        pages = [httpx.get(f"{base}/p/{t}").status_code for t in _variants(token)]
    assert first.status_code == 200
    assert others == [404] * len(others) and pages == [404] * len(pages)
    s = schema.survey_answers
    with store.connect() as conn:
        rows = conn.execute(sa.select(s.c.person_id, s.c.score)).all()
    assert [tuple(r) for r in rows] == [(1, 10)]


def _identify(message_id: str, customer_id: str, email: str) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": message_id,
        "userId": customer_id,
        "traits": {"email": email},
        "timestamp": "2026-03-01T10:00:00.000Z",
    }


def test_the_write_key_cannot_tell_an_erased_address_by_sending_a_message_twice(
    store: Store,
) -> None:
    with serving(store) as (url, _), httpx.Client(base_url=url, auth=(WRITE_KEY, "")) as client:
        client.post("/v1/identify", json=_identify("m-0", "C-1", "nina@example.com"))
        erase_person(store, "customer_id:C-1", confirmed=True)

        def twice(message: dict[str, Any]) -> list[dict[str, Any]]:
            return [client.post("/v1/identify", json=message).json() for _ in range(2)]

        erased = twice(_identify("probe-1", "C-9", "nina@example.com"))
        unknown = twice(_identify("probe-2", "C-8", "nobody@example.com"))
        again = twice(_identify("probe-1", "C-9", "nina@example.com"))
    assert unknown == [
        {"success": True, "accepted": 1, "duplicate": 0},
        {"success": True, "accepted": 0, "duplicate": 1},
    ]
    assert erased == unknown
    assert again == [unknown[1], unknown[1]]
    with store.connect() as conn:
        kept = conn.execute(
            sa.select(sa.func.count())
            .select_from(schema.quarantine)
            .where(schema.quarantine.c.reason == "erased")
        ).scalar_one()
    assert kept == 1  # the probe is quarantined once, not once per sending


def test_opening_a_personal_page_is_audited(store: Store) -> None:
    _person(store)
    decide = server_key(store, "decide")
    with serving(store) as (base, _):
        made = httpx.post(f"{base}/v1/pages/links", json={"person": "1"}, auth=(decide, ""))
        token = made.json()["url"].rsplit("/", 1)[1]
        opened = httpx.get(f"{base}/p/{token}")
        gone = httpx.get(f"{base}/p/{token[:-2]}xx")
    assert opened.status_code == 200 and gone.status_code == 404
    views = audit.entries(store, action="page.view")
    assert [(e["actor"], e["person_id"]) for e in views] == [("link:page", 1)]


def test_an_erased_address_spelled_another_way_stays_erased(store: Store) -> None:
    with serving(store) as (url, _), httpx.Client(base_url=url, auth=(WRITE_KEY, "")) as client:
        client.post("/v1/identify", json=_identify("m-0", "C-1", "nina@example.com"))
        erase_person(store, "customer_id:C-1", confirmed=True)
        spellings = ["Nina@Example.COM.", "nina@ｅｘａｍｐｌｅ.com", "nina@EXAMPLE.com.."]
        answers = [
            client.post("/v1/identify", json=_identify(f"m-{n}", f"C-{n + 2}", email)).status_code
            for n, email in enumerate(spellings)
        ]
    assert answers == [200, 200, 200]  # answered as stored: they are, in the quarantine
    with store.connect() as conn:
        i = schema.identifiers
        emails = conn.execute(sa.select(i.c.value).where(i.c.kind == "email")).scalars().all()
    assert emails == []


def _cli(monkeypatch: pytest.MonkeyPatch, store: Store, *args: str) -> str:
    monkeypatch.setenv("SURMESURE_DATABASE_URL", store.url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, list(args))
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


def test_command_line_reads_of_personal_data_are_audited(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quarantine shows refused records and their values, and recommendations tell what a
    person bought: each read is written to the audit log."""
    import_world(store, write_world(tmp_path))
    ana = person_of(store, "email", ANA["email"])
    with store.connect() as conn:
        first = conn.execute(sa.select(sa.func.min(schema.quarantine.c.quarantine_id))).scalar()
    assert first is not None
    shown = _cli(monkeypatch, store, "quarantine", "show", str(first), "--json")
    _cli(monkeypatch, store, "quarantine", "list", "--json")
    _cli(monkeypatch, store, "recommend", "--person", str(ana), "--json")
    _cli(monkeypatch, store, "recommend", "--all", str(tmp_path / "recos.csv"), "--json")
    assert orjson.loads(shown)["payload"]
    acts = {(e["action"], e["person_id"]) for e in audit.entries(store)}
    assert {
        ("quarantine.show", None),
        ("quarantine.list", None),
        ("recommend", ana),
        ("recommend.export", None),
    } <= acts
    assert all(e["actor"].startswith("cli:") for e in audit.entries(store))


def test_a_person_reference_has_the_same_bound_on_every_route(store: Store) -> None:
    read = server_key(store, "read")
    ref = "email:" + "a" * 400 + "@example.com"
    with serving(store) as (base, _):
        answers = [
            httpx.get(f"{base}/v1/people/{ref}/{route}", auth=(read, ""))
            for route in ("segments", "consents")
        ]
    assert [a.status_code for a in answers] == [400, 400]
    assert all("a" * 400 not in a.text for a in answers)


@pytest.mark.parametrize("path", ["/p/anything/nps", "/preferences/anything"])
def test_a_page_form_over_the_limit_is_refused_before_it_is_read(store: Store, path: str) -> None:
    """No key is needed to post to a page: a body announced at a gigabyte is refused at once,
    not read into memory (nor waited for)."""
    with serving(store) as (base, _):
        answer = gigabyte_answer(base, path, "application/x-www-form-urlencoded", b"score=1")
    assert answer.startswith(b"HTTP/1.1 413"), answer


def test_made_up_keys_cannot_make_the_server_query_its_store_at_will(store: Store) -> None:
    from surmesure.protect.keys import MISS_BURST, KeyRing, create_key

    ring = KeyRing(store, {}, refresh_seconds=60, miss_lookups_per_second=0.0)  # no refill
    ring.reload()
    with store.statements() as sent:
        for i in range(500):
            assert ring.find(f"sm_made-up-{i}") is None
        for _ in range(50):
            assert ring.find("sm_made-up-0") is None  # remembered as missing
    lookups = [s for s in sent if "api_keys" in s]
    assert len(lookups) <= MISS_BURST + 5  # the burst, and what the budget refilled meanwhile
    created, _ = create_key(store, "late", ["read"])
    assert ring.find(created) is None  # the budget is spent: refused without a look-up
    ring.reload()
    found = ring.find(created)
    assert found is not None and found.scopes == frozenset({"read"})
    fresh = KeyRing(store, {}, refresh_seconds=60)
    assert fresh.find(created) is not None  # with budget left, a new key works at once
