"""Collect hands its changes on through the outbox: no module it imports, directly or through
another, belongs to a later stage; nor does any stage after it import one after itself, and
every stage reads a person through the one reader of unify."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

import surmesure

ROOT = Path(surmesure.__file__).parent
LATER = ("segment", "decide", "deliver", "journeys")
FLOW = ("collect", "unify", "derive", "segment", "decide", "deliver", "journeys")
READER = "surmesure.unify.reader"


def _module_file(name: str) -> Path | None:
    parts = name.split(".")[1:]
    for candidate in (
        ROOT.joinpath(*parts, "__init__.py"),
        ROOT.joinpath(*parts).with_suffix(".py"),
    ):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, name: str) -> set[str]:
    """Every ``surmesure`` module ``path`` imports, at its top or inside a function."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names if _module_file(f"{base}.{a.name}")}
    return {m for m in found if m.startswith("surmesure.") and _module_file(m)}


@functools.cache
def graph(start: str) -> dict[str, set[str]]:
    """The import graph reachable from every module of package ``start``."""
    todo = [
        f"{start}.{p.stem}" if p.name != "__init__.py" else start
        for p in (ROOT / start.split(".", 1)[1]).glob("*.py")
    ]
    edges: dict[str, set[str]] = {}
    while todo:
        name = todo.pop()
        if name in edges:
            continue
        path = _module_file(name)
        assert path is not None, name
        edges[name] = _imports(path, name)
        todo += edges[name]
    return edges


def _stage(module: str) -> str:
    return module.split(".")[1]


def test_collect_imports_no_later_stage() -> None:
    edges = graph("surmesure.collect")
    arrows = sorted(
        (source, target)
        for source, targets in edges.items()
        for target in targets
        if _stage(target) in LATER
    )
    assert arrows == []
    assert "surmesure.dispatch.outbox" in edges  # the way collect hands changes on


def test_the_graph_sees_an_arrow_where_there_is_one() -> None:
    edges = graph("surmesure.segment")
    assert "surmesure.segment.sql" in edges["surmesure.segment.realtime"]
    assert _stage("surmesure.segment.realtime") in LATER


@pytest.mark.parametrize("stage", FLOW[1:-1])
def test_no_stage_imports_a_later_one(stage: str) -> None:
    later = FLOW[FLOW.index(stage) + 1 :]
    edges = graph(f"surmesure.{stage}")
    arrows = sorted(
        (source, target)
        for source, targets in edges.items()
        for target in targets
        if _stage(target) in later
    )
    assert arrows == []


def test_every_person_read_goes_through_the_one_reader() -> None:
    for module in (
        "surmesure.segment.snapshot",
        "surmesure.decide.audience",
        "surmesure.decide.service",
        "surmesure.decide.serving",
    ):
        path = _module_file(module)
        assert path is not None and READER in _imports(path, module), module
