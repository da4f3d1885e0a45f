"""Replies to our SMS: STOP and its French forms opt the number's person out of SMS marketing.

Kannel's ``sms-service`` passes every message a phone sends to ``/v1/sms/inbound`` (its
``get-url``, with the ``key`` of :func:`surmesure.deliver.sms.inbound_key`). A text whose first
word is a stop word (:data:`STOP_WORDS`, in any case, with or without accents: ``STOP``,
``Stop SMS``, ``ARRÊT``, ``arret``) records a marketing refusal on channel ``sms`` for the
person who holds the number, with the gateway's id of the reply as evidence. Any other text,
or a number nobody holds, records nothing.
"""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import datetime
from typing import Literal

from surmesure.deliver.unsubscribe import opt_out
from surmesure.errors import InvalidInput, NotFound
from surmesure.protect import audit
from surmesure.protect.consent import records_of, refused
from surmesure.store.engine import Store
from surmesure.unify.profile import find_person

STOP_WORDS = frozenset(
    {"STOP", "STOPSMS", "ARRET", "ARRETER", "ARRETSMS", "UNSUBSCRIBE", "DESABONNER", "END", "QUIT"}
)
SOURCE = "sms_stop"
ACTOR = "sms:inbound"
Outcome = Literal["opted_out", "already_out", "unknown_number", "not_stop"]


def is_stop(text: str) -> bool:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().upper()
    words = plain.replace(".", " ").replace("!", " ").split()
    return bool(words) and (words[0] in STOP_WORDS or "".join(words[:2]) in STOP_WORDS)


def handle(store: Store, number: str, text: str, gateway_id: str, now: datetime) -> Outcome:
    """What one message from a phone does (see the module)."""
    if not is_stop(text):
        return "not_stop"
    with store.begin() as conn:
        try:
            person_id = find_person(conn, f"phone:{number}").person_id
        except (NotFound, InvalidInput):
            return "unknown_number"
        if refused(records_of(conn, person_id, ("marketing",)), "marketing", "sms", now):
            return "already_out"
        evidence = "sms:" + hashlib.sha256(gateway_id.encode()).hexdigest()[:32]
        opt_out(conn, person_id, "sms", source=SOURCE, evidence=evidence, now=now)
        audit.record_in(conn, ACTOR, "consent.stop", person_id=person_id, now=now)
    return "opted_out"
