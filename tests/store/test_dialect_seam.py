"""Only the store asks which database it runs on: every other module goes through the store's
ports (``store.backend``), so a new backend is a new module in ``store/backends/``, not a branch
in the stages. This reads the source tree and names each place outside ``store/`` that tests
the dialect or reaches past the ports to a driver."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "src" / "surmesure"

ATTRIBUTES = {
    "is_duckdb": "a test of the dialect",
    "raw_duckdb": "DuckDB's own connection",
    "driver_connection": "the driver's own connection",
    "with_for_update": "a row lock written for one dialect",
}
"""Attribute -> why it belongs to a backend."""

ADVISORY = ("pg_advisory", "pg_try_advisory")
DIALECTS = {"duckdb", "postgresql", "postgres"}

COMPILER = SOURCE / "segment" / "dialect.py"
"""Segments compile to each dialect's JSON functions here, a compiler's job given the dialect
by name (``store.dialect``), not a branch on the store."""


def _findings(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr in ATTRIBUTES:
                found.append((node.lineno, f".{node.attr}: {ATTRIBUTES[node.attr]}"))
            elif node.attr == "name" and _named(node.value, "dialect"):
                found.append((node.lineno, ".dialect.name: a test of the dialect"))
            elif node.attr in DIALECTS and _named(node.value, "ibis"):
                found.append((node.lineno, f"ibis.{node.attr}: one Ibis backend"))
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_dialect_name(s) for s in sides) and any(_named(s, "dialect") for s in sides):
                found.append((node.lineno, "a dialect compared with its name"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "startswith" and any(_dialect_name(a) for a in node.args):
                found.append((node.lineno, "a URL tested for its scheme"))
        elif isinstance(node, ast.Constant) and any(t in str(node.value) for t in ADVISORY):
            found.append((node.lineno, "an advisory lock written for PostgreSQL"))
    return found


def _named(node: ast.AST, word: str) -> bool:
    """Whether ``node`` is a name or a dotted name with ``word`` in it."""
    return isinstance(node, ast.Name | ast.Attribute) and word in ast.unparse(node)


def _dialect_name(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in DIALECTS


def test_no_module_outside_the_store_tests_the_dialect() -> None:
    offenders = [
        f"{path.relative_to(SOURCE)}:{line}: {why}"
        for path in sorted(SOURCE.rglob("*.py"))
        if "store" not in path.relative_to(SOURCE).parts[:1] and path != COMPILER
        for line, why in _findings(ast.parse(path.read_text()))
    ]
    assert offenders == [], "use a port of surmesure.store.ports instead:\n" + "\n".join(offenders)


def test_the_check_finds_each_kind_of_branch() -> None:
    planted = """
if store.is_duckdb:
    rows = store.raw_duckdb(conn).execute(sql)
if conn.dialect.name == "duckdb":
    pass
query = query.with_for_update(skip_locked=True)
conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"))
if settings.database_url.startswith("duckdb"):
    backend = ibis.postgres.from_connection(conn.connection.driver_connection)
if store.dialect != "postgresql":
    pass
"""
    lines = sorted(line for line, _ in _findings(ast.parse(planted)))
    assert lines == [2, 3, 4, 4, 6, 7, 8, 9, 9, 10]
