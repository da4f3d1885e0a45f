"""Purchases forecasts on temporal splits of Online Retail II and CDNOW, against the peers.

    python benchmarks/bench_clv.py [--plot calibration.png] [--propensity] [--ceiling]
    python benchmarks/bench_clv.py --propensity-only [--sample 5000] [--plot calibration.png]

With P(purchase), ``--plot`` also writes its reliability plot beside the other
(``calibration_propensity.png``): the share who bought against the mean predicted
probability, by decile.

Each split calibrates on the purchase days up to a cut-off and predicts each buyer's purchase
days in the next ``h`` days; scored against what they did. Per split, in the same run: MAE,
RMSE, Spearman and predicted/actual total for

- ``last period``: the buyer's count in the ``h`` days before the cut-off;
- ``bgnbd``: our BG/NBD (:mod:`surmesure.derive.bgnbd`), and ``lifetimes`` BG/NBD (the peer);
- ``boosting``: :mod:`surmesure.derive.forecast`, trained on earlier windows of the same
  history only (nothing after the cut-off).

Online Retail II's sheet here covers one year (2009-12-01 to 2010-12-09): 3- and 6-month
horizons fit, a 12-month one does not. CDNOW (1997-01 to 1998-06) takes 6 and 12 months.
The target: ``boosting`` below both ``last period`` and BG/NBD on MAE and RMSE on every split,
Spearman at least as high. Each split ends with the boosting's ratio to the best peer on each
measure (MAE, RMSE and the total's distance from 1: below 1 wins; Spearman: above 1 wins), and
each propensity with our AUC and Brier score over the logistic regression's.
``--ceiling`` adds another: the Spearman of gradient boosting fitted on the evaluation period
itself (it sees the answers; the forecast's features plus the last period's count), beside the
last period's: how high a forecast that tells buyers apart could rank at best, in sample.
``--ties`` adds a diagnostic: the forecast with the buyers idle in the last period tied within
each repeat count (how much of Spearman is the ordering among them). ``--plot`` writes the
calibration (mean predicted against mean actual by decile of the prediction) of every split to
a PNG.

``--propensity`` adds, per data set and cut-off, the probability of a purchase within 30 and
90 days (:func:`surmesure.derive.propensity.fit`, as stored and moved by the last window's level)
against a logistic regression on RFM trained on the same windows: AUC and Brier score (the
target: better on both); ``--propensity-only`` runs that part alone and ``--sample N`` runs it
on N buyers drawn at random (minutes, not twenty; all buyers by default).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import brier_score_loss, roc_auc_score

from surmesure.derive import forecast
from surmesure.derive import propensity as stored
from surmesure.derive.forecast import Purchases
from surmesure.derive.propensity_model import Level

DATA = Path(__file__).resolve().parent.parent / ".." / "shared" / "datasets"
EPOCH = date(1970, 1, 1)
SPLITS = {
    "online_retail_II": [
        (date(2010, 6, 1), 91),
        (date(2010, 9, 1), 91),
        (date(2010, 4, 1), 182),
        (date(2010, 6, 1), 182),
    ],
    "cdnow": [
        (date(1997, 6, 30), 182),
        (date(1997, 9, 30), 182),
        (date(1997, 12, 31), 182),
        (date(1997, 4, 30), 365),
        (date(1997, 6, 30), 365),
    ],
}


def _days(values: pd.Series) -> np.ndarray:
    return (values.to_numpy("datetime64[D]") - np.datetime64(EPOCH)).astype(np.int64)


def online_retail() -> Purchases:
    """Purchase days of identified customers; cancellations (invoices "C...") left out."""
    lines = pd.read_parquet(DATA / "online_retail_II" / "online_retail_II_2009_2010.parquet")
    lines = lines[lines["Customer ID"].notna() & ~lines["Invoice"].astype(str).str.startswith("C")]
    value = lines["Quantity"] * lines["Price"]
    return Purchases.of(lines["Customer ID"].astype(np.int64), _days(lines["InvoiceDate"]), value)


def cdnow() -> Purchases:
    rows = pd.read_csv(DATA / "cdnow" / "CDNOW_master.txt", sep=r"\s+")
    when = pd.to_datetime(rows["date"].astype(str), format="%Y%m%d")
    return Purchases.of(rows["customer_id"], _days(when), rows["dollar_value"])


def lifetimes_forecast(f: forecast.Frame, horizon_days: int) -> tuple[np.ndarray, float]:
    """lifetimes' BG/NBD forecast and the smallest penalizer with which it converged."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter
        from lifetimes.utils import ConvergenceError

        # unpenalized first; lifetimes' own advice when that does not converge
        for penalizer in (0.0, 0.001, 0.01, 0.1):
            model = BetaGeoFitter(penalizer_coef=penalizer)
            try:
                model.fit(f.x, f.t_x / 7, f.T / 7)
                break
            except ConvergenceError:
                continue
        expected = model.conditional_expected_number_of_purchases_up_to_time(
            horizon_days / 7, f.x, f.t_x / 7, f.T / 7
        )
        return np.asarray(expected), penalizer


