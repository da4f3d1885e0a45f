"""What providers report of a message after it left: an SMS gateway's delivery reports.

Kannel calls ``/v1/sms/reports`` (the ``dlr-url`` :mod:`surmesure.deliver.sms` gives it) with
the message id, a signature of it, and the report's type: 1 delivered to the phone, 2 failed,
4 buffered by the operator, 8 accepted by the SMSC, 16 rejected by the SMSC. Each report is
kept (table ``delivery_reports``), oldest first; :func:`status_of` reads the latest, so a
"delivered" after an "accepted" is what a campaign counts. The provider's own answer text is
not kept: an SMPP receipt quotes the start of the message.
"""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.deliver import addresses
from surmesure.deliver.sms import signature
from surmesure.errors import InvalidInput, NotFound
from surmesure.store import schema
from surmesure.store.engine import Store

KANNEL: dict[int, str] = {1: "delivered", 2: "failed", 4: "buffered", 8: "accepted", 16: "rejected"}
"""Kannel's DLR type (``%d``) -> the status kept."""
_TYPES = {str(k): v for k, v in KANNEL.items()}
"""The same, by the text Kannel sends: ``int()`` would also read ``" 1"``, ``"+1"`` or a
digit one of another script as 1."""


def read_kannel(message_id: str, sig: str, status: str, *, secret: str) -> str:
    """The status a Kannel report says; :class:`NotFound` for a report not signed by us (as
    for a message we never sent), :class:`InvalidInput` for a type Kannel does not send."""
    if not message_id or not hmac.compare_digest(
        sig.encode(), signature(secret, message_id).encode()
    ):
        raise NotFound("No such message.", hint="reports come from the dlr-url each SMS carries")
    found = _TYPES.get(status)
    if found is None:
        raise InvalidInput(
            f"Report type {status[:8]!r} is not one Kannel sends.",
            field="status",
            hint="use 1, 2, 4, 8 or 16 (Kannel's %d)",
        )
    return found


def record_report(
    store: Store,
    message_id: str,
    channel: str,
    status: str,
    now: datetime,
    *,
    recipient: str | None = None,
    detail: str | None = None,
) -> None:
    """Keep one report; a hard bounce of an e-mail also flags the address it went to
    (``recipient``, else the person's most recent one: :mod:`surmesure.deliver.addresses`)."""
    with store.begin() as conn:
        if channel == "email" and status == addresses.BOUNCED:
            addresses.flag_bounce(conn, message_id[:64], recipient, detail or status, now)
        conn.execute(
            schema.delivery_reports.insert().values(
                report_id=uuid.uuid4().hex,
                message_id=message_id[:64],
                channel=channel,
                status=status,
                received_at=now,
            )
        )


def status_of(conn: Connection, message_id: str) -> str | None:
    """The latest status reported of a message, or ``None`` when nothing was reported."""
    r = schema.delivery_reports
    row = conn.execute(
        sa.select(r.c.status)
        .where(r.c.message_id == message_id)
        .order_by(r.c.received_at.desc(), r.c.report_id.desc())
        .limit(1)
    ).first()
    return None if row is None else str(row[0])
