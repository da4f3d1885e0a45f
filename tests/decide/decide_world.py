"""A small world for decision tests: people with traits of known provenance, consents,
segment memberships, stores, products and a stand-in recommender."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from surmesure.collect import sink
from surmesure.protect import blind
from surmesure.store import Store, schema

NOW = datetime(2026, 3, 10, 17, 30, 0)  # 18:30 in Paris: evening
DAY = timedelta(days=1)


def add_person(
    store: Store,
    person_id: int,
    traits: dict[str, tuple[Any, str, float, datetime]] | None = None,
    *,
    identifiers: dict[str, str] | None = None,
    segments: Sequence[str] = (),
) -> None:
    """A person with traits ``name -> (value, source, reliability, observed_at)``."""
    with store.begin() as conn:
        conn.execute(
            schema.people.insert().values(
                person_id=person_id, merged_into=None, created_at=NOW - DAY, updated_at=NOW - DAY
            )
        )
        given = list((traits or {}).items())
        # through the collectors' writer: the traits it seals are sealed at rest
        sink.write_traits(
            store,
            conn,
            record_keys=[f"{person_id}:{name}:{source}" for name, (_, source, _, _) in given],
            person_ids=[person_id] * len(given),
            node_ids=[person_id] * len(given),
            traits=[{name: value} for name, (value, _, _, _) in given],
            sources=[source for _, (_, source, _, _) in given],
            observed_at=[at for _, (_, _, _, at) in given],
            reliabilities=[reliability for _, (_, _, reliability, _) in given],
        )
        for kind, value in (identifiers or {}).items():
            conn.execute(
                schema.identifiers.insert().values(
                    kind=kind,
                    value=blind.index(store, kind, value),
                    person_id=person_id,
                    node_id=person_id,
                    source="crm",
                    first_seen_at=NOW - DAY,
                )
            )
        for segment in segments:
            conn.execute(
                schema.segment_members.insert().values(
                    segment=segment, person_id=person_id, entered_at=NOW - DAY
                )
            )


def merge_into(conn: Any, absorbed: int, into: int) -> None:
    """What a merge leaves in the store: ``absorbed`` merged into ``into``, its identifiers
    moved to it."""
    conn.execute(
        schema.people.update().where(schema.people.c.person_id == absorbed).values(merged_into=into)
    )
    conn.execute(
        schema.identifiers.update()
        .where(schema.identifiers.c.person_id == absorbed)
        .values(person_id=into)
    )


def set_consent(
    store: Store,
    person_id: int,
    granted: bool,
    at: datetime,
    purpose: str = "personalization",
    channel: str = "any",
) -> None:
    with store.begin() as conn:
        conn.execute(
            schema.consents.insert().values(
                consent_id=uuid.uuid4().hex,
                person_id=person_id,
                node_id=person_id,
                purpose=purpose,
                channel=channel,
                granted=granted,
                recorded_at=at,
                source="crm",
            )
        )


def add_stores(store: Store, rows: Sequence[tuple[str, str, str, float, float]]) -> None:
    """Stores as ``(store_id, city, postcode, latitude, longitude)``."""
    with store.begin() as conn:
        for store_id, city, postcode, lat, lon in rows:
            conn.execute(
                schema.stores.insert().values(
                    store_id=store_id,
                    name=f"Store {city}",
                    city=city,
                    postcode=postcode,
                    country="FR",
                    latitude=lat,
                    longitude=lon,
                    updated_at=NOW - DAY,
                )
            )


@dataclass(frozen=True)
class Product:
    product_code: str
    name: str | None
    category: str | None
    price: float | None
    score: float
    reason: str


class FakeRecommender:
    """Remembers each call; answers personal picks for a person, popular ones for ``None``."""

    def __init__(self) -> None:
        self.calls: list[tuple[int | None, dict[str, Any]]] = []

    def __call__(self, store: Store, person_id: int | None, **kwargs: Any) -> list[Product]:
        self.calls.append((person_id, kwargs))
        if person_id is None:
            return [Product("P-POP", "Popular mug", "home", 9.5, 1.0, "popular")]
        return [Product(f"P-{person_id}", "Linen shirt", "apparel", 49.9, 0.8, "bought with X")]
