"""Definition documents (segments, experiments, ...): read from YAML or JSON files, and the
place of a validation error written as a path a person can find (``variants[0].weight``)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import orjson
import yaml

from surmesure.errors import InvalidInput


def read_document(path: Path) -> Any:
    """The parsed YAML or JSON file (JSON when the name ends in .json); a file that cannot
    be read or parsed is :class:`InvalidInput` on ``FILE``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(
            f"Cannot read {path}: {exc.strerror}.", hint="give a YAML or JSON file", field="FILE"
        ) from exc
    return parse_text(text, str(path), as_json=path.suffix == ".json", field="FILE")


def parse_text(text: str, origin: str, *, as_json: bool = False, field: str = "FILE") -> Any:
    """The parsed YAML (or, ``as_json``, JSON) ``text``; :class:`InvalidInput` on ``field``
    naming ``origin`` when it does not parse."""
    try:
        return orjson.loads(text) if as_json else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(
            f"{origin} is not valid {'JSON' if as_json else 'YAML'}: {exc}",
            hint="fix the syntax at the place shown",
            field=field,
        ) from exc


def error_path(loc: tuple[int | str, ...], tags: Collection[str] = ()) -> str:
    """Pydantic's error location as ``a.b[2].c``; a key of ``tags`` repeated right after
    itself (a tagged union naming its member) is shown once. ``(document)`` when empty."""
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif not (parts and parts[-1] == f".{item}" and item in tags):
            parts.append(f".{item}")
    return "".join(parts).lstrip(".") or "(document)"
