"""The recommendation model fitted once and kept in the store (``recommendation_models``).

Fitting (:func:`fit_and_keep`: ``surmesure recommend --fit``, the demo) learns the neighbours
and tastes from everyone's purchases before ``as_of`` and trains the learned ranker on the
month starts before it, which takes many seconds of processor time; it keeps the result as the
next version. Every process that recommends then reads the latest version fitted at or before
the date it recommends at (:func:`latest`, :func:`load`) and only reads the data the model's
lists rest on (:func:`~surmesure.decide.recommend.model.assemble`). The payload is numpy arrays
in one ``.npz`` (no pickle, so a stored row is read as data, never run as code): the products'
codes, the BM25 similarity as CSR arrays, the ALS factors of the products and of the people
in the fit (by person id: 64 floats each, derived from their purchases; erasing a person
rewrites every version without their row, :mod:`surmesure.protect.fitted`), and the ranker's
trees (:mod:`.forest`). Its
SHA-256 is checked before it is read; a version is read once per process and kept.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from sqlalchemy.engine import Connection

from surmesure.decide.recommend.forest import Forest
from surmesure.decide.recommend.learned import IdRows, Learned
from surmesure.errors import InvalidInput
from surmesure.protect import fitted
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.resolver import IDENTITY_LOCK

if TYPE_CHECKING:
    from surmesure.decide.recommend.model import Model

TABLE = schema.recommendation_models
RANKER = "ranker_"


@dataclass(frozen=True)
class Version:
    """A kept model's row, without its payload."""

    version: int
    fitted_at: datetime
    as_of: datetime
    data_until: datetime | None
    digest: str
    metrics: dict[str, Any]


@dataclass(frozen=True)
class Fitted:
    """What a kept model holds: the learned signals and the ranker's forest (either may be
    ``None``: too little data for them, or the ranker was off when it was fitted)."""

    kept: Version
    learned: Learned | None
    forest: Forest | None


def payload(learned: Learned | None, forest: Forest | None) -> bytes:
    """The fitted parts as one ``.npz`` (see the module)."""
    arrays: dict[str, Any] = {}
    if learned is not None:
        sim = learned.similarity
        rows = learned.person_row
        if isinstance(rows, IdRows):
            person_ids = rows.ids
        else:
            people = sorted(rows.items(), key=lambda item: item[1])
            person_ids = np.fromiter((p for p, _ in people), np.int64, len(people))
        arrays |= {
            "codes": np.asarray(learned.codes, dtype=np.str_),
            "sim_data": sim.data, "sim_indices": sim.indices, "sim_indptr": sim.indptr,
            "item_factors": learned.item_factors,
            "person_ids": person_ids,
            "person_factors": learned.person_factors,
            "regularization": np.asarray([learned.regularization]),
        }  # fmt: skip
    if forest is not None:
        arrays |= forest.arrays(RANKER)
    out = io.BytesIO()
    np.savez_compressed(out, **arrays)
    return out.getvalue()


def unpack(blob: bytes) -> tuple[Learned | None, Forest | None]:
    """The fitted parts of a payload (:func:`payload`), read without pickle; a payload that
    is not one (arrays missing, of another shape or kind) is :class:`InvalidInput`."""
    try:
        return _unpack(blob)
    except (ValueError, KeyError, IndexError, TypeError, OSError) as exc:
        raise InvalidInput(
            f"A kept recommendation model's payload cannot be read: {exc}.",
            hint="fit it again: surmesure recommend --fit",
            field="recommendation_models.payload",
        ) from None


def _rows(person_ids: NDArray[Any]) -> Mapping[int, int]:
    """Person id -> row of the kept factors (a payload lists the ids in increasing order)."""
    ids = np.asarray(person_ids, dtype=np.int64)
    if ids.ndim == 1 and bool(np.all(ids[1:] > ids[:-1])):
        return IdRows(ids)
    return {int(p): i for i, p in enumerate(ids.tolist())}


def _unpack(blob: bytes) -> tuple[Learned | None, Forest | None]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    learned = None
    if "codes" in arrays:
        codes = tuple(arrays["codes"].tolist())
        n = len(codes)
        learned = Learned(
            codes=codes,
            index={c: j for j, c in enumerate(codes)},
            similarity=csr_matrix(
                (arrays["sim_data"], arrays["sim_indices"], arrays["sim_indptr"]), shape=(n, n)
            ),
            item_factors=arrays["item_factors"],
            person_row=_rows(arrays["person_ids"]),
            person_factors=arrays["person_factors"],
            regularization=float(arrays["regularization"][0]),
        )
        _check(learned)
    forest = Forest.from_arrays(arrays, RANKER) if f"{RANKER}nodes" in arrays else None
    return learned, forest


def _check(learned: Learned) -> None:
    """:class:`ValueError` unless the arrays fit together: a row of factors per product and
    per person, of one width, and a similarity between the products."""
    items, people = learned.item_factors, learned.person_factors
    n = len(learned.codes)
    if items.ndim != 2 or items.shape[0] != n or items.dtype.kind != "f":
        raise ValueError(f"item_factors is not {n} rows of factors")
    if people.ndim != 2 or people.shape != (len(learned.person_row), items.shape[1]):
        raise ValueError("person_factors is not one row of item_factors' width per person")
    if people.dtype.kind != "f" or not np.isfinite(learned.regularization):
        raise ValueError("person_factors or regularization is not a number")
    learned.similarity.check_format(full_check=True)


