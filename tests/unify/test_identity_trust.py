"""Identity trust over the real HTTP API and the CLI, on both stores.

The public write key (source ``web``, low trust) is what every shop page embeds: anyone can send
an ``identify`` with it. Marie is known from the CRM; a stranger's device sends her e-mail or her
customer id and must neither join her profile nor be greeted with her name.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from api_helpers import WRITE_KEY, server_key, serving
from fastapi import FastAPI
from typer.testing import CliRunner

from conftest import opened_rows
from surmesure.cli.main import app as cli
from surmesure.collect.importer import import_file
from surmesure.config import get_settings
from surmesure.decide.library import EXAMPLES, Library
from surmesure.protect import blind
from surmesure.store import Store, schema
from surmesure.unify.profile import decode_json

SECRET = "shop-identity-secret"
MARIE = "marie.dupont@example.com"


def sign(secret: str, user_id: str) -> str:
    """What the shop's server computes for a logged-in user: hex HMAC-SHA256 of the id."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def rows(store: Store, query: str, **params: Any) -> list[Any]:
    with store.connect() as conn:
        return list(conn.execute(sa.text(query), params))


def crm(store: Store, tmp_path: Path, *lines: str, name: str = "crm.csv") -> None:
    path = tmp_path / name
    path.write_text("customer_id,email,anonymous_id,first_name,city\n" + "\n".join(lines) + "\n")
    result = import_file(store, "customers", path, source="crm")
    assert result.rows_quarantined == 0


def marie(store: Store, tmp_path: Path) -> int:
    crm(store, tmp_path, f"C1,{MARIE},,Marie,Lyon")
    (person,) = rows(store, "SELECT person_id FROM identifiers WHERE kind = 'customer_id'")
    return int(person.person_id)


@contextmanager
def api(store: Store) -> Iterator[str]:
    def prepare(app: FastAPI) -> None:
        app.state.templates = Library(EXAMPLES)

    DECIDE_KEY[0] = server_key(store, "decide")
    with serving(store, prepare, identity_secret=SECRET) as (base, _):
        yield base


DECIDE_KEY: list[str] = [""]  # the shop server's decide key on the running test's store


def identify(base: str, message_id: str, **fields: Any) -> None:
    body = {"messageId": message_id, "timestamp": "2026-03-01T10:00:00Z", **fields}
    answer = httpx.post(f"{base}/v1/identify", json=body, auth=(WRITE_KEY, ""), timeout=30)
    assert answer.status_code == 200, answer.text


