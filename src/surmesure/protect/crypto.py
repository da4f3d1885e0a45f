"""Crypto-shredding: a data key per identity node, AES-GCM, and a blind index for look-ups.

Contract:

- Each identity node (a ``people`` row; ``node_id`` on every row that hangs off a person) gets
  its own random 256-bit data key the first time something of it is sealed. The key is stored
  in ``person_keys`` wrapped (AES-GCM) under a wrapping key derived from
  ``Settings.encryption_key``, the node id as associated data, so a wrapped key copied onto
  another node's row does not open.
- :meth:`Keyring.seal` encrypts a text with the node's key: ``version byte || 12-byte random
  nonce || ciphertext and tag``, the associated data ``b"surmesure:node:<id>"``, so a sealed
  value moved to another node's row, or a ciphertext cut and pasted, fails to open rather than
  reading as somebody else's data. :meth:`Keyring.open` gives the text back, and raises
  :class:`KeyDestroyed` once the key is gone.
- :meth:`Keyring.destroy` deletes the keys of the given nodes (erasure, in its transaction):
  from then on every value sealed under them no longer opens, wherever a copy of it lies.
  What can still hold the wrapped key: a backup or WAL archive taken before the erasure, a
  PostgreSQL page until it is vacuumed, a DuckDB file until its freed blocks are reused
  (DuckDB does not zero them; a test shows it). Each opens only with the wrapping secret. So,
  with the keys in the database, shredding holds against anyone without the secret; to hold
  against a holder of the secret too, the keys live outside the database's files (a key store:
  a KMS, Vault transit, or a key file rewritten whole on each change), or the wrapping secret
  rotates (every key rewrapped, the old secret destroyed) as often as backups expire.
- :func:`blind_index` is the deterministic look-up key of a normalized identifier,
  HMAC-SHA256 of ``kind:value`` under a second key derived from ``Settings.encryption_key``:
  equal identifiers have equal indexes, so ``identifiers`` can be searched and joined without
  holding the value, and without the key nobody can test a guessed address against it.

Unwrapped keys are kept in memory per process (a decision reads a person's name thousands of
times a second), the most recently used ones, at most ``Settings.data_key_cache`` of them; a
batch looks up only the keys it does not hold, in one query by primary key. Destroying a key
forgets it here at once, and again when the erasure commits (so a reader that fetched the key
meanwhile, before the commit, does not keep it).
"""

from __future__ import annotations

import hmac
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from numpy.typing import NDArray
from sqlalchemy.engine import Connection

from surmesure.store import schema
from surmesure.store.engine import Store

VERSION = b"\x01"
NONCE_BYTES = 12
KEY_BYTES = 32
KEPT = 100_000
"""Unwrapped data keys a key ring keeps by default (``Settings.data_key_cache``)."""
k = schema.person_keys


class KeyDestroyed(LookupError):
    """The data key of a node is gone (the person was erased): what it sealed cannot open."""


