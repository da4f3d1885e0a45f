"""Reading definitions (YAML or JSON) and refusing bad ones with the place and the fix.

Every refusal is an :class:`InvalidInput` whose ``field`` is the path of the faulty place
(``where.all[2].metric.name``) and whose ``hint`` says what to write instead. References between
segments are checked against a catalog (the saved segments): an unknown name or a cycle is
refused before anything is saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from surmesure.documents import error_path as document_path
from surmesure.documents import read_document
from surmesure.domain.segments import TAGS, SegmentDefinition, SegmentNode, walk
from surmesure.errors import InvalidInput

Catalog = Mapping[str, SegmentDefinition]

_HINTS = {
    "missing": "add this field",
    "extra_forbidden": "remove this field (check its spelling)",
    "too_short": "an all/any needs at least one condition",
    "string_pattern_mismatch": "a segment name is lowercase letters, digits and _ "
    "(e.g. lyon_loyal)",
}


def error_path(loc: tuple[int | str, ...]) -> str:
    """``('where', 'all', 'all', 2, 'metric', 'metric', 'name')`` -> ``where.all[2].metric.name``
    (a tag repeated by the tagged union is shown once)."""
    return document_path(loc, TAGS)


def _refusal(error: ErrorDetails) -> InvalidInput:
    path = error_path(tuple(error["loc"]))
    ctx = error.get("ctx") or {}
    message = str(ctx.get("reason") or error["msg"])
    hint = str(ctx.get("hint") or _HINTS.get(error["type"], "see `surmesure segment --help`"))
    return InvalidInput(f"{path}: {message}.", hint=hint, field=path)


def parse(document: Any) -> SegmentDefinition:
    """A validated definition; :class:`InvalidInput` naming the first faulty place."""
    if not isinstance(document, dict):
        raise InvalidInput(
            "A segment definition is a mapping.",
            hint="write `name:`, `description:` and `where:` at the top level",
            field="(document)",
        )
    try:
        return SegmentDefinition.model_validate(document)
    except ValidationError as exc:
        raise _refusal(exc.errors()[0]) from exc


def load_file(path: Path) -> SegmentDefinition:
    return parse(read_document(path))


def references(definition: SegmentDefinition) -> list[tuple[str, str]]:
    """``(path, segment name)`` for every segment the definition refers to."""
    return [
        (p, leaf.segment) for p, leaf in walk(definition.where) if isinstance(leaf, SegmentNode)
    ]


def check_references(definition: SegmentDefinition, catalog: Catalog) -> None:
    """Refuse a reference to an unknown segment, and any cycle through ``definition`` once it
    replaces its namesake in ``catalog``."""
    merged = {**catalog, definition.name: definition}
    for path, name in references(definition):
        if name not in merged:
            known = ", ".join(sorted(merged)) or "none saved yet"
            raise InvalidInput(
                f"{path}: unknown segment {name!r}.",
                hint=f"save {name!r} first, or refer to one of: {known}",
                field=path,
            )
    for path, name in references(definition):
        chain = _chain_back(name, definition.name, merged, [definition.name, name])
        if chain is not None:
            raise InvalidInput(
                f"{path}: segments refer to each other in a cycle: {' -> '.join(chain)}.",
                hint="remove one of these references",
                field=path,
            )


def _chain_back(current: str, target: str, catalog: Catalog, chain: list[str]) -> list[str] | None:
    if current == target:
        return chain
    definition = catalog.get(current)
    if definition is None:
        return None
    for _, name in references(definition):
        if name in chain[1:]:
            continue
        found = _chain_back(name, target, catalog, [*chain, name])
        if found is not None:
            return found
    return None


def closure(definition: SegmentDefinition, catalog: Catalog) -> dict[str, SegmentDefinition]:
    """``definition`` and every segment it reaches through references, by name."""
    found = {definition.name: definition}
    todo = [definition]
    while todo:
        for _, name in references(todo.pop()):
            if name not in found:
                if name not in catalog:
                    raise InvalidInput(
                        f"Segment {definition.name!r} refers to unknown segment {name!r}.",
                        hint=f"save {name!r} first",
                        field="segment",
                    )
                found[name] = catalog[name]
                todo.append(catalog[name])
    return found
