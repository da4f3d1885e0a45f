"""Paper mail: one print-ready PDF per batch, one letter per person, and a CSV manifest.

Settings (:class:`PaperSettings`, or a URL read by :meth:`PaperSettings.from_url`)::

    paper:///var/spool/surmesure/print?window=right&return_address=Maison%20Dupont,%20Lyon

``folder``: where each batch writes ``<batch>.pdf`` and ``<batch>.csv``. The address block of
``Message.to`` (lines separated by newlines, at most ``max_address_lines``, postcode on one of
them) is printed where a DL window envelope shows it once the A4 sheet is folded in three:
``window=left`` (DIN 5008 form B, the default: 20 mm from the left, 45 mm from the top,
85 x 45 mm) or ``window=right`` (La Poste's DL: 110 mm from the left, 45 mm from the top,
90 x 45 mm); ``window_left_mm``/``window_top_mm`` set another. ``return_address``: one small
line above the address. The letter is ``Message.html`` when given (already rendered), else
``Message.text`` in paragraphs.

Letters are sorted by postcode (the printer's and the post's presorting), then by message id.
The manifest lists, in print order: sequence, message id, person id, postcode, first page and
page count; it carries no name or address. ``Delivery.units`` is the letter's page count and
``provider_id`` ``<batch>#<sequence>``. A letter without a postcode, or with too many address
lines, fails (nothing is printed that the post would return).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import IO, Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field

from surmesure.deliver.channel import Delivery, Message, OnResult
from surmesure.deliver.files import replace_file
from surmesure.deliver.layout import MARK, Chunk, print_chunks
from surmesure.deliver.settings import split, validated

POSTCODE = re.compile(r"\b(\d{5}|\d{4}|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2})\b")
WINDOWS = {"left": (20.0, 45.0, 85.0), "right": (110.0, 45.0, 90.0)}
"""Window -> (left, top, width) of the address block, in mm from the sheet's corner."""


