"""Letters laid out to one PDF: many letters per WeasyPrint document, chunks in a process pool.

WeasyPrint lays out in pure Python at about 10 ms a page, and its time grows faster than the
pages of one document, so a batch is cut into chunks of ``chunk`` letters (one HTML document
each, a page break before every letter), the chunks are laid out and written to PDF by
``workers`` processes side by side, and their PDFs are joined in order (``pypdf``). Each chunk
also says on which of its pages each letter starts (the letter's anchor), so the manifest can
name each letter's first page and page count in the joined PDF.

A letter fetches nothing: WeasyPrint would otherwise load every ``src``, ``href``, ``url()`` and
``<a rel="attachment">`` of a template (``file:///etc/passwd`` embedded in the PDF, a request to
an address inside the network), so its URL fetcher knows ``data:`` URLs only, and anything else
is left out of the letter. WeasyPrint's log says what it left out without the URL, which a
template may have built from a person's values (:class:`WithoutValues`).
"""

from __future__ import annotations

import atexit
import gc
import io
import logging
import multiprocessing
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ANCHOR = "surmesure-letter-"


@dataclass(frozen=True)
class Chunk:
    """Letters ``start`` .. ``start + len(letters) - 1`` of a batch, as HTML sections."""

    start: int
    letters: tuple[str, ...]
    css: str


@dataclass(frozen=True)
class Laid:
    """A chunk as PDF, and the page (from 0, in the chunk) where each of its letters starts."""

    pdf: bytes
    firsts: tuple[int, ...]
    pages: int


_styles: dict[str, tuple[Any, Any, Any]] = {}


def _forget_styles() -> None:
    """Free the fonts and styles kept between chunks before the interpreter shuts down: their
    finalizers release Pango objects, which must happen while Pango is still loaded (left to
    the interpreter's last collection, they may run after and crash the process)."""
    _styles.clear()
    gc.collect()


class WithoutValues(logging.Filter):
    """Keeps WeasyPrint's messages and drops their values (``Failed to load image at %r:
    %s``: the URL and the reason quoting it) and the traces that quote them again."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = record.exc_text = None
        if isinstance(record.args, dict):
            record.args = {k: _hidden(v) for k, v in record.args.items()}
        elif record.args:
            record.args = tuple(_hidden(v) for v in record.args)
        return True


def _hidden(value: object) -> object:
    """A number as it is (page counts, sizes); any text or error as ``(not shown)``."""
    return value if isinstance(value, int | float) else "(not shown)"


_WITHOUT_VALUES = WithoutValues()


def _weasyprint() -> tuple[Any, Any, Any, Any]:
    """WeasyPrint, imported when the first chunk is laid out (it loads Pango), without its
    warning that a future version will need HarfBuzz-Subset (Debian 12 ships it apart), and
    a URL fetcher that fetches only ``data:`` URLs (see the module)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "HarfBuzz-Subset", DeprecationWarning)
        from weasyprint import CSS, HTML
        from weasyprint.text.fonts import FontConfiguration
        from weasyprint.urls import URLFetcher
    if not _styles:
        atexit.unregister(_forget_styles)
        atexit.register(_forget_styles)
    for name in ("weasyprint", "weasyprint.progress"):  # a filter holds for its logger only
        if _WITHOUT_VALUES not in logging.getLogger(name).filters:
            logging.getLogger(name).addFilter(_WITHOUT_VALUES)
    return CSS, HTML, FontConfiguration, URLFetcher(allowed_protocols=("data",))


def lay_out(chunk: Chunk) -> Laid:
    """One chunk to PDF (in this process; the fonts and style are kept for the next chunk)."""
    CSS, HTML, FontConfiguration, fetcher = _weasyprint()
    if chunk.css not in _styles:
        fonts = FontConfiguration()
        style = CSS(string=chunk.css, font_config=fonts, url_fetcher=fetcher)
        _styles[chunk.css] = (fonts, style, HTML)
    fonts, style, _ = _styles[chunk.css]
    html = HTML(string=f"<html><body>{''.join(chunk.letters)}</body></html>", url_fetcher=fetcher)
    document = html.render(stylesheets=[style], font_config=fonts)
    firsts: dict[str, int] = {}
    for n, page in enumerate(document.pages):  # a letter's box is on each of its pages
        for anchor in page.anchors:
            firsts.setdefault(anchor, n)
    starts = tuple(firsts[f"{ANCHOR}{chunk.start + k}"] for k in range(len(chunk.letters)))
    return Laid(document.write_pdf(), starts, len(document.pages))


def print_chunks(chunks: Sequence[Chunk], workers: int, path: Path) -> list[int]:
    """Lay out ``chunks`` (``workers`` processes when there are several) and write them, in
    order, to one PDF at ``path``; each letter's first page (from 0) in it, then the total."""
    laid: list[Laid] = []
    if workers > 1 and len(chunks) > 1:
        # spawned, not forked: the caller may hold threads (a campaign's connection pools)
        context = multiprocessing.get_context("spawn")
        try:
            with ProcessPoolExecutor(min(workers, len(chunks)), mp_context=context) as pool:
                laid = list(pool.map(lay_out, chunks))
        except BrokenProcessPool:  # a caller whose main module cannot be started again
            laid = []
    if not laid:
        laid = [lay_out(c) for c in chunks]
    starts: list[int] = []
    offset = 0
    for part in laid:
        starts.extend(offset + first for first in part.firsts)
        offset += part.pages
    starts.append(offset)
    if len(laid) == 1:
        path.write_bytes(laid[0].pdf)
        return starts
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for part in laid:
        writer.append(PdfReader(io.BytesIO(part.pdf)))
    with path.open("wb") as out:
        writer.write(out)
    return starts
