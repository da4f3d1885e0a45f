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
times a second); destroying a key forgets it here too.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Sequence
from datetime import datetime

import pyarrow as pa
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.engine import Connection

from surmesure.store import schema
from surmesure.store.engine import Store

VERSION = b"\x01"
NONCE_BYTES = 12
KEY_BYTES = 32
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
    return hmac.digest(index_key, f"{kind}:{value}".encode(), "sha256").hex()


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
    """The data keys of one store, wrapped under ``secret`` (``Settings.encryption_key``)."""

    def __init__(self, store: Store, secret: str) -> None:
        self.store = store
        self._wrapping = AESGCM(derive(secret, b"surmesure person-key wrapping"))
        self.index_key = derive(secret, b"surmesure blind index")
        self._keys: dict[int, bytes] = {}
        self._ciphers: dict[int, AESGCM] = {}
        self._fresh: dict[int, set[int]] = {}
        """Nodes whose key an open transaction made, by connection: forgotten if it rolls back,
        so nothing is ever sealed under a key the store does not hold."""
        sa.event.listen(store.engine, "commit", self._committed)
        sa.event.listen(store.engine, "rollback", self._rolled_back)

    def _committed(self, conn: Connection) -> None:
        self._fresh.pop(id(conn), None)

    def _rolled_back(self, conn: Connection) -> None:
        for node in self._fresh.pop(id(conn), ()):
            self._keys.pop(node, None)
            self._ciphers.pop(node, None)

    def index(self, kind: str, value: str) -> str:
        return blind_index(self.index_key, kind, value)

    def keys(
        self, conn: Connection, nodes: Iterable[int], *, now: datetime | None = None
    ) -> dict[int, bytes]:
        """The data key of each of ``nodes``; with ``now``, a node without one gets a new key
        (stored in the caller's transaction), else it is left out (destroyed, or never made)."""
        wanted = sorted({int(n) for n in nodes} - set(self._keys))
        if wanted and now is not None:
            # a new key for each node first, kept where the node had none: for the nodes a
            # collection batch just made, one statement instead of a look-up then an insert
            made = self._create(conn, wanted, now)
            wanted = [n for n in wanted if n not in made]
        if wanted:
            rows = conn.execute(sa.select(k.c.node_id, k.c.wrapped).where(k.c.node_id.in_(wanted)))
            self.learn((int(n), bytes(w)) for n, w in rows)
        return {int(n): self._keys[int(n)] for n in nodes if int(n) in self._keys}

    def learn(self, wrapped: Iterable[tuple[int, bytes]]) -> None:
        """Keep the keys of ``(node, wrapped key)`` pairs a caller read from ``person_keys``
        in a query of its own, so that sealing and opening for those nodes look nothing up."""
        for node_id, blob in wrapped:
            if int(node_id) not in self._keys:
                data = bytes(blob)
                self._keys[int(node_id)] = self._wrapping.decrypt(
                    data[:NONCE_BYTES], data[NONCE_BYTES:], _wrap_data(int(node_id))
                )

    def _create(self, conn: Connection, nodes: list[int], now: datetime) -> set[int]:
        """Store a new key for each of ``nodes`` that has none (a node that has one keeps
        it, whoever stored it); returns the nodes given a new key."""
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
        self._keys.update({n: fresh[n] for n in made})
        self._fresh.setdefault(id(conn), set()).update(made)
        return made

    def _cipher(self, node: int, key: bytes) -> AESGCM:
        cipher = self._ciphers.get(node)
        if cipher is None:
            cipher = self._ciphers[node] = AESGCM(key)
        return cipher

    def seal_many(
        self,
        conn: Connection,
        nodes: Sequence[int | None],
        texts: Sequence[str | None],
        *,
        now: datetime,
    ) -> list[bytes | None]:
        """Each text sealed under its node's key (keys made, in the caller's transaction, for
        nodes without one); ``None`` where the node or the text is ``None``."""
        keys = self.keys(conn, {n for n in nodes if n is not None}, now=now)
        out: list[bytes | None] = []
        for node, text in zip(nodes, texts, strict=True):
            if node is None or text is None:
                out.append(None)
                continue
            nonce = os.urandom(NONCE_BYTES)
            body = self._cipher(node, keys[node]).encrypt(nonce, text.encode(), _node_data(node))
            out.append(VERSION + nonce + body)
        return out

    def open_many(
        self, conn: Connection, nodes: Sequence[int | None], sealed: Sequence[bytes | None]
    ) -> list[str | None]:
        """Each sealed value opened; ``None`` where it is ``None`` or its node's key is
        destroyed (the person was erased). A value altered, or moved to another node's row,
        raises ``ValueError``."""
        keys = self.keys(
            conn, {n for n, s in zip(nodes, sealed, strict=True) if s is not None and n is not None}
        )
        out: list[str | None] = []
        for node, blob in zip(nodes, sealed, strict=True):
            key = None if node is None or blob is None else keys.get(node)
            if key is None or blob is None or node is None:
                out.append(None)
                continue
            data = bytes(blob)
            if data[:1] != VERSION or len(data) < 1 + NONCE_BYTES + 16:
                raise ValueError("not a sealed value of this version")
            try:
                text = self._cipher(node, key).decrypt(
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
        for n in nodes:
            self._keys.pop(int(n), None)
            self._ciphers.pop(int(n), None)

    def destroy(self, conn: Connection, nodes: Iterable[int]) -> int:
        """Delete the data keys of ``nodes`` (in the caller's transaction) and forget them here;
        returns how many were deleted."""
        ids = sorted({int(n) for n in nodes})
        for n in ids:
            self._keys.pop(n, None)
            self._ciphers.pop(n, None)
        if not ids:
            return 0
        # overwrite first: a deleted row's bytes may linger in the file until it is compacted
        conn.execute(
            k.update().where(k.c.node_id.in_(ids)).values(wrapped=b"\x00" * (NONCE_BYTES + 48))
        )
        result = conn.execute(k.delete().where(k.c.node_id.in_(ids)))
        return int(result.rowcount or 0)


_keyrings: dict[tuple[str, str], Keyring] = {}


def keyring(store: Store, secret: str) -> Keyring:
    """The process's shared :class:`Keyring` of ``store`` under ``secret``."""
    found = _keyrings.get((store.url, secret))
    if found is None or found.store is not store:
        found = _keyrings[(store.url, secret)] = Keyring(store, secret)
    return found
