"""Console users: who may sign in, with which role, and their sessions.

A user signs in with an e-mail address and a password. The password is kept only as an
argon2id hash (argon2-cffi's defaults, rehashed on sign-in when those change); an unknown
address costs the same hash as a wrong password, so timing does not tell which addresses exist.
Failed sign-ins are limited per address from one client (:data:`SIGN_IN_LIMIT`), per client
(:data:`CLIENT_SIGN_IN_LIMIT`) and per address from every client together
(:data:`ADDRESS_SIGN_IN_LIMIT`): whoever guesses at an address from one client locks it for that
client only, so the admin signing in from elsewhere is not locked out by them, while guesses
spread over many clients still stop.

A role maps onto the API's scopes (:data:`ROLE_SCOPES`), so one rule decides what a key and a
user may do: a *viewer* sees aggregates only (counts, sizes, results); an *analyst* also reads
people (``read``); a *marketer* also changes segments, content and campaigns (``decide``); an
*admin* has every scope, and manages users, keys, exports and erasures.

A session is a random token: the browser keeps it in a signed, HTTP-only cookie; the store
keeps only its SHA-256, with its expiry. Signing out, disabling the user or the expiry ends it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from surmesure.clock import utcnow
from surmesure.errors import Conflict, InvalidInput, NotFound, TooManyRequests
from surmesure.store import schema
from surmesure.store.engine import Store

ROLES = ("viewer", "analyst", "marketer", "admin")
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "viewer": frozenset(),
    "analyst": frozenset({"read"}),
    "marketer": frozenset({"read", "decide"}),
    "admin": frozenset({"admin"}),
}
LANGUAGES = ("en", "fr")
MIN_PASSWORD = 12
SESSION_HOURS = 12
#: failed sign-ins allowed per e-mail address from one client address, per client address (a
#: whole office may share one), and per e-mail address from all clients together
SIGN_IN_LIMIT = "10/15minutes"
CLIENT_SIGN_IN_LIMIT = "50/15minutes"
ADDRESS_SIGN_IN_LIMIT = "100/15minutes"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()
#: what an unknown address is checked against, so that it costs what a known one costs
_NOBODY = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    email: str
    role: str
    language: str
    created_at: datetime
    last_login_at: datetime | None = None
    disabled_at: datetime | None = None

    @property
    def scopes(self) -> frozenset[str]:
        return ROLE_SCOPES[self.role]

    def allows(self, scope: str | None) -> bool:
        """Whether the role may do what ``scope`` guards (``None``: any signed-in user)."""
        return scope is None or scope in self.scopes or "admin" in self.scopes

    @property
    def actor(self) -> str:
        """The audit log's actor."""
        return f"console:{self.email}"


def _user(row: Any) -> User:
    return User(
        user_id=row.user_id,
        email=row.email,
        role=row.role,
        language=row.language,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
        disabled_at=row.disabled_at,
    )


def check_email(email: str) -> str:
    value = email.strip().lower()
    if not _EMAIL.match(value) or len(value) > 320:
        raise InvalidInput(
            f"{email!r} is not an e-mail address.", field="email", hint="e.g. anna@shop.example"
        )
    return value


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(
            f"Role {role!r} is not known.", field="role", hint=f"choose among {', '.join(ROLES)}"
        )
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(
            f"The password has {len(password)} characters.",
            field="password",
            hint=f"choose one of at least {MIN_PASSWORD} characters (a passphrase)",
        )
    return password


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise InvalidInput(
            f"Language {language!r} is not offered.",
            field="language",
            hint=f"choose among {', '.join(LANGUAGES)}",
        )
    return language


def create_user(
    store: Store,
    email: str,
    password: str,
    role: str,
    *,
    language: str = "en",
    replace: bool = False,
) -> User:
    """A new user; with ``replace``, an existing user of that address gets the new password,
    role and language, and is enabled again (its sessions end)."""
    email, role = check_email(email), check_role(role)
    check_password(password)
    check_language(language)
    hashed = _hasher.hash(password)
    users = schema.console_users
    now = utcnow()
    with store.begin() as conn:
        found = conn.execute(sa.select(users).where(users.c.email == email)).first()
        if found is not None and not replace:
            raise InvalidInput(
                f"A user {email!r} exists already.",
                field="email",
                hint="choose another address, or pass --replace to reset this one",
            )
        if found is not None:
            if role != "admin":
                _keep_an_admin(conn, found)
            conn.execute(
                users.update()
                .where(users.c.user_id == found.user_id)
                .values(password_hash=hashed, role=role, language=language, disabled_at=None)
            )
            _end_sessions(conn, found.user_id, now)
            user_id = found.user_id
        else:
            user_id = uuid.uuid4().hex
            conn.execute(
                users.insert().values(
                    user_id=user_id,
                    email=email,
                    password_hash=hashed,
                    role=role,
                    language=language,
                    created_at=now,
                )
            )
        row = conn.execute(sa.select(users).where(users.c.user_id == user_id)).one()
    return _user(row)


def list_users(store: Store) -> list[User]:
    users = schema.console_users
    with store.connect() as conn:
        return [_user(r) for r in conn.execute(sa.select(users).order_by(users.c.email))]


