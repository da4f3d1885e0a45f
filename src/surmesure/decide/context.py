"""The context of a decision: season and local time, device and channel, nearest store.

- Local time is ``now`` (naive UTC) in the person's time zone: the ``time_zone`` given by the
  caller, else the trait ``time_zone``, else Europe/Paris. An unknown zone name is ignored.
- Season is meteorological (winter = December to February) in the hemisphere of the person
  (northern when unknown).
- The nearest store is measured by haversine from the person's coordinates: the traits
  ``latitude``/``longitude`` if known, else the coordinates of a store in the same postcode or
  city; else the home store (trait ``home_store_id``) stands for it, with no distance.
- A neutral audience (unknown, opted out) gets no personal context: no nearest store, the
  default time zone.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.decide.content import Audience
from surmesure.segment.evaluate import Point, haversine_km
from surmesure.store import schema

DEFAULT_ZONE = "Europe/Paris"
NORTH = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring"}
NORTH.update({6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"})
OPPOSITE = {"winter": "summer", "summer": "winter", "spring": "autumn", "autumn": "spring"}


def zone_named(name: Any) -> ZoneInfo | None:
    """The time zone called ``name``; ``None`` for an empty or unknown name."""
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def part_of_day(hour: int) -> str:
    if 5 <= hour < 12:
        return "morning"
    if 12 <= hour < 18:
        return "afternoon"
    if 18 <= hour < 23:
        return "evening"
    return "night"


def season_of(local: datetime, latitude: float | None) -> str:
    season = NORTH[local.month]
    return OPPOSITE[season] if latitude is not None and latitude < 0 else season


def time_context(
    now: datetime, zone_name: str | None, latitude: float | None = None
) -> dict[str, Any]:
    """The time part of a context (a fresh dict): the same for everyone of a batch who shares
    a time zone and a hemisphere, so it is worked out once for them."""
    south = latitude is not None and latitude < 0
    return dict(_time_context(now, zone_name, -1.0 if south else None))


@lru_cache(maxsize=1024)
def _time_context(now: datetime, zone_name: str | None, latitude: float | None) -> dict[str, Any]:
    zone = zone_named(zone_name) or ZoneInfo(DEFAULT_ZONE)
    local = now.replace(tzinfo=UTC).astimezone(zone)
    return {
        "time_zone": str(zone.key),
        "local_time": local.isoformat(timespec="seconds"),
        "local_date": local.date().isoformat(),
        "local_hour": local.hour,
        "weekday": local.strftime("%A").lower(),
        "part_of_day": part_of_day(local.hour),
        "season": season_of(local, latitude),
    }


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


STORES_TTL_S = 60.0
_stores_cache: weakref.WeakKeyDictionary[Any, tuple[float, list[Any]]] = weakref.WeakKeyDictionary()


def stores_of(conn: Connection | None, owner: Any = None) -> list[Any]:
    """Every store (reference data). With an ``owner`` (the Store), the list is kept for
    :data:`STORES_TTL_S` seconds as long as the owner lives: stores change rarely and every
    decision reads them. ``conn`` ``None``: the owner's connection, opened when needed."""
    if owner is None:
        assert conn is not None, "stores are read with a connection or kept by their owner"
        return _stores(conn)
    held = _stores_cache.get(owner)
    if held is not None and held[0] > time.monotonic():
        return held[1]
    if conn is None:
        with owner.connect() as own:
            rows = _stores(own)
    else:
        rows = _stores(conn)
    _stores_cache[owner] = (time.monotonic() + STORES_TTL_S, rows)
    return rows


def _stores(conn: Connection) -> list[Any]:
    s = schema.stores
    return list(
        conn.execute(
            sa.select(
                s.c.store_id, s.c.name, s.c.city, s.c.postcode, s.c.latitude, s.c.longitude
            ).order_by(s.c.store_id)
        )
    )


