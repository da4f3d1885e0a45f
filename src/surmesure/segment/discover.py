"""Discovered segments: k-means on the current derived metrics, each cluster named by what sets
its centroid apart, saved as segments whose members are the cluster's people.

A person who objects to profiling (:mod:`surmesure.protect.consent`, in force at the time of the
discovery) is never clustered, whatever rows an earlier derive left.

Features are the columns of each current person's latest ``derived_metrics`` row among
:data:`FEATURES` that hold at least two distinct values; money and count columns are taken as
``log1p`` (negatives clipped at 0) because they are skewed; a missing value is the column's
median; then every feature is standardized (z-score). k-means runs with ``n_init`` and
``random_state`` fixed, so a run is reproducible; without ``k``, the k in 2..8 with the best
silhouette (on a fixed sample of at most 10,000 persons) is chosen.

A cluster is a Voronoi cell of the feature space, which ``metric`` conditions cannot express:
saving stores the memberships directly (``segment_members``, with ``entered`` / ``exited`` in
``segment_changes``) under ``{prefix}_{i}``, clusters ordered by size (largest first). These
segments have no definition: a refresh leaves them alone, a new discovery with the same prefix
replaces them, and the name of a saved definition is refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.errors import Conflict, InvalidInput
from surmesure.protect import consent
from surmesure.segment.repository import catalog as saved_catalog
from surmesure.store import schema
from surmesure.store.engine import Store

FEATURES = (
    "recency_days",
    "frequency",
    "monetary",
    "p_alive",
    "expected_value",
    "email_opens",
    "email_clicks",
    "open_rate",
    "click_rate",
    "purchases_per_month",
    "days_since_interaction",
    "gap_regularity",
)
SKEWED = frozenset({"frequency", "monetary", "expected_value", "email_opens", "email_clicks"})
K_RANGE = range(2, 9)
N_INIT = 10
RANDOM_STATE = 0
SILHOUETTE_SAMPLE = 10_000
PREFIX = re.compile(r"^[a-z][a-z0-9_]{0,50}$")


@dataclass(frozen=True)
class Cluster:
    name: str  # segment name, {prefix}_{i}
    label: str  # what sets it apart, e.g. "high monetary, low recency_days"
    size: int
    z: dict[str, float]  # centroid, standardized
    mean: dict[str, float | None]  # mean of its members' original values; None: none known
    person_ids: tuple[int, ...] = field(repr=False)


@dataclass(frozen=True)
class Discovery:
    k: int
    features: list[str]
    silhouette: float
    silhouettes: dict[int, float]  # per k tried (only the chosen one when k was given)
    clusters: list[Cluster]

    def payload(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "features": self.features,
            "silhouette": self.silhouette,
            "silhouettes": {str(k): s for k, s in self.silhouettes.items()},
            "clusters": [
                {"name": c.name, "label": c.label, "size": c.size, "z": c.z, "mean": c.mean}
                for c in self.clusters
            ],
        }


def load_features(
    conn: Connection, now: datetime | None = None
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``(person ids, feature names, raw values with NaN where missing)`` of current persons
    with a derived_metrics row who do not object to profiling at ``now`` (default: the present),
    by person id."""
    objecting = consent.refused_people("profiling", consent.ANY, now or _utcnow())
    m, people = schema.derived_metrics, schema.people
    rn = sa.func.row_number().over(
        partition_by=m.c.person_id, order_by=(m.c.computed_on.desc(), m.c.computed_at.desc())
    )
    ranked = sa.select(m.c.person_id, *(m.c[f] for f in FEATURES), rn.label("rn")).subquery()
    rows = conn.execute(
        sa.select(ranked.c.person_id, *(ranked.c[f] for f in FEATURES))
        .join(people, people.c.person_id == ranked.c.person_id)
        .where(
            ranked.c.rn == 1,
            people.c.merged_into.is_(None),
            ranked.c.person_id.not_in(objecting),
        )
        .order_by(ranked.c.person_id)
    ).all()
    ids = np.array([int(r[0]) for r in rows], dtype=np.int64)
    values = np.array(
        [[math.nan if v is None else float(v) for v in r[1:]] for r in rows], dtype=float
    ).reshape(len(rows), len(FEATURES))
    keep = [
        j for j in range(len(FEATURES)) if len(np.unique(values[~np.isnan(values[:, j]), j])) > 1
    ]
    return ids, [FEATURES[j] for j in keep], values[:, keep]


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def standardize(values: np.ndarray, features: list[str]) -> np.ndarray:
    """log1p of skewed features, missing -> median, then z-scores per column."""
    x = values.copy()
    for j, name in enumerate(features):
        if name in SKEWED:
            x[:, j] = np.log1p(np.clip(x[:, j], 0.0, None))
        column = x[:, j]
        column[np.isnan(column)] = np.nanmedian(column)
    std = x.std(axis=0)
    z: np.ndarray = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return z


