"""Who a web page's visitor is, as the page can prove it.

A page never names a person: the visitor is one of

- an **anonymous** visitor: the server issues a random anonymous id (128 bits) with its
  HMAC-SHA256 under a secret derived from ``SURMESURE_SECRET_KEY``; the script keeps
  ``ID.SIGNATURE`` in the shop's own cookie ``sm_aid`` and sends it back. A value without a
  valid signature (forged, cut, another server's) is ignored and a new id is issued: it is
  never used to decide, nor to record an event;
- a **logged-in** customer: the shop's server signs the customer id for the page,
  ``CUSTOMER_ID.EXPIRY.SIGNATURE`` (expiry in Unix seconds, the signature the hex
  HMAC-SHA256 of ``CUSTOMER_ID.EXPIRY`` under the web key's identity secret), and writes it
  in the script tag's ``data-surmesure-user``. :func:`sign_user` does it in Python; in any
  other language it is one HMAC (see the README). A token whose signature does not hold, that
  has expired or that claims to last longer than :data:`MAX_USER_SECONDS` counts for
  nothing: the visitor is then their anonymous self, never the customer claimed.

Every comparison of signatures is constant-time. The identity secret of a key is derived from
the server's secret and the key's id (:func:`key_identity_secret`): ``surmesure key create``
prints it, and a new ``SURMESURE_SECRET_KEY`` gives every web key a new one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

ANONYMOUS_BYTES = 16
MAX_USER_SECONDS = 7 * 86_400
"""The longest a signed user may be valid for: a copied page lets its reader act as that
customer's browser (see their own content) no longer than this."""
DEFAULT_USER_SECONDS = 86_400
MAX_CUSTOMER_ID = 256


def _mac(secret: bytes, text: str) -> bytes:
    return hmac.new(secret, text.encode(), hashlib.sha256).digest()


def anonymous_secret(secret_key: str) -> bytes:
    """The secret anonymous ids are signed with, derived from the server's secret."""
    return _mac(secret_key.encode(), "surmesure web anonymous id")


def key_identity_secret(secret_key: str, key_id: str) -> str:
    """The secret with which the shop's server signs its logged-in users for the web key
    ``key_id`` (hex): derived from the server's secret, so nothing more is stored."""
    return _mac(secret_key.encode(), f"surmesure web user of key {key_id}").hex()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def new_anonymous(secret: bytes) -> tuple[str, str]:
    """A new anonymous id and the cookie value that proves it, ``(id, "id.signature")``."""
    anonymous_id = _b64(secrets.token_bytes(ANONYMOUS_BYTES))
    return anonymous_id, f"{anonymous_id}.{_b64(_mac(secret, anonymous_id))}"


def read_anonymous(secret: bytes, cookie: str | None) -> str | None:
    """The anonymous id ``cookie`` proves, or ``None`` for a missing, malformed or forged
    value."""
    if not cookie or len(cookie) > 128:
        return None
    anonymous_id, dot, signature = cookie.partition(".")
    if not dot or len(anonymous_id) != 22:
        return None
    expected = _b64(_mac(secret, anonymous_id))
    return anonymous_id if hmac.compare_digest(signature.encode(), expected.encode()) else None


def sign_user(
    secret: str,
    customer_id: str,
    *,
    seconds: int = DEFAULT_USER_SECONDS,
    now: float | None = None,
) -> str:
    """What the shop's server writes in ``data-surmesure-user`` for its logged-in customer
    ``customer_id``: valid ``seconds`` from ``now`` (Unix seconds, default: the clock), at most
    :data:`MAX_USER_SECONDS`. ``secret`` is the web key's identity secret."""
    if not customer_id or len(customer_id) > MAX_CUSTOMER_ID:
        raise ValueError(f"customer_id must have 1 to {MAX_CUSTOMER_ID} characters")
    if not 0 < seconds <= MAX_USER_SECONDS:
        raise ValueError(f"seconds must be 1 to {MAX_USER_SECONDS}")
    expiry = int(time.time() if now is None else now) + seconds
    signed = f"{customer_id}.{expiry}"
    return f"{signed}.{hmac.new(secret.encode(), signed.encode(), hashlib.sha256).hexdigest()}"


def read_user(secret: str, token: str | None, *, now: float | None = None) -> str | None:
    """The customer id ``token`` (:func:`sign_user`) vouches for at ``now``, or ``None``: no
    token, a wrong signature, expired, or valid for longer than :data:`MAX_USER_SECONDS`."""
    if not token or len(token) > MAX_CUSTOMER_ID + 100:
        return None
    parts = token.rsplit(".", 2)
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit():
        return None
    customer_id, expiry, signature = parts
    signed = f"{customer_id}.{expiry}"
    expected = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature.lower().encode(), expected.encode()):
        return None
    left = int(expiry) - (time.time() if now is None else now)
    return customer_id if 0 < left <= MAX_USER_SECONDS else None


@dataclass(frozen=True)
class Visitor:
    """Who a web call is for: the anonymous id (always), the cookie value that proves it
    (``issued``: a new one the page must keep) and, when a signed user holds, the customer
    id."""

    anonymous_id: str
    cookie: str
    issued: bool
    customer_id: str | None = None

    @property
    def key(self) -> str:
        """What the visitor's rate limit counts them as."""
        return f"c:{self.customer_id}" if self.customer_id else f"a:{self.anonymous_id}"


def visitor(
    secret_key: str,
    key_id: str,
    cookie: str | None,
    user: str | None,
    *,
    now: float | None = None,
) -> Visitor:
    """The visitor a call proves (see the module); a new anonymous id when ``cookie`` does
    not hold."""
    secret = anonymous_secret(secret_key)
    anonymous_id = read_anonymous(secret, cookie)
    issued = anonymous_id is None
    if anonymous_id is None:
        anonymous_id, cookie = new_anonymous(secret)
    assert cookie is not None
    customer_id = read_user(key_identity_secret(secret_key, key_id), user, now=now)
    return Visitor(anonymous_id, cookie, issued, customer_id)