class PaperSettings(BaseModel):
    """Where batches go and how letters are laid out (see the module)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["paper"] = "paper"
    folder: Path
    window: Literal["left", "right"] = "left"
    window_left_mm: float | None = Field(default=None, ge=0, le=200)
    window_top_mm: float | None = Field(default=None, ge=0, le=250)
    return_address: str | None = Field(default=None, max_length=120)
    max_address_lines: int = Field(default=6, ge=2, le=10)
    chunk: int = Field(default=250, ge=1, le=5000)
    """Letters laid out in one document (WeasyPrint's time grows faster than the letters)."""
    workers: int = Field(default=2, ge=1, le=32)
    """Processes laying chunks out side by side (:mod:`surmesure.deliver.layout`)."""

    @classmethod
    def from_url(cls, url: str, **extra: object) -> PaperSettings:
        """Settings from ``paper:///folder[?option=value...]``."""
        parts = split(url, ("paper",), "paper", "paper:///var/spool/surmesure/print")
        values: dict[str, object] = {"folder": unquote(parts.path) or "."}
        return validated(cls, values, parts.query, extra, "paper")

    def css(self) -> str:
        left, top, width = WINDOWS[self.window]
        left = self.window_left_mm if self.window_left_mm is not None else left
        top = self.window_top_mm if self.window_top_mm is not None else top
        return (
            "@page { size: A4; margin: 0 }"
            # in the flow rather than absolutely placed: a quarter less layout time a page
            "section { break-before: page; font: 10.5pt/1.4 sans-serif }"
            ".window, .text { white-space: pre-line }"
            f".window {{ margin-left: {left}mm; margin-top: {top}mm; width: {width}mm;"
            " height: 45mm; overflow: hidden }"
            ".from { font-size: 7pt; border-bottom: 0.3pt solid #000; margin-bottom: 2mm }"
            ".body { padding: 10mm 20mm 20mm 20mm }"
        )


def postcode_of(address: str) -> str | None:
    """The postcode of an address block: the last line that has one."""
    for line in reversed(address.splitlines()):
        found = POSTCODE.search(line.upper())
        if found:
            return found.group(1)
    return None


class PaperChannel:
    """The paper channel (see the module). Each ``send`` is one batch."""

    name = "paper"

    def __init__(self, settings: PaperSettings, clock: type[datetime] = datetime) -> None:
        self.settings = settings
        self.clock = clock
        self.last_batch: Path | None = None

    def _check(self, message: Message) -> str | None:
        lines = [line for line in message.to.splitlines() if line.strip()]
        if len(lines) > self.settings.max_address_lines:
            return f"{len(lines)} address lines, more than {self.settings.max_address_lines}"
        if postcode_of(message.to) is None:
            return "no postcode in the address"
        return None

    def _letter(self, n: int, message: Message) -> str:
        s = self.settings
        sender = f'<div class="from">{escape(s.return_address)}</div>' if s.return_address else ""
        # lines kept by ``white-space: pre-line``: fewer boxes than a <br> or <p> each
        address = "\n".join(escape(x.strip()) for x in message.to.splitlines() if x.strip())
        if message.html is not None:
            body = f'<div class="body">{message.html}</div>'
        else:  # one box fewer than a text block inside the body
            paragraphs = [p.strip() for p in message.text.split("\n\n") if p.strip()]
            body = '<div class="body text">' + escape("\n\n".join(paragraphs)) + "</div>"
        return f'<section {MARK}="{n}"><div class="window">{sender}{address}</div>{body}</section>'

    def send(
        self, messages: Sequence[Message], on_result: OnResult | None = None
    ) -> list[Delivery]:
        """One batch: its PDF and manifest written, then each delivery told to ``on_result``
        (a letter is handed over when its batch's files are complete)."""
        results: dict[int, Delivery] = {}
        printable: list[tuple[str, str, int, Message]] = []
        for i, message in enumerate(messages):
            problem = self._check(message)
            if problem:
                results[i] = Delivery(message.message_id, "failed", detail=problem)
            else:
                code = postcode_of(message.to) or ""
                printable.append((code, message.message_id, i, message))
        printable.sort(key=lambda row: (row[0], row[1]))
        if printable:
            css, step = self.settings.css(), self.settings.chunk
            chunks = [
                Chunk(
                    start, tuple(self._letter(start + k, row[3]) for k, row in enumerate(part)), css
                )
                for start in range(0, len(printable), step)
                for part in [printable[start : start + step]]
            ]
            batch = self.clock.now(UTC).strftime("batch-%Y%m%d-%H%M%S-%f")
            folder = self.settings.folder
            folder.mkdir(parents=True, exist_ok=True)
            pdf = (folder / f"{batch}.pdf").resolve()
            starts = print_chunks(chunks, self.settings.workers, pdf)
            self.last_batch = folder / batch
            with (folder / f"{batch}.csv").open("w", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(MANIFEST_COLUMNS)
                for k, (code, mid, i, message) in enumerate(printable):
                    count = starts[k + 1] - starts[k]
                    person = "" if message.person_id is None else message.person_id
                    writer.writerow([k + 1, mid, person, code, starts[k] + 1, count])
                    results[i] = Delivery(
                        mid, "sent", f"{batch}#{k + 1}", units=count, file=str(pdf)
                    )
        deliveries = [results[i] for i in range(len(messages))]
        if on_result is not None:
            for delivery in deliveries:
                on_result(delivery)
        return deliveries

    def close(self) -> None:
        """Nothing is kept open: each batch's files are closed when written."""


MANIFEST_COLUMNS = ["sequence", "message_id", "person_id", "postcode", "first_page", "pages"]


def without_letters(pdf: Path, message_ids: Collection[str]) -> bool:
    """Rewrite the batch ``pdf`` and its manifest without the letters of ``message_ids``
    (their pages removed, the others' ``first_page`` renumbered, sequences kept: they are the
    deliveries' ``provider_id``); a batch left empty is removed. ``False`` when the files are
    gone (removed now or before)."""
    from pypdf import PdfReader, PdfWriter  # only an erasure needs it

    manifest = pdf.with_suffix(".csv")
    if not pdf.exists() or not manifest.exists():
        return False
    with manifest.open(newline="") as source:
        rows = list(csv.DictReader(source))
    kept = [row for row in rows if row["message_id"] not in message_ids]
    if not kept:
        pdf.unlink()
        manifest.unlink()
        return False
    reader = PdfReader(pdf)
    writer = PdfWriter()
    for row in kept:
        first = int(row["first_page"]) - 1
        row["first_page"] = str(len(writer.pages) + 1)
        for page in range(first, first + int(row["pages"])):
            writer.add_page(reader.pages[page])
    replace_file(pdf, writer.write)
    replace_file(manifest, lambda out: _write_manifest(out, kept))
    return True


def _write_manifest(out: IO[bytes], rows: list[dict[str, str]]) -> None:
    text = io.TextIOWrapper(out, newline="", encoding="utf-8")
    writer = csv.DictWriter(text, MANIFEST_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    text.flush()
    text.detach()
