"""The Experiments section: the list, a result page whose figures are checked against a
computation of their own, the sequential view, and the sample-ratio warning of an experiment
whose arms were made unbalanced on purpose."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import datetime, time, timedelta

import pytest
import sqlalchemy as sa
from console_helpers import session_client, shot, sign_in
from playwright.sync_api import Browser, expect
from scipy import stats

from surmesure.experiments import assign, parse, results, save
from surmesure.store import Store, schema

World = tuple[str, Store]
WINDOW = 14


@pytest.fixture(scope="module")
def made(console_world: World) -> Iterator[tuple[str, str, datetime]]:
    """Two experiments over the world's people, assigned at 10:00 40 days before its last order: one
    as designed, one that lost half of its treated people (as a broken logger would)."""
    _, store = console_world
    with store.connect() as conn:
        last = conn.execute(sa.select(sa.func.max(schema.orders.c.ordered_at))).scalar_one()
    start = datetime.combine((last - timedelta(days=40)).date(), time(10))
    tag = uuid.uuid4().hex[:6]
    names = (f"console_balanced_{tag}", f"console_unbalanced_{tag}")
    for name in names:
        document = {
            "name": name,
            "variants": [{"name": "control", "weight": 0.5}, {"name": "offer", "weight": 0.5}],
            "control": "control",
            "primary": "conversion",
            "guardrails": ["revenue"],
            "attribution_days": WINDOW,
            "channel": "web",
        }
        save(store, parse(document))
        assign(store, name, now=start)
    with store.begin() as conn:
        conn.execute(
            sa.text(
                "DELETE FROM experiment_assignments WHERE experiment = :e "
                "AND variant = 'offer' AND person_id % 2 = 0"
            ),
            {"e": names[1]},
        )
    yield names[0], names[1], start


def _observed(store: Store, name: str, start: datetime) -> dict[str, tuple[int, int]]:
    """(people, converters) per variant, counted from the assignments and the orders."""
    sql = sa.text(
        "SELECT a.variant, count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM orders o "
        "WHERE o.person_id = a.person_id AND NOT o.is_return AND o.ordered_at >= a.assigned_at "
        "AND o.ordered_at < :end)) FROM experiment_assignments a WHERE a.experiment = :e "
        "GROUP BY a.variant"
    )
    with store.connect() as conn:
        rows = conn.execute(sql, {"e": name, "end": start + timedelta(days=WINDOW)}).all()
    return {str(v): (int(n), int(x)) for v, n, x in rows}


def _text(value: str) -> str:
    return " ".join(value.replace("\u2212", "-").split())


def test_results_show_the_lift_and_interval_computed_independently(
    console_world: World, chromium: Browser, made: tuple[str, str, datetime]
) -> None:
    base, store = console_world
    name, _, start = made
    seen = _observed(store, name, start)
    (nc, xc), (nt, xt) = seen["control"], seen["offer"]
    pc, pt = xc / nc, xt / nt
    lift = pt - pc
    half = stats.norm.ppf(0.975) * math.sqrt(pc * (1 - pc) / nc + pt * (1 - pt) / nt)
    expected = f"{lift:+.4f} [{lift - half:+.4f}, {lift + half:+.4f}]"
    assert xc > 0 and xt > 0, seen  # a real comparison, not an undefined one
    served = results(store, name).metrics[0].result.variants[1].comparison
    assert served is not None and abs(served.absolute.estimate - lift) < 1e-12

    page = sign_in(chromium, base, "viewer")  # aggregates: any role
    page.goto("/console/experiments")
    page.get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=f"Experiment {name}")).to_be_visible()
    primary = page.locator('section[data-metric="conversion"]')
    offer = primary.locator('tr[data-variant="offer"]')
    assert _text(offer.locator('[data-lift="absolute"]').inner_text()) == expected
    assert offer.locator("[data-n]").inner_text() == f"{nt:,}"
    assert primary.locator('tr[data-variant="control"] [data-n]').inner_text() == f"{nc:,}"
    assert offer.locator("[data-mean]").inner_text() == f"{pt:.4f}"
    chance = served and results(store, name).metrics[0].result.variants[1].bayes
    assert chance is not None
    assert offer.locator("[data-chance]").inner_text() == f"{chance.chance_to_beat:.1%}"
    # the sequential view ends with the window closed: the interval the results give
    sequential = _text(offer.locator('[data-lift="sequential"]').inner_text())
    rows = page.locator('figure[data-chart="sequential"] tbody tr')
    assert rows.count() == WINDOW + 1  # the end of each day, and the end of the window
    last = rows.nth(rows.count() - 1).locator("td")
    assert sequential == _text(
        f"{last.nth(1).text_content()} [{last.nth(2).text_content()}, {last.nth(3).text_content()}]"
    )
    chi2 = stats.chisquare([nc, nt])
    assert chi2.pvalue >= 0.001  # designed 50/50 and hashed so: no warning
    expect(page.locator('[data-srm="ok"]')).to_be_visible()
    expect(page.locator('[data-srm="mismatch"]')).to_have_count(0)
    assert page.locator("figure svg[role=img]").count() >= 3  # lifts per metric, sequential
    shot(page, "experiment-results")
    page.context.close()


def test_the_sample_ratio_warning_shows_for_unbalanced_arms(
    console_world: World, chromium: Browser, made: tuple[str, str, datetime]
) -> None:
    base, store = console_world
    _, name, start = made
    seen = _observed(store, name, start)
    chi2 = stats.chisquare([seen["control"][0], seen["offer"][0]])
    assert chi2.pvalue < 0.001
    page = sign_in(chromium, base, "analyst")
    page.goto(f"/console/experiments/{name}")
    warning = page.get_by_role("alert")
    expect(warning).to_contain_text("Sample ratio mismatch")
    expect(warning).to_contain_text(f"observed {seen['control'][0]} / {seen['offer'][0]}")
    shot(page, "experiment-srm")
    page.context.close()


def test_an_unknown_experiment_is_a_clear_404(console_world: World) -> None:
    base, _ = console_world
    with session_client(base, "viewer") as (client, _):
        got = client.get("/console/experiments/no_such_experiment")
        assert got.status_code == 404
        assert "No experiment named" in got.text and "Traceback" not in got.text
        listed = client.get("/console/experiments")
        assert listed.status_code == 200
