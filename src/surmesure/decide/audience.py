"""A person as decisions and campaigns see them (the audience), from the one person read of
:mod:`surmesure.unify.reader`: resolved traits, segments, consents, derived metrics.

The person's marketing and personalization consent records travel with the audience; what is
in force on the decision's channel is decided by :mod:`surmesure.protect.consent`. So do their
topic, frequency and pause records (:mod:`surmesure.protect.marketing`). A refused
personalization makes the audience opted out (no record: not opted out; personalization is the
default, a person may refuse it), and its traits are not read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.config import Settings
from surmesure.decide import metrics as derived
from surmesure.decide.content import NOBODY, Audience, Known
from surmesure.domain.identity import normalize
from surmesure.domain.traits import resolve
from surmesure.protect import blind, consent
from surmesure.protect.consent import ANY
from surmesure.segment import snapshot as snapshot_parts
from surmesure.segment.evaluate import Snapshot, TraitValue
from surmesure.segment.snapshot import ALL_METRICS, load_snapshot
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import root_of
from surmesure.unify.reader import OPT_OUT_PURPOSE, PersonRead, read_person

#: the kinds of rule condition a person read serves (:func:`audience_from`; others need the
#: full snapshot reader)
SERVED = frozenset({"trait", "metric"})


def find_person_id(
    conn: Connection,
    *,
    person_id: int | None = None,
    anonymous_id: str | None = None,
    customer_id: str | None = None,
    region: str = "FR",
) -> int | None:
    """The person named by an id (absorbed ids follow their merge) or an identifier;
    ``None`` when nobody is known by it."""
    if person_id is not None:
        return root_of(conn, person_id)
    ident, store = schema.identifiers, Store.of(conn)
    for kind, value in (("anonymous_id", anonymous_id), ("customer_id", customer_id)):
        if not value:
            continue
        try:
            normalized = normalize(kind, value, region)
        except ValueError:
            continue
        # identifiers carry the person now (kept current by merges and unmerges)
        row = conn.execute(
            sa.select(ident.c.person_id).where(
                ident.c.kind == kind, ident.c.value == blind.index(store, kind, normalized)
            )
        ).first()
        if row is not None:
            return int(row[0])
    return None


def opted_out(
    records: Sequence[consent.Record], channel: str | tuple[str, ...], now: datetime
) -> bool:
    """Whether personalization is refused on ``channel`` (on any of them, for a tuple: a
    decision for one channel of a template made for another answers to both)."""
    channels = (channel,) if isinstance(channel, str) else channel
    return any(consent.refused(records, OPT_OUT_PURPOSE, c, now) for c in channels)


def load_audience(
    conn: Connection,
    person_id: int | None,
    now: datetime,
    half_life_days: float,
    *,
    needs: frozenset[str] = frozenset(),
    channel: str | tuple[str, ...] = ANY,
    metrics: frozenset[str] = frozenset(),
) -> Audience:
    """The audience of ``person_id`` at ``now`` on ``channel``: the person read in one
    statement (:func:`~surmesure.unify.reader.read_person`), as a decision reads them
    (:func:`audience_from`), then what the rules need beyond it; an opted-out person's traits
    and metrics are left out. ``needs``: the kinds of condition the rules use (``metric``,
    ``event``, ``purchase``, ``consent``, ``near``, ``segment``...), so the snapshot holds only
    what they read. ``metrics``: the derived metrics the fields read
    (:mod:`surmesure.decide.metrics`)."""
    if person_id is None:
        return NOBODY
    columns = derived.columns_for(metrics) | (ALL_METRICS if "metric" in needs else frozenset())
    read = read_person(conn, person_id=person_id, keys=(), now=now, metrics=columns, content_ids=())
    settings = Store.of(conn).settings
    audience = audience_from(read, now, half_life_days, needs, channel, metrics, settings=settings)
    if audience.snapshot is None or needs <= SERVED:
        return audience
    return replace(
        audience, snapshot=_snapshot(conn, audience.snapshot, now, half_life_days, needs)
    )


def field_metrics(
    conn: Connection, person_ids: Sequence[int], names: frozenset[str], now: datetime
) -> dict[int, dict[str, Known]]:
    """The derived metrics ``names`` of each person, with their reliability at ``now``."""
    if not names:
        return {}
    settings = Store.of(conn).settings
    latest = derived.read_latest(conn, person_ids, derived.columns_for(names), now)
    return {
        p: derived.known_metrics(
            held, names, now, settings.metric_half_life_days, settings.clv_tiers
        )
        for p, held in latest.items()
    }


def _snapshot(
    conn: Connection, read: Snapshot, now: datetime, half_life_days: float, needs: frozenset[str]
) -> Snapshot:
    """The snapshot of traits and metrics ``read`` with the events, orders and consents the
    rules need (everything, for a rule that references a segment or a store)."""
    person_id = read.person_id
    if "segment" in needs or "near" in needs:  # a referenced segment may read anything
        return load_snapshot(conn, person_id, now, half_life_days)
    return replace(
        read,
        events=snapshot_parts._events(conn, person_id) if "event" in needs else (),
        orders=snapshot_parts._orders(conn, person_id) if "purchase" in needs else (),
        consents=snapshot_parts._consents(conn, person_id) if "consent" in needs else (),
    )


def audience_from(
    read: PersonRead,
    now: datetime,
    half_life_days: float,
    needs: frozenset[str],
    channel: str | tuple[str, ...] = ANY,
    metrics: frozenset[str] = frozenset(),
    *,
    settings: Settings,
) -> Audience:
    """The audience of the person ``read`` (the columns of ``metrics`` among those read, their
    reliability after ``settings``' metric half-life); its snapshot holds the traits and, for a
    ``metric`` rule, the metrics (what :data:`SERVED` rules read)."""
    if read.person_id is None:
        return NOBODY
    records = tuple(read.consents)
    wishes = tuple(read.preferences)
    if opted_out(records, channel, now):
        return Audience(
            person_id=read.person_id, opted_out=True, consents=records, preferences=wishes
        )
    traits = {
        name: Known(trait.value, trait.source, trait.effective_reliability)
        for name, trait in resolve(read.observations, now, half_life_days).items()
    }
    snapshot = None
    if needs:
        snapshot = Snapshot(
            person_id=read.person_id,
            traits={k: TraitValue(v.value, v.effective_reliability) for k, v in traits.items()},
            metrics=read.latest_metrics(now) if "metric" in needs else {},
        )
    known: dict[str, Known] = {}
    if metrics:
        known = derived.known_metrics(
            read.latest_metrics_at(now),
            metrics,
            now,
            settings.metric_half_life_days,
            settings.clv_tiers,
        )
    return Audience(
        person_id=read.person_id,
        traits=traits,
        segments=read.segments,
        snapshot=snapshot,
        index_key=blind.index_key(settings),
        consents=records,
        preferences=wishes,
        metrics=known,
    )
