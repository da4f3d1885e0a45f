"""What a film shows of each person, read for a whole batch in a few statements.

For each person of a batch: their audience as a campaign reads it
(:func:`surmesure.deliver.audiences.load_audiences` on the ``video`` channel: consents,
resolved traits), their template fields (:func:`surmesure.decide.content.resolve_fields`:
a field is used only when the trait exists, is reliable enough and the person has not opted
out of personalization), their recommendations (:func:`surmesure.decide.personal.
personal_batch`, the path of decisions and campaigns: the popular products, i.e. the best
sellers, for a neutral audience; a person whose list is the best sellers, someone the model
knows nothing of, is not shown them as their own), their monthly spend over the chart's
months and their preferred store. A person id nobody holds is read as nobody: the neutral film.

Months are calendar months of ``now`` (naive UTC): the last one is ``now``'s own month, so far.
Spend is the sum of the orders' ``total_amount`` (returns count negative) placed in a month.
The preferred store is the template's store trait when it is reliable enough and names a
known store, else the physical store (not ``online``) where the person placed most orders
(ties: the smallest id); ``None`` when neither is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.decide.content import NOBODY, Audience, resolve_fields
from surmesure.decide.personal import Personal, personal_batch, products_for
from surmesure.decide.recommend.service import recommend
from surmesure.deliver.audiences import load_audiences
from surmesure.domain.templates import TemplateDefinition, Variant
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import root_of
from surmesure.video.template import ChartScene, ProductsScene, StoreScene, VideoTemplate

CHANNEL = "video"


@dataclass(frozen=True)
class Viewer:
    """One person as their film sees them (``person_id`` ``None``: nobody known)."""

    person_id: int | None
    audience: Audience
    #: the value of each template field (the fallback where it is not used)
    fields: dict[str, Any]
    #: whether at least one field holds the person's own value
    fields_used: bool
    #: spend per month, oldest first, over the chart's months (``None``: neutral or no orders)
    spend: tuple[float, ...] | None = None
    #: the first day of each month of ``spend``
    months: tuple[datetime, ...] = ()
    #: the preferred store (``store_id``, ``name``, ``city``, ``postcode``) or ``None``
    store: dict[str, Any] | None = None
    products: list[dict[str, Any]] = field(default_factory=list)
    #: whether ``products`` are the person's own recommendations (else the best sellers)
    products_personal: bool = False

    @property
    def neutral(self) -> bool:
        return self.audience.neutral


def fields_definition(template: VideoTemplate) -> TemplateDefinition:
    """A content template holding ``template``'s fields and threshold, so that fields resolve
    exactly as decisions resolve them."""
    return TemplateDefinition(
        name=template.name,
        placement="video",
        channel=CHANNEL,
        locale=template.locale,
        currency=template.currency,
        min_reliability=template.min_reliability,
        fields=template.fields,
        variants=[Variant(name="default", body="")],
    )


def month_starts(now: datetime, count: int) -> tuple[datetime, ...]:
    """The first instants of the ``count`` calendar months ending with ``now``'s, oldest
    first."""
    index = now.year * 12 + now.month - 1
    return tuple(
        datetime((index - i) // 12, (index - i) % 12 + 1, 1) for i in range(count - 1, -1, -1)
    )


def read_viewers(
    store: Store, template: VideoTemplate, person_ids: Sequence[int | None], now: datetime
) -> list[Viewer]:
    """The :class:`Viewer` of each of ``person_ids``, in order (see the module)."""
    definition = fields_definition(template)
    chart_months = max((s.months for s in template.scenes if isinstance(s, ChartScene)), default=0)
    k = max((s.count for s in template.scenes if isinstance(s, ProductsScene)), default=0)
    store_traits = {s.store_trait for s in template.scenes if isinstance(s, StoreScene)}
    traits = {f.trait for f in template.fields.values() if f.trait is not None} | store_traits
    metrics = frozenset(f.metric for f in template.fields.values() if f.metric is not None)
    settings = store.settings
    with store.connect() as conn:
        roots = _roots(conn, person_ids)
        known = sorted({r for r in roots.values() if r is not None})
        audiences = load_audiences(
            conn, known, now, settings.trait_half_life_days,
            channel=CHANNEL, traits=traits, metrics=metrics,
        )  # fmt: skip
        personal = [p for p in known if not audiences[p].neutral]
        found: dict[int, Personal] = (
            personal_batch(store, conn, audiences, now, {"channel": CHANNEL}, k=k) if k else {}
        )
        popular: list[dict[str, Any]] = []
        if k:
            popular = products_for(store, conn, NOBODY, k, None, None, recommend)[0]
        starts = month_starts(now, chart_months) if chart_months else ()
        spend = _spend(conn, personal, starts, now) if starts else {}
        stores = _stores(conn, template, personal, audiences, store_traits)
    out = []
    for asked in person_ids:
        root = roots.get(asked) if asked is not None else None
        audience = audiences.get(root, NOBODY) if root is not None else NOBODY
        values, notes = resolve_fields(definition, audience)
        mine = not audience.neutral and root is not None
        held = found.get(root) if mine and root is not None else None
        out.append(
            Viewer(
                person_id=root,
                audience=audience,
                fields=values,
                fields_used=any(n.get("used") for n in notes),
                spend=spend.get(root) if mine and root is not None else None,
                months=starts,
                store=stores.get(root) if mine and root is not None else None,
                products=list(held.products) if held is not None else list(popular),
                products_personal=held is not None
                and bool(held.products_note["personalized"])
                and _codes(held.products) != _codes(popular),
            )
        )
    return out


def _codes(products: Sequence[dict[str, Any]]) -> list[Any]:
    return [p.get("product_code") for p in products]


def _roots(conn: Connection, person_ids: Sequence[int | None]) -> dict[int, int | None]:
    """Each asked id's person now: itself when it is a person, its merge's for an absorbed id,
    ``None`` for an id nobody holds."""
    asked = sorted({p for p in person_ids if p is not None})
    people = schema.people
    rows = conn.execute(
        sa.select(people.c.person_id, people.c.merged_into).where(people.c.person_id.in_(asked))
    ).all()
    merged = {int(r[0]): r[1] for r in rows}
    return {
        p: (None if p not in merged else p if merged[p] is None else root_of(conn, p))
        for p in asked
    }


def _spend(
    conn: Connection, person_ids: Sequence[int], starts: Sequence[datetime], now: datetime
) -> dict[int, tuple[float, ...]]:
    """Each person's spend per month of ``starts`` up to ``now``; people with no order then
    are left out."""
    if not person_ids:
        return {}
    orders = schema.orders
    rows = conn.execute(
        sa.select(orders.c.person_id, orders.c.ordered_at, orders.c.total_amount).where(
            orders.c.person_id.in_(person_ids),
            orders.c.ordered_at >= starts[0],
            orders.c.ordered_at <= now,
        )
    ).all()
    place = {(s.year, s.month): i for i, s in enumerate(starts)}
    totals: dict[int, list[float]] = {}
    for person, at, amount in rows:
        slot = place.get((at.year, at.month))
        if slot is not None:
            totals.setdefault(int(person), [0.0] * len(starts))[slot] += float(amount)
    return {p: tuple(round(v, 2) for v in values) for p, values in totals.items()}


def _stores(
    conn: Connection,
    template: VideoTemplate,
    person_ids: Sequence[int],
    audiences: dict[int, Audience],
    store_traits: set[str],
) -> dict[int, dict[str, Any]]:
    """Each person's preferred store (see the module); people with none are left out."""
    if not person_ids or not store_traits:
        return {}
    trait = sorted(store_traits)[0]
    chosen: dict[int, str] = {}
    for p in person_ids:
        held = audiences[p].traits.get(trait)
        if held is not None and held.effective_reliability >= template.min_reliability:
            chosen[p] = str(held.value)
    orders = schema.orders
    count = sa.func.count()
    rows = conn.execute(
        sa.select(orders.c.person_id, orders.c.store_id, count)
        .where(
            orders.c.person_id.in_(person_ids),
            orders.c.store_id.is_not(None),
            orders.c.store_id != "online",
            orders.c.is_return.is_(False),
        )
        .group_by(orders.c.person_id, orders.c.store_id)
    ).all()
    most: dict[int, tuple[int, str]] = {}
    for person, store_id, n in rows:
        best = most.get(int(person))
        if best is None or (-int(n), str(store_id)) < (-best[0], best[1]):
            most[int(person)] = (int(n), str(store_id))
    stores = schema.stores
    wanted = set(chosen.values()) | {s for _, s in most.values()}
    known = {
        str(r.store_id): {"store_id": r.store_id, "name": r.name, "city": r.city,
                          "postcode": r.postcode}
        for r in conn.execute(sa.select(stores).where(stores.c.store_id.in_(sorted(wanted))))
    }  # fmt: skip
    out = {}
    for p in person_ids:
        for candidate in (chosen.get(p), most.get(p, (0, None))[1]):
            if candidate is not None and candidate in known:
                out[p] = known[candidate]
                break
    return out
