"""Everyone a decision server serves, packed: each person's rows in some 200 bytes, so that
a world of millions stays in memory whole and no decision reads the store.

The serving cache (:mod:`surmesure.decide.serving_cache`) keeps the people decided for lately
as objects (:class:`~surmesure.unify.reader.PersonRead`, some kilobytes each). Past its bound,
a world that fits ``serving_packed_people`` is read whole at start, a span of person ids at a
time (:meth:`surmesure.decide.serving.Serving.warm_cache`), and kept here (:class:`Packed`):

- each person's consents, preferences, trait observations, segments, derived metrics and
  exposure ledger as one compact text, compressed (:func:`pack`: 550 bytes of text, 200
  compressed, on the generated world), names written once in a table of their own
  (:class:`Names`), times as whole microseconds;
- the identifiers decisions look people up by as sorted arrays (:class:`Identifiers`: the
  blind index's 32 bytes, its kind and the holder, 41 bytes an identifier, where a dictionary
  of the text keys takes some 250).

A decision for someone packed unpacks them (:func:`unpack`, some 25 µs) into the cache's
objects; the one the cache then drops, least recently used, is packed back with what it
learnt meanwhile: their text as it was with their new ledger after it (:func:`with_ledger`)
when the ledger is all that changed, else packed anew.
"""

from __future__ import annotations

import threading
import zlib
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from surmesure.domain.traits import Observation
from surmesure.protect.consent import Record
from surmesure.protect.marketing import Preference
from surmesure.unify.reader import PersonRead

_EPOCH = datetime(1970, 1, 1)
_MICRO = timedelta(microseconds=1)
_KINDS = ("anonymous_id", "customer_id")
"""The kinds of identifier decisions look people up by (the arrays' kind codes)."""
STALE = 0.5
"""The share of a span's text packed over since (dead copies) past which a compaction writes
the span again with only the texts still found there."""


