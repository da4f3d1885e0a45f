"""Experiments, for every role (aggregates only): the list, and each one's results as
``surmesure experiment results`` gives them (every variant against control with frequentist,
Bayesian and sequential intervals), its sequential view over time, and the sample-ratio
warning when the split is off."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from surmesure.console import charts
from surmesure.console.cache import cache_of
from surmesure.console.session import page as needs
from surmesure.console.web import render
from surmesure.console.words import WORDS, add
from surmesure.experiments import list_all
from surmesure.experiments.results import results_both_ways
from surmesure.experiments.timeline import Timeline, timeline
from surmesure.learn.analysis import VariantResult
from surmesure.protect.users import User
from surmesure.store.engine import Store

EN = {
    "experiment": "Experiment",
    "no_experiments": "No experiment yet: create one with `surmesure experiment create`.",
    "status": "Status",
    "variants": "Variants",
    "primary": "Primary metric",
    "started": "Started",
    "stopped": "Stopped",
    "window": "Attribution window",
    "days": "days",
    "metric": "Metric",
    "guardrail": "guardrail",
    "variant": "Variant",
    "people": "People",
    "mean": "Mean",
    "abs_lift": "Absolute lift",
    "rel_lift": "Relative lift",
    "interval": "interval",
    "p_value": "p",
    "frequentist": "Fixed horizon",
    "bayesian": "Bayesian",
    "sequential": "Sequential (always valid)",
    "chance_to_beat": "Chance to beat control",
    "credible": "Credible interval",
    "expected_loss": "Expected loss",
    "control_row": "control",
    "srm_mismatch": "Sample ratio mismatch: the split is off, so no lift below can be trusted. "
    "Check the assignment and the logging before reading the results.",
    "srm_ok": "Sample ratio: as designed",
    "srm_detail": "observed {observed}, expected {expected}; chi² {chi2}, p = {p}",
    "lift_chart": "Absolute lift against control, with its interval",
    "sequential_view": "Sequential view: the always-valid interval day by day",
    "sequential_help": "The interval of the primary metric as it could be read at the end of "
    "each day; it stays valid however often it is looked at.",
    "lower": "lower bound",
    "upper": "upper bound",
    "estimate": "estimate",
    "day": "Day",
    "no_timeline": "Nobody is assigned yet.",
    "alpha_note": "Intervals at {level} confidence.",
}
FR = {
    "experiment": "Expérience",
    "no_experiments": "Aucune expérience : créez-en une avec `surmesure experiment create`.",
    "status": "Statut",
    "variants": "Variantes",
    "primary": "Indicateur principal",
    "started": "Début",
    "stopped": "Arrêt",
    "window": "Fenêtre d'attribution",
    "days": "jours",
    "metric": "Indicateur",
    "guardrail": "garde-fou",
    "variant": "Variante",
    "people": "Personnes",
    "mean": "Moyenne",
    "abs_lift": "Écart absolu",
    "rel_lift": "Écart relatif",
    "interval": "intervalle",
    "p_value": "p",
    "frequentist": "Horizon fixe",
    "bayesian": "Bayésien",
    "sequential": "Séquentiel (toujours valide)",
    "chance_to_beat": "Probabilité de battre le témoin",
    "credible": "Intervalle de crédibilité",
    "expected_loss": "Perte attendue",
    "control_row": "témoin",
    "srm_mismatch": "Déséquilibre des effectifs : la répartition n'est pas celle prévue, aucun "
    "écart ci-dessous n'est fiable. Vérifiez l'affectation et la collecte avant de lire les "
    "résultats.",
    "srm_ok": "Répartition des effectifs : conforme",
    "srm_detail": "observé {observed}, attendu {expected} ; chi² {chi2}, p = {p}",
    "lift_chart": "Écart absolu avec le témoin, et son intervalle",
    "sequential_view": "Vue séquentielle : l'intervalle toujours valide, jour après jour",
    "sequential_help": "L'intervalle de l'indicateur principal tel qu'on pouvait le lire à la "
    "fin de chaque jour ; il reste valide quel que soit le nombre de lectures.",
    "lower": "borne basse",
    "upper": "borne haute",
    "estimate": "estimation",
    "day": "Jour",
    "no_timeline": "Personne n'est encore affecté.",
    "alpha_note": "Intervalles à {level} de confiance.",
}
add("en", EN)
add("fr", FR)

router = APIRouter(prefix="/console/experiments", include_in_schema=False)
anyone = Depends(needs(None))
#: how long an experiment's results are kept before they are computed again
RESULTS_SECONDS = 60.0
ALPHA = 0.05


def _store(request: Request) -> Store:
    found: Store = request.app.state.store
    return found


@router.get("")
def experiments(request: Request, user: User = anyone) -> HTMLResponse:
    found = list_all(_store(request))
    return render(
        request,
        "experiments.html",
        user=user,
        title=WORDS[user.language]["experiments"],
        experiments=found,
    )


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


@dataclass(frozen=True, slots=True)
class Row:
    """One variant of one metric as the page shows it (``None``: undefined)."""

    variant: str
    control: bool
    n: int
    mean: float | None
    lift: tuple[float | None, float | None, float | None] | None
    relative: tuple[float | None, float | None, float | None] | None
    p: float | None
    chance: float | None
    credible: tuple[float | None, float | None] | None
    loss: float | None
    sequential: tuple[float | None, float | None, float | None] | None
    reason: str | None


def _rows(fixed: tuple[VariantResult, ...], seq: tuple[VariantResult, ...]) -> list[Row]:
    out = []
    for v, s in zip(fixed, seq, strict=True):
        c, sc = v.comparison, s.comparison
        if c is None or sc is None:
            out.append(
                Row(
                    v.variant,
                    True,
                    v.n,
                    _number(v.mean),
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                )
            )
            continue
        a, r = c.absolute, c.relative_fieller or c.relative
        b = v.bayes
        sa_ = sc.absolute
        out.append(
            Row(
                v.variant,
                False,
                v.n,
                _number(v.mean),
                (_number(a.estimate), _number(a.ci_lower), _number(a.ci_upper)),
                (_number(r.estimate), _number(r.ci_lower), _number(r.ci_upper)),
                _number(a.p_value),
                _number(b.chance_to_beat) if b else None,
                (_number(b.ci_lower), _number(b.ci_upper)) if b else None,
                _number(b.expected_loss) if b else None,
                (_number(sa_.estimate), _number(sa_.ci_lower), _number(sa_.ci_upper)),
                c.reason,
            )
        )
    return out


def _lift_chart(rows: list[Row], label: str) -> str | None:
    shown = [r for r in rows if r.lift is not None and r.lift[0] is not None]
    if not shown:
        return None
    values = [float(r.lift[0] or 0) for r in shown if r.lift]
    bounds = [(float(r.lift[1] or 0), float(r.lift[2] or 0)) for r in shown if r.lift]
    return charts.bar_chart(
        [r.variant for r in shown],
        {label: values},
        label=label,
        errors={label: bounds},
        width=2.4 + 1.2 * len(shown),
        height=2.2,
    )


def _sequential_chart(line: Timeline, words: dict[str, str]) -> dict[str, Any] | None:
    if not line.cutoffs:
        return None
    days = [t.strftime("%m-%d") for t in line.cutoffs]
    series: dict[str, Sequence[float | None]] = {}
    table = []
    for variant, lifts in line.lifts.items():
        prefix = f"{variant}: " if len(line.lifts) > 1 else ""
        series[prefix + words["upper"]] = [_number(x.ci_upper) for x in lifts]
        series[prefix + words["estimate"]] = [_number(x.estimate) for x in lifts]
        series[prefix + words["lower"]] = [_number(x.ci_lower) for x in lifts]
        for t, x in zip(line.cutoffs, lifts, strict=True):
            table.append(
                (t, variant, _number(x.estimate), _number(x.ci_lower), _number(x.ci_upper))
            )
    svg = charts.line_chart(days, series, label=words["sequential_view"])
    return {"svg": svg, "rows": table}


def _view(store: Store, name: str, words: dict[str, str]) -> dict[str, Any]:
    """What the page shows of experiment ``name``, charts drawn, in ``words``' language."""
    fixed, seq = results_both_ways(store, name, alpha=ALPHA)
    metrics = []
    for m, s in zip(fixed.metrics, seq.metrics, strict=True):
        rows = _rows(m.result.variants, s.result.variants)
        chart = _lift_chart(rows, f"{m.metric}: {words['abs_lift']}")
        metrics.append(
            {"metric": m.metric, "role": m.role, "kind": m.kind, "rows": rows, "chart": chart}
        )
    return {
        "saved": fixed.experiment,
        "metrics": metrics,
        "srm": fixed.metrics[0].result.srm if fixed.metrics else None,
        "sequential": _sequential_chart(timeline(store, name, alpha=ALPHA), words),
    }


@router.get("/{name}")
def experiment(request: Request, name: str, user: User = anyone) -> HTMLResponse:
    store = _store(request)
    words = WORDS[user.language]
    shown = cache_of(request).get(
        ("experiments", name, user.language), RESULTS_SECONDS, lambda: _view(store, name, words)
    )
    title = f"{words['experiment']} {name}"
    return render(request, "experiment.html", user=user, title=title, alpha=ALPHA, **shown)
