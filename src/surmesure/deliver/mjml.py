"""E-mail bodies: MJML compiled to responsive HTML, and the plain-text part read from HTML.

MJML (https://mjml.io) is compiled by ``mjml-python`` (the Rust ``mrml`` engine), so a template
is compiled once per variant in microseconds. :func:`compile_mjml` refuses a document that is
not MJML with :class:`~surmesure.errors.InvalidInput` naming the field; :func:`text_of` gives the
text a mail reader without HTML shows: paragraphs on their own lines, links as ``text (url)``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from html import unescape
from html.parser import HTMLParser

import mjml

from surmesure.errors import InvalidInput

_BLOCKS = {"p", "div", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol"}
_SKIP = {"style", "script", "head", "title"}


@lru_cache(maxsize=256)
def compile_mjml(source: str, field: str = "html") -> str:
    """The responsive HTML of an MJML document."""
    if not source.lstrip().startswith("<mjml"):
        raise InvalidInput(
            "This template is not an MJML document.",
            field=field,
            hint="start it with <mjml><mj-body> (see https://documentation.mjml.io)",
        )
    try:
        return str(mjml.mjml2html(source))
    except Exception as exc:  # the engine raises its own error types with a readable message
        raise InvalidInput(
            f"The MJML template does not compile: {exc}",
            field=field,
            hint="fix the element named above; check it at https://mjml.io/try-it-live",
        ) from exc


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.href: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a":
            self.href.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a" and self.href:
            href = self.href.pop()
            if href and href.startswith(("http://", "https://")):
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(re.sub(r"\s+", " ", data))


def text_of(html: str) -> str:
    """The plain-text rendering of an HTML body (conditional comments and styles dropped)."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    text = unescape("".join(parser.parts))
    lines = [line.strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
