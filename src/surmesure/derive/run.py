"""``derive``: compute RFM, CLV, engagement, satisfaction, channel appetence, preferred store
and affinities per identified person, and store them.

One Ibis query gathers, per identified person, the RFM values and scores, the CLV sufficient
statistics, engagement (with category breadth and up-sell potential), satisfaction, preferred
store and affinities; a second one counts the exposures and responses per channel; the models
(CLV, the appetence priors) are fitted and the engagement scores ranked in Python
(:mod:`surmesure.derive.engagement_scores`); the per-person rows
land in ``derived_metrics`` (one row per person and UTC day of computation, so a second run the
same day replaces that day's rows instead of adding to them). People with no data keep a row
with their customer id and empty metrics.

A person who objects to profiling (a refusal of purpose ``profiling`` in force when the run
starts, :mod:`surmesure.protect.consent`) is left out of everything per person: no row, their
data fits no model (CLV, appetence priors, engagement ranks), and the rows of earlier runs are
deleted. Store-wide figures (overall satisfaction) still count their answers.

The run appends one ``metrics`` change to the outbox (:mod:`surmesure.dispatch.outbox`) in the
transaction that stores the rows, so a server's serving cache re-reads the metrics it holds as
soon as its dispatcher delivers it, rather than at its next whole-store check.

Stored in a table of its own rather than as one trait per metric: at a million people the
traits table would take ten million JSON rows per run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, Field
from threadpoolctl import threadpool_limits

from surmesure.derive import clv, propensity
from surmesure.derive import forecast as learned
from surmesure.derive.affinity import AFFINITY_COLUMNS, affinities
from surmesure.derive.appetence import ChannelPrior, exposures, smooth
from surmesure.derive.engagement import ENGAGEMENT_COLUMNS, engagement
from surmesure.derive.engagement_scores import (
    BREADTH_COLUMNS,
    breadth_and_upsell,
    engagement_scores,
)
from surmesure.derive.propensity import PropensitySummary
from surmesure.derive.rfm import RFM_COLUMNS, SEGMENTS, rfm
from surmesure.derive.satisfaction import (
    SATISFACTION_COLUMNS,
    SatisfactionSummary,
    satisfaction,
)
from surmesure.derive.satisfaction import summary as satisfaction_summary
from surmesure.derive.source import ibis_backend, identified_people, person_orders
from surmesure.derive.stores import STORE_COLUMNS, preferred_stores
from surmesure.dispatch import outbox
from surmesure.errors import InvalidInput
from surmesure.protect import consent
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.store.span import default_as_of

STEPS = ("query", "fit", "predict", "store")


class DeriveResult(BaseModel):
    """What a run computed and wrote."""

    as_of: date
    computed_at: datetime
    horizon_days: int
    discount_rate: float
    window_days: int
    people: int = Field(description="identified people, one row each")
    objectors: int = Field(0, description="identified people left out: they object to profiling")
    buyers: int = Field(description="people with at least one purchase by as_of")
    rows_written: int
    segments: dict[str, int]
    model: clv.ClvModel | None
    forecast: learned.ForecastSummary | None = Field(
        None, description="the model behind expected_purchases and its validation"
    )
    propensity: list[PropensitySummary] = Field(
        default_factory=list,
        description="the models behind p_purchase_30d and p_purchase_90d and their validation",
    )
    satisfaction: SatisfactionSummary = Field(description="NPS, CSAT and CES over the window")
    channels: list[ChannelPrior] = Field(description="the appetence prior of each channel")
    seconds: dict[str, float]
    notes: list[str] = Field(default_factory=list)


def metrics_query(backend: Any, as_of: date, window_days: int, orders: Any) -> Any:
    """Every identified person with its RFM columns, CLV statistics, engagement and
    satisfaction (NULL where the person has no such data); ``orders`` is
    :func:`person_orders`, usually cached since three metrics read it."""
    scored = rfm(backend, as_of, orders)
    parts = {
        "rfm": (scored, RFM_COLUMNS),
        "clv": (clv.summary(backend, as_of, orders), clv.SUMMARY_COLUMNS),
        "engagement": (engagement(backend, as_of, window_days, orders), ENGAGEMENT_COLUMNS),
        "breadth": (breadth_and_upsell(backend, orders, scored), BREADTH_COLUMNS),
        "satisfaction": (satisfaction(backend, as_of), SATISFACTION_COLUMNS),
        "stores": (preferred_stores(backend, as_of), STORE_COLUMNS),
        "affinity": (affinities(backend, as_of, orders), AFFINITY_COLUMNS),
    }
    joined = identified_people(backend)
    keep = ["person_id", "customer_id"]
    for name, (table, columns) in parts.items():
        joined = joined.left_join(table, "person_id", rname="{name}_" + name)
        keep += columns[1:]
    return joined.select(*keep).order_by("person_id")


def _without(table: pa.Table, objecting: set[int]) -> tuple[pa.Table, int]:
    """``table`` without the rows of the ``objecting`` persons, and how many persons left."""
    if not objecting:
        return table, 0
    ids = table.column("person_id")
    out = pc.is_in(ids, value_set=pa.array(sorted(objecting), ids.type))
    gone = len(pc.unique(ids.filter(out)))
    return table.filter(pc.invert(out)), gone


def _day(day: date) -> int:
    """``day`` as days since 1970-01-01, the integer days of :mod:`surmesure.derive.forecast`."""
    return (day - date(1970, 1, 1)).days


def _learned(
    predicted: dict[str, np.ndarray],
    forecaster: learned.Forecaster,
    purchases: learned.Purchases,
    as_of: int,
    data: pa.Table,
    buyer: np.ndarray,
) -> dict[str, np.ndarray]:
    """BG/NBD's outputs with ``expected_purchases`` from ``forecaster`` and
    ``expected_value`` scaled by the same ratio (the Gamma-Gamma value per purchase and the
    discounting kept); ``p_alive`` stays BG/NBD's."""
    people, expected = forecaster.predict(purchases, as_of)
    ids = data.column("person_id").to_numpy(zero_copy_only=False)[buyer].astype(np.int64)
    expected = expected[np.searchsorted(people, ids)]
    bg = predicted["expected_purchases"]
    ratio = np.where(bg > 0, expected / np.where(bg > 0, bg, 1.0), 1.0)
    return {
        **predicted,
        "expected_purchases": expected,
        "expected_value": predicted["expected_value"] * ratio,
    }


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def derive(
    store: Store,
    *,
    as_of: date | None = None,
    horizon_days: int = 365,
    discount_rate: float = 0.1,
    window_days: int = 90,
    now: datetime | None = None,
    on_step: Callable[[str], None] | None = None,
) -> DeriveResult:
    """Compute and store RFM, CLV, engagement and satisfaction for every identified person
    at ``as_of`` (default: :func:`~surmesure.store.span.default_as_of`); rates and overall
    satisfaction are taken over the ``window_days`` days ending on ``as_of``. ``on_step`` is
    called with each step's name (``STEPS``) as it finishes."""
    computed_at = now or _now()
    basis = None
    if as_of is None:
        as_of, basis = default_as_of(store, computed_at.date())
    clv.horizon_steps(horizon_days)  # refuse a bad horizon before any work
    if window_days <= 0:
        raise InvalidInput(
            f"Window {window_days} days is not positive.",
            hint="use --window-days 90 or another positive number",
            field="window_days",
        )
    seconds: dict[str, float] = {}
    notes: list[str] = [] if basis is None else [basis]

    def done(step: str, started: float) -> float:
        seconds[step] = time.perf_counter() - started
        if on_step:
            on_step(step)
        return time.perf_counter()

    started = time.perf_counter()
    with store.connect() as conn:
        objecting = consent.refused_ids(conn, "profiling", consent.ANY, computed_at)
    with ibis_backend(store) as backend:
        with person_orders(backend, as_of).cache() as orders:
            data = metrics_query(backend, as_of, window_days, orders).to_pyarrow()
            days = clv.purchase_days(orders).to_pyarrow()
        reached = exposures(backend, as_of).to_pyarrow()
        overall = satisfaction_summary(backend, as_of, window_days)
    data, objectors = _without(data, objecting)
    reached, _ = _without(reached, objecting)
    days, _ = _without(days, objecting)
    started = done("query", started)

    buyer = np.asarray(data.column("repeat_purchases").is_valid())
    cols = {
        name: data.column(name).to_numpy(zero_copy_only=False)[buyer].astype(np.float64)
        for name in clv.SUMMARY_COLUMNS[1:]
    }
    stats = (
        cols["repeat_purchases"],
        cols["purchase_span_days"],
        cols["customer_age_days"],
        np.nan_to_num(cols["mean_repeat_value"], nan=0.0),
    )
    model = clv.fit(*stats) if buyer.any() else None
    if model is None:
        notes.append("no purchase on or before as_of: CLV not computed")
    else:
        if not model.bgnbd.converged:
            notes.append(f"BG/NBD fit did not converge: {model.bgnbd.message}")
        if model.note:
            notes.append(model.note)
    forecaster, purchases = None, None
    buyers_ids: np.ndarray = np.zeros(0, np.int64)
    chances: dict[str, np.ndarray] = {}
    chance_models: list[PropensitySummary] = []
    if model is not None:
        purchases = learned.Purchases.of(
            days.column("person_id").to_numpy(),
            pc.cast(days.column("order_day"), pa.int32()).to_numpy(),
            days.column("value").to_numpy(zero_copy_only=False),
        )
        # the trees on one thread: OpenMP's threads, on a machine busy with other work,
        # waited on each other ten times longer than the fit took alone
        with threadpool_limits(1, "openmp"):
            forecaster = learned.fit(purchases, _day(as_of), horizon_days)
            buyers_ids, chances, chance_models = propensity.propensities(purchases, _day(as_of))
        if forecaster.note:
            notes.append(forecaster.note)
        notes += [s.note for s in chance_models if s.note]
    appetence, channels = smooth(reached)
    outputs: dict[str, pa.Array] = engagement_scores(data)
    started = done("fit", started)

    if model is not None:
        predicted = clv.predict(
            model, *stats, horizon_days=horizon_days, discount_rate=discount_rate
        )
        if forecaster is not None and purchases is not None:
            predicted = _learned(predicted, forecaster, purchases, _day(as_of), data, buyer)
        for name, values in predicted.items():
            full = np.full(data.num_rows, np.nan)
            full[buyer] = values
            outputs[name] = pa.array(full, pa.float64(), mask=~np.isfinite(full))
    else:
        for name in ("expected_purchases", "p_alive", "expected_value"):
            outputs[name] = pa.nulls(data.num_rows, pa.float64())
    ids = data.column("person_id").to_numpy(zero_copy_only=False)
    for days in propensity.DAYS:
        name = propensity.column(days)
        found = chances.get(name)
        if found is None:
            outputs[name] = pa.nulls(data.num_rows, pa.float64())
            continue
        full = propensity.aligned(buyers_ids, found, ids)
        outputs[name] = pa.array(full, pa.float64(), mask=~np.isfinite(full))
    started = done("predict", started)

    rows = data
    for name, values in outputs.items():
        rows = rows.append_column(name, values)
    rows = rows.join(appetence, "person_id", join_type="left outer")
    n = rows.num_rows
    rows = (
        rows.append_column("computed_on", pa.array([computed_at.date()] * n, pa.date32()))
        .append_column("computed_at", pa.array([computed_at] * n, pa.timestamp("us")))
        .append_column("as_of", pa.array([as_of] * n, pa.date32()))
        .append_column("horizon_days", pa.array([horizon_days] * n, pa.int32()))
        .append_column("discount_rate", pa.array([discount_rate] * n, pa.float64()))
        .append_column("window_days", pa.array([window_days] * n, pa.int32()))
    )
    with store.begin() as conn:
        if objecting:  # what earlier runs computed of them goes too
            d = schema.derived_metrics
            ids = sorted(objecting)
            for i in range(0, len(ids), 10_000):
                conn.execute(d.delete().where(d.c.person_id.in_(ids[i : i + 10_000])))
        written = store.bulk_insert(conn, schema.derived_metrics, rows, on_conflict="update")
        # one change for the run, naming nobody: the serving caches re-read the metrics of
        # those they hold (subscriber people_changed), nothing else of theirs
        outbox.append(
            store, conn, outbox.METRICS, [None], at=computed_at, refs=[computed_at.isoformat()]
        )
    done("store", started)

    segment_counts = rows.column("rfm_segment").value_counts().to_pylist()
    counted = {item["values"]: item["counts"] for item in segment_counts if item["values"]}
    return DeriveResult(
        as_of=as_of,
        computed_at=computed_at,
        horizon_days=horizon_days,
        discount_rate=discount_rate,
        window_days=window_days,
        people=n,
        objectors=objectors,
        buyers=int(buyer.sum()),
        rows_written=written,
        segments={name: counted.get(name, 0) for name in SEGMENTS},
        model=model,
        forecast=None if forecaster is None else forecaster.summary(),
        propensity=chance_models,
        satisfaction=overall,
        channels=channels,
        seconds=seconds,
        notes=notes,
    )