def _known_mean(column: np.ndarray) -> float | None:
    """The mean of the known values (not NaN), None when there is none."""
    known = column[~np.isnan(column)]
    return round(float(known.mean()), 6) if known.size else None


def label_of(z: dict[str, float], top: int = 2) -> str:
    """The ``top`` features with the largest |z| (ties by name): "high monetary, low recency"."""
    ranked = sorted(z.items(), key=lambda item: (-round(abs(item[1]), 9), item[0]))[:top]
    return ", ".join(f"{'high' if v > 0 else 'low'} {name}" for name, v in ranked)


def candidate_ks(k: int | None) -> list[int]:
    """The numbers of clusters tried: ``k``, or 2..8."""
    return [k] if k is not None else list(K_RANGE)


def discover(
    store: Store,
    k: int | None = None,
    prefix: str = "cluster",
    now: datetime | None = None,
    on_fit: Callable[[int, float], None] | None = None,
) -> Discovery:
    """Cluster the current persons (at ``now``, default the present); ``k`` None chooses it by
    silhouette in 2..8. ``on_fit`` hears each number of clusters tried and its silhouette."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    if not PREFIX.match(prefix):
        raise InvalidInput(
            f"Prefix {prefix!r} cannot start a segment name.",
            hint="lowercase letters, digits and _, starting with a letter (e.g. cluster)",
            field="prefix",
        )

    with store.connect() as conn:
        ids, features, values = load_features(conn, now)
    if not features or len(ids) < 3:
        raise InvalidInput(
            f"Too little to cluster: {len(ids)} persons with metrics, {len(features)} features.",
            hint="run `surmesure derive` first so derived_metrics holds current metrics",
            field="derived_metrics",
        )
    x = standardize(values, features)
    candidates = [c for c in candidate_ks(k) if k is not None or c < len(ids)]
    if k is not None and not 2 <= k < len(ids):
        raise InvalidInput(f"--k {k} is out of range.", hint=f"use 2..{len(ids) - 1}", field="k")
    sample = min(SILHOUETTE_SAMPLE, len(ids))
    fits: dict[int, tuple[float, Any]] = {}
    for c in candidates:
        model = KMeans(n_clusters=c, n_init=N_INIT, random_state=RANDOM_STATE).fit(x)
        score = float(
            silhouette_score(x, model.labels_, sample_size=sample, random_state=RANDOM_STATE)
        )
        fits[c] = (score, model)
        if on_fit is not None:
            on_fit(c, score)
    best = max(fits, key=lambda c: (fits[c][0], -c))
    score, model = fits[best]
    order = sorted(range(best), key=lambda i: (-int(np.sum(model.labels_ == i)), i))
    clusters = []
    for rank, i in enumerate(order):
        inside = model.labels_ == i
        z = {
            f: round(float(v), 6) for f, v in zip(features, model.cluster_centers_[i], strict=True)
        }
        mean = {f: _known_mean(values[inside, j]) for j, f in enumerate(features)}
        clusters.append(
            Cluster(
                f"{prefix}_{rank}",
                label_of(z),
                int(inside.sum()),
                z,
                mean,
                tuple(ids[inside].tolist()),
            )
        )
    silhouettes = {c: round(s, 6) for c, (s, _) in sorted(fits.items())}
    return Discovery(best, features, round(score, 6), silhouettes, clusters)


def save(
    store: Store,
    found: Discovery,
    now: datetime,
    prefix: str = "cluster",
    on_done: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Store the clusters as segments ``{prefix}_{i}`` (memberships only), replacing an earlier
    discovery with this prefix; returns ``{name: entered + exited}``. ``on_done`` hears each
    segment's name once it is written (rows are written in bulk, not one by one)."""
    m, ch = schema.segment_members, schema.segment_changes
    pattern = re.compile(rf"^{re.escape(prefix)}_\d+$")
    moved: dict[str, int] = {}
    with store.begin() as conn:
        defined = [c.name for c in found.clusters if c.name in saved_catalog(conn)]
        if defined:
            raise Conflict(
                f"Segment {defined[0]!r} is a saved definition.",
                hint="choose another --prefix for the discovered segments",
                field="prefix",
            )
        stale = {
            str(s)
            for (s,) in conn.execute(sa.select(m.c.segment).distinct())
            if pattern.match(str(s))
        }
        wanted = {c.name: set(c.person_ids) for c in found.clusters}
        for name in sorted(stale | set(wanted)):
            before = {
                int(p) for (p,) in conn.execute(sa.select(m.c.person_id).where(m.c.segment == name))
            }
            after = wanted.get(name, set())
            came, went = sorted(after - before), sorted(before - after)
            people = came + went
            store.bulk_insert(
                conn,
                ch,
                pa.table(
                    {
                        "segment": pa.array([name] * len(people), pa.string()),
                        "person_id": pa.array(people, pa.int64()),
                        "change": pa.array(["entered"] * len(came) + ["exited"] * len(went)),
                        "changed_at": pa.array([now] * len(people), pa.timestamp("us")),
                    }
                ),
                on_conflict="error",
            )
            for start in range(0, len(went), 10_000):
                chunk = went[start : start + 10_000]
                conn.execute(m.delete().where(m.c.segment == name, m.c.person_id.in_(chunk)))
            store.bulk_insert(
                conn,
                m,
                pa.table(
                    {
                        "segment": pa.array([name] * len(came), pa.string()),
                        "person_id": pa.array(came, pa.int64()),
                        "entered_at": pa.array([now] * len(came), pa.timestamp("us")),
                    }
                ),
            )
            moved[name] = len(people)
            if on_done is not None:
                on_done(name)
    return moved


