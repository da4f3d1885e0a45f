"""API keys: who may call which route.

A key carries scopes:

- ``collect``: the Segment write key a shop embeds in its public pages. It may send events,
  never read anything back;
- ``decide``: server-side decisions and personal page links;
- ``read``: personal data (people, why, segments, consents, experiment results);
- ``web``: what a shop's pages hold to fill their placements (:mod:`surmesure.api.web`):
  decisions and events for the visitor's own signed identity only, from the page origins
  stored with the key (``--origin``); it never names a person, never reads, and goes with no
  scope but ``collect``;
- ``admin``: every scope, plus administrative changes (consents, erasure, keys).

Keys created with ``surmesure key create`` are stored as SHA-256 hashes (a key is 32 random
bytes, so a plain hash cannot be reversed by guessing), named, revocable, with the time they
were last used; the key itself is shown once, at creation. The write keys of
``SURMESURE_WRITE_KEYS`` are configuration, not stored, and only ever have ``collect``.

:class:`KeyRing` is what a server holds: the stored keys in memory (a request costs no query),
reloaded every few seconds so that a revocation reaches a running server. A key it does not
hold is looked up by its hash (one indexed query), so a key just created works at once. Keys
nobody holds cannot make a server query its store at will: a key found missing is remembered
as missing until the next reload, and look-ups of unknown keys have a budget
(:data:`MISS_LOOKUPS_PER_SECOND`, with a burst of :data:`MISS_BURST`); past it an unknown key
is refused without a look-up, so under a flood of made-up keys a key just created works from
the next reload.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.clock import utcnow
from surmesure.errors import InvalidInput, NotFound
from surmesure.store import schema
from surmesure.store.engine import Store

SCOPES = ("collect", "decide", "read", "calls", "web", "admin")
DEFAULT_PORTS = {"http": 80, "https": 443}
PUBLIC_SCOPES = frozenset({"collect", "web"})
"""The scopes a key shipped in public web pages may hold: it may collect, never read."""
MAX_ORIGINS = 20
MISS_LOOKUPS_PER_SECOND = 20.0
"""Store look-ups of keys a server does not hold, per second, beyond the burst."""
MISS_BURST = 50
MISSES_REMEMBERED = 100_000
KEY_PREFIX = "sm_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a stored key or a configured write key."""

    key_id: str
    name: str
    scopes: frozenset[str]
    source: str
    origins: frozenset[str] = frozenset()
    """The page origins a browser may use a ``web`` key from."""

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    @property
    def actor(self) -> str:
        return f"key:{self.name}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_scopes(scopes: list[str] | tuple[str, ...]) -> list[str]:
    """``scopes`` in their canonical order; :class:`InvalidInput` naming a wrong one."""
    wrong = [s for s in scopes if s not in SCOPES]
    if wrong or not scopes:
        raise InvalidInput(
            f"Scope {wrong[0]!r} is not known." if wrong else "A key needs at least one scope.",
            hint=f"choose among {', '.join(SCOPES)}",
            field="scope",
        )
    ordered = [s for s in SCOPES if s in scopes]
    if "web" in ordered and not set(ordered) <= PUBLIC_SCOPES:
        private = ", ".join(s for s in ordered if s not in PUBLIC_SCOPES)
        raise InvalidInput(
            f"A web key ships in public pages: it cannot also have {private}.",
            hint="create the web key with --scope web (and collect) alone, and another key "
            "for the shop's server",
            field="scope",
        )
    return ordered


def check_origins(origins: list[str] | tuple[str, ...]) -> list[str]:
    """``origins`` as browsers send them (``https://shop.example``: lower case, the host in
    ASCII, no default port, no path); :class:`InvalidInput` naming a wrong one."""
    found: list[str] = []
    for origin in origins:
        read = _origin(origin) if len(origin) <= 256 else None
        if read is None:
            raise InvalidInput(
                f"Origin {origin!r} is not a page origin.",
                hint="write scheme://host[:port] as the browser's address bar shows it, e.g. "
                "https://shop.example, with no path",
                field="origin",
            )
        found.append(read)
    if len(set(found)) > MAX_ORIGINS:
        raise InvalidInput(
            f"{len(set(found))} origins.", hint=f"give at most {MAX_ORIGINS}", field="origin"
        )
    return sorted(set(found))


