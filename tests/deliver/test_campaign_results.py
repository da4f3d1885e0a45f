"""`campaign results`: every count equals a per-person recomputation, and every interval and
p-value equals statsmodels (two proportions, Wald) and SciPy (Welch) on the same people; a
web purchase (Segment's `Order Completed`) converts like an imported order."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from api_helpers import server_key, serving
from campaign_world import T0
from results_world import COSTS, DAY, DAYS, build, per_person
from scipy import stats
from statsmodels.stats import proportion
from statsmodels.stats.multitest import multipletests

from conftest import invoke, invoke_json
from surmesure.collect.events import ingest_file
from surmesure.deliver import results
from surmesure.errors import InvalidInput, NotFound
from surmesure.segment.discover import Cluster, Discovery, save
from surmesure.store import Store

TIGHT = 1e-9  # the same formula computed twice
CLOSE = 1e-6  # a t quantile or a p-value through another library's special functions


def _sums(people: list[dict[str, Any]], arm: str) -> dict[str, Any]:
    counts = {k: sum(p[k] for p in people) for k in ("sent", "delivered", "opened", "clicked")}
    converted = sum(p["converted"] for p in people)
    revenue = sum(p["revenue"] for p in people)
    n = len(people)
    return {
        "arm": arm,
        "people": n,
        **counts,
        "converted": converted,
        "conversion_rate": converted / n if n else None,
        "revenue": revenue,
        "revenue_per_person": revenue / n if n else None,
        "cost": sum(p["cost"] for p in people),
    }


def _check_lift(got: dict[str, Any], treated: list[dict[str, Any]], control: list[dict[str, Any]]):
    """The comparison ``got`` against statsmodels and SciPy on these people."""
    nt, nc = len(treated), len(control)
    ct = sum(p["converted"] for p in treated)
    cc = sum(p["converted"] for p in control)
    low, high = proportion.confint_proportions_2indep(ct, nt, cc, nc, method="wald", compare="diff")
    _, p_wald = proportion.test_proportions_2indep(ct, nt, cc, nc, method="wald", compare="diff")
    conversion = got["conversion"]
    assert conversion["estimate"] == pytest.approx(ct / nt - cc / nc, abs=TIGHT)
    assert conversion["ci_lower"] == pytest.approx(low, abs=TIGHT)
    assert conversion["ci_upper"] == pytest.approx(high, abs=TIGHT)
    assert conversion["p_value"] == pytest.approx(p_wald, abs=CLOSE)
    # the pooled z-test, the other usual choice, gives a p-value on the same side of 5% here
    _, p_pooled = proportion.proportions_ztest([ct, cc], [nt, nc])
    assert (p_pooled < 0.05) == (conversion["p_value"] < 0.05)

    rt = np.array([p["revenue"] for p in treated])
    rc = np.array([p["revenue"] for p in control])
    welch = stats.ttest_ind(rt, rc, equal_var=False)
    interval = welch.confidence_interval(0.95)
    revenue = got["revenue_per_person"]
    assert revenue["estimate"] == pytest.approx(rt.mean() - rc.mean(), abs=TIGHT)
    assert revenue["ci_lower"] == pytest.approx(interval.low, abs=CLOSE)
    assert revenue["ci_upper"] == pytest.approx(interval.high, abs=CLOSE)
    assert revenue["p_value"] == pytest.approx(welch.pvalue, abs=CLOSE)

    total = got["incremental_revenue"]
    assert total["estimate"] == pytest.approx(nt * (rt.mean() - rc.mean()), abs=1e-6)
    assert total["ci_lower"] == pytest.approx(nt * interval.low, abs=1e-4)
    conversions = got["incremental_conversions"]
    assert conversions["estimate"] == pytest.approx(nt * (ct / nt - cc / nc), abs=1e-9)
    cost = sum(p["cost"] for p in treated)
    assert got["cost"] == pytest.approx(cost, abs=TIGHT)
    roi = got["roi"]
    assert roi["estimate"] == pytest.approx((nt * (rt.mean() - rc.mean()) - cost) / cost, abs=1e-9)
    assert roi["ci_lower"] == pytest.approx((nt * interval.low - cost) / cost, abs=1e-6)
    assert roi["ci_upper"] == pytest.approx((nt * interval.high - cost) / cost, abs=1e-6)
    assert roi["p_value"] == revenue["p_value"]


def test_every_figure_against_an_independent_computation(store: Store, tmp_path: Path) -> None:
    world = build(store, tmp_path)
    people = per_person(world)
    out = results.measure(store, "spring")

    assert out["baseline"] == "control" and out["attribution_days"] == DAYS
    assert out["excluded"] == 1  # person 3 refused e-mail: never assigned
    assert world.ids[3] not in people
    arms = {p["arm"] for p in people.values()}
    assert arms == {"message", "control"}
    groups = {(g["arm"], g["channel"]): g for g in out["groups"]}
    assert set(groups) == {(a, c) for a in arms for c in ("all", "email", "sms")}
    for (arm, channel), got in groups.items():
        mine = [p for p in people.values() if p["arm"] == arm and channel in ("all", p["channel"])]
        want = _sums(mine, arm)
        for key, value in want.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, abs=1e-9), (arm, channel, key)
            else:
                assert got[key] == value, (arm, channel, key)
    treated_all = groups[("message", "all")]
    assert treated_all["sent"] == treated_all["people"] - 2  # one failed, one suppressed late
    assert groups[("control", "all")]["sent"] == 0
    assert 0 < treated_all["delivered"] < treated_all["sent"]  # bounces, SMS not yet delivered
    assert treated_all["cost"] == pytest.approx(
        COSTS["email"] * groups[("message", "email")]["sent"]
        + 2 * COSTS["sms"] * groups[("message", "sms")]["sent"]
    )

    comparisons = {c["channel"]: c for c in out["comparisons"]}
    assert list(comparisons) == ["all", "email", "sms"]
    for channel, got in comparisons.items():
        treated = [
            p for p in people.values() if p["arm"] == "message" and channel in ("all", p["channel"])
        ]
        control = [
            p for p in people.values() if p["arm"] == "control" and channel in ("all", p["channel"])
        ]
        assert (got["treated"], got["control"]) == (len(treated), len(control))
        _check_lift(got, treated, control)


def test_orders_outside_the_window_and_before_the_plan_do_not_count(
    store: Store, tmp_path: Path
) -> None:
    world = build(store, tmp_path)
    out = results.measure(store, "spring")
    every = sum(o[3] if not o[2] else -o[3] for o in world.orders)
    measured = sum(g["revenue"] for g in out["groups"] if g["channel"] == "all")
    inside = sum(p["revenue"] for p in per_person(world).values())
    assert measured == pytest.approx(inside)
    assert measured < every - 99.0  # orders after the window and before the plan left out

    # a web purchase (Segment's `Order Completed`) inside the window converts like an order
    people = per_person(world)
    buyer = next(
        p for p, f in sorted(people.items()) if f["arm"] == "message" and not f["converted"]
    )
    customer = next(f"C{i}" for i, p in world.ids.items() if p == buyer)
    bought = {
        "type": "track",
        "messageId": "web-order-1",
        "userId": customer,
        "event": "Order Completed",
        "properties": {"order_id": "W-1", "total": 123.45, "currency": "EUR"},
        "timestamp": (T0 + 2 * DAY).isoformat() + "Z",
    }
    path = tmp_path / "web.jsonl"
    path.write_bytes(orjson.dumps(bought) + b"\n")
    assert ingest_file(store, path)["accepted"] == 1
    after = results.measure(store, "spring")

    def treated(out: dict[str, Any]) -> dict[str, Any]:
        channel = people[buyer]["channel"]
        return next(g for g in out["groups"] if g["arm"] == "message" and g["channel"] == channel)

    assert treated(after)["converted"] == treated(out)["converted"] + 1
    assert treated(after)["revenue"] == pytest.approx(treated(out)["revenue"] + 123.45)


def test_breakdown_by_segment_and_cluster_with_benjamini_hochberg(
    store: Store, tmp_path: Path
) -> None:
    world = build(store, tmp_path)
    people = per_person(world)
    ordered = sorted(people)
    halves = [ordered[::2], ordered[1::2]]
    found = Discovery(
        2,
        ["recency"],
        0.5,
        {2: 0.5},
        [
            Cluster(f"cluster_{i + 1}", f"half {i + 1}", len(h), {}, {}, tuple(h))
            for i, h in enumerate(halves)
        ],
    )
    save(store, found, world.rows[ordered[0]]["planned_at"])
    out = results.measure(store, "spring", ["cluster"])
    rows = {r["segment"]: r for r in out["breakdown"]}
    assert list(rows) == ["cluster_1", "cluster_2"]
    raw = []
    for name, half in zip(rows, halves, strict=True):
        members = [people[p] for p in half]
        treated = [p for p in members if p["arm"] == "message"]
        control = [p for p in members if p["arm"] == "control"]
        assert (rows[name]["treated"], rows[name]["control"]) == (len(treated), len(control))
        _check_lift(rows[name], treated, control)
        raw += [rows[name]["conversion"]["p_value"], rows[name]["revenue_per_person"]["p_value"]]
    adjusted = multipletests(raw, method="fdr_bh")[1]
    got = [
        rows[n][k]["p_value_adjusted"] for n in rows for k in ("conversion", "revenue_per_person")
    ]
    assert got == pytest.approx(list(adjusted), abs=TIGHT)
    assert out["comparisons"][0]["treated"] == sum(r["treated"] for r in rows.values())

    picture = results.plot(out, tmp_path / "lift.png")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_names_are_refused_with_the_fix(store: Store, tmp_path: Path) -> None:
    build(store, tmp_path, n=10)
    with pytest.raises(InvalidInput) as caught:
        results.measure(store, "spring", ["nobody_here"])
    assert caught.value.field == "by" and "cluster" in (caught.value.hint or "")
    with pytest.raises(NotFound):
        results.measure(store, "autumn")
    with pytest.raises(InvalidInput):
        results.measure(store, "spring", alpha=1.5)


def test_no_cost_means_no_roi() -> None:
    from surmesure.learn.incremental import NO_COST, increment
    from surmesure.learn.moments import Moments

    inc = increment(
        Moments(10, 2.0, 2.0, "binomial"),
        Moments(10, 4.0, 4.0, "binomial"),
        Moments(10, 40.0, 900.0),
        Moments(10, 80.0, 1700.0),
        cost=0.0,
    )
    assert math.isnan(inc.roi.estimate) and inc.roi.reason == NO_COST
    assert inc.revenue_total.estimate == pytest.approx(10 * (8.0 - 4.0))


def test_the_command_prints_tables_json_and_a_plot(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(store, tmp_path)
    expected = results.measure(store, "spring")
    got = invoke_json(monkeypatch, store.url, "campaign", "results", "spring")
    assert got == orjson.loads(orjson.dumps(expected))
    picture = tmp_path / "lift.svg"
    shown = invoke(monkeypatch, store.url, "campaign", "results", "spring", "--plot", str(picture))
    assert shown.exit_code == 0, shown.output
    assert "against control" in shown.output and "ROI" in shown.output
    assert picture.read_text().lstrip().startswith("<?xml")
    bad = invoke(monkeypatch, store.url, "campaign", "results", "spring", "--by", "nope")
    assert bad.exit_code != 0 and "--by" in bad.output


def test_the_route_answers_admin_keys_alone(store: Store, tmp_path: Path) -> None:
    world = build(store, tmp_path, n=30)
    ordered = sorted(world.rows)
    found = Discovery(
        1, ["recency"], 0.5, {1: 0.5}, [Cluster("cluster_1", "all", 1, {}, {}, (ordered[0],))]
    )
    save(store, found, world.rows[ordered[0]]["planned_at"])
    expected = orjson.loads(orjson.dumps(results.measure(store, "spring", ["cluster"])))
    keys = {scope: server_key(store, scope) for scope in ("admin", "read", "decide", "collect")}
    with serving(store) as (url, _):
        got = {
            scope: httpx.get(
                f"{url}/v1/campaigns/spring/results", params={"by": "cluster"}, auth=(key, "")
            )
            for scope, key in keys.items()
        }
        unknown = httpx.get(
            f"{url}/v1/campaigns/spring/results", params={"by": "nope"}, auth=(keys["admin"], "")
        )
    assert got["admin"].status_code == 200 and got["admin"].json() == expected
    assert {s: r.status_code for s, r in got.items() if s != "admin"} == dict.fromkeys(
        ("read", "decide", "collect"), 403
    )
    assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "by"


def test_without_a_control_group_the_increments_say_why(store: Store, tmp_path: Path) -> None:
    from campaign_world import T0, add_people, document

    from surmesure.deliver import documents, plan
    from surmesure.learn.effects import EMPTY

    add_people(store, tmp_path, 4)
    documents.save(store, documents.parse(document(costs={"email": 1.0})), T0)
    with store.begin() as conn:
        definition, version = documents.get(conn, "spring")
        plan.record(store, conn, plan.plan(store, conn, definition, version, T0), T0)
    out = results.measure(store, "spring")
    assert [(g["arm"], g["channel"], g["people"]) for g in out["groups"]] == [
        ("message", "all", 4),
        ("message", "email", 4),
    ]
    first = out["comparisons"][0]
    assert first["control"] == 0 and first["conversion"]["estimate"] is None
    assert first["conversion"]["reason"] == EMPTY and first["roi"]["reason"] == EMPTY
