"""Crypto-shredding end to end: a person known from a CRM import, a shop import, identify and
track events from two devices, with a decision that greets her by name, and a CRM row of hers
refused into the quarantine (a bad birth date). No direct identifier of hers (e-mail, phone,
customer id, loyalty card, device ids, names, street, IP address, user agent) is in the whole
DuckDB file after a checkpoint, nor anywhere in a full ``pg_dump``: neither before her erasure
(nothing was written in clear, the quarantined record included) nor after it. On both stores."""

from __future__ import annotations

from pathlib import Path

import orjson
from dumps import stored_bytes
from import_helpers import quarantined
from person_world import ANA
from test_atrest import AGENT, FIRST, IP, LAST, NOW, PHONE, STREET, _world

from surmesure.decide.library import EXAMPLES, Library
from surmesure.decide.service import DecideRequest, decide
from surmesure.protect.erase import erase_person
from surmesure.store import Store

SECRETS = [
    ANA["email"], ANA["phone"], ANA["customer_id"], ANA["loyalty_card"], "device-1", "device-2",
    FIRST, LAST, STREET, PHONE, IP, AGENT,
]  # fmt: skip


def _whole(store: Store, tmp_path: Path, name: str) -> bytes:
    """Every byte the store holds: the DuckDB file after a checkpoint, or a full pg_dump."""
    return stored_bytes(store, tmp_path / f"{name}.sql")


def _found(data: bytes) -> list[str]:
    return [s for s in SECRETS if s.encode() in data or s.encode("utf-16-le") in data]


def _quarantined(store: Store) -> set[str]:
    """The secrets the quarantine's records hold, as readers open them."""
    text = orjson.dumps([r["payload"] for r in quarantined(store)]).decode().lower()
    return {s for s in SECRETS if s.lower() in text}


def test_no_direct_identifier_is_stored_in_clear_before_or_after_erasure(
    store: Store, tmp_path: Path
) -> None:
    person = _world(store, tmp_path)
    banner = Library(EXAMPLES).named("home_banner")
    result = decide(store, DecideRequest(placement="home_banner", person_id=person), banner,
                    now=NOW)  # fmt: skip
    assert FIRST in orjson.dumps(result).decode()  # she is known, greeted by name

    # the refused CRM row holds her e-mail and customer id, sealed
    assert _quarantined(store) == {ANA["customer_id"], ANA["email"]}
    assert _found(_whole(store, tmp_path, "before")) == []

    erasure = erase_person(store, f"customer_id:{ANA['customer_id']}", confirmed=True)

    assert erasure.records_shredded == 1 and _quarantined(store) == set()
    assert _found(_whole(store, tmp_path, "after")) == []
