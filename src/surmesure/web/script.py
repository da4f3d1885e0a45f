"""The web script as served: its text and its version (the first 16 hex digits of its
SHA-256), read once from the package (``static/surmesure.js``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

PATH = "/web/surmesure.js"


@dataclass(frozen=True)
class Script:
    text: bytes
    version: str


@lru_cache(maxsize=1)
def current() -> Script:
    text = resources.files("surmesure.web").joinpath("static/surmesure.js").read_bytes()
    return Script(text, hashlib.sha256(text).hexdigest()[:16])


def script_url(base: str = "") -> str:
    """The script's URL under the server ``base`` (``""``: the page's own server), with its
    version, so that browsers may keep it a year and fetch a new one when it changes."""
    return f"{base.rstrip('/')}{PATH}?v={current().version}"
