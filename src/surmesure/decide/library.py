"""Templates on disk: a folder of YAML documents, one per template, found by placement.

The folder is ``SURMESURE_TEMPLATES_DIR`` (default ``templates``); the examples shipped in the
package (``surmesure/decide/examples``) serve when it does not exist. A template or block may
name only a topic of the preference centre (``SURMESURE_PREFERENCE_TOPICS``): the settings a
library is made with (:func:`library_for`) say which.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from surmesure.config import DEFAULT_PREFERENCE_TOPICS, Settings
from surmesure.decide.content import CompiledTemplate
from surmesure.domain.templates import TemplateDefinition
from surmesure.errors import InvalidInput, NotFound

EXAMPLES = Path(__file__).parent / "examples"


def parse_template(
    text: str, origin: str, topics: Collection[str] = DEFAULT_PREFERENCE_TOPICS
) -> TemplateDefinition:
    """A template document (YAML or JSON text) naming only preference ``topics``;
    :class:`InvalidInput` naming the field."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(
            f"{origin} is not valid YAML ({exc}).", hint="check indentation", field=origin
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{origin} is not a template.", hint="write a mapping with name, placement, variants"
        )
    try:
        definition = TemplateDefinition.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        named = (error.get("ctx") or {}).get("field")
        where = ".".join([*(str(p) for p in error["loc"]), *([named] if named else [])])
        where = where or "template"
        raise InvalidInput(
            f"{origin}: {where}: {error['msg']}.",
            hint="see the examples in surmesure/decide/examples",
            field=where,
        ) from None
    _check_topics(definition, origin, topics)
    return definition


def _check_topics(definition: TemplateDefinition, origin: str, known: Collection[str]) -> None:
    """A ``topic`` must be one a person can leave in the preference centre (``known``): a
    misspelt one would never hold anything back."""
    named = [("topic", definition.topic)] + [
        (f"blocks.{i}.topic", b.topic) for i, b in enumerate(definition.blocks)
    ]
    for where, topic in named:
        if topic is not None and topic not in known:
            raise InvalidInput(
                f"{origin}: {where}: topic {topic!r} is not a preference centre topic.",
                hint="use one of: " + ", ".join(known) + " (or add it to "
                "SURMESURE_PREFERENCE_TOPICS)",
                field=where,
            )


def read_template(
    path: Path, topics: Collection[str] = DEFAULT_PREFERENCE_TOPICS
) -> CompiledTemplate:
    if not path.is_file():
        raise NotFound(
            f"There is no template file {path}.", hint="give a .yaml file", field=str(path)
        )
    return CompiledTemplate(parse_template(path.read_text(encoding="utf-8"), str(path), topics))


class Library:
    """Compiled templates of a folder, by name and by placement (first file wins), naming
    only preference ``topics``."""

    def __init__(self, folder: Path, topics: Collection[str] = DEFAULT_PREFERENCE_TOPICS) -> None:
        self.folder = folder
        self.topics = tuple(topics)
        self.by_name: dict[str, CompiledTemplate] = {}
        self.by_placement: dict[str, CompiledTemplate] = {}
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            compiled = read_template(path, self.topics)
            self.by_name.setdefault(compiled.definition.name, compiled)
            self.by_placement.setdefault(compiled.definition.placement, compiled)

    def for_placement(self, placement: str) -> CompiledTemplate:
        found = self.by_placement.get(placement)
        if found is None:
            known = ", ".join(sorted(self.by_placement)) or "none"
            raise NotFound(
                f"No template serves placement {placement!r}.",
                hint=f"placements served by {self.folder}: {known}",
                field="placement",
            )
        return found

    def metrics(self) -> frozenset[str]:
        """The derived metrics the rules and fields of every template read (what a serving
        view holds)."""
        return frozenset().union(*(c.columns for c in self.by_name.values()))

    def named(self, name: str) -> CompiledTemplate:
        """A template by name, or by the path of a YAML file."""
        path = Path(name)
        if path.suffix in (".yaml", ".yml") and path.exists():
            return read_template(path, self.topics)
        found = self.by_name.get(name)
        if found is None:
            known = ", ".join(sorted(self.by_name)) or "none"
            raise NotFound(
                f"There is no template {name!r}.",
                hint=f"give a .yaml file or one of: {known}",
                field="TEMPLATE",
            )
        return found


def library_for(settings: Settings) -> Library:
    """The library of ``settings``' templates folder (the examples where there is none)."""
    folder = settings.templates_dir
    return _library(folder if folder.is_dir() else EXAMPLES, tuple(settings.preference_topics))


@lru_cache(maxsize=8)
def _library(folder: Path, topics: tuple[str, ...]) -> Library:
    return Library(folder, topics)
