"""Call centre: a prioritised call list per batch, and the outcomes of the calls brought back.

Settings (:class:`CallSettings`, or ``calls:///folder`` read by :meth:`CallSettings.from_url`):
``folder`` where each batch writes ``<batch>.csv`` (mode 0600: it holds phone numbers). Over the
API, :class:`ListedCalls` hands the same ranked rows over in memory instead
(:func:`surmesure.deliver.service.call_list`).

:meth:`CallChannel.send` writes one row per person, highest expected value first (the message's
``X-Expected-Value`` header, in the campaign's currency; none counts as 0): rank, message id,
person id, phone (``Message.to``), expected value and the script (``Message.text``, rendered
for the person). A message without a phone number fails. A script that begins with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return is written after an apostrophe, so a spreadsheet
opening the list shows it as text rather than running it as a formula (a first name such as
``=HYPERLINK("http://...")`` at the start of a script).

:func:`import_outcomes` reads the centre's answer, a CSV with ``person_id``, ``outcome``
(:data:`OUTCOMES`; ``opt-out`` reads as ``opt_out``), ``called_at`` (ISO date-time, UTC) and
optionally ``message_id``: each row becomes an event on the person, their channel activity
(channel ``phone``, kind the outcome); ``opt_out`` also records a refusal of phone marketing
through the one consent policy (:mod:`surmesure.protect.consent`). A bad row (an unknown
outcome, person or call task, a date that does not read) goes to the quarantine with its reason
(kind ``call_outcomes``); the other rows are recorded. A person erased since the call is
counted and nothing of them is kept.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Collection, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal
from urllib.parse import unquote

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Connection

from surmesure.deliver.channel import Delivery, Message, OnResult
from surmesure.deliver.files import replace_file
from surmesure.deliver.imports import (
    Read,
    RowError,
    parse_rows,
    read_rows,
    refuse,
    set_aside,
    when,
)
from surmesure.deliver.settings import split, validated
from surmesure.deliver.tracking import activity
from surmesure.deliver.unsubscribe import opt_out
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.unify.profile import root_of

OUTCOMES = ("answered", "no_answer", "interested", "refused", "opt_out")
SOURCE = "call_centre"
COLUMNS = ["rank", "message_id", "person_id", "phone", "expected_value", "script"]


class CallSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["calls"] = "calls"
    folder: Path

    @classmethod
    def from_url(cls, url: str, **extra: object) -> CallSettings:
        parts = split(url, ("calls",), "calls", "calls:///var/spool/surmesure/calls")
        return validated(cls, {"folder": unquote(parts.path) or "."}, parts.query, extra, "calls")


def _value(message: Message) -> float:
    try:
        return float(message.headers.get("X-Expected-Value", "0"))
    except ValueError:
        return 0.0


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def as_text(cell: str) -> str:
    """``cell`` as a spreadsheet reads it as text: after an apostrophe when it begins like a
    formula (see the module)."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def ranked(
    messages: Sequence[Message],
) -> tuple[list[tuple[list[object], int]], dict[int, Delivery]]:
    """The call list's rows (:data:`COLUMNS`), highest expected value first, each with the
    index of its message; and the messages without a phone number, failed."""
    failed: dict[int, Delivery] = {}
    callable_ = []
    for i, message in enumerate(messages):
        if not message.to.strip():
            failed[i] = Delivery(message.message_id, "failed", detail="no phone number")
        else:
            callable_.append((-_value(message), message.message_id, i, message))
    callable_.sort(key=lambda row: (row[0], row[1]))
    rows: list[tuple[list[object], int]] = []
    for rank, (value, mid, i, message) in enumerate(callable_, start=1):
        person = "" if message.person_id is None else message.person_id
        rows.append(([rank, mid, person, message.to, -value, message.text], i))
    return rows, failed


def _told(
    messages: Sequence[Message], results: dict[int, Delivery], on_result: OnResult | None
) -> list[Delivery]:
    deliveries = [results[i] for i in range(len(messages))]
    if on_result is not None:
        for delivery in deliveries:
            on_result(delivery)
    return deliveries


