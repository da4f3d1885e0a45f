"""Which identifiers of a record are vouched for, and which are only claimed.

Every record names identifiers. A record from a *trusted* source (the CRM, the shop's systems,
an operator's import: ``Settings.source_trust``) vouches for all of them: identity resolution
links the people they point to. A record from a *low-trust* source (the public write key of a
web page, an e-mail reply) vouches only for what its sender demonstrably holds:

- its anonymous ids: the device's own, random cookie (whoever has it *is* that device);
- a ``userId`` sent with a valid ``userHash`` = HMAC-SHA256(identity secret, userId), hex,
  which only the shop's server can compute, once its user has logged in (the identity
  verification of Intercom's ``user_hash`` and Braze's SDK authentication); likewise an e-mail
  with ``emailHash`` over the normalized (trimmed, lower-case) address.

Every other identifier of a low-trust record is a *claim*: it is never used to attach the record
to the person who already holds it; see :mod:`surmesure.unify.graph` for what a claim does.
The hashes are read from ``context.userHash`` / ``context.emailHash`` or from
``integrations.surmesure.userHash`` / ``.emailHash`` (where Segment's SDKs put options meant for
one destination).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any

from surmesure.unify.graph import Identifier

#: Identifier kinds a device holds by possession: never a claim.
OWN_KINDS = frozenset({"anonymous_id"})
#: The hash field that verifies each kind, where one exists.
HASH_FIELDS: dict[str, str] = {"customer_id": "userHash", "email": "emailHash"}


def sign(secret: str, value: str) -> str:
    """The hex HMAC-SHA256 of ``value`` under ``secret``: what the shop's server sends."""
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


def _hashes(
    context: Mapping[str, Any] | None, integrations: Mapping[str, Any] | None
) -> dict[str, str]:
    found: dict[str, str] = {}
    ours = (integrations or {}).get("surmesure")
    for where in (ours if isinstance(ours, Mapping) else None, context):
        for name in HASH_FIELDS.values():
            value = (where or {}).get(name)
            if isinstance(value, str) and name not in found:
                found[name] = value.strip().lower()
    return found


def verified(
    identifiers: Iterable[Identifier],
    secret: str | None,
    context: Mapping[str, Any] | None,
    integrations: Mapping[str, Any] | None = None,
) -> frozenset[Identifier]:
    """The identifiers a valid hash vouches for (none without a secret). A message names one
    ``userId`` and one e-mail, so one hash per kind suffices."""
    if not secret:
        return frozenset()
    hashes = _hashes(context, integrations)
    if not hashes:
        return frozenset()
    out = set()
    for kind, value in identifiers:
        field = HASH_FIELDS.get(kind)
        sent = hashes.get(field) if field else None
        if sent is not None and hmac.compare_digest(sent, sign(secret, value)):
            out.add((kind, value))
    return frozenset(out)


def claimed(
    identifiers: Iterable[Identifier],
    *,
    trusted: bool,
    vouched: frozenset[Identifier] = frozenset(),
) -> frozenset[Identifier]:
    """The identifiers of a record that are only claimed: none from a trusted source; from a
    low-trust one, all but the device's own and those a hash verified."""
    if trusted:
        return frozenset()
    return frozenset(i for i in identifiers if i[0] not in OWN_KINDS and i not in vouched)


def why_claimed(kind: str, source: str) -> str:
    """Why a claim did not link, for ``person show``."""
    field = HASH_FIELDS.get(kind)
    proof = f" and came without a valid {field}" if field else ""
    return f"source {source!r} is low trust{proof}"
