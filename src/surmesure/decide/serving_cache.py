"""What live decisions read, per person, held in memory for the people decided for lately.

:class:`ServingCache` is the memory of a decision server (:mod:`surmesure.decide.serving`
keeps it fresh and writes the decisions behind): a hit reads dictionaries alone, with no lock;
a miss asks the owner to read the person from the store in one statement.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any

from surmesure.decide.packed import Packed
from surmesure.unify.people_read import PeopleRead
from surmesure.unify.reader import HeldReader, PersonRead

if TYPE_CHECKING:
    from surmesure.decide.serving import Serving

PACKED_HELD = 100
"""Most people a cache keeps as objects once the world is packed: unpacking one costs some
25 µs, where each held costs some 5 kB and some thirty objects the garbage collector walks
while it holds the interpreter. On a million customers at 1,000 decisions a second, 10,000
held (with :data:`~surmesure.decide.recommend.service.PICKS_KEPT` at 20,000) made pauses of
50 to 190 ms and a p99 of 68 ms; 1,000 (and 2,000) a p99 of 12 ms
(``benchmarks/bench_serving.py``). With random traffic over a packed world a held person is
asked for again within the next thousand decisions about 1% of the time, so the people held
are mostly those of the last second: with 1,000, they were 30,000 of the 34,000 objects each
young collection walked (100,000 customers at 600 decisions a second); with 100, 15,000 were
left to walk."""

NOBODY = None
"""A cached answer: no root person has this id (or no person holds this identifier)."""


class Miss(Exception):
    """A decision made under :func:`held_only` needs someone the cache does not hold: nothing
    was read or recorded; decide again where a read may wait (off the event loop)."""


_held_only: ContextVar[bool] = ContextVar("held_only", default=False)


@contextmanager
def held_only() -> Iterator[None]:
    """Decisions within the block read nothing from the store: one that needs a person or an
    identifier the cache does not hold raises :class:`Miss` instead (the event loop answers
    the other requests meanwhile, rather than wait for the read)."""
    token = _held_only.set(True)
    try:
        yield
    finally:
        _held_only.reset(token)


def may_read() -> None:
    """Before a read from the store: raises :class:`Miss` within :func:`held_only`."""
    if _held_only.get():
        raise Miss


class ServingCache(HeldReader):
    """What live decisions read, per person, kept for the people decided for lately.

    ``reads`` holds at most ``limit`` people's rows (:class:`PersonRead`, the whole exposure
    ledger of each in ``seen``), least recently used first; ``ids`` at most ``2 x limit``
    identifiers (``(kind, blind index)`` -> person id, or :data:`NOBODY`); ``roots`` every
    merged person (few); ``first_shown`` the first exposure of each content. A hit reads
    dictionaries alone, with no lock; a miss reads the person from the store in one
    statement (:func:`~surmesure.unify.people_read.read_people`) under the owner's load lock."""

    def __init__(self, owner: Serving, metrics: frozenset[str], limit: int) -> None:
        self.owner = owner
        self.metrics = metrics
        self.limit = limit
        self.reads: OrderedDict[int, PersonRead | None] = OrderedDict()
        self.ids: OrderedDict[tuple[str, str], int | None] = OrderedDict()
        self.roots: dict[int, int] = {}
        self.first_shown: dict[str, datetime] = {}
        self.stamp: tuple[Any, ...] = ()
        self.loads = 0  # statements read for misses and changes
        self.complete = False
        """Everyone and every identifier is held (read whole at start, kept by the news of
        changes since): an identifier not held is nobody's, with no read (a new visitor)."""
        self.packed: Packed | None = None
        """Everyone, packed, when the world is past ``limit`` but was read whole
        (:mod:`surmesure.decide.packed`): a person not in ``reads`` is unpacked from it, and
        the one ``reads`` then drops is packed back."""
        self.filling: Packed | None = None
        """The packed world being read, meanwhile: the people ``reads`` drops go there too
        (and win over what the read finds: they are as fresh, with their ledger)."""
        self._moving = threading.Lock()  # held to move a person between ``reads`` and packs
        self._bases: dict[int, tuple[PersonRead, Packed, bytes]] = {}
        """Each person in ``reads`` unpacked from a text: the object unpacked, the pack and
        the text (without a ledger after it) it came from."""

    # -- decisions -----------------------------------------------------------------------------

    def person_id(self, person_id: int | None, keys: Sequence[tuple[str, str]]) -> int | None:
        """The person a request names, as :func:`~surmesure.unify.reader.read_person`
        finds them: a person id follows its merges; else the first identifier known."""
        if person_id is not None:
            root = self._root(person_id)
            return root if self._entry(root) is not None else None
        found = [self._lookup(k) for k in keys]
        missing = [k for k, f in zip(keys, found, strict=True) if f is _UNKNOWN]
        if missing:
            may_read()
            self.owner.missed(self, (), missing)
            found = [self.ids.get(k, NOBODY) for k in keys]
        for pid in found:
            if pid is not None and pid is not _UNKNOWN:
                root = self._root(pid)
                if self._entry(root) is not None:
                    return root
        return None

    def read(self, person_id: int | None, content_ids: Iterable[str], now: datetime) -> PersonRead:
        """What :func:`~surmesure.unify.reader.read_person` returns at ``now``."""
        wanted = set(content_ids)
        before = {c for c in wanted if (t := self.first_shown.get(c)) is not None and t < now}
        if person_id is None:
            return PersonRead(None, shown_before=before)
        base = self._entry(person_id)
        if base is None:
            return PersonRead(person_id, shown_before=before)
        seen = {c: t for c, t in base.seen.items() if c in wanted and t <= now}
        return base.as_of(now, seen, before)

    def note_shown(
        self, person_id: int, content_ids: Iterable[str], at: datetime, *, told: bool = False
    ) -> None:
        """Exposures this server made: known to the next decision at once (``told``: another
        worker made them, and told; they are not told again)."""
        if not told and (self.owner.shared is not None or self.owner._news is not None):
            self.owner.exposed.append((person_id, list(content_ids), at))
        entry = self.reads.get(person_id)
        if entry is None and self.packed is not None and person_id in self.packed:
            entry = self._unpacked(self.packed, person_id)
        if entry is not None:
            # a new ledger rather than a change to the one a decision may be reading
            seen = dict(entry.seen)
            for c in content_ids:
                if c not in seen or seen[c] < at:
                    seen[c] = at
            object.__setattr__(entry, "seen", seen)
        for c in content_ids:
            if c not in self.first_shown or at < self.first_shown[c]:
                self.first_shown[c] = at

    def _root(self, person_id: int) -> int:
        hops = 0
        while person_id in self.roots and hops < 1_000:
            person_id, hops = self.roots[person_id], hops + 1
        return person_id

    def _lookup(self, key: tuple[str, str]) -> Any:
        try:
            found = self.ids[key]
        except KeyError:
            packed = self.packed
            if packed is not None and (holder := packed.holder(key)) is not None:
                return holder
            return NOBODY if self.complete else _UNKNOWN
        try:  # noqa: SIM105 (a plain try costs less than a context manager on every hit)
            self.ids.move_to_end(key)
        except KeyError:  # evicted meanwhile by another thread
            pass
        return found

    def _entry(self, person_id: int) -> PersonRead | None:
        """The person's rows; read from the store on a miss."""
        try:
            entry = self.reads[person_id]
        except KeyError:
            packed = self.packed
            if packed is not None and person_id in packed:
                return self._unpacked(packed, person_id)
            may_read()
            self.owner.missed(self, (person_id,), ())
            return self.reads.get(person_id)
        try:  # noqa: SIM105 (a plain try costs less than a context manager on every hit)
            self.reads.move_to_end(person_id)
        except KeyError:  # evicted meanwhile by another thread
            pass
        return entry

    def _unpacked(self, packed: Packed, person_id: int) -> PersonRead | None:
        """A packed person, now held in ``reads`` (their text kept in ``_bases``)."""
        with self._moving:
            if person_id in self.reads:  # unpacked meanwhile
                return self.reads[person_id]
            found = packed.get_based(person_id)
            if found is None:
                return None
            entry, base = found
            self.reads[person_id] = entry
            self._bases[person_id] = (entry, packed, base)
            self._drop_past_limit()
            return entry

    def _drop_past_limit(self) -> None:
        """Drop the least recently used people past ``limit`` (packed back, with their ledger,
        when the world is packed; with ``_moving`` held): one still the object unpacked (whose
        ledger alone a decision changes: :meth:`note_shown`) as their text with the new
        ledger after it, anyone else packed anew."""
        while len(self.reads) > self.limit:
            pid, entry = self.reads.popitem(last=False)
            based = self._bases.pop(pid, None)
            if entry is None:
                continue
            for packed in (self.packed, self.filling):
                if packed is None:
                    continue
                if based is not None and based[0] is entry and based[1] is packed:
                    packed.put_ledger(pid, based[2], entry.seen)
                else:
                    packed.put(entry)

    def let_go(self) -> None:
        """Hold nobody and no identifier, packed or not (the whole world is read again)."""
        self.reads.clear()
        self.ids.clear()
        self._bases.clear()
        self.packed = None

    def compact(self) -> int:
        """Move the people packed since the build into a span (:meth:`Packed.compact`)."""
        packed = self.packed
        return 0 if packed is None else packed.compact(self._moving)

    def take_packed(self, packed: Packed) -> None:
        """Serve from ``packed``, now read whole: it holds every identifier, so the ones held
        beside it go (those changed since it was read are read again by the owner), and at
        most :data:`PACKED_HELD` people stay objects."""
        with self._moving:
            self.packed, self.filling = packed, None
            self._bases.clear()  # texts of the pack replaced: they would keep it alive
            self.ids.clear()
            self.complete = True
            self.limit = min(self.limit, PACKED_HELD)
            self._drop_past_limit()

    # -- filling -------------------------------------------------------------------------------

    def fill(
        self,
        found: PeopleRead,
        person_ids: Iterable[int],
        keys: Iterable[tuple[str, str]],
        *,
        only_held: bool = False,
    ) -> None:
        """Take what one statement read: ``person_ids`` and ``keys`` asked (those not found are
        cached as :data:`NOBODY`); with ``only_held``, people and identifiers not cached are
        left out (a change to someone nobody asked about is read when first asked). Someone
        packed is held: packed again when not in ``reads``."""
        with self._moving:
            self._fill(found, person_ids, keys, only_held)

    def _fill(
        self,
        found: PeopleRead,
        person_ids: Iterable[int],
        keys: Iterable[tuple[str, str]],
        only_held: bool,
    ) -> None:
        packed = self.packed
        self.roots.update(found.absorbed)
        for absorbed in found.absorbed:
            self.reads.pop(absorbed, None)
            self._bases.pop(absorbed, None)
            if packed is not None and absorbed in packed:
                packed.drop(absorbed)
        for pid in person_ids:  # a merge undone: the absorbed one is a person again
            if pid in self.roots and pid not in found.absorbed:
                self.roots.pop(pid, None)
        for key, pid in found.identifiers.items():
            if packed is not None:  # every identifier is held
                packed.learnt[key] = pid
                self.ids.pop(key, None)
            elif not only_held or self.complete or key in self.ids:
                self.ids[key] = pid
        for key in keys:
            if key not in found.identifiers:
                self.ids[key] = NOBODY
        for pid in person_ids:
            in_pack = packed is not None and pid in packed
            if pid not in found.reads and (not only_held or pid in self.reads or in_pack):
                self.reads[pid] = NOBODY
                if packed is not None and in_pack:
                    packed.drop(pid)
        for pid, entry in found.reads.items():
            if not only_held or pid in self.reads:
                self.reads[pid] = entry
                self.reads.move_to_end(pid)
            elif packed is not None and pid in packed:
                packed.put(entry)
        self._drop_past_limit()
        while len(self.ids) > 2 * self.limit:
            self.ids.popitem(last=False)
            self.complete = packed is not None and self.complete  # packed: all are still held


_UNKNOWN: Any = object()  # not cached either way
