"""Recording assignments: everyone in an audience gets a variant, once and for good.

The audience is the identified people (:mod:`surmesure.store.people`: current people holding a
customer id, an e-mail, a phone or a loyalty card; those known only by anonymous ids too when
asked), the members of a segment, or a list of person ids (ids that are not current people are
left out and counted). Each person's
variant comes from :mod:`surmesure.learn.assignment` (hash of the experiment salt and the person
id), so it is the same on every run; a recorded assignment is never changed (raising weights
only adds people). Nobody in the global holdout and nobody outside the experiment's layer range
gets a variant.

Nobody who refused marketing on the experiment's ``channel`` at the time of assignment
(:mod:`surmesure.protect.consent`) gets a variant either: they are left out before the holdout
and the layer are applied, and counted in ``opted_out`` (reason ``opted_out_marketing``). A
person assigned before refusing keeps their recorded variant; the decisions made for them are
suppressed on that channel all the same. Nobody whose marketing is held back by their
preferences (:mod:`surmesure.protect.marketing`) gets a variant: a person who paused marketing,
or who left the experiment's ``topic``, is left out too and counted in ``held_back``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.errors import Conflict, InvalidInput, NotFound
from surmesure.experiments.catalog import get, mark_running, utcnow
from surmesure.experiments.definitions import HOLDOUT_SALT, ExperimentDefinition
from surmesure.learn.assignment import Experiment, buckets
from surmesure.protect import consent, marketing
from surmesure.store import Store
from surmesure.store.people import bulk_audience, ids_of
from surmesure.store.schema import experiment_assignments

Ids = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Assigned:
    """What one ``assign`` did: audience size, left out, newly recorded per variant."""

    experiment: str
    audience: int
    unknown: int
    opted_out: int  # refused marketing on the experiment's channel
    holdout: int
    outside: int
    already_assigned: int
    new: dict[str, int] = field(default_factory=dict)
    channel: str = "email"
    held_back: int = 0  # paused marketing, or left the experiment's topic

    @property
    def newly_assigned(self) -> int:
        return sum(self.new.values())


def holdout_mask(ids: Ids, share: float) -> npt.NDArray[np.bool_]:
    """Who is in the global holdout at this share (one salt for every experiment)."""
    if share <= 0:
        return np.zeros(ids.shape, dtype=bool)
    return buckets(HOLDOUT_SALT, ids) < share


def variants_of(definition: ExperimentDefinition, ids: Ids) -> npt.NDArray[np.int64]:
    """Variant index of each id, -1 for nobody: holdout, outside the layer range or the
    variants' traffic."""
    caps = [v.capacity for v in definition.variants]
    engine = Experiment(
        definition.assignment_salt,
        tuple(v.weight for v in definition.variants),
        None if caps[0] is None else tuple(float(c or 0) for c in caps),
    )
    index = engine.assign_many(ids)
    out = holdout_mask(ids, definition.holdout)
    if definition.layer is not None:
        lb = buckets(f"layer:{definition.layer.name}", ids)
        out |= (lb < definition.layer.start) | (lb >= definition.layer.end)
    return np.where(out, -1, index)


MEMBERS = (
    "SELECT m.person_id FROM segment_members m JOIN people p ON p.person_id = m.person_id "
    "WHERE m.segment = :segment AND p.merged_into IS NULL"
)


def audience(
    store: Store,
    conn: Connection,
    segment: str | None,
    people: Sequence[int] | None,
    anonymous: bool = False,
) -> tuple[Ids, int]:
    """(current person ids of the audience, how many given ids are not current people).
    Without a segment or a list, the identified people (and anonymous ones if asked)."""
    if segment is not None:
        known = conn.execute(
            sa.text("SELECT count(*) FROM segments WHERE name = :segment"), {"segment": segment}
        ).scalar_one()
        if not known:
            raise NotFound(
                f"No segment named {segment!r}.",
                field="segment",
                hint="save and refresh the segment first, or use --all",
            )
        return ids_of(store, conn, MEMBERS, {"segment": segment}), 0
    if people is None:
        return bulk_audience(store, conn, anonymous=anonymous), 0
    current = bulk_audience(store, conn, anonymous=True)
    wanted = np.unique(np.asarray(people, dtype=np.int64))
    kept = wanted[np.isin(wanted, current)]
    return kept, int(wanted.size - kept.size)


