"""One-click unsubscribe links (RFC 8058) carried by every marketing message.

A link is ``{public_url}/u/{channel}/{token}``: the token is a signed per-person link
(:mod:`surmesure.protect.links`) under a salt naming the channel, so an e-mail link never opts
a person out of SMS. ``GET`` on it shows a confirmation page; ``POST`` (what a mail reader sends
for ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``) records a marketing refusal on that
channel, with the link as evidence (:func:`opt_out`).

A link works for ``SURMESURE_UNSUBSCRIBE_LINK_DAYS`` (730 by default, 30 at least: CAN-SPAM
wants an opt-out to work 30 days after sending, and people unsubscribe from old mail found in
their inbox, where an expired link leaves them only the spam button). The setting sets how
long a new link lives; a link is read up to :data:`~surmesure.config.UNSUBSCRIBE_MAX_DAYS`,
so shortening the setting never breaks a link already sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from surmesure.config import UNSUBSCRIBE_MAX_DAYS, Settings
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


DEFAULT_DAYS = 730
"""How long a link lives unless the settings say (``unsubscribe_link_days``'s default)."""


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
    days: int = DEFAULT_DAYS
    max_days: int = UNSUBSCRIBE_MAX_DAYS
    clock: Callable[[], datetime] = _utcnow

    @classmethod
    def from_settings(cls, settings: Settings, mailto: str | None = None) -> UnsubscribeLinks:
        """Links under ``public_url``, signed with ``secret_key``, living
        ``unsubscribe_link_days``."""
        return cls(settings.public_url, settings.secret_key, mailto, settings.unsubscribe_link_days)

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


def person_of(token: str, channel: str, *, secret: str, now: datetime | None = None) -> int:
    """The person a link names; :class:`~surmesure.errors.NotFound` for a bad or expired
    link (see the module for how long one lives)."""
    check("marketing", channel, "channel")
    return read_token(
        token,
        salt=salt_of(channel),
        now=now or _utcnow(),
        secret=secret,
        max_days=UNSUBSCRIBE_MAX_DAYS,
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
    found = person_of(token, channel, secret=settings.secret_key, now=now)
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
