"""The blind-index key is the store's: an app given settings with its own encryption key
collects identifiers under that key, and its segments (in SQL, in Ibis, in memory) compare a
customer id through it, on DuckDB and on PostgreSQL. The same rows read under the configured
key find nobody."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa
from api_helpers import WRITE_KEY, server_key, serving
from segment_world import load_world
from test_segment_api import with_router

from surmesure.config import get_settings
from surmesure.derive.source import ibis_backend
from surmesure.domain.segments import SegmentDefinition
from surmesure.errors import NotFound
from surmesure.protect import blind
from surmesure.segment import membership, repository
from surmesure.segment.ibis_compile import members
from surmesure.segment.ibis_tables import store_tables
from surmesure.segment.person import segments_of
from surmesure.store import Store, schema

AT = "2026-03-01T10:00:00.000Z"
OTHER_KEY = "an-encryption-key-of-this-app-only"
BY_CUSTOMER = SegmentDefinition.model_validate(
    {
        "name": "by_customer",
        "where": {"metric": {"name": "customer_id", "op": "eq", "value": "C-17"}},
    }
)


def _identify(url: str) -> None:
    message = {"type": "identify", "messageId": "id-1", "userId": "C-17", "timestamp": AT}
    message["traits"] = {"email": "anna@example.com"}
    answer = httpx.post(f"{url}/v1/batch", json={"batch": [message]}, auth=(WRITE_KEY, ""))
    assert answer.status_code == 200, answer.text


def _held(store: Store) -> tuple[int, str]:
    """The person collected and the customer id's index their identifier holds."""
    with store.connect() as conn:
        person, value = conn.execute(
            sa.select(schema.identifiers.c.person_id, schema.identifiers.c.value).where(
                schema.identifiers.c.kind == "customer_id"
            )
        ).one()
    return int(person), str(value)


def _sql_members(store: Store, now: datetime) -> list[int]:
    with store.connect() as conn:
        return membership.members(conn, store, BY_CUSTOMER, now, {})


def _ibis_members(store: Store, now: datetime) -> list[int]:
    with ibis_backend(store) as backend:
        found = members(
            BY_CUSTOMER,
            store_tables(backend, ()),
            now=now,
            half_life_days=store.settings.trait_half_life_days,
            catalog={},
            index_key=blind.index_key(store),
        )
        return sorted(int(p) for p in found.to_pyarrow()["person_id"].to_pylist())


def test_an_apps_own_key_governs_its_segments(store: Store) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    read = server_key(store, "read")
    configured = blind.index_key(get_settings())
    with serving(store, encryption_key=OTHER_KEY) as (url, app):
        with_router(app)
        _identify(url)
        person, stored = _held(store)
        # collection indexed the customer id under the app's key, not the configured one
        assert stored == blind.index(store, "customer_id", "C-17")
        assert stored != blind.index_with(configured, "customer_id", "C-17")
        # a customer id metric as derive writes it: the identifier's index as stored
        load_world(
            store,
            {
                "people": [person, person + 1],
                "metrics": [{"p": person, "at": "2026-03-01T00:00:00", "customer_id": stored}],
            },
        )
        repository.save(store, BY_CUSTOMER, now)
        live = httpx.get(
            f"{url}/v1/people/email:anna@example.com/segments?live=true", auth=(read, "")
        )
        assert live.status_code == 200, live.text
        assert [s["name"] for s in live.json()["segments"]] == ["by_customer"]
        assert _sql_members(store, now) == [person]
        assert _ibis_members(store, now) == [person]
    # the same rows under the configured key: the customer id is indexed otherwise
    assert _sql_members(store, now) == []
    assert _ibis_members(store, now) == []
    assert segments_of(store, f"{person}", now, live=True)["segments"] == []
    with pytest.raises(NotFound):
        segments_of(store, "email:anna@example.com", now, live=True)
