"""Uplift models on Hillstrom against baselines and peer libraries; bandit regret.

    python benchmarks/bench_uplift.py [--seeds 10] [--outcome visit|spend] [--out bench-out]

Womens E-Mail against No E-Mail, outcomes visit and spend; for each seed a 50/50 split
stratified by treatment, fitted on one half, judged on the other. Prints per model the mean over
seeds of the out-of-sample Qini coefficient and AUUC gain with the standard error of that mean
(spend is heavy-tailed: its Qini varies a lot from split to split), and the fit time. Models: ours
(X-, T-, DR- and S-learner with their default models), baselines (random targeting; an S-learner
and two-model approach on plain scikit-learn estimators), and, when importable, scikit-uplift's
and causalml's learners ("absent" otherwise; they are not part of the install). The target: our
default learner (X) at least as good as the best baseline or peer, in mean Qini coefficient.

Also simulates Beta-Bernoulli Thompson sampling against a fixed 50/50 split (conversion 0.04 vs
0.06, 10,000 rounds, 200 runs) and writes the Qini and regret plots to --out. With --outcome,
only that outcome is compared and the bandit is left out.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from surmesure.learn.bandits import thompson_choices
from surmesure.learn.plots import qini_plot, regret_plot
from surmesure.learn.uplift import (
    SLearner,
    TLearner,
    make_learner,
    qini_curve,
    score_uplift,
    stratified_split,
)
from surmesure.learn.uplift.data import read_uplift_data

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "hillstrom" / "hillstrom.csv"
FEATURES = ["recency", "history_segment", "history", "mens", "womens", "zip_code", "newbie"]
FEATURES += ["channel"]
Array = npt.NDArray[np.float64]
# fit(x_train, y_train, t_train) -> predict(x_test) -> uplift
Model = Callable[[Array, Array, Array, Array], Array]


def ours(name: str, binary: bool, seed: int) -> Model:
    def run(x: Array, y: Array, t: Array, x_new: Array) -> Array:
        return make_learner(name, binary, seed).fit(x, y, t).predict(x_new)

    return run


def plain(binary: bool, linear: bool) -> Any:
    if linear:
        return make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000) if binary else LinearRegression()
        )
    return HistGradientBoostingClassifier() if binary else HistGradientBoostingRegressor()


def baselines(binary: bool, seed: int) -> dict[str, Model]:
    def random(x: Array, y: Array, t: Array, x_new: Array) -> Array:
        return np.random.default_rng(seed).random(x_new.shape[0])

    def sk(kind: str, linear: bool) -> Model:
        def run(x: Array, y: Array, t: Array, x_new: Array) -> Array:
            model = plain(binary, linear)
            learner = SLearner(model) if kind == "s" else TLearner(model)
            return learner.fit(x, y, t).predict(x_new)

        return run

    return {
        "baseline: random targeting": random,
        "baseline: S-learner, sklearn HGB defaults": sk("s", False),
        "baseline: two models, sklearn HGB defaults": sk("t", False),
        "baseline: S-learner, sklearn linear": sk("s", True),
        "baseline: two models, sklearn linear": sk("t", True),
    }


def sklift_models(binary: bool) -> dict[str, Model] | None:
    try:
        from sklift.models import ClassTransformation, SoloModel, TwoModels  # type: ignore[import-not-found]
    except ImportError:
        return None
    base = plain(binary, False)

    def wrap(factory: Callable[[], Any]) -> Model:
        def run(x: Array, y: Array, t: Array, x_new: Array) -> Array:
            return np.asarray(factory().fit(x, y, t).predict(x_new), dtype=np.float64)

        return run

    models = {
        "scikit-uplift: SoloModel": wrap(lambda: SoloModel(clone(base))),
        "scikit-uplift: TwoModels": wrap(lambda: TwoModels(clone(base), clone(base))),
        "scikit-uplift: TwoModels ddr_control": wrap(
            lambda: TwoModels(clone(base), clone(base), method="ddr_control")
        ),
    }
    if binary:
        models["scikit-uplift: ClassTransformation"] = wrap(
            lambda: ClassTransformation(clone(base))
        )
    return models


def causalml_models(binary: bool) -> dict[str, Model] | None:
    try:
        from causalml.inference.meta import (  # type: ignore[import-not-found]
            BaseSRegressor,
            BaseTRegressor,
            BaseXRegressor,
        )
        from causalml.inference.tree import (  # type: ignore[import-not-found]
            UpliftRandomForestClassifier,
        )
    except ImportError:
        return None

    def meta(cls: Any) -> Model:
        def run(x: Array, y: Array, t: Array, x_new: Array) -> Array:
            model = cls(learner=HistGradientBoostingRegressor())
            model.fit(x, treatment=t.astype(int), y=y)
            return np.asarray(model.predict(x_new), dtype=np.float64).ravel()

        return run

    def forest(x: Array, y: Array, t: Array, x_new: Array) -> Array:
        model = UpliftRandomForestClassifier(control_name="control", n_estimators=50)
        model.fit(x, treatment=np.where(t == 1, "treatment", "control"), y=y.astype(int))
        return np.asarray(model.predict(x_new), dtype=np.float64).ravel()

    models = {
        "causalml: S-learner": meta(BaseSRegressor),
        "causalml: T-learner": meta(BaseTRegressor),
        "causalml: X-learner": meta(BaseXRegressor),
    }
    if binary:
        models["causalml: uplift random forest"] = forest
    return models


def compare(outcome: str, seeds: int, out: Path) -> None:
    data = read_uplift_data(DATA, "segment", "Womens E-Mail", "No E-Mail", outcome, FEATURES)
    results: dict[str, list[tuple[float, float, float]]] = {}
    curves: dict[str, Any] = {}
    for seed in range(seeds):
        split = stratified_split(data.treated, 0.5, seed)
        x, y, t = data.x[split.train], data.y[split.train], data.treated[split.train]
        x_new, y_new, t_new = data.x[split.test], data.y[split.test], data.treated[split.test]
        models: dict[str, Model] = {
            f"ours: {n.upper()}-learner": ours(n, data.binary, seed) for n in ("x", "t", "dr", "s")
        }
        models |= baselines(data.binary, seed)
        for peer, found in (
            ("scikit-uplift", sklift_models(data.binary)),
            ("causalml", causalml_models(data.binary)),
        ):
            if found is None:
                if seed == 0:
                    print(f"{peer}: absent (not installed; compared with baselines instead)")
                continue
            models |= found
        for name, model in models.items():
            clock = time.perf_counter()
            try:
                uplift = model(x, y, t.astype(np.float64), x_new)
            except Exception as exc:  # a peer's failure is reported, not fatal
                print(f"{name}: failed ({type(exc).__name__}: {exc})")
                continue
            seconds = time.perf_counter() - clock
            s = score_uplift(y_new, uplift, t_new)
            results.setdefault(name, []).append((s.qini_coefficient, s.auuc_gain, seconds))
            if seed == 0 and name in ("ours: X-learner", "baseline: two models, sklearn linear"):
                curves[name] = qini_curve(y_new, uplift, t_new)
    print(f"\n{outcome}: {data.y.size:,} people, {seeds} seeds, out of sample (mean ± its s.e.)")
    print(f"{'model':46} {'Qini coefficient':>20} {'AUUC gain':>20} {'fit s':>7}")
    for name, rows in results.items():
        q, a, s = (np.array(c) for c in zip(*rows, strict=True))
        root = np.sqrt(max(q.size - 1, 1))
        print(
            f"{name:46} {q.mean():>10.4f} ± {q.std() / root:.4f} "
            f"{a.mean():>11.5f} ± {a.std() / root:.5f} {s.mean():>7.2f}"
        )
    mean = {n: float(np.mean([r[0] for r in rows])) for n, rows in results.items()}
    others = {n: v for n, v in mean.items() if not n.startswith("ours")}
    rival = max(others, key=lambda n: others[n])
    ok = mean["ours: X-learner"] >= others[rival]
    print(
        f"target: ours X-learner {mean['ours: X-learner']:.4f} >= best other "
        f"({rival}) {others[rival]:.4f}: {'met' if ok else 'NOT met'}"
    )
    path = qini_plot(curves, out / f"qini_{outcome}.png", title=f"Hillstrom {outcome}, seed 0")
    print(f"Qini plot: {path}")


def bandit(out: Path, rounds: int = 10_000, runs: int = 200) -> None:
    rates = np.array([0.04, 0.06])
    rng = np.random.default_rng(7)
    alpha, beta = np.ones((runs, 2)), np.ones((runs, 2))
    rows = np.arange(runs)
    thompson, split = np.empty((runs, rounds)), np.empty((runs, rounds))
    clock = time.perf_counter()
    for r in range(rounds):
        arm = thompson_choices(alpha, beta, rng)
        won = rng.random(runs) < rates[arm]
        alpha[rows, arm] += won
        beta[rows, arm] += ~won
        thompson[:, r] = rates.max() - rates[arm]
        split[:, r] = rates.max() - rates[rng.integers(0, 2, runs)]
    seconds = time.perf_counter() - clock
    total, fixed = thompson.sum(axis=1), split.sum(axis=1)
    half = rounds // 2
    print(
        f"\nThompson sampling, 0.04 vs 0.06, {rounds:,} rounds x {runs} runs "
        f"({runs * rounds / seconds:,.0f} decisions/s vectorized):"
    )
    print(
        f"  regret {total.mean():.1f} (median {np.median(total):.1f}; first half "
        f"{thompson[:, :half].sum(axis=1).mean():.1f}, second half "
        f"{thompson[:, half:].sum(axis=1).mean():.1f}) vs fixed 50/50 split {fixed.mean():.1f}: "
        f"{total.mean() / fixed.mean():.1%} of it"
    )
    path = regret_plot(
        {"Thompson sampling": thompson, "fixed 50/50 split": split}, out / "regret.png"
    )
    print(f"Regret plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--outcome", choices=("visit", "spend"), default=None)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args()
    for outcome in (args.outcome,) if args.outcome else ("visit", "spend"):
        compare(outcome, args.seeds, args.out)
    if args.outcome is None:
        bandit(args.out)


if __name__ == "__main__":
    main()