class CallChannel:
    """The call-centre channel (see the module). Each ``send`` is one call list."""

    name = "phone"

    def __init__(self, settings: CallSettings) -> None:
        self.settings = settings
        self.last_batch: Path | None = None

    def send(
        self, messages: Sequence[Message], on_result: OnResult | None = None
    ) -> list[Delivery]:
        """One call list; each delivery told to ``on_result`` once the list is written."""
        rows, results = ranked(messages)
        if rows:
            folder = self.settings.folder
            folder.mkdir(parents=True, exist_ok=True)
            batch = datetime.now(UTC).strftime("calls-%Y%m%d-%H%M%S-%f")
            path = (folder / f"{batch}.csv").resolve()
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(descriptor, "w", newline="", encoding="utf-8") as out:
                writer = csv.writer(out)
                writer.writerow(COLUMNS)
                for row, i in rows:
                    writer.writerow([*row[:5], as_text(str(row[5]))])
                    results[i] = Delivery(str(row[1]), "sent", f"{batch}#{row[0]}", file=str(path))
            self.last_batch = path
        return _told(messages, results, on_result)

    def close(self) -> None:
        """Nothing is kept open."""


def without_calls(path: Path, message_ids: Collection[str]) -> bool:
    """Rewrite the call list ``path`` without the rows of ``message_ids`` (ranks kept: they
    are the deliveries' ``provider_id``); a list left empty is removed. ``False`` when the
    file is gone (removed now or before)."""
    if not path.exists():
        return False
    with path.open(newline="", encoding="utf-8") as source:
        rows = list(csv.reader(source))
    kept = [row for row in rows[1:] if len(row) < 2 or row[1] not in message_ids]
    if not kept:
        path.unlink()
        return False

    def write(out: IO[bytes]) -> None:
        text = io.TextIOWrapper(out, newline="", encoding="utf-8")
        csv.writer(text).writerows([rows[0], *kept])
        text.flush()
        text.detach()

    replace_file(path, write)
    return True


class ListedCalls:
    """The call list handed over in memory (the API answers it): each ``send`` appends its
    ranked rows to :attr:`tasks`, one mapping of :data:`COLUMNS` each."""

    name = "phone"

    def __init__(self) -> None:
        self.tasks: list[dict[str, object]] = []

    def send(
        self, messages: Sequence[Message], on_result: OnResult | None = None
    ) -> list[Delivery]:
        rows, results = ranked(messages)
        batch = datetime.now(UTC).strftime("api-%Y%m%d-%H%M%S-%f")
        for row, i in rows:
            self.tasks.append(dict(zip(COLUMNS, row, strict=True)))
            results[i] = Delivery(str(row[1]), "sent", f"{batch}#{row[0]}")
        return _told(messages, results, on_result)

    def close(self) -> None:
        """Nothing is kept open."""


KIND = "call_outcomes"
"""The quarantine's kind for a bad row of a call centre's answer."""


def parse_row(row: dict[str, str]) -> tuple[int, str, datetime, str]:
    """(person id, outcome, called at, message id) of one row; :class:`RowError` otherwise."""
    text = row.get("person_id", "").strip()
    if not text.isdigit():
        raise RowError("person_id", text, "person_id: give the person_id of the call list's row")
    outcome = row.get("outcome", "").strip().lower().replace("-", "_").replace(" ", "_")
    if outcome not in OUTCOMES:
        raise RowError("outcome", row.get("outcome"), "outcome: use one of " + ", ".join(OUTCOMES))
    if not row.get("called_at", "").strip():
        raise RowError("called_at", "", "called_at: give when the call was made (ISO 8601)")
    at = when(row, "called_at", datetime.min)
    return int(text), outcome, at, row.get("message_id", "").strip()


@dataclass
class Imported:
    """What an import recorded, by outcome, and how many rows went to the quarantine."""

    counts: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    erased: int = 0
    again: int = 0
    """Rows recorded by an earlier import of the same outcomes."""

    def to_dict(self) -> dict[str, object]:
        return {
            "recorded": self.counts,
            "quarantined": self.quarantined,
            "erased": self.erased,
            "already_recorded": self.again,
        }


def _known(conn: Connection, activity_id: str) -> bool:
    a = schema.channel_activity
    query = sa.select(a.c.activity_id).where(a.c.activity_id == activity_id)
    return conn.execute(query).first() is not None


def _handed(conn: Connection, campaign: str, people: Collection[int]) -> bool:
    """Whether a call task of ``campaign`` for one of ``people`` was handed over (``sent``)."""
    m = schema.messages
    query = sa.select(m.c.message_id).where(
        m.c.campaign == campaign,
        m.c.channel == "phone",
        m.c.status == "sent",
        m.c.person_id.in_(sorted(people)),
    )
    return bool(conn.execute(sa.select(query.exists())).scalar_one())


REQUIRED = ("person_id", "outcome", "called_at")


def import_outcomes(store: Store, path: Path, now: datetime | None = None) -> Imported:
    """Record the outcomes in ``path`` (see the module); a bad row goes to the quarantine
    with its reason (kind ``call_outcomes``), the others are recorded."""
    return record_outcomes(store, read_rows(path, REQUIRED, parse_row), path.name, now)


