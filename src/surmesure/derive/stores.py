"""Preferred store and its distance from home.

Per identified person, on or before ``as_of``:

- ``preferred_store_id``: the physical store (not ``online``) where the person placed the most
  purchase orders (``orders.store_id``; ties: the latest purchase, then the smallest id), with
  ``preferred_store_basis = 'orders'``; else the home store (trait ``home_store_id``), with
  basis ``'home_store'``. The home store is the observation of highest reliability, then the
  latest, observed on or before ``as_of``;
- ``preferred_store_km``: great-circle (haversine, Earth radius 6,371.0088 km) distance from
  the home store to the preferred store, when both have coordinates; 0 when they are the same
  store; NULL without a home store or coordinates.

People with neither a store purchase nor a home store get no row.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from surmesure.derive.source import identified_people

ONLINE = "online"
EARTH_RADIUS_KM = 6371.0088
HOME_STORE_TRAIT = "home_store_id"
STORE_COLUMNS = ("person_id", "preferred_store_id", "preferred_store_basis", "preferred_store_km")


def haversine_km(
    lat1: ir.FloatingValue, lon1: ir.FloatingValue, lat2: ir.FloatingValue, lon2: ir.FloatingValue
) -> ir.FloatingValue:
    """Great-circle distance in km between two points in degrees."""
    half = (lat2 - lat1).radians() / 2
    half_lon = (lon2 - lon1).radians() / 2
    h = half.sin() ** 2 + lat1.radians().cos() * lat2.radians().cos() * half_lon.sin() ** 2
    # not ibis.least: it skips NULLs, and a missing coordinate must give a NULL distance
    root = h.sqrt()
    return 2 * EARTH_RADIUS_KM * ibis.ifelse(root > 1.0, 1.0, root).asin()


def home_stores(backend: Any, as_of: date) -> ir.Table:
    """Per person with a ``home_store_id`` trait by ``as_of``: ``person_id``, ``home_store_id``."""
    traits = backend.table("traits")
    kept = traits.filter(
        traits.name == HOME_STORE_TRAIT,
        traits.person_id.notnull(),
        traits.observed_at < ibis.timestamp(as_of + timedelta(days=1)),
    )
    kept = kept.mutate(home_store_id=kept.value.str)
    kept = kept.filter(kept.home_store_id.notnull())
    order = [kept.reliability.desc(), kept.observed_at.desc(), kept.record_key.asc()]
    ranked = kept.mutate(rank=ibis.row_number().over(group_by=kept.person_id, order_by=order))
    return ranked.filter(ranked.rank == 0).select("person_id", "home_store_id")


def bought_stores(backend: Any, as_of: date) -> ir.Table:
    """Per person with a purchase in a physical store: ``person_id``, ``bought_store_id``."""
    orders = backend.table("orders")
    kept = orders.filter(
        orders.person_id.notnull(),
        ~orders.is_return,
        orders.store_id.notnull(),
        orders.store_id != ONLINE,
        orders.ordered_at < ibis.timestamp(as_of + timedelta(days=1)),
    )
    per_store = kept.group_by("person_id", "store_id").aggregate(
        orders=kept.order_id.nunique(), last=kept.ordered_at.max()
    )
    order = [per_store.orders.desc(), per_store.last.desc(), per_store.store_id.asc()]
    ranked = per_store.mutate(
        rank=ibis.row_number().over(group_by=per_store.person_id, order_by=order)
    )
    return ranked.filter(ranked.rank == 0).select("person_id", bought_store_id=ranked.store_id)


def preferred_stores(backend: Any, as_of: date) -> ir.Table:
    """The preferred-store table (columns ``STORE_COLUMNS``); see the module docstring."""
    people = identified_people(backend).select("person_id")
    joined = people.left_join(bought_stores(backend, as_of), "person_id", rname="{name}_b")
    joined = joined.left_join(home_stores(backend, as_of), "person_id", rname="{name}_h")
    joined = joined.filter(joined.bought_store_id.notnull() | joined.home_store_id.notnull())
    joined = joined.select(
        "person_id",
        "home_store_id",
        preferred_store_id=joined.bought_store_id.coalesce(joined.home_store_id),
        preferred_store_basis=ibis.ifelse(joined.bought_store_id.notnull(), "orders", "home_store"),
    )
    stores = backend.table("stores").select("store_id", "latitude", "longitude")
    home = stores.rename(home_store_id="store_id", home_lat="latitude", home_lon="longitude")
    there = stores.rename(preferred_store_id="store_id", lat="latitude", lon="longitude")
    located = joined.left_join(home, "home_store_id", rname="{name}_home")
    located = located.left_join(there, "preferred_store_id", rname="{name}_there")
    distance = haversine_km(located.home_lat, located.home_lon, located.lat, located.lon)
    return located.select(
        "person_id",
        "preferred_store_id",
        "preferred_store_basis",
        preferred_store_km=ibis.ifelse(
            located.home_store_id == located.preferred_store_id, 0.0, distance
        ).cast("float64"),
    )
