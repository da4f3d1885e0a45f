"""Matplotlib's settings (``rcParams``) are one dictionary for the whole process. A figure drawn
under settings of its own holds :func:`settings` for the drawing: one figure at a time changes
them, and each puts back what it found. Without the lock, two console charts drawn on two
request threads each saved the other's settings and left text-as-text on for every later plot.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

#: text drawn as outlines in files written to disk, so they look the same without the font
FILES: dict[str, Any] = {"svg.fonttype": "path"}

_LOCK = threading.RLock()


@contextmanager
def settings(params: Mapping[str, Any]) -> Iterator[None]:
    """Draw under ``params``, alone, then restore the settings found."""
    import matplotlib  # not pyplot: its figure manager is not needed to change settings

    with _LOCK, matplotlib.rc_context(dict(params)):  # type: ignore[arg-type]
        yield