def decide(base: str, anonymous_id: str) -> dict[str, Any]:
    answer = httpx.post(
        f"{base}/v1/decide",
        json={"placement": "email_weekly", "anonymousId": anonymous_id},
        auth=(DECIDE_KEY[0], ""),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def person_of(store: Store, kind: str, value: str) -> int:
    (row,) = rows(store, "SELECT person_id FROM identifiers WHERE kind = :k AND value = :v",
                  k=kind, v=blind.index(store, kind, value))  # fmt: skip
    return int(row.person_id)


def snapshot(store: Store, person: int) -> tuple[list[Any], list[Any], int]:
    """What a person holds: identifiers, trait observations (name, value, source), events."""
    ids = rows(store, "SELECT kind, value FROM identifiers WHERE person_id = :p ORDER BY 1, 2",
               p=person)  # fmt: skip
    traits = sorted(
        (r["name"], r["value"], r["source"])
        for r in opened_rows(store, "traits", "person_id = :p", p=person)
    )
    (events,) = rows(store, "SELECT count(*) AS n FROM events WHERE person_id = :p", p=person)
    return [tuple(r) for r in ids], [tuple(r) for r in traits], int(events.n)


def merges(store: Store) -> list[Any]:
    m = schema.merges
    with store.connect() as conn:
        return list(
            conn.execute(
                sa.select(m.c.merge_id, m.c.survivor_id, m.c.absorbed_id, m.c.evidence).order_by(
                    m.c.merge_id
                )
            )
        )


def show(monkeypatch: pytest.MonkeyPatch, store: Store, ref: str) -> dict[str, Any]:
    monkeypatch.setenv("SURMESURE_DATABASE_URL", store.url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["person", "show", ref, "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    shown: dict[str, Any] = orjson.loads(result.stdout)
    return shown


def test_an_identify_with_someone_elses_email_does_not_join_them(
    store: Store, tmp_path: Path
) -> None:
    victim = marie(store, tmp_path)
    before = snapshot(store, victim)
    with api(store) as base:
        identify(base, "m1", anonymousId="dev-1", traits={"email": "Marie.Dupont@Example.com"})
        identify(base, "m2", anonymousId="dev-2",
                 traits={"email": MARIE, "firstName": "Mallory", "city": "Paris"})  # fmt: skip
        greeting = decide(base, "dev-1")
        other = decide(base, "dev-2")
    assert merges(store) == []
    assert snapshot(store, victim) == before  # no identifier, trait or event of the devices
    device = person_of(store, "anonymous_id", "dev-1")
    assert device != victim
    assert greeting["person_id"] == device
    assert greeting["content"]["body"].startswith("Bonjour,")  # neutral: nothing known
    assert "Marie" not in orjson.dumps(greeting).decode()
    # the second device's own traits stay on it, and its decision uses only them
    stranger = person_of(store, "anonymous_id", "dev-2")
    assert {(name, value) for name, value, _ in snapshot(store, stranger)[1]} == {
        ("first_name", "Mallory"), ("city", "Paris"),
    }  # fmt: skip
    assert "Marie" not in orjson.dumps(other).decode()
    claims = rows(store, "SELECT person_id, holder_id, kind, value, source, status "
                  "FROM identity_claims ORDER BY person_id")  # fmt: skip
    assert [tuple(c) for c in claims] == [
        (device, victim, "email", blind.index(store, "email", MARIE), "web", "pending"),
        (stranger, victim, "email", blind.index(store, "email", MARIE), "web", "pending"),
    ]


def test_a_user_id_without_a_valid_hash_is_only_a_claim(store: Store, tmp_path: Path) -> None:
    victim = marie(store, tmp_path)
    before = snapshot(store, victim)
    with api(store) as base:
        identify(base, "m1", anonymousId="dev-1", userId="C1", traits={"firstName": "Mallory"})
        identify(base, "m2", anonymousId="dev-2", userId="C1",
                 context={"userHash": sign("guessed-secret", "C1")})  # fmt: skip
        identify(base, "m3", anonymousId="dev-3", userId="C1",
                 integrations={"surmesure": {"userHash": sign(SECRET, "C2")}})  # fmt: skip
        # no device at all: a fact about C1 at most, never her traits
        identify(base, "m4", userId="C1", traits={"firstName": "Mallory"})
        decisions = [decide(base, f"dev-{n}") for n in (1, 2, 3)]
    assert merges(store) == []
    ids, traits, _ = snapshot(store, victim)
    assert (ids, traits) == before[:2]
    for n, decision in enumerate(decisions, start=1):
        assert decision["person_id"] == person_of(store, "anonymous_id", f"dev-{n}") != victim
        assert "Marie" not in orjson.dumps(decision).decode()
    (claims,) = rows(store, "SELECT count(*) AS n FROM identity_claims WHERE kind = 'customer_id' "
                     "AND holder_id = :p AND status = 'pending'", p=victim)  # fmt: skip
    assert claims.n == 3


def test_a_verified_login_merges_the_device(store: Store, tmp_path: Path) -> None:
    victim = marie(store, tmp_path)
    with api(store) as base:
        identify(base, "m0", anonymousId="dev-1", traits={"email": MARIE})  # a claim first
        identify(base, "m1", anonymousId="dev-1", userId="C1",
                 context={"userHash": sign(SECRET, "C1")})  # fmt: skip
        identify(base, "m2", anonymousId="dev-2", userId="C1",
                 integrations={"surmesure": {"userHash": sign(SECRET, "C1").upper()}})  # fmt: skip
        greetings = [decide(base, "dev-1"), decide(base, "dev-2")]
    for greeting in greetings:
        assert greeting["person_id"] == victim
        assert greeting["content"]["body"].startswith("Bonjour Marie,")
    assert person_of(store, "anonymous_id", "dev-1") == victim
    assert person_of(store, "anonymous_id", "dev-2") == victim  # a new device: no merge
    (merge,) = merges(store)
    assert (merge.survivor_id, decode_json(merge.evidence)["basis"]) == (
        victim, "customer_id verified by userHash",
    )  # fmt: skip
    # the device's earlier claim on her e-mail is confirmed by the verified login
    (claim,) = rows(store, "SELECT status, merge_id FROM identity_claims")
    assert claim.status == "confirmed" and claim.merge_id is not None


def test_a_crm_import_naming_the_device_confirms_its_claim(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = marie(store, tmp_path)
    with api(store) as base:
        identify(base, "m1", anonymousId="dev-1", userId="C1", traits={"email": MARIE})
        assert "Marie" not in orjson.dumps(decide(base, "dev-1")).decode()
    device = person_of(store, "anonymous_id", "dev-1")
    assert rows(store, "SELECT status FROM identity_claims WHERE person_id = :p", p=device) == [
        ("pending",), ("pending",),
    ]  # fmt: skip
    crm(store, tmp_path, f"C1,{MARIE},dev-1,Marie,Lyon", name="crm_with_web_ids.csv")
    assert person_of(store, "anonymous_id", "dev-1") == victim
    (merge,) = merges(store)
    assert (merge.survivor_id, merge.absorbed_id) == (victim, device)
    claims = rows(store, "SELECT kind, status, merge_id, person_id FROM identity_claims "
                  "ORDER BY kind")  # fmt: skip
    assert [tuple(c) for c in claims] == [
        ("customer_id", "confirmed", merge.merge_id, victim),
        ("email", "confirmed", merge.merge_id, victim),
    ]
    shown = show(monkeypatch, store, "anonymous_id:dev-1")
    assert shown["person_id"] == victim
    assert [m["evidence"]["basis"] for m in shown["merges"]] == ["trusted source 'crm'"]
    assert {c["status"] for c in shown["claims"]} == {"confirmed"}
    assert all(c["reason"].startswith("confirmed") for c in shown["claims"])


def test_person_show_explains_claims(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = marie(store, tmp_path)
    with api(store) as base:
        identify(base, "m1", anonymousId="dev-1", userId="C1",
                 traits={"email": MARIE, "phone": "+33 6 12 34 56 78"})  # fmt: skip
    device = show(monkeypatch, store, "anonymous_id:dev-1")
    # the phone nobody held is the device's own, held by claim only (a new identity)
    assert {(i["kind"], i["claimed"]) for i in device["identifiers"]} == {
        ("anonymous_id", False), ("phone", True),
    }  # fmt: skip
    reasons = {c["kind"]: (c["status"], c["holder_id"], c["reason"]) for c in device["claims"]}
    assert reasons == {
        "customer_id": (
            "pending",
            victim,
            "source 'web' is low trust and came without a valid userHash; "
            f"held by person {victim}: not merged",
        ),
        "email": (
            "pending",
            victim,
            "source 'web' is low trust and came without a valid emailHash; "
            f"held by person {victim}: not merged",
        ),
    }
    shown = show(monkeypatch, store, f"email:{MARIE}")
    assert shown["person_id"] == victim and shown["claims"] == []
    assert {(c["kind"], c["person_id"]) for c in shown["claims_on"]} == {
        ("customer_id", device["person_id"]), ("email", device["person_id"]),
    }  # fmt: skip
    result = CliRunner().invoke(cli, ["person", "show", "anonymous_id:dev-1"])
    assert result.exit_code == 0, result.output
    assert "claims made" in result.stdout and "low trust" in result.stdout


def test_claiming_an_address_before_its_owner_arrives_does_not_make_you_the_owner(
    store: Store, tmp_path: Path
) -> None:
    with api(store) as base:
        identify(base, "m1", anonymousId="dev-1", traits={"email": MARIE})
    device = person_of(store, "email", MARIE)
    crm(store, tmp_path, f"C1,{MARIE},,Marie,Lyon")  # the real Marie, later
    victim = person_of(store, "customer_id", "C1")
    assert victim != device and person_of(store, "email", MARIE) == victim
    assert merges(store) == []
    assert snapshot(store, device)[1] == []
    (claim,) = rows(store, "SELECT person_id, holder_id, status FROM identity_claims")
    assert tuple(claim) == (device, victim, "pending")
    with api(store) as base:
        assert "Marie" not in orjson.dumps(decide(base, "dev-1")).decode()


def test_files_of_events_follow_the_rules_of_their_source(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = marie(store, tmp_path)
    path = tmp_path / "events.jsonl"
    path.write_text(
        orjson.dumps({"type": "identify", "messageId": "f1", "anonymousId": "dev-1",
                      "userId": "C1", "traits": {"firstName": "Mallory"}}).decode() + "\n"
    )  # fmt: skip
    monkeypatch.setenv("SURMESURE_DATABASE_URL", store.url)
    get_settings.cache_clear()
    try:
        for source in ("web", "shop"):
            result = CliRunner().invoke(
                cli, ["import", "events", str(path), "--source", source, "--json"]
            )
            assert result.exit_code == 0, result.output
            path.write_text(path.read_text().replace('"f1"', '"f2"'))
            if source == "web":
                assert orjson.loads(result.stdout)["merges"] == 0
                assert person_of(store, "anonymous_id", "dev-1") != victim
    finally:
        get_settings.cache_clear()
    # the shop's own systems are trusted: the same message from them links the device
    assert person_of(store, "anonymous_id", "dev-1") == victim
