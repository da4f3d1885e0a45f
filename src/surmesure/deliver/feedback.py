"""Bounces and complaints: what comes back about an e-mail after it left.

A mail server that cannot deliver answers with a delivery status notification (RFC 3464,
``multipart/report; report-type=delivery-status``); a mailbox provider whose user pressed
"spam" sends an abuse report (RFC 5965 ARF, ``report-type=feedback-report``). Both quote the
original message's headers, so its Message-ID (``<message_id@domain>``, see
:mod:`surmesure.deliver.email`) names our message and its ``List-Unsubscribe`` link names the
person (a signed token: nothing is trusted that we did not sign).

:func:`read` reads one such message; :func:`apply` records it: a failed delivery (status 5.x.x)
is the report ``bounced`` of the message and flags the address that failed (its
``Final-Recipient``; :mod:`surmesure.deliver.addresses`: that address only), a delayed one
(4.x.x) ``delayed``, a complaint ``complained`` (table ``delivery_reports``, which ``campaign
status`` counts); a complaint also records the person's refusal of e-mail marketing (source
``complaint``), as a one-click unsubscribe would: a person who calls our mail spam never gets
another.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from typing import Literal

from surmesure.config import Settings
from surmesure.deliver.reports import record_report
from surmesure.deliver.unsubscribe import opt_out, person_of
from surmesure.errors import InvalidInput, NotFound
from surmesure.store.engine import Store
from surmesure.unify.profile import root_of

Kind = Literal["bounced", "delayed", "complained"]
SOURCE = "complaint"
_LINK = re.compile(r"/u/email/([A-Za-z0-9_\-.]+)")
MAX_PARTS = 64
"""Nested parts a report may announce (a DSN has 3, an ARF 3 and the few of the original it
quotes): the standard library's parser recurses once per level, so a report nesting
thousands would exhaust the stack, and the mailbox forwarder passes on whatever anyone mails."""


@dataclass(frozen=True, slots=True)
class Feedback:
    kind: Kind
    message_id: str | None
    """Our message id, from the original's Message-ID."""
    token: str | None
    """The original's one-click unsubscribe token (names the person once verified)."""
    status: str | None = None
    """The DSN's status code (``5.1.1``), when there is one."""
    recipient: str | None = None
    """The address that failed (the DSN's ``Final-Recipient``, else ``Original-Recipient``)."""


def _original(report: EmailMessage) -> Message | None:
    for part in report.iter_parts():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            first = payload[0] if isinstance(payload, list) and payload else None
            return first if isinstance(first, Message) else None
        if kind == "text/rfc822-headers":
            headers = part.get_payload(decode=True)
            return message_from_bytes(headers if isinstance(headers, bytes) else b"")
    return None


def _recipient(block: Message) -> str | None:
    for header in ("Final-Recipient", "Original-Recipient"):
        kind, _, address = str(block.get(header, "")).partition(";")
        if address.strip() and kind.strip().lower() == "rfc822":
            return address.strip().strip("<>")
    return None


def _dsn(report: EmailMessage) -> tuple[Kind, str, str | None] | None:
    for part in report.iter_parts():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        for block in blocks[1:] if isinstance(blocks, list) else []:
            if not isinstance(block, Message):
                continue
            action = str(block.get("Action", "")).strip().lower()
            status = str(block.get("Status", "")).strip().split(" ")[0]
            if action == "failed" and status.startswith("5"):
                return "bounced", status, _recipient(block)
            if action in ("delayed", "failed"):
                return "delayed", status, _recipient(block)
    return None


def feedback_key(secret: str) -> str:
    """The ``key`` a mailbox forwarder or a provider's webhook passes to
    ``POST /v1/email/feedback``."""
    return hmac.new(secret.encode(), b"email-feedback", hashlib.sha256).hexdigest()[:32]


def read(raw: bytes) -> Feedback | None:
    """The bounce or complaint ``raw`` is; ``None`` for any other message;
    :class:`InvalidInput` for one nesting more than :data:`MAX_PARTS` parts."""
    lowered = raw.lower()
    nested = lowered.count(b"multipart/") + lowered.count(b"message/")
    too_deep = InvalidInput(
        f"The report holds more than {MAX_PARTS} nested parts.",
        field="body",
        hint="send the report as the mail server wrote it (a DSN or ARF has a few parts)",
    )
    if nested > MAX_PARTS:
        raise too_deep
    try:
        report = message_from_bytes(raw, policy=policy.default)
    except RecursionError:
        raise too_deep from None
    assert isinstance(report, EmailMessage)
    if report.get_content_type() != "multipart/report":
        return None
    kind: Kind
    status = recipient = None
    report_type = str(report.get_param("report-type", "")).lower()
    if report_type == "feedback-report":
        kind = "complained"
    elif report_type == "delivery-status":
        found = _dsn(report)
        if found is None:
            return None
        kind, status, recipient = found
    else:
        return None
    original = _original(report)
    message_id = token = None
    if original is not None:
        mid = str(original.get("Message-ID", "")).strip().strip("<>")
        message_id = mid.rpartition("@")[0] or None
        link = _LINK.search(str(original.get("List-Unsubscribe", "")))
        token = link.group(1) if link else None
    return Feedback(kind, message_id, token, status, recipient)


def apply(store: Store, feedback: Feedback, *, settings: Settings, now: datetime) -> str:
    """Record ``feedback`` (see the module); what was done: ``recorded``, ``opted_out`` or
    ``unknown`` (neither our message nor our person)."""
    done = "unknown"
    if feedback.message_id:
        record_report(
            store,
            feedback.message_id,
            "email",
            feedback.kind,
            now,
            recipient=feedback.recipient,
            detail=feedback.status,
        )
        done = "recorded"
    if feedback.kind != "complained" or not feedback.token:
        return done
    try:
        found = person_of(feedback.token, "email", secret=settings.secret_key, now=now)
    except NotFound:
        return done
    evidence = "arf:" + hashlib.sha256((feedback.message_id or "").encode()).hexdigest()[:32]
    with store.begin() as conn:
        person_id = root_of(conn, found)
        if person_id is None:
            return done
        opt_out(conn, person_id, "email", source=SOURCE, evidence=evidence, now=now)
    return "opted_out"