def idle_tied(predicted: np.ndarray, last: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A diagnostic of Spearman: the buyers with no purchase in the last period given their
    class's mean prediction, one class per repeat count (capped at 3), so that the ordering
    among them is only the one their past purchases give (as "last period" leaves them tied)."""
    out = predicted.copy()
    idle = last == 0
    kind = np.minimum(x, 3)
    for value in np.unique(kind[idle]):
        group = idle & (kind == value)
        out[group] = predicted[group].mean()
    return out


def ceiling(f: forecast.Frame, last: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """Spearman of a Poisson gradient boosting and of a classifier of any purchase, both fitted
    on the evaluation period itself (the answers) from the features and the last period's
    count: no forecast from these features ranks better (a diagnostic, not a model)."""
    x = np.column_stack([f.features, last])
    counts = HistGradientBoostingRegressor(loss="poisson", max_iter=200, **forecast.TREES)
    bought = HistGradientBoostingClassifier(max_iter=200, **forecast.TREES)
    return (
        forecast.score(counts.fit(x, actual).predict(x), actual).spearman,
        forecast.score(bought.fit(x, actual > 0).predict_proba(x)[:, 1], actual).spearman,
    )


def run(
    name: str, p: Purchases, cut: date, horizon: int, ties: bool = False, best: bool = False
) -> dict[str, object]:
    as_of = (cut - EPOCH).days
    started = time.perf_counter()
    f, model = forecast.frame(p, as_of, horizon)
    ours = forecast.bgnbd_forecast(f, model, horizon)
    bg_seconds = time.perf_counter() - started
    started = time.perf_counter()
    try:
        peer: tuple[np.ndarray, float] | None = lifetimes_forecast(f, horizon)
    except ImportError:
        peer = None
    peer_seconds = time.perf_counter() - started
    started = time.perf_counter()
    fitted = forecast.fit(p, as_of, horizon, validate=False)
    people, boosted = fitted.predict(p, as_of)
    boost_seconds = time.perf_counter() - started
    assert np.array_equal(people, f.people)
    actual = forecast.counts(p, f.people, as_of, as_of + horizon)
    last = forecast.counts(p, f.people, as_of - horizon, as_of)
    predictions = {"last period": (last, 0.0), "bgnbd (ours)": (ours, bg_seconds)}
    if peer is not None:
        bad = int((~np.isfinite(peer[0])).sum())  # lifetimes' hyp2f1 can overflow to NaN
        label = f"bgnbd (lifetimes, pen {peer[1]:g}{f', {bad} NaN' if bad else ''})"
        predictions[label] = (peer[0], peer_seconds)
    predictions[f"boosting [{fitted.name}]"] = (boosted, boost_seconds)
    if ties:
        predictions["boosting, idle tied by x"] = (idle_tied(boosted, last, f.x), boost_seconds)
    print(
        f"\n{name}  cut-off {cut}  horizon {horizon} d  buyers {len(people)}  "
        f"actual mean {actual.mean():.3f}  {fitted.note}"
    )
    print(f"  {'model':<34}{'MAE':>8}{'RMSE':>8}{'Spearman':>10}{'pred/act':>10}{'fit s':>8}")
    scores = {}
    for label, (values, seconds) in predictions.items():
        s = scores[label] = forecast.score(values, actual)
        print(
            f"  {label:<34}{s.mae:>8.3f}{s.rmse:>8.3f}{s.spearman:>10.3f}"
            f"{s.predicted_over_actual:>10.3f}{seconds:>8.2f}"
        )
    print_ratios(scores, f"boosting [{fitted.name}]")
    if best:
        counted, bought = ceiling(f, last, actual)
        print(
            f"  {'ceiling (fitted on the answers)':<34}  Spearman {counted:.3f} (counts), "
            f"{bought:.3f} (any purchase); last period {scores['last period'].spearman:.3f}"
        )
    return {"title": f"{name} {cut} +{horizon}d", "actual": actual, "predictions": predictions}


def print_ratios(scores: dict[str, forecast.Scores], ours: str) -> None:
    """Ours against the best peer on each measure (a peer whose forecast is not finite left
    out): MAE and RMSE as ours / best (below 1 wins), Spearman as ours / best (above 1 wins),
    the total as |ours / actual - 1| / the best peer's (below 1 wins)."""
    peers = [
        s
        for label, s in scores.items()
        if label != ours and not label.startswith("boosting") and np.isfinite(s.mae)
    ]
    mine = scores[ours]

    def off(s: forecast.Scores) -> float:
        return abs(s.predicted_over_actual - 1)

    best_off = min(off(s) for s in peers)
    print(
        f"  {'ratio to the best peer':<34}{mine.mae / min(s.mae for s in peers):>8.3f}"
        f"{mine.rmse / min(s.rmse for s in peers):>8.3f}"
        f"{mine.spearman / max(s.spearman for s in peers):>10.3f}"
        f"{off(mine) / best_off if best_off > 0 else float('inf'):>10.3f}"
    )


def propensity(name: str, p: Purchases, cut: date, days: int) -> dict[str, object] | None:
    """AUC and Brier score of P(a purchase in the next ``days``): ours (as stored, and moved
    by the level of the window before the cut-off) against a logistic regression on RFM
    (log1p, standardized), all trained on the same earlier windows
    (:mod:`surmesure.derive.propensity`)."""
    as_of = (cut - EPOCH).days
    started = time.process_time()
    ours, checked = stored.fit(p, as_of, days)
    ours_seconds = time.process_time() - started
    people, raw = ours.predict(p, as_of)
    shift = checked.level_shift if checked is not None else 0.0
    _, levelled = ours.with_level(Level(shift=shift)).predict(p, as_of)
    started = time.process_time()
    baseline = stored.logistic_rfm(p, as_of, days)
    rfm_seconds = time.process_time() - started
    if baseline is None or not ours.fitted:
        print(f"\n{name}  cut-off {cut}  propensity {days} d: history too short to train")
        return None
    bought = forecast.counts(p, people, as_of, as_of + days) > 0
    print(
        f"\n{name}  cut-off {cut}  propensity {days} d  buyers {len(people)}  "
        f"rate {bought.mean():.3f}  level shift {shift:+.3f}"
    )
    print(f"  {'model':<28}{'AUC':>8}{'Brier':>8}{'mean p':>8}{'cpu s':>8}")
    rfm_won = checked is not None and checked.logistic_rfm.brier < checked.model.brier
    for label, values, seconds in (
        ("logistic RFM", baseline, rfm_seconds),
        ("ours (trees+splines+RFM+BG)", raw, ours_seconds),
        ("ours, levelled", levelled, ours_seconds),
        # what derive stores: the better Brier score on the window before the cut-off
        (f"derive's choice ({'RFM' if rfm_won else 'ours'})",
         baseline if rfm_won else raw, ours_seconds),
    ):  # fmt: skip
        print(
            f"  {label:<28}{roc_auc_score(bought, values):>8.3f}"
            f"{brier_score_loss(bought, values):>8.4f}{values.mean():>8.3f}{seconds:>8.2f}"
        )
    # above 1 on AUC and below 1 on Brier: ours beats the logistic regression
    print(
        f"  {'ours / logistic RFM':<28}"
        f"{roc_auc_score(bought, raw) / roc_auc_score(bought, baseline):>8.4f}"
        f"{brier_score_loss(bought, raw) / brier_score_loss(bought, baseline):>8.4f}"
    )
    return {
        "title": f"{name} {cut} {days} d",
        "bought": bought,
        "predictions": {"logistic RFM": baseline, "ours": raw},
    }


def _panels(
    results: list[dict[str, object]],
    path: Path,
    draw: Callable[[Any, dict[str, object]], None],
    labels: tuple[str, str],
    cols: int,
) -> None:
    """One panel a result, each drawn by ``draw`` with the diagonal and ``labels``; saved."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = -(-len(results) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 4 * rows), squeeze=False)
    for ax, result in zip(axes.flat, results, strict=False):
        draw(ax, result)
        top = max(ax.get_xlim()[1], ax.get_ylim()[1])
        ax.plot([0, top], [0, top], color="grey", linestyle=":")
        ax.set_title(str(result["title"]), fontsize=9)
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(results) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"\nplot: {path}")


def reliability(results: list[dict[str, object]], path: Path) -> None:
    """Observed buying rate against the mean predicted probability, by decile of the
    prediction, for each propensity split (a calibrated model lies on the diagonal)."""
    from sklearn.calibration import calibration_curve

    def draw(ax: Any, result: dict[str, object]) -> None:
        bought = np.asarray(result["bought"])
        predictions = result["predictions"]
        assert isinstance(predictions, dict)
        for label, values in predictions.items():
            rate, mean = calibration_curve(bought, values, n_bins=10, strategy="quantile")
            ax.plot(mean, rate, marker="o", label=label)

    labels = ("mean predicted probability (decile)", "share who bought")
    _panels(results, path, draw, labels, cols=4)


def plot(results: list[dict[str, object]], path: Path) -> None:
    """Mean actual against mean predicted purchases, by decile of each forecast."""

    def draw(ax: Any, result: dict[str, object]) -> None:
        actual = np.asarray(result["actual"])
        predictions = result["predictions"]
        assert isinstance(predictions, dict)
        for label, (values, _) in predictions.items():
            groups = np.array_split(np.argsort(values, kind="stable"), 10)
            means = [values[g].mean() for g in groups], [actual[g].mean() for g in groups]
            ax.plot(*means, marker="o", label=label)

    labels = ("mean predicted purchases (decile)", "mean actual purchases")
    _panels(results, path, draw, labels, cols=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", type=Path, help="write the calibration plot to this PNG")
    parser.add_argument("--dataset", choices=sorted(SPLITS), help="only this data set")
    parser.add_argument(
        "--propensity", action="store_true", help="also P(purchase in 30 and 90 days)"
    )
    parser.add_argument(
        "--propensity-only", action="store_true", help="only P(purchase), no forecast splits"
    )
    parser.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help="propensity on N buyers drawn at random (a fixed seed), not all of them",
    )
    parser.add_argument("--split", type=int, action="append", help="only these splits (0-based)")
    parser.add_argument(
        "--ties",
        action="store_true",
        help="also the forecast with last period's idle buyers tied by repeat count",
    )
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="also the Spearman of boosting fitted on the evaluation period itself (in sample)",
    )
    args = parser.parse_args()
    loaders = {"online_retail_II": online_retail, "cdnow": cdnow}
    results = []
    reliable: list[dict[str, object]] = []
    for name, splits in SPLITS.items():
        if args.dataset and name != args.dataset:
            continue
        purchases = loaders[name]()
        for i, (cut, horizon) in enumerate(splits):
            if args.propensity_only or (args.split and i not in args.split):
                continue
            results.append(run(name, purchases, cut, horizon, args.ties, args.ceiling))
        if args.propensity or args.propensity_only:
            if args.sample:
                purchases = purchases.sample(args.sample)
            for cut in sorted({cut for cut, _ in splits}):
                for days in (30, 90):
                    found = propensity(name, purchases, cut, days)
                    if found is not None:
                        reliable.append(found)
    if args.plot and results:
        plot(results, args.plot)
    if args.plot and reliable:
        reliability(reliable, args.plot.with_name(f"{args.plot.stem}_propensity.png"))


if __name__ == "__main__":
    main()
