"""Everyone's recommendations in blocks, on every processor: what ``recommend --all`` runs.

Each block of :data:`CHUNK` people is ranked at once (:func:`~surmesure.decide.recommend.batch.
pick_many`, one array operation for the block, the learned ranker scoring the block in one
call), and whom that leaves to the one-person path is ranked one by one. With many people and
several processors, worker processes forked from this one (so they share its model and stock
without copying them) rank the blocks side by side; the lists come back in the people's
order, the same lists as one process gives.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from surmesure.decide.recommend.guardrails import Policy, Stock
from surmesure.decide.recommend.scoring import Scoring

if TYPE_CHECKING:
    from surmesure.decide.recommend.model import Model
    from surmesure.decide.recommend.people import PersonData
    from surmesure.decide.recommend.service import Recommendation

CHUNK = 1000
"""People ranked together: the learned ranker scores each block in one call."""
PARALLEL_FROM = 20_000
"""Fewer people than this are ranked in this process (starting workers costs more)."""


@dataclass(frozen=True)
class Job:
    """What every block is ranked with."""

    model: Model
    stock: Stock
    k: int
    exclude_categories: tuple[str, ...]
    per_category: int
    policy: Policy | None
    scoring: Scoring


def rank_block(job: Job, datas: Sequence[PersonData]) -> list[list[Recommendation]]:
    """The lists of one block of people, in their order."""
    from surmesure.decide.recommend.batch import pick_many
    from surmesure.decide.recommend.service import pick, ranked_many

    picked: list[list[Recommendation] | None] = (
        [None] * len(datas)
        if job.exclude_categories
        else pick_many(
            job.model, job.stock, [(data, None, None) for data in datas], k=job.k,
            per_category=job.per_category, policy=job.policy, scoring=job.scoring,
        )
    )  # fmt: skip
    rest = [i for i, found in enumerate(picked) if found is None]
    for i, ranked in zip(rest, ranked_many(job.model, [datas[i] for i in rest], job.scoring),
                         strict=True):  # fmt: skip
        picked[i] = pick(
            job.model, datas[i], ranked, job.stock, job.k, None, job.exclude_categories,
            job.per_category, job.policy,
        )  # fmt: skip
    return [found for found in picked if found is not None]


def workers(people: int, told: int = 0) -> int:
    """How many processes rank ``people``: ``told`` (the ``recommend_workers`` setting) when
    not 0, else the processors this process may use, one below :data:`PARALLEL_FROM` people."""
    if told:
        return told
    if people < PARALLEL_FROM:
        return 1
    return max(1, len(os.sched_getaffinity(0)))


#: the job and the people of the workers, set before they fork (they read them, not a copy)
_shared: list[tuple[Job, Sequence[PersonData]]] = []


def _in_worker(start: int) -> list[list[Recommendation]]:
    job, datas = _shared[0]
    return rank_block(job, datas[start : start + CHUNK])


def rank_all(
    job: Job, datas: Sequence[PersonData], told: int = 0
) -> Iterator[list[Recommendation]]:
    """The lists of ``datas``, in their order, block by block (on several processes when
    :func:`workers` says so)."""
    starts = range(0, len(datas), CHUNK)
    count = min(workers(len(datas), told), len(starts))
    if count <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for start in starts:
            yield from rank_block(job, datas[start : start + CHUNK])
        return
    _shared[:] = [(job, datas)]
    try:
        with multiprocessing.get_context("fork").Pool(count) as pool:
            for lists in pool.imap(_in_worker, starts, chunksize=1):
                yield from lists
    finally:
        _shared.clear()
