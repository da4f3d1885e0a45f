"""Call centre: a prioritised call list per batch, and the outcomes of the calls brought back.

Settings (:class:`CallSettings`, or ``calls:///folder`` read by :meth:`CallSettings.from_url`):
``folder`` where each batch writes ``<batch>.csv`` (mode 0600: it holds phone numbers).

:meth:`CallChannel.send` writes one row per person, highest expected value first (the message's
``X-Expected-Value`` header, in the campaign's currency; none counts as 0): rank, message id,
person id, phone (``Message.to``), expected value and the script (``Message.text``, rendered
for the person). A message without a phone number fails. A script that begins with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return is written after an apostrophe, so a spreadsheet
opening the list shows it as text rather than running it as a formula (a first name such as
``=HYPERLINK("http://...")`` at the start of a script).

:func:`import_outcomes` reads the centre's answer, a CSV with ``message_id``, ``person_id``,
``outcome`` (:data:`OUTCOMES`) and ``called_at`` (ISO date-time, UTC): each row becomes the
person's channel activity (channel ``phone``, kind the outcome); ``opt_out`` also records a
refusal of phone marketing. A file with a bad row records nothing and names the row, the field
and the fix.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict

from surmesure.deliver.channel import Delivery, Message, OnResult
from surmesure.deliver.settings import split, validated
from surmesure.deliver.tracking import activity
from surmesure.deliver.unsubscribe import opt_out
from surmesure.errors import InvalidInput
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
        results: dict[int, Delivery] = {}
        callable_ = []
        for i, message in enumerate(messages):
            if not message.to.strip():
                results[i] = Delivery(message.message_id, "failed", detail="no phone number")
            else:
                callable_.append((-_value(message), message.message_id, i, message))
        callable_.sort(key=lambda row: (row[0], row[1]))
        if callable_:
            folder = self.settings.folder
            folder.mkdir(parents=True, exist_ok=True)
            batch = datetime.now(UTC).strftime("calls-%Y%m%d-%H%M%S-%f")
            path = folder / f"{batch}.csv"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(descriptor, "w", newline="", encoding="utf-8") as out:
                writer = csv.writer(out)
                writer.writerow(COLUMNS)
                for rank, (value, mid, i, message) in enumerate(callable_, start=1):
                    person = "" if message.person_id is None else message.person_id
                    script = as_text(message.text)
                    writer.writerow([rank, mid, person, message.to, -value, script])
                    results[i] = Delivery(mid, "sent", f"{batch}#{rank}")
            self.last_batch = path
        deliveries = [results[i] for i in range(len(messages))]
        if on_result is not None:
            for delivery in deliveries:
                on_result(delivery)
        return deliveries

    def close(self) -> None:
        """Nothing is kept open."""


def _row(n: int, row: dict[str, str]) -> tuple[int, str, datetime]:
    def bad(field: str, hint: str) -> InvalidInput:
        value = str(row.get(field))[:40]
        return InvalidInput(f"Row {n}: {field} {value!r} is not valid.", field=field, hint=hint)

    try:
        person = int(row.get("person_id") or "")
    except ValueError:
        raise bad("person_id", "give the person_id of the call list's row") from None
    outcome = (row.get("outcome") or "").strip().lower()
    if outcome not in OUTCOMES:
        raise bad("outcome", "use one of: " + ", ".join(OUTCOMES))
    try:
        at = datetime.fromisoformat(row.get("called_at") or "")
    except ValueError:
        raise bad("called_at", "write an ISO date-time such as 2026-03-01T14:30:00") from None
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return person, outcome, at


def import_outcomes(store: Store, path: Path) -> dict[str, int]:
    """Record the outcomes in ``path`` (see the module); counts by outcome."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = [_row(n, r) for n, r in enumerate(csv.DictReader(f), start=2)]
    counts: dict[str, int] = {}
    with store.begin() as conn:
        found = []
        for person, outcome, at in rows:
            root = root_of(conn, person)
            if root is None:
                continue  # erased since the call: nothing of them is kept
            found.append(activity(root, person, "phone", outcome, at, SOURCE))
            if outcome == "opt_out":
                opt_out(conn, root, "phone", source=SOURCE, evidence=f"call:{path.name}", now=at)
            counts[outcome] = counts.get(outcome, 0) + 1
        if found:
            conn.execute(schema.channel_activity.insert(), found)
    return counts
