"""One-click unsubscribe links (RFC 8058) carried by every marketing message.

A link is ``{public_url}/u/{channel}/{token}``: the token is a signed per-person link
(:mod:`surmesure.protect.links`) under a salt naming the channel, so an e-mail link never opts
a person out of SMS. ``GET`` on it shows a confirmation page; ``POST`` (what a mail reader sends
for ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``) records a marketing refusal on that
channel, with the link as evidence (:func:`opt_out`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from surmesure.config import Settings
from surmesure.deliver.tracking import activity
from surmesure.errors import NotFound
from surmesure.protect import audit
from surmesure.protect.consent import check, consent_row, record_consents, records_of, refused
from surmesure.protect.links import make_token, read_token
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import root_of

SOURCE = "one_click_unsubscribe"
"""The ``source`` of the consent records an unsubscribe link writes."""
LINK_ACTOR = "link:unsubscribe"
"""The audit log's actor of an unsubscribe: whoever holds the signed link."""


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def salt_of(channel: str) -> str:
    return f"unsubscribe:{channel}"


@dataclass(frozen=True, slots=True)
class UnsubscribeLinks:
    """Makes the unsubscribe headers of a person's message on one channel."""

    public_url: str
    secret: str
    mailto: str | None = None
    """An address that takes unsubscribe requests by mail (``List-Unsubscribe``'s mailto)."""
    days: int = 90
    max_days: int = 90
    clock: Callable[[], datetime] = _utcnow

    @classmethod
    def from_settings(cls, settings: Settings, mailto: str | None = None) -> UnsubscribeLinks:
        """Links under ``public_url``, signed with ``secret_key``, living as long as a page
        link may (``page_link_max_days``)."""
        days = settings.page_link_max_days
        return cls(settings.public_url, settings.secret_key, mailto, days, days)

    def url(self, person_id: int, channel: str = "email") -> str:
        token = make_token(
            person_id,
            salt=salt_of(channel),
            days=self.days,
            now=self.clock(),
            secret=self.secret,
            max_days=self.max_days,
        )
        return f"{self.public_url.rstrip('/')}/u/{channel}/{token}"

    def headers(self, person_id: int, channel: str = "email") -> dict[str, str]:
        """``List-Unsubscribe`` (https, then mailto) and ``List-Unsubscribe-Post``."""
        url = self.url(person_id, channel)
        targets = [f"<{url}>"]
        if self.mailto:
            token = url.rpartition("/")[2]
            targets.append(f"<mailto:{self.mailto}?subject=unsubscribe%20{token}>")
        return {
            "List-Unsubscribe": ", ".join(targets),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }


def person_of(
    token: str, channel: str, *, secret: str, max_days: int, now: datetime | None = None
) -> int:
    """The person a link names; :class:`~surmesure.errors.NotFound` for a bad or old link."""
    check("marketing", channel, "channel")
    return read_token(
        token, salt=salt_of(channel), now=now or _utcnow(), secret=secret, max_days=max_days
    )


def opt_out(
    conn: Connection,
    person_id: int,
    channel: str,
    *,
    source: str,
    evidence: str,
    now: datetime | None = None,
) -> None:
    """Record that ``person_id`` refuses marketing on ``channel``; ``evidence`` says how
    (a hash of the link, a gateway's message id): never the address itself."""
    check("marketing", channel, "channel")
    row = consent_row(
        person_id,
        "marketing",
        channel,
        False,
        source=source,
        evidence=evidence,
        recorded_at=now or _utcnow(),
    )
    record_consents(conn, [row])


def evidence_of(token: str) -> str:
    """What a consent record keeps of a link: its hash (the token itself would re-open it)."""
    return "link:" + hashlib.sha256(token.encode()).hexdigest()[:32]


def unsubscribe(
    store: Store, token: str, channel: str, *, now: datetime, settings: Settings
) -> tuple[int, bool]:
    """What ``POST /u/{channel}/{token}`` does: the person the link names (the one they were
    merged into, if so) refuses marketing on ``channel``. Returns ``(person_id, recorded)``;
    a person who already refuses it is not recorded twice. :class:`NotFound` for a bad link."""
    found = person_of(
        token, channel, secret=settings.secret_key, max_days=settings.page_link_max_days, now=now
    )
    with store.begin() as conn:
        person_id = root_of(conn, found)
        if person_id is None:
            raise NotFound("This link does not exist or has expired.", hint="ask for a new link")
        if refused(records_of(conn, person_id, ("marketing",)), "marketing", channel, now):
            return person_id, False
        opt_out(conn, person_id, channel, source=SOURCE, evidence=evidence_of(token), now=now)
        row = activity(person_id, found, channel, "unsubscribed", now, SOURCE)
        conn.execute(schema.channel_activity.insert(), [row])
        audit.record_in(
            conn,
            LINK_ACTOR,
            "consent.unsubscribe",
            person_id=person_id,
            detail={"channel": channel},
            now=now,
        )
    return person_id, True