class Names:
    """Every name packed people share (purposes, channels, trait names, sources, segments,
    contents, preference kinds), each written once: a person holds its number."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.numbers: dict[str, int] = {}
        self._lock = threading.Lock()

    def number(self, name: str) -> int:
        found = self.numbers.get(name)
        if found is not None:
            return found
        with self._lock:  # two threads packing the same new name give it one number
            found = self.numbers.get(name)
            if found is None:
                found = self.numbers[name] = len(self.names)
                self.names.append(name)
            return found


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // _MICRO


def _time(micros: int) -> datetime:
    return _EPOCH + _MICRO * micros  # half the cost of timedelta(microseconds=micros)


def pack(read: PersonRead, names: Names) -> bytes:
    """``read`` (of a root person, with their whole ledger in ``seen``) as compact text,
    compressed (a third of its size, for 3 µs to open)."""
    n = names.number
    text = orjson.dumps(
        [
            [
                [n(c.purpose), n(c.channel), c.granted, _micros(c.recorded_at), c.consent_id]
                for c in read.consents
            ],
            [
                [n(o.name), o.value, n(o.source), _micros(o.observed_at), o.reliability]
                for o in read.observations
            ],
            [n(s) for s in read.segments],
            [
                [n(name), [[on, _micros(at), *_day(of), value] for on, at, of, value in rows]]
                for name, rows in read.metrics.items()
            ],
            [[n(c), _micros(t)] for c, t in read.seen.items()],
            [
                [
                    n(p.kind), n(p.name), p.value,
                    None if p.until is None else _micros(p.until),
                    _micros(p.recorded_at), p.preference_id,
                ]
                for p in read.preferences
            ],
        ]
    )  # fmt: skip
    return zlib.compress(text, 1)


def with_ledger(base: bytes, seen: Mapping[str, datetime], names: Names) -> bytes:
    """``base`` (:func:`pack`'s text, no ledger after it) with ``seen`` after it, which
    :func:`unpack` reads instead of the ledger packed in ``base``: a person unpacked for a
    decision, whose ledger alone it changed, is packed back for 1 µs, not 35."""
    n = names.number
    return base + orjson.dumps([[n(c), _micros(t)] for c, t in seen.items()])


def unpack(person_id: int, data: bytes, names: Names) -> PersonRead:
    """What :func:`pack` (or :func:`with_ledger`) packed, as the cache's objects."""
    return unpack_based(person_id, data, names)[0]


def unpack_based(person_id: int, data: bytes, names: Names) -> tuple[PersonRead, bytes]:
    """:func:`unpack`, and the text without a ledger :func:`with_ledger` wrote after it."""
    opened = zlib.decompressobj()
    consents, observations, segments, metrics, seen, preferences = orjson.loads(
        opened.decompress(data)
    )
    ledger = opened.unused_data
    if ledger:
        seen = orjson.loads(ledger)
    base = data[: len(data) - len(ledger)] if ledger else data
    name = names.names
    read = PersonRead(
        person_id,
        consents=[Record(name[p], name[c], g, _time(t), i) for p, c, g, t, i in consents],
        observations=[
            Observation(name[k], v, name[s], _time(t), r) for k, v, s, t, r in observations
        ],
        segments=frozenset(name[s] for s in segments),
        metrics={
            name[k]: [
                (on, _time(at), _as_of(timed, of), value) for on, at, timed, of, value in rows
            ]
            for k, rows in metrics
        },
        seen={name[c]: _time(t) for c, t in seen},
        preferences=[
            Preference(name[k], name[m], v, None if u is None else _time(u), _time(t), i)
            for k, m, v, u, t, i in preferences
        ],
    )
    return read, base


def _as_of(timed: bool, of: int) -> Any:
    """:func:`_day`'s two numbers as the ``as_of`` they were."""
    return _time(of) if timed else date.fromordinal(of)


def _day(of: Any) -> tuple[bool, int]:
    """A metric row's ``as_of`` as it was read (a date, or a timestamp), as two numbers."""
    if isinstance(of, datetime):
        return True, _micros(of)
    day = of if isinstance(of, date) else date.fromisoformat(str(of))
    return False, day.toordinal()


def _found(digests: NDArray[Any], digest: bytes) -> int:
    """Where ``digest`` goes in the sorted ``digests`` (32 bytes each), found holding the
    interpreter lock: numpy's search lets it go, and a decision that lets it go may wait
    milliseconds for a busy thread to give it back."""
    size = digests.itemsize
    flat = memoryview(digests.data).cast("B")
    return bisect_left(
        range(len(digests)), digest, key=lambda i: flat[size * i : size * i + size].tobytes()
    )


class Identifiers:
    """The lookup identifiers of everyone packed, sorted by their blind index (its 32 bytes),
    with each one's kind and holder; found by binary search."""

    def __init__(
        self,
        digests: NDArray[Any] | None = None,
        kinds: NDArray[np.int8] | None = None,
        holders: NDArray[np.int64] | None = None,
    ) -> None:
        self.digests: NDArray[Any] = np.zeros(0, "S32") if digests is None else digests
        self.kinds: NDArray[np.int8] = np.zeros(0, np.int8) if kinds is None else kinds
        self.holders: NDArray[np.int64] = np.zeros(0, np.int64) if holders is None else holders

    @classmethod
    def of(cls, held: Mapping[tuple[str, str], int]) -> Identifiers:
        """``(kind, blind index)`` -> holder, those of the kinds decisions look up by."""
        rows = [(_KINDS.index(k), bytes.fromhex(v), p) for (k, v), p in held.items() if k in _KINDS]
        return cls(
            np.array([r[1] for r in rows], dtype="S32"),
            np.array([r[0] for r in rows], dtype=np.int8),
            np.array([r[2] for r in rows], dtype=np.int64),
        )._sorted()

    @classmethod
    def joined(cls, parts: Sequence[Identifiers]) -> Identifiers:
        if not parts:
            return cls()
        return cls(
            np.concatenate([p.digests for p in parts]),
            np.concatenate([p.kinds for p in parts]),
            np.concatenate([p.holders for p in parts]),
        )._sorted()

    def _sorted(self) -> Identifiers:
        order = np.argsort(self.digests, kind="stable")
        return Identifiers(self.digests[order], self.kinds[order], self.holders[order])

    def __len__(self) -> int:
        return len(self.holders)

    def holder(self, key: tuple[str, str]) -> int | None:
        """Who holds ``(kind, blind index)``, if anyone packed does."""
        kind, value = key
        if kind not in _KINDS or len(value) != 64:
            return None
        try:
            digest = bytes.fromhex(value)
        except ValueError:
            return None
        code = _KINDS.index(kind)
        at = _found(self.digests, digest)
        # an element read back loses its trailing zero bytes: compare the 32 bytes held
        while at < len(self.digests) and self.digests[at : at + 1].tobytes() == digest:
            if self.kinds[at] == code:
                return int(self.holders[at])
            at += 1
        return None

    @property
    def nbytes(self) -> int:
        return int(self.digests.nbytes + self.kinds.nbytes + self.holders.nbytes)


def _merged(
    index: tuple[Any, ...],
    new: NDArray[np.int64],
    starts: NDArray[np.int64],
    ends: NDArray[np.int64],
    text: bytes,
) -> tuple[Any, ...]:
    """``index`` (:meth:`Packed._indexed`'s) with one more span: ``text``, holding the people
    ``new`` (sorted) from ``starts`` to ``ends``, found there from now on. Those already in
    the index are pointed at it, the others put in their place: a pass over the index's
    arrays, where sorting it again took a second and a half of a busy server on a million."""
    ids, span, at_start, at_end, texts = index
    number = len(texts)
    at = np.searchsorted(ids, new)
    there = np.zeros(len(new), bool)
    if len(ids):
        inside = at < len(ids)
        there[inside] = ids[at[inside]] == new[inside]
    span, at_start, at_end = span.copy(), at_start.copy(), at_end.copy()
    span[at[there]] = number
    at_start[at[there]], at_end[at[there]] = starts[there], ends[there]
    fresh, where = ~there, at[~there]
    return (
        np.insert(ids, where, new[fresh]),
        np.insert(span, where, np.int32(number)),
        np.insert(at_start, where, starts[fresh]),
        np.insert(at_end, where, ends[fresh]),
        (*texts, text),
    )


def _rewritten(index: tuple[Any, ...]) -> tuple[Any, ...]:
    """``index``, the spans whose texts are more than :data:`STALE` copies packed over since
    written again as one span (the last) of the texts still found there."""
    ids, span, starts, ends, texts = index
    found = np.bincount(span, weights=ends - starts, minlength=len(texts))
    sizes = np.fromiter(map(len, texts), np.float64, len(texts))
    stale = found < (1.0 - STALE) * sizes
    if not stale.any():
        return index
    moved = stale[span]
    lengths = (ends - starts)[moved]
    text = b"".join(
        texts[n][a:b]
        for n, a, b in zip(
            span[moved].tolist(), starts[moved].tolist(), ends[moved].tolist(), strict=True
        )
    )
    kept = ~stale
    number = (np.cumsum(kept) - 1).astype(np.int32)  # a kept span's place among those kept
    span = number[span]
    span[moved] = int(kept.sum())
    new_ends = np.cumsum(lengths)
    starts, ends = starts.copy(), ends.copy()
    starts[moved], ends[moved] = new_ends - lengths, new_ends
    kept_texts = (t for t, k in zip(texts, kept.tolist(), strict=True) if k)
    return ids, span, starts, ends, (*kept_texts, text)


class Packed:
    """Everyone packed (see the module).

    The people read whole lie in spans (:meth:`add_span`): one text for all of a span's
    people end to end, with sorted arrays of their ids, span and place, so that a million
    people are a few hundred objects, none of which the interpreter's small-object pools hold
    beside what a build frees. Those packed since (dropped from the cache with a new ledger,
    changed, new) are in ``since`` (person id -> text, ``None``: nobody any more), which wins
    until :meth:`compact` moves them into a span of their own; a compaction also writes again
    the spans that have become mostly copies packed over since (:data:`STALE`), so a server
    deciding for hours holds each person once, not each text they ever had. The identifiers
    as read (:class:`Identifiers`) and those learnt since (``learnt``: ``(kind, blind index)``
    -> holder, ``None`` for one no longer held); the shared :class:`Names`."""

    def __init__(self) -> None:
        self.names = Names()
        self.since: dict[int, bytes | None] = {}
        self.identifiers = Identifiers()
        self.learnt: dict[tuple[str, str], int | None] = {}
        # the spans added and not yet indexed: their texts, and their ids, starts and ends
        self._texts: list[bytes] = []
        self._parts: list[tuple[NDArray[np.int64], ...]] = []
        # sorted ids, the span of each, where each one's text starts and ends in it, and the
        # spans' texts: one attribute, so that a reader sees one index whole while
        # :meth:`compact` makes the next
        empty = np.zeros(0, np.int64)
        self._index: tuple[Any, ...] = (empty, np.zeros(0, np.int32), empty, empty, ())

    def add_span(self, texts: Mapping[int, bytes]) -> None:
        """The texts of a span's people (person id -> :func:`pack`'s text; empty: nobody),
        found once :meth:`index` has run; a person in a later span is found there."""
        ids = sorted(texts)
        lengths = np.array([len(texts[p]) for p in ids], dtype=np.int64)
        ends = np.cumsum(lengths)
        self._texts.append(b"".join(texts[p] for p in ids))
        self._parts.append((np.array(ids, dtype=np.int64), ends - lengths, ends))

    def index(self) -> None:
        """Make the spans added findable (each person in the last span that has them): all
        of them sorted at once into an empty index, else each merged into the one in hand."""
        index = self._index
        if not len(index[0]) and not index[4]:
            index = self._indexed()
        else:
            for text, (ids, starts, ends) in zip(self._texts, self._parts, strict=True):
                index = _merged(index, ids, starts, ends, text)
        self._index = index
        self._texts, self._parts = [], []  # the index holds them

    def _indexed(self) -> tuple[Any, ...]:
        if not self._parts:
            return self._index
        ids, starts, ends = (np.concatenate(arrays) for arrays in zip(*self._parts, strict=True))
        span = np.concatenate(
            [np.full(len(part[0]), n, np.int32) for n, part in enumerate(self._parts)]
        )
        order = np.argsort(ids, kind="stable")  # a person's spans stay in order
        ids, span, starts, ends = ids[order], span[order], starts[order], ends[order]
        last = np.append(ids[1:] != ids[:-1], True)
        return ids[last], span[last], starts[last], ends[last], tuple(self._texts)

    def compact(self, lock: AbstractContextManager[Any]) -> int:
        """Move the people packed since into a span of their own (an entry of ``since``
        costs some 150 bytes more than a span's), merged into the index (:func:`_merged`,
        no sort of everyone) with the stale spans written again (:func:`_rewritten`), outside
        ``lock`` (which those who pack hold), and taken under it; how many."""
        taken = dict(self.since)
        if not taken:
            return 0
        ids = sorted(taken)
        lengths = np.array([len(taken[p] or b"") for p in ids], dtype=np.int64)
        ends = np.cumsum(lengths)
        text = b"".join(taken[p] or b"" for p in ids)
        merged = _merged(self._index, np.array(ids, np.int64), ends - lengths, ends, text)
        index = _rewritten(merged)
        with lock:  # what was packed meanwhile stays in ``since``
            self._index = index
            self.since = {p: t for p, t in self.since.items() if taken.get(p, b"") is not t}
        return len(taken)

    @staticmethod
    def _at(index: tuple[Any, ...], person_id: int) -> int | None:
        """Where ``person_id`` is in ``index`` (their text may be empty: nobody), if there."""
        ids = index[0]
        at = bisect_left(memoryview(ids), person_id)  # see _found
        return at if at < len(ids) and ids[at] == person_id else None

    def text(self, person_id: int) -> bytes | None:
        """``person_id``'s text, if they are packed."""
        since = self.since
        if person_id in since:
            return since[person_id]
        index = self._index  # one index whole, whatever a compaction swaps in meanwhile
        at = self._at(index, person_id)
        if at is None:
            return None
        _, span, starts, ends, texts = index
        return texts[int(span[at])][int(starts[at]) : int(ends[at])] or None

    def __contains__(self, person_id: object) -> bool:
        """Whether ``person_id`` is packed, from the index alone (no text is read)."""
        if not isinstance(person_id, int):
            return False
        since = self.since
        if person_id in since:
            return since[person_id] is not None
        index = self._index
        at = self._at(index, person_id)
        return at is not None and bool(index[3][at] > index[2][at])

    def _held(self) -> tuple[Any, dict[int, bytes | None]]:
        """The index's people with a text and not overridden since, and ``since``."""
        since = self.since
        ids, _, starts, ends, _ = self._index
        kept = (ends > starts) & ~np.isin(ids, np.fromiter(since, np.int64, len(since)))
        return ids[kept], since

    def __iter__(self) -> Iterator[int]:
        """Everyone packed, in order of person ids."""
        ids, since = self._held()
        fresh = [p for p, t in since.items() if t is not None]
        return iter(sorted([*(int(p) for p in ids), *fresh]))

    def count(self) -> int:
        """How many people are packed."""
        ids, since = self._held()
        return len(ids) + sum(1 for t in since.values() if t is not None)

    def put(self, read: PersonRead) -> None:
        """Pack ``read`` (of a root person, with their whole ledger)."""
        assert read.person_id is not None
        self.since[read.person_id] = pack(read, self.names)

    def drop(self, person_id: int) -> None:
        """``person_id`` is nobody now (merged into another, erased)."""
        self.since[person_id] = None

    def put_ledger(self, person_id: int, base: bytes, seen: Mapping[str, datetime]) -> None:
        """``person_id``, packed as ``base`` (:meth:`get_based`'s), with the ledger ``seen``."""
        self.since[person_id] = with_ledger(base, seen, self.names)

    def get(self, person_id: int) -> PersonRead | None:
        data = self.text(person_id)
        return None if data is None else unpack(person_id, data, self.names)

    def get_based(self, person_id: int) -> tuple[PersonRead, bytes] | None:
        """:meth:`get`, and the text :meth:`put_ledger` may pack them back from."""
        data = self.text(person_id)
        return None if data is None else unpack_based(person_id, data, self.names)

    def holder(self, key: tuple[str, str]) -> int | None:
        """Who holds ``(kind, blind index)``: learnt since the build, else as built."""
        if key in self.learnt:
            return self.learnt[key]
        return self.identifiers.holder(key)

    def nbytes(self) -> int:
        """About what the packed people and identifiers take in memory (an entry of a
        dictionary, its number and a small text's header some 150 bytes)."""
        index = self._index
        spans = sum(len(t) for t in index[4]) + sum(int(a.nbytes) for a in index[:4])
        since = sum(150 + len(t or b"") for t in self.since.values())
        return spans + since + self.identifiers.nbytes + 250 * len(self.learnt)
