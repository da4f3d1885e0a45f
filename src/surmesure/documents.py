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
    try:
        return orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(
            f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}",
            hint="fix the syntax at the place shown",
            field="FILE",
        ) from exc


def read_text(text: str, field: str = "document") -> Any:
    """A document given as text (a form's field): YAML, of which JSON is a part; a syntax
    error is :class:`InvalidInput` on ``field``, with its line."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(
            f"The document is not valid YAML or JSON: {exc}",
            hint="fix the syntax at the line shown",
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
