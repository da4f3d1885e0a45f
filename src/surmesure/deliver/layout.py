"""Letters laid out to one PDF: many letters per WeasyPrint document, chunks in a process pool.

WeasyPrint lays out in pure Python at about 10 ms a page, and its time grows faster than the
pages of one document, so a batch is cut into chunks of ``chunk`` letters (one HTML document
each, a page break before every letter), the chunks are laid out and written to PDF by
``workers`` processes side by side, and their PDFs are joined in order (``pypdf``). Each chunk
also says on which of its pages each letter starts (the letter's anchor), so the manifest can
name each letter's first page and page count in the joined PDF.
"""

from __future__ import annotations

import io
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


def _weasyprint() -> tuple[Any, Any, Any]:
    """WeasyPrint, imported when the first chunk is laid out (it loads Pango), without its
    warning that a future version will need HarfBuzz-Subset (Debian 12 ships it apart)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "HarfBuzz-Subset", DeprecationWarning)
        from weasyprint import CSS, HTML
        from weasyprint.text.fonts import FontConfiguration
    return CSS, HTML, FontConfiguration


def lay_out(chunk: Chunk) -> Laid:
    """One chunk to PDF (in this process; the fonts and style are kept for the next chunk)."""
    CSS, HTML, FontConfiguration = _weasyprint()
    if chunk.css not in _styles:
        fonts = FontConfiguration()
        _styles[chunk.css] = (fonts, CSS(string=chunk.css, font_config=fonts), HTML)
    fonts, style, _ = _styles[chunk.css]
    html = HTML(string=f"<html><body>{''.join(chunk.letters)}</body></html>")
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