def disable_user(store: Store, email: str) -> User:
    """Disables the user of ``email`` and ends its sessions at once; :class:`Conflict` for the
    last enabled admin (whoever disables it, nobody could manage users from the console)."""
    users = schema.console_users
    now = utcnow()
    with store.begin() as conn:
        row = conn.execute(sa.select(users).where(users.c.email == check_email(email))).first()
        if row is None:
            raise NotFound(
                f"No user {email!r}.", field="email", hint="list them with 'surmesure user list'"
            )
        _keep_an_admin(conn, row)
        conn.execute(users.update().where(users.c.user_id == row.user_id).values(disabled_at=now))
        _end_sessions(conn, row.user_id, now)
        row = conn.execute(sa.select(users).where(users.c.user_id == row.user_id)).one()
    return _user(row)


def _keep_an_admin(conn: sa.Connection, row: sa.Row[Any]) -> None:
    """:class:`Conflict` if the user ``row`` is the last enabled admin, about to be disabled or
    given another role (nobody could manage users from the console any more)."""
    users = schema.console_users
    if row.role != "admin" or row.disabled_at is not None:
        return
    others = conn.execute(
        sa.select(sa.func.count()).where(
            users.c.role == "admin", users.c.disabled_at.is_(None), users.c.user_id != row.user_id
        )
    ).scalar_one()
    if not others:
        raise Conflict(
            f"{row.email} is the last admin: nobody could manage users, keys and "
            "erasures any more.",
            field="email",
            hint="create another admin first (surmesure user create EMAIL --role admin)",
        )


def _end_sessions(conn: sa.Connection, user_id: str, now: datetime) -> None:
    s = schema.console_sessions
    conn.execute(
        s.update().where(s.c.user_id == user_id, s.c.ended_at.is_(None)).values(ended_at=now)
    )


class SignInLimits:
    """Failed sign-ins per address from a client, per client and per address, in this
    process."""

    def __init__(
        self,
        limit: str = SIGN_IN_LIMIT,
        client_limit: str = CLIENT_SIGN_IN_LIMIT,
        address_limit: str = ADDRESS_SIGN_IN_LIMIT,
    ) -> None:
        self._items = {
            "pair": parse(limit),
            "client": parse(client_limit),
            "email": parse(address_limit),
        }
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._pending: dict[str, int] = {}  # attempts let through, their password not yet checked
        self._lock = threading.Lock()

    def begin(self, email: str, client: str) -> None:
        """Refuse (:class:`TooManyRequests`) an attempt when the failures so far and the
        attempts still being checked reach a limit; otherwise count it as being checked (a
        burst of guesses sent at once would otherwise all pass before the first failed)."""
        with self._lock:
            keys = [(self._items[k], f"{k}:{v}") for k, v in _keys(email, client)]
            for item, key in keys:
                if not self._limiter.test(item, key, cost=self._pending.get(key, 0) + 1):
                    raise TooManyRequests(
                        "Too many failed sign-ins.",
                        retry_after=15 * 60,
                        hint="wait 15 minutes, or ask an admin to reset the password",
                    )
            for _, key in keys:
                self._pending[key] = self._pending.get(key, 0) + 1

    def end(self, email: str, client: str, *, failed: bool) -> None:
        """The attempt :meth:`begin` let through is checked: a failure counts from now on."""
        with self._lock:
            for kind, key in _keys(email, client):
                name = f"{kind}:{key}"
                left = self._pending.pop(name, 1) - 1
                if left > 0:
                    self._pending[name] = left
                if failed:
                    self._limiter.hit(self._items[kind], name)


def _keys(email: str, client: str) -> tuple[tuple[str, str], ...]:
    """What one attempt counts against: its address from its client, its client, its address."""
    return (("pair", f"{email}\x1f{client}"), ("client", client), ("email", email))


def address_of(email: str) -> str:
    """The address a sign-in names, as :func:`authenticate` looks it up: its first 320
    characters, trimmed, in lower case. The sign-in limits count this, so that padding an
    address past the cut (``admin@shop.example`` then spaces, then anything) is the same
    address to both."""
    return email[:320].strip().lower()


def authenticate(store: Store, email: str, password: str) -> User | None:
    """The enabled user of ``email`` (:func:`address_of`) whose password is ``password``, else
    ``None``; the same hash work either way."""
    users = schema.console_users
    address = address_of(email)
    with store.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.email == address)).first()
    try:
        _hasher.verify(row.password_hash if row is not None else _NOBODY, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row.disabled_at is not None:
        return None
    changes: dict[str, Any] = {"last_login_at": utcnow()}
    if _hasher.check_needs_rehash(row.password_hash):
        changes["password_hash"] = _hasher.hash(password)
    with store.begin() as conn:
        conn.execute(users.update().where(users.c.user_id == row.user_id).values(**changes))
    return _user(row)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(store: Store, user: User, *, hours: float = SESSION_HOURS) -> str:
    """A new session's token (the cookie's content, before signing)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with store.begin() as conn:
        conn.execute(
            schema.console_sessions.insert().values(
                session_hash=_digest(token),
                user_id=user.user_id,
                created_at=now,
                expires_at=now + timedelta(hours=hours),
            )
        )
    return token


def session_user(store: Store, token: str) -> User | None:
    """The enabled user of a live session, else ``None``."""
    s, u = schema.console_sessions, schema.console_users
    now = utcnow()
    query = (
        sa.select(u)
        .join(s, s.c.user_id == u.c.user_id)
        .where(
            s.c.session_hash == _digest(token),
            s.c.ended_at.is_(None),
            s.c.expires_at > now,
            u.c.disabled_at.is_(None),
        )
    )
    with store.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _user(row)


def end_session(store: Store, token: str) -> None:
    s = schema.console_sessions
    with store.begin() as conn:
        conn.execute(
            s.update()
            .where(s.c.session_hash == _digest(token), s.c.ended_at.is_(None))
            .values(ended_at=utcnow())
        )
