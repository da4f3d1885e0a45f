"""Collect hands its changes on through the outbox: no module it imports, directly or through
another, belongs to a later stage."""

from __future__ import annotations

import ast
from pathlib import Path

import surmesure

ROOT = Path(surmesure.__file__).parent
LATER = ("segment", "decide", "deliver", "journeys")


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


def test_the_rows_collect_replays_through_deliver_are_the_ones_deliver_replays() -> None:
    """Collect names the campaign files' row kinds without importing deliver; deliver's
    replayer must know each of them, and no other."""
    import importlib

    from surmesure.collect import replay

    rows = importlib.import_module(replay.ROWS_REPLAYED_BY)
    assert set(rows.ROW_KINDS) == set(replay.ROW_KINDS)
