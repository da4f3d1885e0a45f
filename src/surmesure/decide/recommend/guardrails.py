"""Guardrails on recommended products, pure: stock, already bought, categories, caps.

- in stock only: a product is offered when it has a positive quantity at one of the stores
  that serve the person (their home store, or the store asked for, and ``online``); a product
  with no stock row at all (no stock data imported for it) is not filtered;
- never a product the person bought within ``bought_window_days`` (all history when
  ``None``), except products of a consumable category, which are bought again;
- never a product of an excluded category;
- at most ``per_category`` products of one category (products with no category are not
  capped: nothing says they compete with each other).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

ONLINE = "online"


@dataclass(frozen=True)
class Policy:
    """What a recommendation may not do, beyond the arguments of each call."""

    bought_window_days: int | None = 365
    consumable_categories: frozenset[str] = field(default_factory=frozenset)


class HasCategory(Protocol):
    @property
    def category(self) -> str | None: ...


@dataclass(frozen=True)
class Stock:
    """Quantities by product and store (only the rows known at the time asked about)."""

    quantities: Mapping[str, Mapping[str, int]]
    #: lists filtered against this stock, kept while it is (see ``recommend.service.pick``)
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def available(self, product_code: str, stores: Sequence[str]) -> bool:
        by_store = self.quantities.get(product_code)
        if not by_store:
            return True
        return any(by_store.get(s, 0) > 0 for s in stores)


def serving_stores(home_store: str | None, store_id: str | None) -> tuple[str, ...]:
    """Stores whose stock counts for a person: the store asked for, else their home store,
    and always the web stock."""
    chosen = store_id or home_store
    return (chosen, ONLINE) if chosen and chosen != ONLINE else (ONLINE,)


def already_bought(
    purchases: Iterable[tuple[datetime, str]],
    as_of: datetime,
    policy: Policy,
    categories: Mapping[str, HasCategory],
) -> set[str]:
    """Products bought (``(ordered_at, product_code)`` pairs) within the policy's window
    before ``as_of`` that may not be offered again (consumables may)."""
    window = policy.bought_window_days
    since = None if window is None else as_of - timedelta(days=window)
    banned: set[str] = set()
    for at, code in purchases:
        if since is not None and at < since:
            continue
        product = categories.get(code)
        if product is not None and product.category in policy.consumable_categories:
            continue
        banned.add(code)
    return banned


def allowed(
    product_code: str,
    *,
    banned: set[str],
    excluded: frozenset[str],
    products: Mapping[str, HasCategory],
    stock: Stock,
    stores: Sequence[str],
) -> bool:
    """Whether one product passes every filter (the per-category cap is applied later)."""
    if product_code in banned:
        return False
    product = products.get(product_code)
    if product is not None and product.category in excluded:
        return False
    return stock.available(product_code, stores)


def cap_per_category(
    ranked: Iterable[str], products: Mapping[str, HasCategory], per_category: int, k: int
) -> list[str]:
    """The first ``k`` of ``ranked`` with at most ``per_category`` of any one category."""
    taken: dict[str, int] = {}
    out: list[str] = []
    for code in ranked:
        product = products.get(code)
        category = None if product is None else product.category
        if category is not None:
            if taken.get(category, 0) >= per_category:
                continue
            taken[category] = taken.get(category, 0) + 1
        out.append(code)
        if len(out) >= k:
            break
    return out
