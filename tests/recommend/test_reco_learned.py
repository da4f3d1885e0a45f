"""On a real slice of Online Retail II (a quarter of the customers), the recommendations with
learned neighbours and tastes beat popularity on the following two months, both scored here
from the raw lines, apart from :mod:`surmesure.decide.recommend.evaluate`."""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from conftest import dataset
from surmesure.collect.importer import import_file
from surmesure.decide.recommend import learned, model, people, service
from surmesure.decide.recommend.guardrails import Policy
from surmesure.store import open_store

PRESET = Path(service.__file__).parents[2] / "collect" / "presets" / "online-retail.yaml"
CUTOFF = datetime(2010, 7, 1)  # London time; the shop is closed around midnight
UNTIL = "2010-09-01"
K = 10


def _is_product(code: str, fees: set[str], patterns: list[str]) -> bool:
    return code not in fees and not any(re.search(p, code) for p in patterns)


def test_learned_beats_popularity_on_a_real_slice(tmp_path: Path) -> None:
    table = pq.read_table(dataset("online_retail_II/online_retail_II_2009_2010.parquet"))
    customer = table["Customer ID"]
    keep = pc.and_(
        pc.equal(pc.bit_wise_and(pc.fill_null(customer, 1), 3), 0),
        pc.less(table["InvoiceDate"], UNTIL),
    )
    slice_ = table.filter(keep)
    path = tmp_path / "slice.parquet"
    pq.write_table(slice_, path)

    rules = yaml.safe_load(PRESET.read_text())["rules"]["fees"]
    fees, patterns = set(rules["codes"]), list(rules["patterns"])
    before: dict[str, set[str]] = {}
    after: dict[str, set[str]] = {}
    cutoff = CUTOFF.strftime("%Y-%m-%d")
    for row in slice_.select(
        ["Invoice", "StockCode", "Quantity", "InvoiceDate", "Customer ID"]
    ).to_pylist():
        if row["Invoice"].startswith("C") or row["Quantity"] <= 0:
            continue
        if not _is_product(row["StockCode"], fees, patterns):
            continue
        side = before if row["InvoiceDate"] < cutoff else after
        side.setdefault(str(row["Customer ID"]), set()).add(row["StockCode"])
    targets = {c: s - before[c] for c, s in after.items() if c in before and s - before[c]}
    buyers = Counter(code for codes in before.values() for code in codes)
    ranked = [code for code, _ in sorted(buyers.items(), key=lambda item: (-item[1], item[0]))]

    store = open_store(f"duckdb:///{tmp_path / 'slice.duckdb'}")
    try:
        import_file(store, "orders", path, preset="online-retail")
        model.clear_cache()
        with store.connect() as conn:
            customers = {c: pid for pid, c in people.customer_ids(store, conn).items()}
            built = model.get_model(store, conn, CUTOFF)
        wanted = {customers[c] for c in targets}
        lists = {
            pid: recs
            for pid, _, recs in service.recommend_all(
                store, k=K, as_of=CUTOFF, policy=Policy(bought_window_days=None),
                person_ids=wanted,
            )
        }  # fmt: skip
    finally:
        store.dispose()
        model.clear_cache()
    assert built.learned is not None  # enough buyers for the learned signals to take part
    ours = {pid: [r.product_code for r in recs] for pid, recs in lists.items()}
    # every item says why, in the learned signals' words where they put it first
    reasons = Counter(r.reason.split(" who bought ")[0] for recs in lists.values() for r in recs)
    assert set(reasons) <= {
        "bought by customers",
        "liked by customers like you",
        "popular lately",
        "popular",
    }, reasons
    assert min(reasons["bought by customers"], reasons["liked by customers like you"]) > 100

    def scores(top: dict[str, list[str]]) -> tuple[float, float]:
        hit = ndcg = 0.0
        for c, new in targets.items():
            places = [i for i, code in enumerate(top[c][:K]) if code in new]
            hit += bool(places)
            ideal = sum(1 / math.log2(i + 2) for i in range(min(K, len(new))))
            ndcg += sum(1 / math.log2(i + 2) for i in places) / ideal
        return hit / len(targets), ndcg / len(targets)

    popular = {
        c: [p for p in ranked[: K + len(before[c])] if p not in before[c]][:K] for c in targets
    }
    mine = {c: ours[customers[c]] for c in targets}
    assert len(targets) > 200
    assert all(len(top) == K and not set(top) & before[c] for c, top in mine.items())
    pop_hit, pop_ndcg = scores(popular)
    hit, ndcg = scores(mine)
    assert hit >= 1.25 * pop_hit, (hit, pop_hit)
    assert ndcg >= 1.25 * pop_ndcg, (ndcg, pop_ndcg)


def test_a_newcomer_is_folded_in_as_implicit_would() -> None:
    """The factors of a person who arrived after the fit match implicit's own recomputation
    of a person's factors from the same purchases."""
    from implicit.als import AlternatingLeastSquares
    from scipy.sparse import csr_matrix
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(3)
    dense = (rng.random((80, 40)) < 0.15) * rng.integers(1, 4, (80, 40))
    matrix = csr_matrix(dense.astype(np.float32))
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(factors=8, iterations=5, regularization=0.1, random_state=1)
        als.fit(matrix, show_progress=False)
    for u in (0, 17, 42):
        counts = {int(j): float(dense[u, j]) for j in np.flatnonzero(dense[u])}
        mine = learned.fold_in(als.item_factors, counts, 0.1)
        theirs = np.asarray(als.recalculate_user(u, matrix[u])).ravel()
        assert np.allclose(mine, theirs, rtol=1e-3, atol=1e-4), (u, mine, theirs)
        # the products' part made once for everyone gives the same factors
        gram = learned.gram_of(als.item_factors, 0.1)
        assert np.array_equal(learned.fold_in(als.item_factors, counts, 0.1, gram), mine)
