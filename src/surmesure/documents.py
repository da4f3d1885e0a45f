"""Definition documents (segments, experiments, ...): read from YAML or JSON files, and the
place of a validation error written as a path a person can find (``variants[0].weight``)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import orjson
import yaml

from surmesure.errors import InvalidInput

#: the most values a YAML document may stand for once its aliases are followed: anchors
#: repeated within one another ("billion laughs") make a few lines stand for more values than
#: memory holds, and validating or storing a document walks every one
MAX_VALUES = 100_000
#: the deepest nesting of a YAML document (no definition comes near; PyYAML builds its tree by
#: recursion, so a deeper one would exhaust Python's stack)
MAX_DEPTH = 200


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing nesting deeper than :data:`MAX_DEPTH`."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _values(node: yaml.Node, sizes: dict[int, int], open_: set[int]) -> int:
    """How many values ``node`` stands for, its aliases followed (each node counted once in
    ``sizes``); a :class:`yaml.YAMLError` past :data:`MAX_VALUES` or for an anchor within
    itself."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        raise yaml.composer.ComposerError(
            None, None, "an anchor is used within itself", node.start_mark
        )
    open_.add(key)
    count = 1
    if isinstance(node, yaml.SequenceNode):
        count += sum(_values(item, sizes, open_) for item in node.value)
    elif isinstance(node, yaml.MappingNode):
        count += sum(_values(k, sizes, open_) + _values(v, sizes, open_) for k, v in node.value)
    open_.discard(key)
    if count > MAX_VALUES:
        raise yaml.composer.ComposerError(
            None,
            None,
            f"its aliases (*name) stand for more than {MAX_VALUES:,} values",
            node.start_mark,
        )
    sizes[key] = count
    return count


def load_yaml(text: str) -> Any:
    """``yaml.safe_load(text)``, refusing with a :class:`yaml.YAMLError` a document nested
    deeper than :data:`MAX_DEPTH` or standing for more than :data:`MAX_VALUES` values."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _values(node, {}, set())
        return loader.construct_document(node)
    finally:
        loader.dispose()


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
        return orjson.loads(text) if path.suffix == ".json" else load_yaml(text)
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
        return load_yaml(text)
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