def _origin(origin: str) -> str | None:
    """The ``Origin`` header a browser sends from pages of ``origin``, or ``None``."""
    parsed = urlsplit(origin.strip().lower())
    if (
        parsed.scheme not in DEFAULT_PORTS
        or not parsed.hostname
        or parsed.path not in ("", "/")
        or parsed.query
        or parsed.fragment
        or parsed.username is not None
    ):
        return None
    try:
        port = parsed.port
        host = parsed.hostname.encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        return None
    host = f"[{host}]" if ":" in host else host
    shown = "" if port in (None, DEFAULT_PORTS[parsed.scheme]) else f":{port}"
    return f"{parsed.scheme}://{host}{shown}"


def create_key(
    store: Store,
    name: str,
    scopes: list[str],
    *,
    source: str = "api",
    now: datetime | None = None,
    replace: bool = False,
    origins: list[str] | tuple[str, ...] = (),
) -> tuple[str, dict[str, Any]]:
    """A new key ``(secret, row)``: the secret is returned once and never stored. With
    ``replace``, a key of the same name is revoked and renamed ``NAME#KEY_ID`` first.
    ``origins``: the pages a ``web`` key is used from (only a web key takes them)."""
    name = name.strip()
    if not name or len(name) > 128:
        raise InvalidInput(f"Key name {name!r}.", hint="give 1 to 128 characters", field="name")
    ordered = check_scopes(scopes)
    allowed = check_origins(origins)
    if allowed and "web" not in ordered:
        raise InvalidInput(
            "Only a web key is used from pages: origins go with --scope web.",
            hint="add --scope web, or leave out --origin",
            field="origin",
        )
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = {
        "key_id": uuid.uuid4().hex[:16],
        "name": name,
        "secret_hash": hash_key(secret),
        "scopes": ",".join(ordered),
        "source": source,
        "created_at": now or utcnow(),
        "last_used_at": None,
        "revoked_at": None,
    }
    k = schema.api_keys
    with store.begin() as conn:
        old = conn.execute(sa.select(k.c.key_id, k.c.revoked_at).where(k.c.name == name)).first()
        if old is not None and not replace:
            raise InvalidInput(
                f"A key named {name!r} exists.", hint="choose another name", field="name"
            )
        if old is not None:
            conn.execute(
                k.update()
                .where(k.c.key_id == old.key_id)
                .values(name=f"{name}#{old.key_id}", revoked_at=old.revoked_at or row["created_at"])
            )
        conn.execute(k.insert().values(row))
        if allowed:
            conn.execute(
                schema.api_key_origins.insert(),
                [{"key_id": row["key_id"], "origin": o} for o in allowed],
            )
    return secret, {**_public(row), "origins": allowed}


def list_keys(store: Store) -> list[dict[str, Any]]:
    k = schema.api_keys
    with store.connect() as conn:
        rows = conn.execute(sa.select(k).order_by(k.c.created_at, k.c.name)).mappings().all()
        origins = _origins(conn)
    return [{**_public(dict(r)), "origins": sorted(origins.get(r["key_id"], ()))} for r in rows]


def _origins(conn: Connection, key_id: str | None = None) -> dict[str, frozenset[str]]:
    """key id -> the origins stored with it (of ``key_id`` alone when given)."""
    o = schema.api_key_origins
    query = sa.select(o.c.key_id, o.c.origin)
    if key_id is not None:
        query = query.where(o.c.key_id == key_id)
    found: dict[str, set[str]] = {}
    for key, origin in conn.execute(query):
        found.setdefault(key, set()).add(origin)
    return {key: frozenset(values) for key, values in found.items()}