def save(
    conn: Connection,
    learned: Learned | None,
    forest: Forest | None,
    *,
    as_of: datetime,
    fitted_at: datetime,
    data_until: datetime | None,
    metrics: dict[str, Any],
) -> int:
    """Keep the fitted parts as the next version; that version. Under the lock erasure takes,
    the people erased or merged away since the fit read its data are left out, so a fit that
    ran beside an erasure keeps nothing of that person."""
    Store.of(conn).backend.lock_key(conn, IDENTITY_LOCK)
    blob = payload(learned, forest)
    if learned is not None and learned.person_row:
        people = schema.people.c
        current = conn.execute(sa.select(people.person_id).where(people.merged_into.is_(None)))
        gone = set(learned.person_row) - set(current.scalars().all())
        blob = (fitted.without_people(blob, gone) if gone else None) or blob
    version = int(conn.execute(sa.select(sa.func.max(TABLE.c.version))).scalar() or 0) + 1
    conn.execute(
        TABLE.insert().values(
            version=version, fitted_at=fitted_at, as_of=as_of, data_until=data_until,
            payload=blob, digest=hashlib.sha256(blob).hexdigest(),
            metrics={**metrics, "payload_bytes": len(blob)},
        )
    )  # fmt: skip
    prune(conn, Store.of(conn).settings.recommend_models_kept)
    return version


def prune(conn: Connection, keep: int) -> int:
    """Remove the versions fitted before the latest ``keep`` (by version; 0 keeps them all):
    each holds the taste factors of everyone it fitted, which no one reads once newer versions
    serve. How many went."""
    if keep <= 0:
        return 0
    oldest_kept = conn.execute(
        sa.select(TABLE.c.version).order_by(TABLE.c.version.desc()).offset(keep - 1).limit(1)
    ).scalar()
    if oldest_kept is None:
        return 0
    return int(conn.execute(TABLE.delete().where(TABLE.c.version < oldest_kept)).rowcount or 0)


def latest(conn: Connection, as_of: datetime) -> Version | None:
    """The latest version fitted on data before ``as_of`` at the latest (``None``: none)."""
    row = conn.execute(
        sa.select(
            TABLE.c.version, TABLE.c.fitted_at, TABLE.c.as_of, TABLE.c.data_until,
            TABLE.c.digest, TABLE.c.metrics,
        )
        .where(TABLE.c.as_of <= as_of)
        .order_by(TABLE.c.as_of.desc(), TABLE.c.version.desc())
        .limit(1)
    ).first()  # fmt: skip
    if row is None:
        return None
    return Version(
        int(row.version), row.fitted_at, row.as_of, row.data_until, str(row.digest),
        dict(row.metrics or {}),
    )  # fmt: skip


_held: dict[tuple[str, int, str], Fitted] = {}
_lock = threading.Lock()
#: how many kept models were read from their payload in this process (a measure for tests)
reads = [0]


def load(store: Store, conn: Connection, kept: Version) -> Fitted:
    """The fitted parts of ``kept``, read once per process (by store, version and digest)."""
    key = (store.url, kept.version, kept.digest)
    with _lock:
        held = _held.get(key)
    if held is not None:
        return held
    blob = conn.execute(sa.select(TABLE.c.payload).where(TABLE.c.version == kept.version)).scalar()
    if blob is None or hashlib.sha256(bytes(blob)).hexdigest() != kept.digest:
        raise InvalidInput(
            f"Kept recommendation model version {kept.version} does not match its digest.",
            hint="fit it again: surmesure recommend --fit",
            field="recommendation_models.payload",
        )
    learned, forest = unpack(bytes(blob))
    held = Fitted(kept, learned, forest)
    with _lock:
        reads[0] += 1
        _held[key] = held
        while len(_held) > 4:  # older versions go
            _held.pop(next(iter(_held)))
    return held


def forget() -> None:
    with _lock:
        _held.clear()


def fit_and_keep(store: Store, as_of: datetime | None = None) -> tuple[int, dict[str, Any]]:
    """Fit the recommendation model on the data before ``as_of`` (default: now) and keep it;
    its version and what was fitted (the model's description, sizes, processor seconds)."""
    from surmesure.decide.recommend.model import build, utcnow

    started, cpu = time.perf_counter(), time.process_time()
    with store.connect() as conn:
        model = build(conn, as_of or utcnow())
    took = {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu}
    return keep(store, model, took)


def keep(
    store: Store, model: Model, took: dict[str, float] | None = None
) -> tuple[int, dict[str, Any]]:
    """Keep the fitted parts of ``model`` (built by
    :func:`~surmesure.decide.recommend.model.build`) as the next version: :func:`fit_and_keep`
    once the model is built."""
    from surmesure.decide.recommend.model import utcnow

    learned = model.learned
    orders = schema.orders.c
    metrics: dict[str, Any] = {
        "description": model.description,
        "products": 0 if learned is None else len(learned.codes),
        "people": 0 if learned is None else len(learned.person_row),
        "ranker": None
        if model.ranker is None
        else {"months": model.ranker.months, "people": model.ranker.people,
              "rows": model.ranker.rows},
        **{name: round(value, 2) for name, value in (took or {}).items()},
    }  # fmt: skip
    forest = None if model.ranker is None else model.ranker.classifier
    with store.begin() as conn:
        until = conn.execute(
            sa.select(sa.func.max(orders.ordered_at)).where(orders.ordered_at < model.as_of)
        ).scalar()
        version = save(
            conn, learned, forest, as_of=model.as_of, fitted_at=utcnow(), data_until=until,
            metrics=metrics,
        )  # fmt: skip
    return version, {"version": version, "as_of": model.as_of, "data_until": until, **metrics}