@dataclass(frozen=True)
class Centroids:
    """Where the recorded members of discovered segments sit on the features (z-scores over
    everyone :func:`load_features` reads), with what sets each apart."""

    features: list[str]
    z: dict[str, dict[str, float]]  # by segment, then feature
    labels: dict[str, str]
    sizes: dict[str, int]  # members counted (those a discovery would cluster now)


def centroids(store: Store, names: list[str], now: datetime | None = None) -> Centroids:
    """The centroid of each segment of ``names`` (a discovery's saved clusters): the mean of
    its recorded members' standardized features, as :func:`discover` standardizes them. On
    the data the discovery saw, this is the k-means centroid it found. Members now objecting
    to profiling, or merged, are left out; a segment with none has no centroid."""
    m = schema.segment_members
    with store.connect() as conn:
        ids, features, values = load_features(conn, now)
        held = conn.execute(sa.select(m.c.segment, m.c.person_id).where(m.c.segment.in_(names)))
        members: dict[str, list[int]] = {}
        for segment, person in held:
            members.setdefault(str(segment), []).append(int(person))
    if not features or not len(ids):
        return Centroids(features, {}, {}, {})
    x = standardize(values, features)
    z: dict[str, dict[str, float]] = {}
    sizes: dict[str, int] = {}
    for name in names:
        wanted = np.array(members.get(name, []), dtype=np.int64)
        at = np.searchsorted(ids, wanted)
        inside = at[(at < len(ids)) & (ids[np.minimum(at, len(ids) - 1)] == wanted)]
        if inside.size:
            centre = x[inside].mean(axis=0)
            z[name] = {f: round(float(v), 6) for f, v in zip(features, centre, strict=True)}
            sizes[name] = int(inside.size)
    return Centroids(features, z, {n: label_of(c) for n, c in z.items()}, sizes)
