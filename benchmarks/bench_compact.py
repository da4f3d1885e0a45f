"""What a compaction of the packed world costs the decisions served beside it.

A decision server holding everyone packed (:mod:`surmesure.decide.packed`) packs people back
as it serves them; once ``COMPACT_AT`` (20,000) are waiting, its serving thread moves them
into the world's index. This builds a world of ``--people`` packed people (texts of random
bytes, 150 to 250 each, read in spans of 5,000 ids as the server's start reads them), then,
for ``--rounds`` rounds, packs ``--since`` people back and compacts, two ways in turn:

- **merge**: :meth:`Packed.compact`, the people packed since merged into the sorted index;
- **whole sort**: the same people and index, sorted again whole (the index as each span's
  people, all concatenated and sorted, as compactions were made before the merge).

For each: the time of a compaction (median, max), and the longest a thread ticking every
millisecond beside it waited for its turn (a decision waits as long): the stall decisions see.

    python benchmarks/bench_compact.py [--people 1340000] [--since 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from rich.progress import track

from surmesure.decide.packed import Packed

SPAN = 5_000


def world(people: int, seed: int) -> Packed:
    """``people`` packed people (ids with gaps, as merges leave), read in spans of ids."""
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(int(people * 1.1), people, replace=False))
    lengths = rng.integers(150, 250, people)
    blob = rng.bytes(int(lengths.sum()))
    ends = np.cumsum(lengths)
    packed = Packed()
    for first in track(range(0, people, SPAN), description="packing the world"):
        last = min(first + SPAN, people)
        packed.add_span(
            {
                int(ids[n]): blob[int(ends[n] - lengths[n]) : int(ends[n])]
                for n in range(first, last)
            }
        )
    packed.index()
    return packed


def whole_sort(packed: Packed) -> None:
    """The index made again by sorting everyone: each span's people as a part, then the
    people packed since as the last."""
    ids, span, starts, ends, texts = packed._index
    order = np.argsort(span, kind="stable")
    bounds = np.searchsorted(span[order], np.arange(len(texts) + 1))
    parts = [
        (ids[order[a:b]], starts[order[a:b]], ends[order[a:b]])
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)
    ]
    taken = dict(packed.since)
    new = sorted(taken)
    lengths = np.array([len(taken[p] or b"") for p in new], np.int64)
    new_ends = np.cumsum(lengths)
    parts.append((np.array(new, np.int64), new_ends - lengths, new_ends))
    all_ids, all_starts, all_ends = (np.concatenate(a) for a in zip(*parts, strict=True))
    numbers = np.concatenate([np.full(len(p[0]), n, np.int32) for n, p in enumerate(parts)])
    order = np.argsort(all_ids, kind="stable")
    all_ids, numbers = all_ids[order], numbers[order]
    all_starts, all_ends = all_starts[order], all_ends[order]
    last = np.append(all_ids[1:] != all_ids[:-1], True)
    texts_all = (*texts, b"".join(taken[p] or b"" for p in new))
    packed._index = (all_ids[last], numbers[last], all_starts[last], all_ends[last], texts_all)
    packed.since = {}


def stalled(work: Callable[[], Any]) -> tuple[float, float]:
    """``work``'s seconds, and the longest a thread ticking every millisecond waited."""
    done, worst = threading.Event(), [0.0]

    def tick() -> None:
        before = time.perf_counter()
        while not done.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            worst[0] = max(worst[0], now - before - 0.001)
            before = now

    ticker = threading.Thread(target=tick)
    ticker.start()
    time.sleep(0.02)
    start = time.perf_counter()
    work()
    took = time.perf_counter() - start
    done.set()
    ticker.join()
    return took, worst[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_340_000)
    parser.add_argument("--since", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    packed = world(args.people, 1)
    held = list(packed)
    rng = random.Random(2)
    times: dict[str, list[tuple[float, float]]] = {"merge": [], "whole sort": []}
    lock = threading.Lock()
    for n in track(range(args.rounds * 2), description="compacting"):
        way = "merge" if n % 2 == 0 else "whole sort"
        for pid in rng.sample(held, args.since):
            packed.since[pid] = rng.randbytes(rng.randint(150, 250))
        work = (lambda: packed.compact(lock)) if way == "merge" else (lambda: whole_sort(packed))
        times[way].append(stalled(work))
    print(f"{args.people:,} people packed; {args.since:,} packed since, {args.rounds} rounds")
    for way, runs in times.items():
        took = [t for t, _ in runs]
        worst = [w for _, w in runs]
        print(
            f"{way:>10}: compaction median {statistics.median(took) * 1e3:7.1f} ms, "
            f"max {max(took) * 1e3:7.1f} ms; longest stall beside it "
            f"{statistics.median(worst) * 1e3:6.1f} ms median, {max(worst) * 1e3:6.1f} ms max"
        )
    merged = statistics.median(t for t, _ in times["merge"])
    whole = statistics.median(t for t, _ in times["whole sort"])
    print(f"whole sort / merge: {whole / merged:.1f}x")


if __name__ == "__main__":
    main()