API_SOURCE = "api:"
"""How the source of outcomes posted over HTTP is named: ``api:<campaign>``."""


def posted_source(campaign: str) -> str:
    """The source name of ``campaign``'s outcomes posted over HTTP (their quarantine's)."""
    return f"{API_SOURCE}{campaign}"


def posted_campaign(source_name: str) -> str | None:
    """The campaign a source name of :func:`posted_source` names (``None`` for a file's)."""
    return source_name.removeprefix(API_SOURCE) if source_name.startswith(API_SOURCE) else None


def outcomes_posted(
    store: Store, campaign: str, rows: Sequence[dict[str, str]], now: datetime | None = None
) -> Imported:
    """Record outcomes of ``campaign``'s calls sent over HTTP (rows with the file's
    columns), as a file's; bad rows go to the quarantine with origin ``api`` and source
    ``api:<campaign>``, so a replay (``surmesure quarantine replay --kind call_outcomes``)
    records them of the same campaign."""
    read = parse_rows(rows, parse_row, first=1)
    source = posted_source(campaign)
    return record_outcomes(store, read, source, now, campaign=campaign, origin="api")


def record_outcomes(
    store: Store,
    read: Read,
    source_name: str,
    now: datetime | None = None,
    *,
    campaign: str | None = None,
    origin: str = "import",
    within: Connection | None = None,
    set_aside_bad: bool = True,
) -> Imported:
    """Record the parsed rows of ``read``, quarantining the bad ones under ``source_name``;
    each outcome is of ``campaign``, else of its call task's campaign when it names one.
    Posted over HTTP (``origin`` ``api``), a row is refused unless a call task of
    ``campaign`` was handed over for its person (and its ``message_id``, if any, is one of
    ``campaign``'s).
    ``within``: in that transaction; without ``set_aside_bad`` the rows refused here are only
    added to ``read.bad`` (a replay of the quarantine)."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    done = Imported()
    m = schema.messages
    # the centre's key posts outcomes of the tasks it was handed only: it may not record
    # activity, or an opt-out, for anyone else in the store
    posted = origin == "api" and campaign is not None
    with store.begin() if within is None else nullcontext(within) as conn:
        found: list[dict[str, object]] = []
        seen: set[str] = set()
        for n, raw, (person, outcome, at, message_id) in read.good:
            task = None
            if message_id:
                # every row fetched: an embedded DuckDB connection refuses other work while
                # a result is left unfinished (as .first() leaves it)
                task = conn.execute(
                    sa.select(m.c.person_id, m.c.channel, m.c.campaign).where(
                        m.c.message_id == message_id
                    )
                ).one_or_none()
            if task is not None and (
                task.channel != "phone" or task.person_id not in (person, None)
            ):
                why = "message_id: a message of another person or channel; check the row"
                refuse(read, n, raw, "message_id", message_id, why)
                continue
            if posted and task is not None and task.campaign != campaign:
                why = "message_id: a call task of another campaign; post it to that campaign"
                refuse(read, n, raw, "message_id", message_id, why)
                continue
            root = root_of(conn, person)
            if root is None and task is None:
                why = "person_id: no such person; give the person_id of the call list's row"
                refuse(read, n, raw, "person_id", person, why)
                continue
            if root is None:
                done.erased += 1  # erased since the call: nothing of them is kept
                continue
            if posted and not _handed(conn, str(campaign), {person, root}):
                why = (
                    "person_id: no call task of this campaign was handed over for this person; "
                    "give the person_id of a row of its call list"
                )
                refuse(read, n, raw, "person_id", person, why)
                continue
            of = campaign or (None if task is None else str(task.campaign))
            event = activity(root, person, "phone", outcome, at, SOURCE, campaign=of)
            # one id per call and outcome: the same file imported again records nothing twice
            key = f"call:{person}:{outcome}:{at.isoformat()}:{message_id}"
            event["activity_id"] = hashlib.sha256(key.encode()).hexdigest()[:32]
            if event["activity_id"] in seen or _known(conn, event["activity_id"]):
                done.again += 1
                continue
            seen.add(event["activity_id"])
            found.append(event)
            if outcome == "opt_out":
                opt_out(conn, root, "phone", source=SOURCE, evidence=f"call:{source_name}", now=at)
            done.counts[outcome] = done.counts.get(outcome, 0) + 1
        if found:
            conn.execute(schema.channel_activity.insert(), found)
        if set_aside_bad:
            set_aside(store, conn, read.bad, KIND, source_name, now, origin)
    done.quarantined = len(read.bad)
    return done
