"""Reading definitions (YAML or JSON) and refusing bad ones with the place and the fix.

Every refusal is an :class:`InvalidInput` whose ``field`` is the path of the faulty place
(``where.all[2].metric.name``) and whose ``hint`` says what to write instead. References between
segments are checked against a catalog (the saved segments): an unknown name or a cycle is
refused before anything is saved.

Values sealed at rest (:mod:`surmesure.protect.atrest`) are out of reach of a segment, which
runs as SQL over everyone: a condition comparing a sealed trait's value (``exists`` and
``missing`` work) is refused by :func:`check_sealed` against the store's settings (when a
definition is saved or run), an identify event's traits by :func:`parse`.

A definition has bounds, checked before anything else reads it, so that no definition is too
large to compile or to run: at most :data:`MAX_CONDITIONS` conditions in its tree (every
all / any / not counts as one), nested at most :data:`MAX_DEPTH` levels deep, at most
:data:`MAX_VALUES` values in an ``in`` list and :data:`MAX_PROPERTIES` event properties.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from surmesure.documents import error_path as document_path
from surmesure.documents import read_document
from surmesure.domain.segments import (
    TAGS,
    EventNode,
    SegmentDefinition,
    SegmentNode,
    TraitNode,
    walk,
)
from surmesure.errors import InvalidInput

Catalog = Mapping[str, SegmentDefinition]

MAX_CONDITIONS = 200
MAX_DEPTH = 12
MAX_VALUES = 1_000
MAX_PROPERTIES = 20

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
    check_size(document.get("where"))
    try:
        definition = SegmentDefinition.model_validate(document)
    except ValidationError as exc:
        raise _refusal(exc.errors()[0]) from exc
    check_identify(definition)
    return definition


def sealed_comparisons(
    definition: SegmentDefinition, sealed: Collection[str]
) -> list[tuple[str, str, str]]:
    """``(place, trait, op)`` of each condition comparing the value of a trait of ``sealed``,
    those sealed at rest (``Settings.sealed_traits``): one no SQL can read, so it would match
    nobody."""
    return [
        (f"{path}.op", leaf.trait.name, leaf.trait.op)
        for path, leaf in walk(definition.where)
        if isinstance(leaf, TraitNode)
        and leaf.trait.name in sealed
        and leaf.trait.op not in ("exists", "missing")
    ]


def check_sealed(definition: SegmentDefinition, sealed: Collection[str]) -> None:
    """Refuse a condition that compares a value of a trait of ``sealed``, those sealed at rest
    (see the module docstring)."""
    for place, name, op in sealed_comparisons(definition, sealed)[:1]:
        raise InvalidInput(
            f"{place}: trait {name!r} is sealed at rest (a direct identifier, encrypted "
            f"under the person's key), so its value cannot be compared with `{op}`.",
            hint="test whether it is set (`op: exists` or `op: missing`), or compare "
            "a trait that is not a direct identifier (city, postcode, country)",
            field=place,
        )


def check_identify(definition: SegmentDefinition) -> None:
    """Refuse a test of the traits an identify event carries: they are sealed at rest."""
    for path, leaf in walk(definition.where):
        if isinstance(leaf, EventNode) and leaf.event.type == "identify" and leaf.event.properties:
            raise InvalidInput(
                f"{path}.properties: the traits an identify carries are sealed at rest "
                "(encrypted under the person's key), so they cannot be tested.",
                hint="test the resolved trait instead (`trait: {name: ..., op: ...}`)",
                field=f"{path}.properties",
            )


def check_size(where: Any) -> None:
    """Refuse a condition tree (as read from the document) beyond the bounds of the module
    docstring, naming the first place past them. Anything else is left to the model."""
    count = 0
    stack: list[tuple[Any, str, int]] = [(where, "where", 1)]
    while stack:
        node, place, depth = stack.pop()
        count += 1
        if count > MAX_CONDITIONS:
            raise InvalidInput(
                f"{place}: the definition has more than {MAX_CONDITIONS} conditions.",
                hint="save parts of it as segments of their own and refer to them with "
                "`segment: NAME`; a long list of equal tests is one `op: in` test",
                field=place,
            )
        if depth > MAX_DEPTH:
            raise InvalidInput(
                f"{place}: conditions are nested more than {MAX_DEPTH} levels deep.",
                hint="flatten the tree: an all inside an all is one all, not not x is x",
                field=place,
            )
        if not isinstance(node, dict) or len(node) != 1:
            continue
        tag, body = next(iter(node.items()))
        if tag in ("all", "any") and isinstance(body, list):
            for index in range(len(body) - 1, -1, -1):
                stack.append((body[index], f"{place}.{tag}[{index}]", depth + 1))
        elif tag == "not":
            stack.append((body, f"{place}.not", depth + 1))
        elif isinstance(body, dict):
            _check_lists(body, f"{place}.{tag}")


def _check_lists(body: dict[str, Any], place: str) -> None:
    values, properties = body.get("value"), body.get("properties")
    if isinstance(values, list) and len(values) > MAX_VALUES:
        raise InvalidInput(
            f"{place}.value: {len(values):,} values; an `in` list holds at most {MAX_VALUES:,}.",
            hint="test a trait or metric that groups them (a category, a region) instead",
            field=f"{place}.value",
        )
    if isinstance(properties, dict) and len(properties) > MAX_PROPERTIES:
        raise InvalidInput(
            f"{place}.properties: {len(properties)} properties; at most {MAX_PROPERTIES}.",
            hint="keep the properties that tell the events apart",
            field=f"{place}.properties",
        )


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
