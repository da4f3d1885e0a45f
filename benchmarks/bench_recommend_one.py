"""What ranking one person costs on the decision path: ``recommend(store, pid, person=data,
k=4)`` for people decided for the first time (the list is then kept, see
``service._picked``), the processor time of the calling thread per person, buyers (whose
ranking runs the learned signals and ranker) and people with no purchase apart.

The people are the model's, shuffled with a fixed seed: ``--people`` of them, the same on
every side. Each side runs in a child process whose ``PYTHONPATH`` starts with the code
measured, so ``--baseline REF`` times a commit's code (a temporary ``git worktree``, removed
afterwards) on the same store, the two alternating round by round so that the machine's load
falls on both. A figure is the median over the rounds of a round's mean per person; each
round also hands back every list (codes, names, scores, reasons), and the lists of both sides
must be equal person by person, or the benchmark fails naming the first person who differs.

The store is a DuckDB file holding a kept recommendation model (a world built by
``bench_world_build.py`` and fitted with ``surmesure recommend --fit``); it is only read.

Measured at 737966b against 575d337 (``--baseline 575d337 --rounds 4 --people 1500``, a
world of 5,000 customers with its kept model, 755 buyers and 745 people with no purchase, a
two-core machine at load average 5): 1.785 ms of CPU per buyer against 2.966 (x0.60; rounds
1.70 to 1.84 against 1.96 to 3.19), 0.127 ms against 0.128 for the others, the lists equal
person by person on every round. At load average 3 to 4 the ratio was x0.55 (1.225 against
2.230). What it saved: the ranker is asked of today's first ``KEEP`` products only (the blend
reads no other), one person's features are gathered by product rather than sorted out of
every candidate, the leaves a product's own features leave are found once a model, a few
rows' leaf values are summed down the trees in one call, the blend of one person sorts in
Python from today's order, and the lists are filtered by comprehension.

    python benchmarks/bench_recommend_one.py STORE.duckdb [--people 1500] [--rounds 4]
        [--baseline REF] [--json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from gitref import run_child, sides

CHILD = """
import random, sys, time, orjson, surmesure
from surmesure.store import open_store
from surmesure.decide.recommend import model as m, service
path, people = sys.argv[1], int(sys.argv[2])
store = open_store(f"duckdb:///{path}", migrate=False)
with store.connect() as c:
    mdl = m.get_model(store, c, None)
ids = sorted(mdl.people)
random.Random(3).shuffle(ids)
datas = [m.person_data(store, mdl, pid) for pid in ids[:people]]
warm = [m.person_data(store, mdl, pid) for pid in ids[people:people + 50]]
for d in warm:  # the model's memos (priors, verdicts, tables) made before the clock runs
    service.recommend(store, d.person_id, person=d, k=4)
buyers, others, lists = [], [], []
for d in datas:
    used = time.thread_time()
    found = service.recommend(store, d.person_id, person=d, k=4)
    used = time.thread_time() - used
    (buyers if d.purchases else others).append(used)
    lists.append([d.person_id, [[r.product_code, r.name, r.category, r.price, r.score,
                                 r.reason] for r in found]])
store.dispose()
sys.stdout.write(orjson.dumps({"buyers": buyers, "others": others, "lists": lists,
                               "package": surmesure.__file__}).decode())
"""


def measure(src: Path, path: str, people: int) -> dict[str, Any]:
    """One child process ranking ``people`` people with the code of ``src``."""
    return run_child(src, CHILD, path, str(people))


def first_difference(mine: list[Any], theirs: list[Any]) -> str | None:
    """The first person whose lists differ, said in a sentence (``None``: all equal)."""
    if len(mine) != len(theirs):
        return f"{len(mine)} people against {len(theirs)}"
    for (pid, a), (other, b) in zip(mine, theirs, strict=True):
        if pid != other or a != b:
            return f"person {pid}: {a} against {b}"
    return None


def compare(sides: dict[str, Path], path: str, args: argparse.Namespace) -> dict[str, Any]:
    """Per side, each round's mean processor time per buyer and per other person (ms); the
    sides alternate round by round and every round's lists are checked against the first's."""
    rounds: dict[str, dict[str, list[float]]] = {n: {"buyers": [], "others": []} for n in sides}
    reference: list[Any] | None = None
    counts = {"buyers": 0, "others": 0}
    order = list(sides)
    for turn in range(args.rounds):
        for name in order if turn % 2 == 0 else order[::-1]:
            got = measure(sides[name], path, args.people)
            if reference is None:
                reference = got["lists"]
            elif (found := first_difference(got["lists"], reference)) is not None:
                raise SystemExit(f"{name} ranks differently: {found}")
            for part in ("buyers", "others"):
                counts[part] = len(got[part])
                if got[part]:
                    rounds[name][part].append(1e3 * statistics.fmean(got[part]))
    return {"rounds": rounds, "counts": counts, "lists_equal": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", help="a DuckDB file with a kept recommendation model")
    parser.add_argument("--people", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--baseline", metavar="REF", help="a commit to compare with")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    path = str(Path(args.store).resolve())
    with sides(args.baseline) as code:
        result = compare(code, path, args)
    if args.json:
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
        return
    counts = result["counts"]
    table = Table(
        "code", f"CPU ms per buyer ({counts['buyers']})", "each round", "ratio",
        f"CPU ms per other ({counts['others']})", "ratio",
    )  # fmt: skip
    medians = {
        name: {part: statistics.median(v) if v else 0.0 for part, v in got.items()}
        for name, got in result["rounds"].items()
    }
    first = next(iter(medians.values()))
    for name, got in medians.items():
        table.add_row(
            name,
            f"{got['buyers']:.3f}",
            " ".join(f"{v:.2f}" for v in result["rounds"][name]["buyers"]),
            f"{got['buyers'] / first['buyers']:.2f}" if first["buyers"] else "-",
            f"{got['others']:.3f}",
            f"{got['others'] / first['others']:.2f}" if first["others"] else "-",
        )
    Console().print(table)
    Console().print(f"lists equal person by person on every round: {result['lists_equal']}")


if __name__ == "__main__":
    main()
