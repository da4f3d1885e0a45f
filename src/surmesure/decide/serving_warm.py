"""Everyone read into a decision server's memory at start (:meth:`surmesure.decide.serving.
Serving.warm_cache`): as the serving cache's objects when they fit in its bound, else packed
(:mod:`surmesure.decide.packed`), a span of person ids at a time. Each read agrees with the
decision log: the exposures it wrote during the read, or has not written yet, are noted."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from surmesure.decide.packed import Identifiers, Packed, pack
from surmesure.decide.whole_view import ServingView, build_view
from surmesure.protect import atrest
from surmesure.store import schema
from surmesure.unify.reader import PersonRead

if TYPE_CHECKING:
    from surmesure.decide.serving import Serving
    from surmesure.decide.serving_cache import ServingCache

log = logging.getLogger("surmesure.decide.serving")

PACK_SPAN = 2_000
"""Person ids read at a time when everyone is packed: what a span's read makes and frees stays
small (the interpreter keeps the memory it once took: 20,000 at a time left 460 MB more of it
at 50,000 customers, 2,000 left 130 MB, and took less time)."""


def take_everyone(serving: Serving, cache: ServingCache) -> int:
    """Everyone read into ``cache``'s objects (those already held, read on a miss
    meanwhile, are kept); how many it took in."""
    since = serving.log.generation
    with serving.store.connect() as conn:
        whole = build_view(conn, cache.metrics)
    pending = serving.log.shown_since(since)  # with what the log wrote meanwhile
    if pending is None:  # more than the log keeps: read again, no write meanwhile
        with serving._flush_lock, serving.store.connect() as conn:
            whole = build_view(conn, cache.metrics)
            pending = serving.log.shown()
    with serving._view_lock:
        cache.complete = False
        taken = 0
        for pid in whole.people:  # someone with no rows yet reads as empty
            if pid not in cache.reads and len(cache.reads) < cache.limit:
                read = whole.reads.get(pid) or PersonRead(pid)
                cache.reads[pid] = replace(read, seen=dict(whole.seen.get(pid, {})))
                taken += 1
        whole_ids = len(whole.ids) <= 2 * cache.limit
        for key, pid in whole.ids.items():
            if len(cache.ids) >= 2 * cache.limit:
                break
            cache.ids.setdefault(key, pid)
        for pid, content_ids, at in pending:  # not written yet: not in the store
            if pid in cache.reads:
                cache.note_shown(pid, content_ids, at)
        cache.complete = whole_ids and all(p in cache.reads for p in whole.people)
    return taken


def pack_everyone(serving: Serving, cache: ServingCache) -> int:
    """Everyone read into a packed world (:mod:`surmesure.decide.packed`), a span of
    :data:`PACK_SPAN` person ids at a time (each table's zone maps skip the others' rows),
    then served from: meanwhile, decisions read from the world packed before, if any,
    else from the store on a miss. How many people it packed."""
    p = schema.people
    with serving.store.connect() as conn:
        low, high = conn.execute(
            sa.select(sa.func.min(p.c.person_id), sa.func.max(p.c.person_id))
        ).one()
        ring = atrest.keyring(conn)
    epoch = ring.epoch
    packed = Packed()
    parts: list[Identifiers] = []
    key_nodes: list[Any] = []
    keys: list[bytes] = []
    cache.filling = packed
    try:
        for first in range(int(low or 0), int(high or -1) + 1, PACK_SPAN):
            with serving.store.connect() as conn:  # the data keys decisions are sealed under
                nodes, blob = ring.keys_between(conn, first, first + PACK_SPAN - 1)
            key_nodes.append(nodes)
            keys.append(blob)
            part = _read_span(serving, cache, (first, first + PACK_SPAN - 1))
            packed.add_span(
                {
                    pid: pack(replace(read, seen=part.seen.get(pid, {})), packed.names)
                    for pid in part.people
                    for read in [part.reads.get(pid) or PersonRead(pid)]
                }
            )
            parts.append(Identifiers.of(part.ids))
            if serving._stop.is_set():
                return 0
        packed.identifiers = Identifiers.joined(parts)
        packed.index()
        cache.take_packed(packed)
        ring.hold(np.concatenate([np.zeros(0, np.int64), *key_nodes]), b"".join(keys), epoch)
    finally:
        cache.filling = None
    taken = packed.count()
    log.info("serving cache: %d people packed in %.0f MB", taken, packed.nbytes() / 2**20)
    return taken


def _read_span(serving: Serving, cache: ServingCache, span: tuple[int, int]) -> ServingView:
    """Everyone of ``span`` read whole, with the exposures of the decisions the log
    wrote meanwhile or has not written yet."""
    shown = None
    for _ in range(3):  # a read longer than the log keeps its flushes: read again
        since = serving.log.generation
        with serving.store.connect() as conn:
            part = build_view(conn, cache.metrics, span)
        shown = serving.log.shown_since(since, part.people)
        if shown is not None:
            break
    if shown is None:
        shown = serving.log.shown(part.people)
    for pid, content_ids, at in shown:
        part.note_shown(pid, content_ids, at)
    return part
