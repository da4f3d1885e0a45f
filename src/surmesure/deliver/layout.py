"""Letters laid out to one PDF: many letters per WeasyPrint document, chunks in a process pool.

WeasyPrint lays out in pure Python at about 10 ms a page, and its time grows faster than the
pages of one document, so a batch is cut into chunks of ``chunk`` letters (one HTML document
each, a page break before every letter), the chunks are laid out and written to PDF by
``workers`` processes side by side, and their PDFs are joined in order (``pypdf``). Each chunk
also says on which of its pages each letter starts (the first page showing the letter's
``<section data-letter>``: an ``id`` would cost an anchor and a named destination in the PDF per
letter), so the manifest can name each letter's first page and page count in the joined PDF.
The joining starts as soon as the first chunk is laid out, while the workers lay out the
next ones. WeasyPrint's costs per page that grow with the document are cut
(:mod:`surmesure.deliver.pagination`).

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
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARK = "data-letter"
"""The attribute of each letter's ``<section>``: the letter's number in its batch."""


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
    from surmesure.deliver.pagination import install

    install()
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
        for box in _body(page._page_box).children:
            if box.element_tag == "section" and box.element is not None:
                firsts.setdefault(box.element.get(MARK), n)
    starts = tuple(firsts[str(chunk.start + k)] for k in range(len(chunk.letters)))
    return Laid(document.write_pdf(), starts, len(document.pages))


def _body(page_box: Any) -> Any:
    """The ``<body>`` box of a laid-out page (page -> html -> body), the letters' parent."""
    for html in page_box.children:
        if html.element_tag == "html":
            for body in html.children:
                if body.element_tag == "body":
                    return body
    return page_box


def print_chunks(chunks: Sequence[Chunk], workers: int, path: Path) -> list[int]:
    """Lay out ``chunks`` (``workers`` processes when there are several) and write them, in
    order, to one PDF at ``path``; each letter's first page (from 0) in it, then the total."""
    if len(chunks) == 1:
        part = lay_out(chunks[0])
        path.write_bytes(part.pdf)
        return [*part.firsts, part.pages]
    if workers > 1:
        # spawned, not forked: the caller may hold threads (a campaign's connection pools)
        context = multiprocessing.get_context("spawn")
        try:
            with ProcessPoolExecutor(min(workers, len(chunks)), mp_context=context) as pool:
                return _joined(pool.map(lay_out, chunks), path)
        except BrokenProcessPool:  # a caller whose main module cannot be started again
            pass
    return _joined(map(lay_out, chunks), path)


def _joined(laid: Iterable[Laid], path: Path) -> list[int]:
    """The chunks, in order as they come, joined into one PDF at ``path``; each letter's first
    page (from 0) in it, then the total."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    starts: list[int] = []
    for part in laid:
        starts.extend(len(writer.pages) + first for first in part.firsts)
        writer.append(PdfReader(io.BytesIO(part.pdf)))
    starts.append(len(writer.pages))
    with path.open("wb") as out:
        writer.write(out)
    return starts
