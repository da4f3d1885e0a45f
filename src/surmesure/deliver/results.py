"""What a campaign did: per channel, for the people it treated and for its control group.

Who counts. Each person's first row of the campaign (step 0; the earliest planned, for two
people merged since) places them: ``held_out`` with
reason ``control`` is the **control** group (it received nothing), ``held_out`` for the
global holdout is the **holdout**, and every other person assigned is **treated** (``message``),
whether the message left, failed or was suppressed at send time: the comparison is by
intention to treat, as assigned, so a treated person who could not be reached still counts
on the treated side. People suppressed while planning (consent, caps, unreachable: no
attempt was ever made) were never assigned and are left out (``excluded``). The control group
keeps the channel it would have had, so each channel's treated people are compared with the
control people of the same channel (the people reachable by SMS alone differ from the others).

Per person, over the attribution window ``[planned_at, planned_at + attribution_days)`` (naive
UTC; the window opens when the person was assigned, on both sides alike, so a message held by
quiet hours does not shift the treated side's period):

- sent: a message of the campaign (any step) left; delivered: it left and the provider did not
  report it failed, rejected or bounced (SMS: the latest report says ``delivered``);
- opened / clicked: a tracked open or click of the campaign (a click counts as an open: the
  pixel is often blocked);
- converted: an order that is not a return; revenue: order totals, returns negative;
- cost: units of the messages that left x the document's cost of their channel.

The statistics (differences with intervals, ROI) are :mod:`surmesure.learn.incremental`'s;
``by`` breaks the treated-against-control comparison down per saved segment or discovered
cluster (a discovery prefix such as ``cluster`` names all of its clusters), membership as it is
now, with Benjamini-Hochberg adjusted p-values over every cell of the breakdown.

A campaign that shows a film adds ``video``: pages opened, views, quarters played, completion
rate and button clicks (:mod:`surmesure.deliver.video_results`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.deliver import documents, video_results
from surmesure.deliver.results_sql import (
    ALL,
    CONTROL,
    HOLDOUT,
    TREATED,
    Group,
    groups_by_variant,
    groups_of,
)
from surmesure.errors import InvalidInput
from surmesure.learn.frequentist import Lift, check_alpha
from surmesure.learn.incremental import Increment, increment
from surmesure.learn.multiple import benjamini_hochberg
from surmesure.store import schema
from surmesure.store.engine import Store


def _lift(lift: Lift) -> dict[str, Any]:
    def num(x: float) -> float | None:
        return None if math.isnan(x) else x

    out: dict[str, Any] = {
        "estimate": num(lift.estimate),
        "ci_lower": num(lift.ci_lower),
        "ci_upper": num(lift.ci_upper),
        "p_value": num(lift.p_value),
    }
    if lift.reason is not None:
        out["reason"] = lift.reason
    return out


def _comparison(channel: str, inc: Increment) -> dict[str, Any]:
    return {
        "channel": channel,
        "treated": inc.treated_n,
        "control": inc.control_n,
        "conversion": _lift(inc.conversion),
        "revenue_per_person": _lift(inc.revenue),
        "incremental_conversions": _lift(inc.conversions),
        "incremental_revenue": _lift(inc.revenue_total),
        "cost": round(inc.cost, 6),
        "roi": _lift(inc.roi),
    }


def _compare(treated: Group, control: Group, alpha: float) -> Increment:
    return increment(
        control.conversion(),
        treated.conversion(),
        control.revenue_moments(),
        treated.revenue_moments(),
        treated.cost,
        alpha,
    )


def _totals(groups: Iterable[Group], arm: str, channel: str = ALL) -> Group:
    total = Group(arm, channel)
    for g in groups:
        if g.arm == arm and (channel == ALL or g.channel == channel):
            total = total + g
    return total


def segments_named(conn: Connection, names: Sequence[str]) -> list[str]:
    """The segments ``names`` stand for: a saved segment, or every cluster ``{name}_<i>`` of a
    discovery; :class:`InvalidInput` for a name that is neither."""
    known = {
        str(s)
        for s in conn.execute(sa.select(schema.segment_members.c.segment).distinct()).scalars()
    }
    known |= {str(s) for s in conn.execute(sa.select(schema.segments.c.name)).scalars()}
    out: list[str] = []
    for name in names:
        pattern = re.compile(rf"^{re.escape(name)}_\d+$")
        found = [name] if name in known else sorted(s for s in known if pattern.match(s))
        if not found:
            raise InvalidInput(
                f"--by: no segment or discovered cluster is named {name!r}.",
                field="by",
                hint="give a saved segment's name, or a discovery prefix such as `cluster`",
            )
        out += [s for s in found if s not in out]
    return out


def measure(store: Store, name: str, by: Sequence[str] = (), alpha: float = 0.05) -> dict[str, Any]:
    """The campaign's results (see the module): ``groups`` (sums per arm and channel, ``all``
    first), ``comparisons`` (treated against the baseline, in all and per channel), and with
    ``by`` a ``breakdown`` per segment; ``variants`` when a template's next best action chose
    them (:func:`_by_variant`). The baseline is the control group, or the global
    holdout for a campaign without one."""
    check_alpha(alpha)
    with store.connect() as conn:
        definition, version = documents.get(conn, name)
        # one pass gives the cells per variant too: their totals are the same
        by_variant = groups_by_variant(conn, definition)
        cells = [g for _, g in by_variant]
        chose = [c for c in by_variant if c[0][0] is not None]
        segments = segments_named(conn, by) if by else []
        split = groups_of(conn, definition, segments) if segments else []
        excluded = conn.execute(
            sa.select(sa.func.count())
            .select_from(schema.messages)
            .where(
                schema.messages.c.campaign == name,
                schema.messages.c.step == 0,
                schema.messages.c.status == "suppressed",
                schema.messages.c.attempts == 0,
            )
        ).scalar_one()
        films = video_results.measure(conn, name) if definition.prints_video else None
    channels = [c for c in definition.order if any(g.channel == c for g in cells)]
    baseline = CONTROL if definition.control > 0 or not definition.holdout else HOLDOUT
    groups: list[Group] = []
    for arm in (TREATED, CONTROL, HOLDOUT):
        if arm == TREATED or any(g.arm == arm for g in cells):
            groups.append(_totals(cells, arm))
            groups += [_totals(cells, arm, c) for c in channels]
    comparisons = [
        _comparison(c, _compare(_totals(cells, TREATED, c), _totals(cells, baseline, c), alpha))
        for c in [ALL, *channels]
    ]
    out: dict[str, Any] = {
        "campaign": name,
        "version": version,
        "attribution_days": definition.attribution_days,
        "alpha": alpha,
        "baseline": baseline,
        "excluded": int(excluded),
        "groups": [g.to_dict() for g in groups],
        "comparisons": comparisons,
    }
    if films is not None:
        out["video"] = films
    if segments:
        out["breakdown"] = _breakdown(split, segments, baseline, alpha)
    if chose:
        out["variants"] = _by_variant(chose, baseline, alpha)
    return out


def _by_variant(
    cells: list[tuple[tuple[str | None, str | None], Group]], baseline: str, alpha: float
) -> list[dict[str, Any]]:
    """Per variant and action its template's next best action chose: the people given it
    against the baseline people it would have been given (the same choice on both sides, so
    the comparison stays randomized), most treated first."""
    keys = sorted({k for k, _ in cells}, key=lambda k: (str(k[0]), str(k[1])))
    rows = []
    for key in keys:
        mine = [g for k, g in cells if k == key]
        treated, control = _totals(mine, TREATED), _totals(mine, baseline)
        row: dict[str, Any] = {"variant": key[0], "action": key[1]}
        row |= _comparison(ALL, _compare(treated, control, alpha))
        del row["channel"]
        row["treated_group"] = treated.to_dict()
        row["control_group"] = control.to_dict()
        rows.append(row)
    rows.sort(key=lambda r: -r["treated"])
    return rows


def _breakdown(
    split: list[tuple[str | None, Group]], segments: list[str], baseline: str, alpha: float
) -> list[dict[str, Any]]:
    rows = []
    for segment in segments:
        mine = [g for s, g in split if s == segment]
        treated, control = _totals(mine, TREATED), _totals(mine, baseline)
        row = {"segment": segment, **_comparison(ALL, _compare(treated, control, alpha))}
        del row["channel"]
        row["treated_group"] = treated.to_dict()
        row["control_group"] = control.to_dict()
        rows.append(row)
    p = [r[k]["p_value"] for r in rows for k in ("conversion", "revenue_per_person")]
    adjusted = benjamini_hochberg([math.nan if x is None else x for x in p]).tolist()
    for i, row in enumerate(rows):
        for j, key in enumerate(("conversion", "revenue_per_person")):
            value = adjusted[2 * i + j]
            row[key]["p_value_adjusted"] = None if math.isnan(value) else value
    return rows


def plot(results: dict[str, Any], path: Path) -> Path:
    """The incremental conversion (points) and revenue per person, with their intervals, in
    all, per channel and per segment of the breakdown."""
    from surmesure.learn.plots import LiftBar, lift_panels  # Matplotlib only when drawing

    rows = [(c["channel"], c) for c in results["comparisons"]]
    rows += [(str(b["segment"]), b) for b in results.get("breakdown", [])]

    def bars(key: str, scale: float) -> list[LiftBar]:
        out = []
        for label, row in rows:
            lift = row[key]
            values = [lift[k] for k in ("estimate", "ci_lower", "ci_upper")]
            est, low, high = (math.nan if v is None else v * scale for v in values)
            out.append(LiftBar(label, est, low, high))
        return out

    return lift_panels(
        {
            "conversion, points": bars("conversion", 100.0),
            "revenue per person": bars("revenue_per_person", 1.0),
        },
        path,
        f"{results['campaign']}: treated against {results['baseline']}",
    )