def derive(secret: str, purpose: bytes) -> bytes:
    """A 256-bit key for ``purpose`` from the operator's secret (HKDF-SHA256)."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose).derive(
        secret.encode()
    )


def blind_index(index_key: bytes, kind: str, value: str) -> str:
    """Hex HMAC-SHA256 of ``kind:value`` (``value`` normalized) under ``index_key``."""
    # a copy of the keyed HMAC keeps the interpreter lock for a short message; the one-shot
    # hmac.digest lets it go on each call, and a busy thread of the server may then hold it
    # up to the switch interval (a decision's identifier waited 0.16 ms on average)
    digest = _keyed(index_key).copy()
    digest.update(f"{kind}:{value}".encode())
    return digest.hexdigest()


@lru_cache(maxsize=8)
def _keyed(index_key: bytes) -> hmac.HMAC:
    return hmac.new(index_key, digestmod="sha256")


def _node_data(node_id: int) -> bytes:
    return b"surmesure:node:%d" % node_id


def _wrap_data(node_id: int) -> bytes:
    return b"surmesure:person-key:%d" % node_id


def seal_with(key: bytes, node_id: int, text: str) -> bytes:
    """``text`` sealed under ``key`` for ``node_id`` (see the module docstring)."""
    nonce = os.urandom(NONCE_BYTES)
    return VERSION + nonce + AESGCM(key).encrypt(nonce, text.encode(), _node_data(node_id))


def open_with(key: bytes, node_id: int, sealed: bytes) -> str:
    """The text :func:`seal_with` sealed for ``node_id``; ``ValueError`` when it was sealed
    for another node, under another key, or altered."""
    if sealed[:1] != VERSION or len(sealed) < 1 + NONCE_BYTES + 16:
        raise ValueError("not a sealed value of this version")
    nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
    try:
        return AESGCM(key).decrypt(nonce, body, _node_data(node_id)).decode()
    except InvalidTag as exc:
        raise ValueError(f"sealed value does not open for node {node_id}") from exc


class Keyring:
    """The data keys of one store, wrapped under ``secret`` (``Settings.encryption_key``); at
    most ``kept`` of them unwrapped in memory, least recently used first out."""

    def __init__(self, store: Store, secret: str, *, kept: int = KEPT) -> None:
        self.store = store
        self.kept = max(1, kept)
        self._wrapping = AESGCM(derive(secret, b"surmesure person-key wrapping"))
        self.index_key = derive(secret, b"surmesure blind index")
        self._keys: OrderedDict[int, list[Any]] = OrderedDict()
        """node -> [data key, its AESGCM cipher or None until first used]"""
        self._lock = threading.Lock()
        self._fresh: dict[int, set[int]] = {}
        """Nodes whose key an open transaction made, by connection: forgotten if it rolls back,
        so nothing is ever sealed under a key the store does not hold."""
        self._destroyed: dict[int, set[int]] = {}
        """Nodes whose key an open transaction destroyed, by connection: forgotten again at its
        commit (a reader may have fetched the key, still committed, in the meantime)."""
        self._erasures: tuple[Any, ...] | None = None
        """The suppression list's size and latest erasure when :meth:`follow_erasures` last
        looked."""
        self._held: tuple[NDArray[np.int64], bytes] | None = None
        """The keys :meth:`hold` was given: the nodes, sorted, and their keys end to end."""
        self._destroyed_here: set[int] = set()
        """Nodes whose key this process destroyed (few: erasures), never taken from those held."""
        self._epoch = 0
        sa.event.listen(store.engine, "commit", self._committed)
        sa.event.listen(store.engine, "rollback", self._rolled_back)

    def _committed(self, conn: Connection) -> None:
        self._fresh.pop(id(conn), None)
        self._forget(self._destroyed.pop(id(conn), ()))

    def _rolled_back(self, conn: Connection) -> None:
        self._destroyed.pop(id(conn), None)
        self._forget(self._fresh.pop(id(conn), ()))

    def _forget(self, nodes: Iterable[int]) -> None:
        with self._lock:
            for node in nodes:
                self._keys.pop(node, None)

    @property
    def epoch(self) -> int:
        """How many times :meth:`follow_erasures` forgot every key: keys read before a change
        of it may have been destroyed since (see :meth:`hold`)."""
        return self._epoch

    def hold(self, nodes: NDArray[np.int64], keys: bytes, epoch: int) -> bool:
        """Hold the data keys of ``nodes`` (sorted), ``keys`` their keys end to end, some 40
        bytes each, in place of those held before: a server that holds everyone packed seals
        the decisions of anyone it decides for without reading the store, where the least
        recently used :attr:`kept` would read most of them. ``epoch``: :attr:`epoch` when
        those keys began to be read; if someone was erased elsewhere since, nothing is held
        (``False``). Keys destroyed here are never found again here."""
        if len(keys) != KEY_BYTES * len(nodes):
            raise ValueError(f"{len(nodes)} data keys of {KEY_BYTES} bytes each")
        with self._lock:
            if epoch != self._epoch:
                return False
            self._held = (nodes, keys)
        return True

    def _held_keys(self, nodes: list[int]) -> dict[int, bytes]:
        """The keys :meth:`hold` holds of ``nodes`` (sorted), none destroyed here since."""
        held = self._held
        if held is None:
            return {}
        order, blob = held
        at = np.searchsorted(order, nodes).tolist()
        out: dict[int, bytes] = {}
        gone = self._destroyed_here
        for node, where in zip(nodes, at, strict=True):
            if where < len(order) and order[where] == node and node not in gone:
                out[node] = blob[where * KEY_BYTES : (where + 1) * KEY_BYTES]
        return out

    def keys_between(
        self, conn: Connection, low: int, high: int
    ) -> tuple[NDArray[np.int64], bytes]:
        """The stored keys of the nodes ``low`` to ``high`` (one range read): the nodes, sorted,
        and their keys end to end, for :meth:`hold`."""
        rows = conn.execute(
            sa.select(k.c.node_id, k.c.wrapped)
            .where(k.c.node_id.between(low, high))
            .order_by(k.c.node_id)
        ).all()
        keys = self._unwrap((int(n), bytes(w)) for n, w in rows)
        nodes = np.fromiter(keys, np.int64, len(keys))
        return nodes, b"".join(keys.values())

    def _keep(self, found: dict[int, bytes]) -> None:
        with self._lock:
            for node, key in found.items():
                self._keys[node] = [key, None]
                self._keys.move_to_end(node)
            while len(self._keys) > self.kept:
                self._keys.popitem(last=False)

    def _entries(
        self, conn: Connection, nodes: Iterable[int], now: datetime | None, known: bool = False
    ) -> dict[int, list[Any]]:
        """``[key, cipher]`` of each node that has a key (see :meth:`keys`); ``known``: the
        nodes likely have one already (their keys are read before any is made)."""
        out: dict[int, list[Any]] = {}
        wanted: list[int] = []
        with self._lock:
            for node in {int(n) for n in nodes}:
                entry = self._keys.get(node)
                if entry is None:
                    wanted.append(node)
                else:
                    self._keys.move_to_end(node)
                    out[node] = entry
        if not wanted:
            return out
        wanted.sort()
        found: dict[int, bytes] = {}
        if now is not None and not known:
            # a new key for each node first, kept where the node had none: for the nodes a
            # collection batch just made, one statement instead of a look-up then an insert
            found = self._create(conn, wanted, now)
            wanted = [n for n in wanted if n not in found]
        if wanted:
            held = self._held_keys(wanted)
            if held:
                out.update((node, [key, None]) for node, key in held.items())
                wanted = [n for n in wanted if n not in held]
        if wanted:
            found.update(self._read(conn, wanted))
        if now is not None and known:
            # the few without a key yet get one (a key made for each would mostly clash)
            missing = [n for n in wanted if n not in found]
            if missing:
                found.update(self._create(conn, missing, now))
                # one made meanwhile by another writer is read
                others = [n for n in missing if n not in found]
                if others:
                    found.update(self._read(conn, others))
        self._keep(found)
        out.update((node, [key, None]) for node, key in found.items())
        return out

    def _read(self, conn: Connection, nodes: list[int]) -> dict[int, bytes]:
        """The stored keys of ``nodes`` that have one, unwrapped."""
        rows = conn.execute(sa.select(k.c.node_id, k.c.wrapped).where(k.c.node_id.in_(nodes)))
        return self._unwrap((int(n), bytes(w)) for n, w in rows)

    def _unwrap(self, wrapped: Iterable[tuple[int, bytes]]) -> dict[int, bytes]:
        return {
            int(node): self._wrapping.decrypt(
                bytes(blob)[:NONCE_BYTES], bytes(blob)[NONCE_BYTES:], _wrap_data(int(node))
            )
            for node, blob in wrapped
        }

    def index(self, kind: str, value: str) -> str:
        return blind_index(self.index_key, kind, value)

    def keys(
        self, conn: Connection, nodes: Iterable[int], *, now: datetime | None = None
    ) -> dict[int, bytes]:
        """The data key of each of ``nodes``; with ``now``, a node without one gets a new key
        (stored in the caller's transaction), else it is left out (destroyed, or never made).
        Only the keys not kept in memory are looked up, in one query."""
        return {node: entry[0] for node, entry in self._entries(conn, nodes, now).items()}

    def learn(self, wrapped: Iterable[tuple[int, bytes]]) -> None:
        """Keep the keys of ``(node, wrapped key)`` pairs a caller read from ``person_keys``
        in a query of its own, so that sealing and opening for those nodes look nothing up."""
        with self._lock:
            new = [(int(n), w) for n, w in wrapped if int(n) not in self._keys]
        self._keep(self._unwrap(new))

    def _create(self, conn: Connection, nodes: list[int], now: datetime) -> dict[int, bytes]:
        """Store a new key for each of ``nodes`` that has none (a node that has one keeps
        it, whoever stored it); returns the keys made, by node."""
        fresh = {n: AESGCM.generate_key(bit_length=8 * KEY_BYTES) for n in nodes}
        wrapped = []
        for node_id, key in fresh.items():
            nonce = os.urandom(NONCE_BYTES)
            wrapped.append(nonce + self._wrapping.encrypt(nonce, key, _wrap_data(node_id)))
        rows = pa.table(
            {
                "node_id": pa.array(list(fresh), pa.int64()),
                "wrapped": pa.array(wrapped, pa.binary()),
                "created_at": pa.array([now] * len(fresh), pa.timestamp("us")),
            }
        )
        made = {int(n) for n in self.store.insert_new(conn, k, rows, "node_id")}
        self._fresh.setdefault(id(conn), set()).update(made)
        return {n: fresh[n] for n in made}

    @staticmethod
    def _cipher(entry: list[Any]) -> AESGCM:
        cipher: AESGCM | None = entry[1]
        if cipher is None:
            cipher = entry[1] = AESGCM(entry[0])
        return cipher

    def seal_many(
        self,
        conn: Connection,
        nodes: Sequence[int | None],
        texts: Sequence[str | None],
        *,
        now: datetime,
        known: bool = False,
    ) -> list[bytes | None]:
        """Each text sealed under its node's key (keys made, in the caller's transaction, for
        nodes without one); ``None`` where the node or the text is ``None``. ``known``: the
        nodes are likely to have keys (people decided for, rather than people just made)."""
        entries = self._entries(conn, {n for n in nodes if n is not None}, now, known)
        # ciphers made here are not kept (2.4 kB each: an import of a million people would
        # keep 240 MB of them); those that opening values keeps are used
        ciphers = {node: entry[1] or AESGCM(entry[0]) for node, entry in entries.items()}
        # the nonces of the batch drawn at once: one system call rather than one a value
        nonces = os.urandom(NONCE_BYTES * len(texts))
        out: list[bytes | None] = []
        for at, (node, text) in enumerate(zip(nodes, texts, strict=True)):
            if node is None or text is None:
                out.append(None)
                continue
            nonce = nonces[at * NONCE_BYTES : (at + 1) * NONCE_BYTES]
            body = ciphers[node].encrypt(nonce, text.encode(), b"surmesure:node:%d" % node)
            out.append(VERSION + nonce + body)
        return out

    def open_many(
        self, conn: Connection, nodes: Sequence[int | None], sealed: Sequence[bytes | None]
    ) -> list[str | None]:
        """Each sealed value opened; ``None`` where it is ``None`` or its node's key is
        destroyed (the person was erased). A value altered, or moved to another node's row,
        raises ``ValueError``."""
        entries = self._entries(
            conn,
            {n for n, s in zip(nodes, sealed, strict=True) if s is not None and n is not None},
            None,
        )
        out: list[str | None] = []
        for node, blob in zip(nodes, sealed, strict=True):
            entry = None if node is None or blob is None else entries.get(node)
            if entry is None or blob is None or node is None:
                out.append(None)
                continue
            data = bytes(blob)
            if data[:1] != VERSION or len(data) < 1 + NONCE_BYTES + 16:
                raise ValueError("not a sealed value of this version")
            try:
                text = self._cipher(entry).decrypt(
                    data[1 : 1 + NONCE_BYTES], data[1 + NONCE_BYTES :], _node_data(node)
                )
            except InvalidTag as exc:
                raise ValueError(f"sealed value does not open for node {node}") from exc
            out.append(text.decode())
        return out

    def seal(self, conn: Connection, node_id: int, text: str, *, now: datetime) -> bytes:
        """``text`` sealed under the node's key (made when it has none)."""
        return seal_with(self.keys(conn, [node_id], now=now)[node_id], node_id, text)

    def open(self, conn: Connection, node_id: int, sealed: bytes) -> str:
        """The sealed text; :class:`KeyDestroyed` when the node's key is gone."""
        key = self.keys(conn, [node_id]).get(node_id)
        if key is None:
            raise KeyDestroyed(f"node {node_id} has no data key: its values were shredded")
        return open_with(key, node_id, bytes(sealed))

    def forget(self, nodes: Iterable[int]) -> None:
        """Drop the keys of ``nodes`` from memory only (they stay stored): for keys read once,
        such as those of quarantined records, which would otherwise pile up here."""
        self._forget(int(n) for n in nodes)

    def follow_erasures(self, conn: Connection) -> bool:
        """Forget every key kept in memory when someone was erased since the last call (by
        another process: this one forgets what it destroys itself), so that no process holds
        a destroyed key for longer than the time between two calls; ``True`` when it forgot.
        Erasures are rare: the keys still stored are read again as they are needed."""
        s = schema.suppressions
        mark = tuple(conn.execute(sa.select(sa.func.count(), sa.func.max(s.c.erased_at))).one())
        changed = self._erasures is not None and mark != self._erasures
        self._erasures = mark
        if changed:
            with self._lock:
                self._keys.clear()
                self._held = None
                self._epoch += 1
        return changed

    def destroy(self, conn: Connection, nodes: Iterable[int]) -> int:
        """Delete the data keys of ``nodes`` (in the caller's transaction) and forget them here;
        returns how many were deleted."""
        ids = sorted({int(n) for n in nodes})
        if not ids:
            return 0
        self._forget(ids)
        with self._lock:
            self._destroyed_here.update(ids)
        self._destroyed.setdefault(id(conn), set()).update(ids)
        # overwrite first: a deleted row's bytes may linger in the file until it is compacted
        conn.execute(
            k.update().where(k.c.node_id.in_(ids)).values(wrapped=b"\x00" * (NONCE_BYTES + 48))
        )
        result = conn.execute(k.delete().where(k.c.node_id.in_(ids)))
        return int(result.rowcount or 0)


_keyrings: dict[tuple[str, str], Keyring] = {}


def keyring(store: Store, secret: str, kept: int = KEPT) -> Keyring:
    """The process's shared :class:`Keyring` of ``store`` under ``secret``, keeping ``kept``
    keys in memory."""
    found = _keyrings.get((store.url, secret))
    if found is None or found.store is not store:
        found = _keyrings[(store.url, secret)] = Keyring(store, secret, kept=kept)
    found.kept = max(1, kept)
    return found