def person_point(audience: Audience, stores: list[Any]) -> tuple[Point | None, str | None]:
    """The person's coordinates and how they were found (``coordinates``, ``postcode``,
    ``city``), or ``(None, None)``."""
    traits = audience.traits
    lat = _float(traits["latitude"].value) if "latitude" in traits else None
    lon = _float(traits["longitude"].value) if "longitude" in traits else None
    if lat is not None and lon is not None:
        return (lat, lon), "coordinates"
    for trait in ("postcode", "city"):
        held = traits.get(trait)
        if held is None or not isinstance(held.value, str):
            continue
        found = _remembered(stores, ("place", trait, held.value.strip().lower()), _place)
        if found is not None:
            return found, trait
    return None, None


def _place(stores: list[Any], key: tuple[Any, ...]) -> Point | None:
    """The coordinates of the first placed store whose ``trait`` reads ``wanted``."""
    _, trait, wanted = key
    for r in stores:
        if r.latitude is None or r.longitude is None:
            continue
        if str(getattr(r, trait) or "").strip().lower() == wanted:
            return (float(r.latitude), float(r.longitude))
    return None


def _closest(stores: list[Any], key: tuple[Any, ...]) -> tuple[Any, float] | None:
    """The placed store nearest to the point of ``key``, and its distance in km."""
    point = key[1]
    placed = [r for r in stores if r.latitude is not None and r.longitude is not None]
    if not placed:
        return None
    best = min(placed, key=lambda r: haversine_km(point, (r.latitude, r.longitude)))
    return best, haversine_km(point, (best.latitude, best.longitude))


# answers about one list of stores (the list kept by stores_of): most people share a few
# places, so the same question comes again and again
_answers: dict[tuple[int, tuple[Any, ...]], tuple[list[Any], Any]] = {}


def _remembered(stores: list[Any], key: tuple[Any, ...], work: Any) -> Any:
    held = _answers.get((id(stores), key))
    if held is not None and held[0] is stores:
        return held[1]
    value = work(stores, key)
    if len(_answers) > 100_000:
        _answers.clear()
    _answers[(id(stores), key)] = (stores, value)
    return value


def nearest_store(
    conn: Connection | None, audience: Audience, owner: Any = None
) -> dict[str, Any] | None:
    stores = stores_of(conn, owner)
    point, basis = person_point(audience, stores)
    closest = None if point is None else _remembered(stores, ("near", point), _closest)
    if closest is not None:
        best, distance = closest
        return {
            "store_id": best.store_id,
            "name": best.name,
            "city": best.city,
            "distance_km": round(distance, 3),
            "basis": basis,
        }
    home = audience.traits.get("home_store_id")
    if home is not None and isinstance(home.value, str):
        for r in stores:
            if r.store_id == home.value:
                return {
                    "store_id": r.store_id,
                    "name": r.name,
                    "city": r.city,
                    "distance_km": None,
                    "basis": "home_store",
                }
    return None


def build_context(
    conn: Connection | None,
    audience: Audience,
    now: datetime,
    given: Mapping[str, Any] | None = None,
    *,
    owner: Any = None,
) -> dict[str, Any]:
    """The context object of a decision (see the module). ``given`` is what the caller sent
    (``device``, ``channel``, ``time_zone``, anything else kept as is)."""
    given = dict(given or {})
    personal = not audience.neutral
    zone = given.get("time_zone")
    if zone is None and personal and "time_zone" in audience.traits:
        zone = audience.traits["time_zone"].value
    store = nearest_store(conn, audience, owner) if personal else None
    lat = None
    if personal and "latitude" in audience.traits:
        lat = _float(audience.traits["latitude"].value)
    context = {
        **given,
        **time_context(now, zone if isinstance(zone, str) else None, lat),
        "device": given.get("device") or "unknown",
        "channel": given.get("channel") or "web",
        "nearest_store": store,
    }
    return context