def assign(
    store: Store,
    name: str,
    *,
    segment: str | None = None,
    people: Sequence[int] | None = None,
    now: datetime | None = None,
    anonymous: bool = False,
    topics: Collection[str] | None = None,
) -> Assigned:
    """Record the variant of everyone in the audience (default: the identified people, and
    the anonymous ones too when ``anonymous``). ``topics``: the preference topics (default:
    the store's settings)."""
    if topics is None:
        topics = store.settings.preference_topics
    if segment is not None and people is not None:
        raise InvalidInput(
            "Choose one audience: a segment or a list of people.",
            field="audience",
            hint="pass --segment NAME, --people FILE or --all",
        )
    now = now or utcnow()
    with store.begin() as conn:
        saved = get(store, name, conn)
        if saved.status == "stopped":
            raise Conflict(
                f"Experiment {name!r} is stopped; nobody more is assigned.",
                field="name",
                hint="read its results with `surmesure experiment results`",
            )
        definition = saved.definition
        everyone, unknown = audience(store, conn, segment, people, anonymous)
        if definition.topic is not None and definition.topic not in topics:
            raise InvalidInput(
                f"Experiment {name!r} names the topic {definition.topic!r}, which is not one "
                "of the preference topics.",
                field="topic",
                hint="use one of: " + ", ".join(topics),
            )
        refused = consent.refused_ids(conn, "marketing", definition.channel, now)
        consenting = everyone[~np.isin(everyone, np.fromiter(refused, np.int64, len(refused)))]
        held = marketing.held_back_ids(conn, definition.topic, now)
        ids = consenting[~np.isin(consenting, np.fromiter(held, np.int64, len(held)))]
        index = variants_of(definition, ids)
        holdout = int(holdout_mask(ids, definition.holdout).sum())
        inside = index >= 0
        rows = _rows(name, [v.name for v in definition.variants], ids[inside], index[inside], now)
        before = _counts(conn, name)
        inserted = store.bulk_insert(conn, experiment_assignments, rows)
        after = _counts(conn, name)
        if inserted:
            mark_running(conn, name, now)
    new = {v.name: after.get(v.name, 0) - before.get(v.name, 0) for v in definition.variants}
    return Assigned(
        experiment=name,
        audience=int(everyone.size),
        unknown=unknown,
        opted_out=int(everyone.size - consenting.size),
        holdout=holdout,
        outside=int(ids.size - inside.sum() - holdout),
        already_assigned=int(inside.sum()) - sum(new.values()),
        new=new,
        channel=definition.channel,
        held_back=int(consenting.size - ids.size),
    )


def _rows(name: str, variants: list[str], ids: Ids, index: Ids, now: datetime) -> pa.Table:
    """Assignment rows, built column-wise (dictionary-encoded names cast to text)."""
    n = int(ids.size)

    def text(codes: npt.NDArray[np.int32], values: list[str]) -> pa.Array:
        return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(values)).cast(pa.string())

    return pa.table(
        {
            "experiment": text(np.zeros(n, dtype=np.int32), [name]),
            "person_id": pa.array(ids, pa.int64()),
            "variant": text(index.astype(np.int32), variants),
            "assigned_at": pa.array(np.full(n, np.datetime64(now, "us")), pa.timestamp("us")),
        }
    )


def _counts(conn: Connection, name: str) -> dict[str, int]:
    t = experiment_assignments
    rows = conn.execute(
        sa.select(t.c.variant, sa.func.count()).where(t.c.experiment == name).group_by(t.c.variant)
    )
    return {str(v): int(n) for v, n in rows}
