"""Identifiers: the kinds a person is known by, how each is normalized, and their precedence.

Normalization is what makes "Marie.Dupont@Example.com " from the shop and
"marie.dupont@example.com" from the web one identifier; a value that cannot be normalized is
refused with a reason rather than stored as it came.
"""

from __future__ import annotations

import unicodedata
from typing import Final, Literal, get_args

import phonenumbers

IdentifierKind = Literal["customer_id", "loyalty_card", "email", "phone", "anonymous_id"]
KINDS: Final[tuple[IdentifierKind, ...]] = get_args(IdentifierKind)

#: Precedence when a record carries several identifiers: it attaches to the person of the
#: first kind in this order.
PRIORITY: Final[dict[str, int]] = {kind: rank for rank, kind in enumerate(KINDS)}

#: The identifier kinds a decision names a person by (a device, a logged-in customer).
LOOKUP_KINDS: Final = ("anonymous_id", "customer_id")

#: Most identifiers of a kind one person may hold. Two people who each hold a different
#: customer id are never merged, even when they share an e-mail (a family address, say):
#: the record goes to the person of its own customer id and the conflict is recorded.
LIMITS: Final[dict[str, int]] = {"customer_id": 1}


def normalize_email(value: str) -> str:
    """Lower-cased, trimmed e-mail, its domain in the form mail servers route: compatibility
    characters folded (``ｅｘａｍｐｌｅ.com`` is ``example.com``, as IDNA maps it) and no
    trailing dot (``example.com.`` is the same domain). One mailbox is one identifier, so an
    erased or claimed address cannot come back spelled another way. Raises ``ValueError``
    naming the problem."""
    email = value.strip().lower()
    local, sep, domain = email.rpartition("@")
    if sep and not domain.isascii():
        domain = unicodedata.normalize("NFKC", domain).lower()
    domain = domain.rstrip(".")
    email = f"{local}{sep}{domain}"
    if not sep or not local or "." not in domain or " " in email or domain.startswith("."):
        raise ValueError(f"{value!r} is not an e-mail address; expected name@domain.tld")
    return email


def normalize_phone(value: str, default_region: str = "FR") -> str:
    """E.164 phone number (``+33612345678``), reading national numbers in ``default_region``."""
    try:
        number = phonenumbers.parse(value, default_region.upper())
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{value!r} is not a phone number ({exc})") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(
            f"{value!r} is not a valid phone number for region {default_region}; "
            "write it with its country prefix, e.g. +33 6 12 34 56 78"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_plain(value: str) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("empty identifier")
    if len(text) > 256:
        raise ValueError("identifier longer than 256 characters")
    return text


def normalize(kind: str, value: str, default_region: str = "FR") -> str:
    if kind == "email":
        return normalize_email(value)
    if kind == "phone":
        return normalize_phone(value, default_region)
    if kind in PRIORITY:
        return normalize_plain(value)
    raise ValueError(f"unknown identifier kind {kind!r}; use one of {', '.join(KINDS)}")