def revoke_key(store: Store, ref: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Revoke the key named or identified by ``ref``; revoking twice keeps the first time."""
    k = schema.api_keys
    with store.begin() as conn:
        row = (
            conn.execute(sa.select(k).where(sa.or_(k.c.key_id == ref, k.c.name == ref)))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"No key is named {ref!r}.", hint="see surmesure key list", field="key")
        found = dict(row)
        if found["revoked_at"] is None:
            found["revoked_at"] = now or utcnow()
            conn.execute(
                k.update()
                .where(k.c.key_id == found["key_id"])
                .values(revoked_at=found["revoked_at"])
            )
    return _public(found)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "key_id": row["key_id"],
        "name": row["name"],
        "scopes": row["scopes"].split(","),
        "source": row["source"],
        "created_at": row["created_at"],
        "last_used_at": row["last_used_at"],
        "revoked_at": row["revoked_at"],
    }


class KeyRing:
    """The keys a server accepts, in memory. Thread-safe; see the module docstring."""

    def __init__(
        self,
        store: Store,
        write_keys: dict[str, str],
        refresh_seconds: float = 2.0,
        *,
        miss_lookups_per_second: float = MISS_LOOKUPS_PER_SECOND,
        miss_burst: int = MISS_BURST,
    ):
        self.store = store
        self._miss_rate = miss_lookups_per_second
        self._miss_burst = float(miss_burst)
        self.refresh_seconds = refresh_seconds
        self._config = {
            hash_key(key): Principal(
                key_id=f"write-{hash_key(key)[:8]}",
                name=f"write key of {source}",
                scopes=frozenset({"collect"}),
                source=source,
            )
            for key, source in write_keys.items()
        }
        self._stored: dict[str, Principal] = {}
        self._used: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self._misses: set[str] = set()
        self._tokens = self._miss_burst
        self._filled = time.monotonic()
        self._budget_lock = threading.Lock()

    def _may_look_up(self) -> bool:
        """Take one look-up of an unknown key from the budget (see the module docstring)."""
        with self._budget_lock:
            now = time.monotonic()
            refill = (now - self._filled) * self._miss_rate
            self._tokens = min(self._miss_burst, self._tokens + refill)
            self._filled = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True

    def find(self, key: str) -> Principal | None:
        """The principal of ``key``, or ``None`` for an unknown or revoked key. Looks a key
        it does not hold up in the store (one query, within the budget of the module
        docstring): call it off the event loop."""
        found = self.known(key)
        if found is not None:
            return found
        k = schema.api_keys
        digest = hash_key(key)
        if digest in self._misses or not self._may_look_up():
            return None
        with self.store.connect() as conn:
            row = conn.execute(
                sa.select(k.c.key_id, k.c.name, k.c.scopes, k.c.source).where(
                    k.c.secret_hash == digest, k.c.revoked_at.is_(None)
                )
            ).first()
            origins = _origins(conn, row.key_id) if row is not None else {}
        if row is None:
            if len(self._misses) >= MISSES_REMEMBERED:
                self._misses = set()
            self._misses.add(digest)
            return None
        found = self._stored[digest] = _principal(row, origins)
        self._used[found.key_id] = utcnow()
        return found

    def known(self, key: str) -> Principal | None:
        """:meth:`find` without reloading: never touches the store."""
        digest = hash_key(key)
        found = self._config.get(digest) or self._stored.get(digest)
        if found is not None and digest not in self._config:
            self._used[found.key_id] = utcnow()
        return found

    def reload(self) -> None:
        """Read the stored keys again; writes the last-used times gathered since the last."""
        k = schema.api_keys
        with self._lock:
            used, self._used = self._used, {}
            with self.store.begin() as conn:
                for key_id, at in used.items():
                    conn.execute(k.update().where(k.c.key_id == key_id).values(last_used_at=at))
                rows = conn.execute(
                    sa.select(k.c.key_id, k.c.name, k.c.secret_hash, k.c.scopes, k.c.source).where(
                        k.c.revoked_at.is_(None)
                    )
                ).all()
                origins = _origins(conn)
            self._stored = {r.secret_hash: _principal(r, origins) for r in rows}
            self._misses = set()


def _principal(row: Any, origins: dict[str, frozenset[str]]) -> Principal:
    return Principal(
        key_id=row.key_id,
        name=row.name,
        scopes=frozenset(row.scopes.split(",")),
        source=row.source,
        origins=origins.get(row.key_id, frozenset()),
    )
